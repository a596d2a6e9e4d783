"""Attaching to a detached container: the supervisor listens on a unix
socket in the run root (mode 0700, so only the user gets in) and relays.

Frames from the supervisor: one byte of kind ("1" stdout, "2" stderr,
"x" exit, "t" terminal), four bytes of big-endian length, the payload (for
"x": the exit code as text).  A container with a terminal sends each
client, first, an empty "t" frame that carries its pty's master
(SCM_RIGHTS): the client keeps the container's window size its own with
it (Docker's resize call; the pty belongs to the container's devpts, so
no path outside reaches it).  From the client: raw bytes for the
container's stdin; EOF closes the container's stdin when the container was
made with -i and no terminal (as `docker attach` does).
"""

import os
import select
import struct

from .. import fsutil


def socket_path(paths, cid):
    # sun_path holds 108 bytes: the short id keeps it well under that.
    return os.path.join(paths.runroot, "attach", cid[:12] + ".sock")


def sun_path(path):
    """A path a unix socket can take: sun_path holds 108 bytes, and run
    roots can sit deep.  A long one goes through /proc/self/fd/N of its
    directory (podman does the same).  Returns (path, fd to close)."""
    if len(path.encode()) < 100:
        return path, None
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return "/proc/self/fd/%d/%s" % (fd, os.path.basename(path)), fd


def connect(path, timeout=None):
    """A connected unix stream socket to ``path`` (however deep)."""
    import socket
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    if timeout is not None:
        conn.settimeout(timeout)
    short, fd = sun_path(path)
    try:
        conn.connect(short)
    except BaseException:
        conn.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return conn


_SHUT_WR = 1        # socket.SHUT_WR


def _frame(kind, data):
    return kind + struct.pack(">I", len(data)) + data


class Server:
    """The supervisor's side: output fds -> log and attached clients;
    clients' input -> the container's stdin (a pipe, or the pty master)."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.path = path
        # _socket's plain socket: the socket module costs a detached
        # container's supervisor ~6 ms to import (enum, selectors), and
        # only the Python server loop needs it (sock; the native monitor
        # takes over the fd).
        import _socket
        raw = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        short, fd = sun_path(path)
        try:
            raw.bind(short)
            raw.listen(8)
        except BaseException:
            raw.close()
            raise
        finally:
            if fd is not None:
                os.close(fd)
        os.chmod(path, 0o600)
        self.fd = raw.detach()
        self._sock = None
        self.clients = []

    @property
    def sock(self):
        """The listening socket as a socket.socket."""
        if self._sock is None:
            import socket
            self._sock = socket.socket(fileno=self.fd)
        return self._sock

    @classmethod
    def adopt(cls, path, fd, client_fds=()):
        """The listening socket (and attached clients) that the native
        monitor kept across its exec."""
        import socket
        self = cls.__new__(cls)
        self.path = path
        self.fd = fd
        self._sock = socket.socket(fileno=fd)
        self.clients = [socket.socket(fileno=c) for c in client_fds]
        return self

    def serve(self, sources, log, stdin_fd=None, stdin_closes=True, terminal=None):
        """Until every source is at EOF.  ``sources``: {fd: stream}; for a
        terminal the master (``terminal``) is both a source and
        ``stdin_fd``, and each client gets it (the "t" frame)."""
        from .monitor import drain_sources
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        by_fd = {}
        stdin = [stdin_fd]
        # A client that connected before the start (run -it, start -a) is
        # taken before any output is read: it misses none of it.
        self.sock.setblocking(False)
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            conn.setblocking(True)
            self._add(conn, terminal)
            by_fd[conn.fileno()] = conn
            poller.register(conn.fileno(), select.POLLIN)
        self.sock.setblocking(True)

        def output(stream, data):
            log.write(stream, data)
            self._broadcast(b"1" if stream == "stdout" else b"2", data)

        def other(fd):
            if fd == self.sock.fileno():
                conn, _ = self.sock.accept()
                self._add(conn, terminal)
                by_fd[conn.fileno()] = conn
                poller.register(conn.fileno(), select.POLLIN)
                return
            conn = by_fd.get(fd)
            if conn is None:
                return
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if data and stdin[0] is not None:
                try:
                    fsutil.write_all(stdin[0], data)
                except OSError:
                    stdin[0] = None
            if not data:
                poller.unregister(fd)
                del by_fd[fd]
                # EOF of the client's stdin (it stays attached for the
                # output): close the container's stdin pipe.
                if stdin_closes and stdin[0] is not None and stdin[0] not in sources:
                    os.close(stdin[0])
                    stdin[0] = None

        drain_sources(sources, output, poller, other)

    def _add(self, conn, terminal):
        if terminal is not None:
            import array
            import socket
            try:
                conn.sendmsg([_frame(b"t", b"")], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                    array.array("i", [terminal]))])
            except OSError:
                conn.close()
                return
        self.clients.append(conn)

    def _broadcast(self, kind, data):
        frame = _frame(kind, data)
        for conn in list(self.clients):
            try:
                conn.sendall(frame)
            except OSError:
                self.clients.remove(conn)

    def end_clients(self, exit_code):
        """The container exited: tell the attached clients, let them go."""
        self._broadcast(b"x", str(exit_code).encode())
        for conn in self.clients:
            try:
                conn.close()
            except OSError:
                pass
        self.clients = []

    def shutdown(self):
        for conn in self.clients:
            conn.close()
        if self._sock is not None:
            self._sock.close()
        else:
            os.close(self.fd)
        try:
            os.unlink(self.path)
        except OSError:
            pass


DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
DETACHED = "detached"


def parse_detach_keys(text):
    """Docker's --detach-keys: "ctrl-p,ctrl-q", "ctrl-a,x", ... -> bytes."""
    from ..errors import UsageError
    if not text:
        from ..paths import cli_setting
        text = cli_setting("detachKeys")        # Docker's config.json key
    out = bytearray()
    for key in (text or DEFAULT_DETACH_KEYS).split(","):
        key = key.strip()
        if len(key) == 1:
            out.append(ord(key))
            continue
        if key.lower().startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - 96)
                continue
            if c in "@[\\]^_":
                out.append("@[\\]^_".index(c) + (0 if c == "@" else 26))
                continue
        raise UsageError("invalid detach keys %r" % text,
                         hint='e.g. --detach-keys "ctrl-p,ctrl-q" or "ctrl-a,d"')
    return bytes(out)


