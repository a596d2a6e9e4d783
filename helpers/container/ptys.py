"""Terminals of the container's own devpts, as Docker's: `run -t` and
`exec -t` get a pty that the container's /dev/pts holds, so `tty` names it
(/dev/pts/N) and `ps` shows it; a pty of the host's devpts has no name in
the container.  The process that makes it (G after its pivot, X in the
container's namespaces) sends the master to the CLI or supervisor over a
unix socket (SCM_RIGHTS) and keeps the slave as its terminal.

Those processes are past the pivot when they call this: nothing here may
import then.  PRELOAD names the modules to import before."""

import os

PRELOAD = ("_socket", "array", "fcntl", "stat", "struct", "termios")

_TIOCSPTLCK = 0x40045431        # unlockpt(3)
_TIOCGPTPEER = 0x5441           # the slave from its master (no path lookup)
_TIOCGPTN = 0x80045430          # the pty's number (ptsname(3))


def preload():
    for module in PRELOAD:
        __import__(module)


def open_in_container(winsize, uid, hint):
    """Inside the container's mount namespace: (master, slave) of a pty of
    its devpts, at ``winsize`` (TIOCGWINSZ bytes, or None), the slave owned
    by ``uid`` (as runc leaves it for the process's user).  The container's
    root controls its /dev: the path is opened without following a link or
    blocking, and must be a devpts ptmx; else SandboxError with ``hint``."""
    import fcntl
    import stat
    import termios
    from ..errors import SandboxError
    flags = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        master = os.open("/dev/pts/ptmx", flags)
    except OSError as exc:
        try:
            # A /dev of the host's (-v /dev:/dev): its pts' ptmx is mode
            # 000, its /dev/ptmx the device (ours is a link: ELOOP).
            master = os.open("/dev/ptmx", flags)
        except OSError:
            raise SandboxError("cannot allocate a terminal in the container: "
                               "/dev/pts/ptmx: %s" % exc.strerror, hint=hint) from None
    st = os.fstat(master)
    if not stat.S_ISCHR(st.st_mode) or \
            (os.major(st.st_rdev), os.minor(st.st_rdev)) != (5, 2):
        os.close(master)
        raise SandboxError("cannot allocate a terminal in the container: "
                           "/dev/pts/ptmx is not a pseudo-terminal multiplexer",
                           hint=hint)
    os.set_blocking(master, True)
    fcntl.ioctl(master, _TIOCSPTLCK, b"\0\0\0\0")
    slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    if winsize is not None:
        fcntl.ioctl(master, termios.TIOCSWINSZ, winsize)
    try:
        os.fchown(slave, uid, -1)
    except OSError:
        pass                            # (an unmapped user fails later, clearly)
    return master, slave


def show_as_console(master):
    """Bind the pty's slave (/dev/pts/N) onto /dev/console, as runc does
    for a container with a terminal (after the pivot, in the container's
    mount namespace).  Best effort: without a /dev of ours to make the
    file in, the console stays what it is."""
    import fcntl
    import struct
    from .. import linux
    number = struct.unpack("i", fcntl.ioctl(master, _TIOCGPTN, b"\0\0\0\0"))[0]
    try:
        os.close(os.open("/dev/console", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600))
        linux.mount("/dev/pts/%d" % number, "/dev/console", None, linux.MS_BIND)
    except OSError:
        pass


def send_fd(sock, fd):
    """``fd`` over the unix socket ``sock`` (an fd), with one byte."""
    import _socket
    import array
    s = _socket.socket(fileno=sock)
    try:
        s.sendmsg([b"t"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                            array.array("i", [fd]))])
    finally:
        s.detach()


def receive_fd(sock):
    """The fd sent over the unix socket ``sock`` (an fd; send_fd), or None
    at its end (the sender failed or is gone)."""
    import _socket
    import array
    s = _socket.socket(fileno=sock)
    try:
        _, ancillary, _, _ = s.recvmsg(1, _socket.CMSG_SPACE(4), _socket.MSG_CMSG_CLOEXEC)
    finally:
        s.detach()
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            return array.array("i", data[:4])[0]
    return None
