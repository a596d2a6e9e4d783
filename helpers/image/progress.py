"""Progress of pulls and pushes, as Docker prints it.

Three modes: ``tty`` (one line per layer, redrawn in place ten times a
second, with a bar, bytes and speed), ``plain`` (one line per status change,
no byte counts: logs and pipes stay readable) and ``quiet`` (nothing; the
verb prints only its final line).  Plain ANSI escapes are enough for this;
no progress library is loaded.  Thread-safe: download threads report.
"""

import sys
import threading
import time

BAR_WIDTH = 50


def human(n):
    """go-units HumanSize as Docker's progress uses it (decimal, 3 digits)."""
    from ..formatting import human_size
    return human_size(n)


class Progress:
    def __init__(self, mode=None, out=None):
        self.out = out or sys.stdout
        if mode is None:
            mode = "tty" if _isatty(self.out) else "plain"
        self.mode = mode
        self._lock = threading.Lock()
        self._order = []
        self._rows = {}          # id -> [status, current, total, start time]
        self._drawn = 0
        self._thread = None
        self._stop = threading.Event()

    # -- plain lines -------------------------------------------------------
    def line(self, text):
        if self.mode == "quiet":
            return
        with self._lock:
            self._clear_block()
            self.out.write(text + "\n")
            self.out.flush()
            self._redraw()

    # -- per-layer rows -------------------------------------------------------
    def layer(self, lid, status, current=None, total=None):
        if self.mode == "quiet":
            return
        with self._lock:
            row = self._rows.get(lid)
            if row is None:
                row = self._rows[lid] = [status, 0, None, time.monotonic()]
                self._order.append(lid)
                changed = True
            else:
                changed = row[0] != status
            if status in ("Downloading", "Pushing") and row[0] != status:
                row[3] = time.monotonic()
            row[0] = status
            if current is not None:
                row[1] = current
            if total is not None:
                row[2] = total
            if self.mode == "plain":
                if changed and status not in ("Downloading", "Pushing", "Extracting"):
                    self.out.write("%s: %s\n" % (lid, status))
                    self.out.flush()
            elif changed:
                self._redraw()

    def start(self):
        if self.mode == "tty" and self._thread is None:
            self._thread = threading.Thread(target=self._ticker, daemon=True)
            self._thread.start()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join(1)
            self._thread = None
        if self.mode == "tty":
            with self._lock:
                self._redraw()
                self._drawn = 0          # the block stays as the final state

    def _ticker(self):
        while not self._stop.wait(0.1):
            with self._lock:
                self._redraw()

    def _render(self, lid):
        status, cur, total, start = self._rows[lid]
        text = "%s: %s" % (lid, status)
        if status in ("Downloading", "Pushing", "Extracting") and total:
            frac = min(1.0, cur / total) if total else 0
            filled = int(frac * BAR_WIDTH)
            bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + \
                " " * max(0, BAR_WIDTH - filled - 1)
            elapsed = max(time.monotonic() - start, 1e-3)
            text += " [%s] %8s/%s %s/s" % (bar, human(cur), human(total),
                                          human(cur / elapsed))
        return text

    def _clear_block(self):
        if self.mode == "tty" and self._drawn:
            self.out.write("\x1b[%dA\x1b[J" % self._drawn)
            self._drawn = 0

    def _redraw(self):
        if self.mode != "tty":
            return
        buf = []
        if self._drawn:
            buf.append("\x1b[%dA" % self._drawn)
        for lid in self._order:
            buf.append("\x1b[2K" + self._render(lid) + "\n")
        self.out.write("".join(buf))
        self.out.flush()
        self._drawn = len(self._order)


def _isatty(f):
    try:
        return f.isatty()
    except (AttributeError, ValueError):
        return False
