"""A running user-mode network helper (pasta or slirp4netns): started by
the container's supervisor (or the foreground CLI) as its child, with
PR_SET_PDEATHSIG so that it never outlives that process; ready before the
container's command runs; stopped when the container ends."""

import os
import select
# _signal is the C module under `signal`: the same functions and int
# constants, without the wrapper's enum import (milliseconds of start).
import _signal as signal

from .. import proc
from ..pids import stat_fields
from . import rtnl
from ..errors import HostError

READY_TIMEOUT = 10.0        # seconds: pasta and slirp4netns take ~10-50 ms


class Helper:
    def __init__(self, name, argv, log_path, fds=None, keep=(), program=None):
        """Start ``argv``; ``fds``: target fd -> our fd for it (closed here
        once the helper has them); ``keep``: fds we hold for the helper's
        life (slirp4netns' exit-fd: closing it ends the helper);
        ``program``: proc.spawn's."""
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.address = {}
        self.files = [log_path]         # removed when it stops
        self.published = []             # (ip, host port, ctr port, proto)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                      0o600)
        try:
            self.pid = proc.spawn(argv, fds={**(fds or {}), 2: log}, program=program)
        finally:
            os.close(log)
            for fd in (fds or {}).values():
                os.close(fd)
        self.pidfd = os.pidfd_open(self.pid)
        self.keep = list(keep)
        # (ready fd, its path, is_ready, route watch): a ready signal still
        # to come (pasta.py), and a netlink socket on the container's
        # namespace for _drain
        self.pending = None

    def hand_over(self):
        """What resume() needs to stop this helper from another program
        image (monitor.py's native monitor): its fds stay open across the
        exec, slirp4netns' exit-fd above all (closing it ends the helper).
        A ready signal still to come is waited for first: its reader goes
        with the exec."""
        self.settle()
        for fd in self.keep:
            os.set_inheritable(fd, True)
        return {"name": self.name, "argv": self.argv, "log_path": self.log_path,
                "files": self.files, "published": self.published, "pid": self.pid,
                "keep": self.keep}

    @classmethod
    def adopt(cls, d):
        """The helper hand_over() described, still our child."""
        self = cls.__new__(cls)
        self.name, self.argv, self.log_path = d["name"], d["argv"], d["log_path"]
        self.files, self.pid, self.keep = d["files"], d["pid"], d["keep"]
        self.published = [tuple(p) for p in d["published"]]
        self.address = {}
        self.pending = None              # settled by hand_over()
        for fd in self.keep:
            os.set_inheritable(fd, False)
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except OSError:
            self.pidfd = -1          # gone and reaped: nothing to stop
        return self

    def settle(self):
        """Wait for the ready signal that finish() left pending."""
        if self.pending is not None:
            fd, path, is_ready, watch = self.pending
            self.pending = None
            os.close(watch)
            try:
                self.wait_ready(fd, is_ready)
            finally:
                self.files.remove(path)
                os.unlink(path)

    def _drain(self):
        """Before a helper still starting up is stopped: if the container
        sent anything (frames queued for the tap device, such as a last
        datagram), let the helper get ready and forward it: until it has
        read every frame the tap was given and is idle again (it forwards
        what it reads before it sleeps); a container that sent nothing
        (`run --rm IMAGE true`) does not wait."""
        watch = os.dup(self.pending[3])      # (settle closes the pending one)
        try:
            frames = rtnl.tap_frames(watch)
            if frames is not None and frames[0] == 0:
                return
            self.settle()
            import time
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                if (stat_fields(self.pid) or [b"X"])[0] != b"R":       # not busy
                    frames = rtnl.tap_frames(watch)
                    if frames is None or frames[1] >= frames[0]:
                        return
                time.sleep(0.001)
        except (OSError, HostError):
            return
        finally:
            os.close(watch)

    def wait_routes(self, watch, families, timeout):
        """Wait until the namespace that ``watch`` (a netlink socket bound
        to its route groups) hears from has a default route of each address
        family in ``families``; False after ``timeout`` seconds (the caller
        falls back to the helper's own ready signal).  The helper's exit
        raises, as in wait_ready."""
        import time
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(watch, select.POLLIN)
        poller.register(self.pidfd, select.POLLIN)
        missing = set(families)
        while missing:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for fd, _ in poller.poll(left * 1000):
                if fd == self.pidfd:
                    self._failed()
                try:
                    data = os.read(watch, 65536)
                except BlockingIOError:
                    continue
                except OSError:          # ENOBUFS: events were lost
                    return False
                missing -= set(rtnl.default_routes(data))
        return True

    def wait_ready(self, ready_fd, is_ready):
        """Wait until ``ready_fd`` has data that ``is_ready`` accepts, the
        helper exits (its log says why), or the timeout passes."""
        poller = select.poll()
        poller.register(ready_fd, select.POLLIN)
        poller.register(self.pidfd, select.POLLIN)
        import time
        deadline = time.monotonic() + READY_TIMEOUT
        data = b""
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise HostError("%s did not become ready within %ds" % (
                        self.name, READY_TIMEOUT), hint="see " + self.log_path)
                for fd, _ in poller.poll(left * 1000):
                    if fd == ready_fd:
                        chunk = os.read(ready_fd, 64)
                        data += chunk
                        if is_ready(data):
                            return data
                        if not chunk:
                            poller.unregister(ready_fd)
                    elif fd == self.pidfd:
                        self._failed()
        finally:
            os.close(ready_fd)

    def _failed(self):
        code = self._reap(block=True)
        import shlex
        detail = ""
        try:
            with open(self.log_path, errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()
                         and not l.startswith("Failed to send")]
            detail = lines[-1] if lines else ""
        except OSError:
            pass
        self._close()
        raise HostError("%s failed (exit %s)%s" % (
            shlex.join(self.argv), code, ": " + detail if detail else ""),
            hint=_hint(detail))

    def _reap(self, block):
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return None
        if pid == 0:
            return None
        return os.waitstatus_to_exitcode(status)

    def _close(self):
        """Close our fds for the helper and remove its files."""
        if self.pending is not None:
            self.keep += [self.pending[0], self.pending[3]]
            self.pending = None
        for fd in self.keep + [self.pidfd]:
            try:
                os.close(fd)
            except OSError:
                pass
        self.keep = []
        self.pidfd = -1
        for path in self.files:
            try:
                os.unlink(path)
            except OSError:
                pass

    def stop(self):
        """End the helper and reap it; never hangs, also when it was killed
        already.  SIGKILL at once: neither helper has state to save, and
        pasta takes ~35 ms to leave on SIGTERM.  Reaped at once only when
        it holds published ports (they must be free when we return);
        otherwise later (reap_later), off the path of a `run --rm`."""
        if self.pidfd < 0:
            return
        if self.pending is not None:
            self._drain()
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except OSError:
            pass                     # gone already
        if self.published:
            select.select([self.pidfd], [], [], 5.0)
            self._reap(block=True)
        elif self._reap(block=False) is None:
            _unreaped.append(self.pid)
        self._close()


_unreaped = []


def reap_later(wait=0.0):
    """Reap helpers stopped earlier without waiting (a restarting
    container's supervisor would otherwise collect zombies); ``wait``:
    seconds to give those not dead yet (SIGKILLed: milliseconds)."""
    import time
    deadline = time.monotonic() + wait
    while True:
        for pid in list(_unreaped):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            except ChildProcessError:
                pass
            _unreaped.remove(pid)
        if not _unreaped or time.monotonic() >= deadline:
            return
        time.sleep(0.005)


def _hint(detail):
    low = detail.lower()
    if "tun" in low:
        return "/dev/net/tun must be usable by you: chmod 0666 /dev/net/tun (as root)"
    if "bind" in low or "address already in use" in low:
        return "a published host port is taken: choose another one"
    if "route" in low or "interface" in low:
        return "the host has no default route for pasta to copy: use " \
               "--network slirp4netns or --network none"
    return None
