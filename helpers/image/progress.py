"""Progress of pulls and pushes, as Docker prints it.

Three modes: ``tty`` (one bar per layer with bytes and speed, drawn by
tqdm, redrawn in place), ``plain`` (one line per status change, no byte
counts: logs and pipes stay readable) and ``quiet`` (nothing; the verb
prints only its final line).  tqdm is imported only in ``tty`` mode.
Thread-safe: download threads report.
"""

import sys
import threading

BAR_WIDTH = 50
BYTES_STATUSES = ("Downloading", "Pushing", "Extracting")
BAR_FORMAT = "{desc} [{bar:%d}] {n_fmt}B/{total_fmt}B {rate_fmt}" % BAR_WIDTH


class Progress:
    def __init__(self, mode=None, out=None):
        self.out = out or sys.stdout
        if mode is None:
            mode = "tty" if _isatty(self.out) else "plain"
        self.mode = mode
        self._lock = threading.Lock()
        self._rows = {}          # id -> status (plain), or a tqdm bar (tty)
        self._tqdm = None
        if mode == "tty":
            from ..deps import enable_site
            enable_site()
            from tqdm import tqdm
            self._tqdm = tqdm

    # -- plain lines -------------------------------------------------------
    def line(self, text):
        if self.mode == "quiet":
            return
        with self._lock:
            if self._tqdm is not None and self._rows:
                self._tqdm.write(text, file=self.out)
            else:
                self.out.write(text + "\n")
                self.out.flush()

    # -- per-layer rows -------------------------------------------------------
    def layer(self, lid, status, current=None, total=None):
        if self.mode == "quiet":
            return
        with self._lock:
            if self.mode == "plain":
                changed = self._rows.get(lid) != status
                self._rows[lid] = status
                if changed and status not in BYTES_STATUSES:
                    self.out.write("%s: %s\n" % (lid, status))
                    self.out.flush()
                return
            bar = self._rows.get(lid)
            if bar is None:
                bar = self._rows[lid] = self._tqdm(
                    file=self.out, position=len(self._rows), leave=True,
                    unit="B", unit_scale=True, unit_divisor=1000,
                    bar_format="{desc}", mininterval=0.1, dynamic_ncols=True)
                bar.status = None
            if total is not None:
                bar.total = total
            if status != bar.status:
                bar.status = status
                bar.set_description_str("%s: %s" % (lid, status), refresh=False)
                if status in BYTES_STATUSES and bar.total:
                    if status != "Extracting":
                        bar.reset(total=bar.total)     # speed from this start
                    bar.bar_format = BAR_FORMAT
                else:
                    bar.bar_format = "{desc}"
            if current is not None and current > bar.n:
                bar.update(current - bar.n)
            else:
                bar.refresh()

    def start(self):
        """(The bars draw themselves: nothing to start.)"""

    def stop(self):
        """Leave every bar at its last state, the cursor below them."""
        with self._lock:
            if self.mode == "tty":
                for bar in self._rows.values():
                    bar.refresh()
                for bar in self._rows.values():
                    bar.close()
                self._rows = {}


def _isatty(f):
    try:
        return f.isatty()
    except (AttributeError, ValueError):
        return False
