"""Errors that reach the user.

Library code raises these; only ``helpers.cli.main`` prints them and picks the
exit code.  Each carries a one-line message and, where we know one, a hint that
says how to fix the problem.  Exit codes follow Docker: 125 for sandbox's own
errors, 126 when the command cannot be executed, 127 when it is not found, and
1 for "No such container/image" lookups.
"""


class SandboxError(Exception):
    """Base class: ``message`` is one line, ``hint`` an optional fix."""

    exit_code = 125

    def __init__(self, message, hint=None, exit_code=None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self):
        return self.message


class UsageError(SandboxError):
    """Bad flags or flag combinations, found before any side effect."""


class NotFound(SandboxError):
    """No such container/image/volume (Docker exits 1 for these)."""

    exit_code = 1


class ImageNotFound(NotFound):
    pass


class ContainerNotFound(NotFound):
    pass


class Conflict(SandboxError):
    """A name already in use, an image still used by a container, ..."""


class StoreError(SandboxError):
    """The image/layer store refused an operation (corrupt or hostile input)."""


class UnsafeArchive(StoreError):
    """A layer entry would land outside its layer directory."""


class HostError(SandboxError):
    """The host lacks something we need (user namespaces, newuidmap, ...)."""


class CannotExecute(SandboxError):
    """The container's command exists but cannot be executed (Docker: 126)."""

    exit_code = 126


class CommandNotFound(SandboxError):
    """The container's command does not exist (Docker: 127)."""

    exit_code = 127


class Terminated(BaseException):
    """SIGTERM during a verb that stages files (load, pull, ...): unwinds
    as Ctrl-C does, so that what it was writing is removed on the way out;
    the CLI then exits 143 (128 + SIGTERM), as a process killed by it."""


def terminate_as_interrupt():
    """From now on SIGTERM raises Terminated (once: a second one during the
    clean-up is ignored, so that the clean-up finishes)."""
    import _signal

    def handler(signum, _frame):
        _signal.signal(signum, _signal.SIG_IGN)
        raise Terminated()
    _signal.signal(_signal.SIGTERM, handler)


def _reduce(self):
    # Errors cross process boundaries (a child in a user namespace raises,
    # the parent re-raises): keep the hint and exit code through pickling.
    return (_rebuild, (self.__class__, self.message, self.hint, self.exit_code))


def _rebuild(cls, message, hint, exit_code):
    err = cls.__new__(cls)
    SandboxError.__init__(err, message, hint, exit_code)
    return err


SandboxError.__reduce__ = _reduce

_warned = set()


def warn(message, hint=None, once_key=None):
    """Print one warning line (and its hint) to stderr, once per process per
    ``once_key``.  The one place besides ``cli.main`` that writes to the
    user's terminal on behalf of library code."""
    import sys
    key = once_key or message
    if key in _warned:
        return
    _warned.add(key)
    line = "WARNING: " + message
    if hint:
        line += "\n  hint: " + hint
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
