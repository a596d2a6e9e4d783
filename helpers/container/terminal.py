"""The -t relay: the caller's terminal in raw mode <-> the container's pty,
with the window size kept in step (SIGWINCH)."""

import errno
import fcntl
import os
import select
# _signal is the C module under `signal`: the same functions and int
# constants, without the wrapper's enum import (milliseconds of start).
import _signal as signal
import termios
import tty

from ..fsutil import write_all


def _copy_winsize(src, master):
    try:
        ws = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, ws)
    except OSError:
        pass


def relay(master, forward_stdin=True, stdin=0, stdout=1, on_output=None, escape=None):
    """Copy until the container side of the pty is closed by every process
    in the container (read() on the master then fails with EIO).
    ``on_output(data)`` also gets what the container wrote (the log).
    ``escape``: an attach._Escape watching the input for the detach keys;
    returns "detached" (attach.DETACHED) once they are typed, else None."""
    restore = None
    if forward_stdin and os.isatty(stdin):
        restore = termios.tcgetattr(stdin)
        # TCSANOW, as Docker's MakeRaw: what was typed before we got here
        # (a slow start) goes to the container, not flushed away.
        tty.setraw(stdin, termios.TCSANOW)
    src_tty = stdin if os.isatty(stdin) else (stdout if os.isatty(stdout) else None)
    old_winch = None
    if src_tty is not None:
        old_winch = signal.signal(signal.SIGWINCH,
                                  lambda *_: _copy_winsize(src_tty, master))
    try:
        reading_stdin = forward_stdin
        while True:
            fds = [master] + ([stdin] if reading_stdin else [])
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:
                    if exc.errno == errno.EIO:
                        break
                    raise
                if not data:
                    break
                if on_output:
                    on_output(data)
                if stdout is not None:
                    try:
                        write_all(stdout, data)
                    except OSError:
                        stdout = None       # our reader went away; keep logging
            if reading_stdin and stdin in ready:
                data = os.read(stdin, 65536)
                if not data:
                    # End of input on a pipe: pass EOF on as the terminal's
                    # EOF character, then stop reading.
                    reading_stdin = False
                    write_all(master, b"\x04")
                    continue
                detached = False
                if escape is not None:
                    data, detached = escape.feed(data)
                if data:
                    write_all(master, data)
                if detached:
                    return "detached"
    finally:
        if restore is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, restore)
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)


def drain(master, on_output):
    """Read a pty master until the container side is gone (detached -t)."""
    while True:
        try:
            data = os.read(master, 65536)
        except InterruptedError:
            continue
        except OSError:
            return          # EIO: every slave fd is closed
        if not data:
            return
        on_output(data)