class _Escape:
    """Watches the terminal's input for the detach sequence; what only
    began like it goes on to the container once it turns out not to be."""

    def __init__(self, keys):
        self.keys = keys
        self.held = b""

    def feed(self, data):
        """(bytes to send on, whether the sequence is complete)."""
        out = bytearray()
        for b in data:
            b = bytes([b])
            if self.keys.startswith(self.held + b):
                self.held += b
                if self.held == self.keys:
                    self.held = b""
                    return bytes(out), True
                continue
            out += self.held
            self.held = b""
            if self.keys.startswith(b):
                self.held = b
            else:
                out += b
        return bytes(out), False


class _Resizer:
    """Keeps the container's terminal the size of ours, now and on
    SIGWINCH, through the pty master the supervisor sent ("t" frame)."""

    def __init__(self):
        self.master = None
        self.old = None

    def take(self, master):
        import signal
        from .runtime import copy_winsize_to
        if self.master is not None or not os.isatty(0):
            os.close(master)
            return
        self.master = master
        copy_winsize_to(master)
        self.old = signal.signal(signal.SIGWINCH, lambda *_: copy_winsize_to(master))

    def stop(self):
        if self.master is not None:
            import signal
            signal.signal(signal.SIGWINCH, self.old)
            os.close(self.master)
            self.master = None


def _receive(conn):
    """recv, and the fds that came with the bytes (SCM_RIGHTS)."""
    import array
    import socket
    data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * 4),
                                         socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, kind, extra in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(array.array("i", extra[:len(extra) - len(extra) % 4]))
    return data, fds


def attach(path, stdin=True, tty=False, on_connected=None, detach_keys=None,
           conn=None):
    """The CLI's side: relay until the container exits; returns its code
    (or None when the supervisor went away without one, or DETACHED when
    the user typed the detach keys: with a terminal, ``detach_keys``, the
    bytes of parse_detach_keys, checked by the caller before it acts).
    ``conn``: a connection made already (attach before the start).  With
    a terminal, the container's is kept the size of ours (the "t"
    frame's master)."""
    escape = _Escape(detach_keys) if stdin and tty and detach_keys else None
    if conn is None:
        conn = connect(path)
    if on_connected:
        on_connected()
    restore = None
    resizer = _Resizer()
    if stdin and tty and os.isatty(0):
        import termios
        import tty as tty_mod
        restore = termios.tcgetattr(0)
        tty_mod.setraw(0, termios.TCSANOW)     # (typed-ahead input is kept)
    buf = b""
    code = None
    try:
        reading_stdin = stdin
        while True:
            fds = [conn] + ([0] if reading_stdin else [])
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if reading_stdin and 0 in ready:
                data = os.read(0, 65536)
                if data and escape is not None:
                    data, detached = escape.feed(data)
                    if data:
                        conn.sendall(data)
                    if detached:
                        return DETACHED
                elif data:
                    conn.sendall(data)
                else:
                    reading_stdin = False
                    conn.shutdown(_SHUT_WR)
            if conn in ready:
                chunk, fds = _receive(conn)
                for fd in fds:
                    if tty:
                        resizer.take(fd)
                    else:
                        os.close(fd)
                if not chunk:
                    return code
                buf += chunk
                while len(buf) >= 5:
                    kind, size = buf[:1], struct.unpack(">I", buf[1:5])[0]
                    if len(buf) < 5 + size:
                        break
                    payload, buf = buf[5:5 + size], buf[5 + size:]
                    if kind == b"x":
                        code = int(payload or b"0")
                    elif kind == b"t":
                        pass            # (its master: taken above)
                    else:
                        fsutil.write_all(1 if kind == b"1" else 2, payload)
    finally:
        resizer.stop()
        if restore is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, restore)
        conn.close()
