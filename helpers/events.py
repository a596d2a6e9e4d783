"""Docker's events, without a daemon: each command that changes a
container, image, volume or network appends one line to
<runroot>/events.jsonl, Docker's event message as JSON; `sandbox events`
reads the file and follows it (commands/events.py).

Like Docker's (the daemon keeps its last events in memory), the log does
not outlive a reboot: the run root is a tmpfs ($XDG_RUNTIME_DIR).  It is
rotated at 1 MiB, one older file kept (events.jsonl.1).  Writing is best
effort: a command never fails because its event could not be written.
One write(2) per event on an O_APPEND file: lines of concurrent writers
never mix."""

import os
import time

from . import jsonfast

LOG = "events.jsonl"
ROTATE_AT = 1 << 20


def log_path(paths):
    return os.path.join(paths.runroot, LOG)


def container(paths, cid, record, action, **extra):
    """A container's event: Docker's Actor.Attributes are its labels,
    image and name (from ``record``), and the action's own (``extra``:
    exitCode, signal, ...)."""
    _write(paths, container_line(cid, record, action, **extra))


def container_line(cid, record, action, **extra):
    """container()'s line, for a writer of its own (write_line)."""
    attributes = dict(record.get("Labels") or {})
    attributes["image"] = record.get("ImageName") or record.get("Image") or ""
    attributes["name"] = record.get("Name") or ""
    attributes.update(extra)
    return _line("container", action, cid, attributes)


def emit(paths, kind, action, actor, attributes=None):
    """Append one event: ``kind`` is Docker's Type (container, image,
    volume, network), ``action`` its Action (create, start, die, ...),
    ``actor`` the object's id (an image's reference for pull and push)."""
    _write(paths, _line(kind, action, actor, attributes))


def _line(kind, action, actor, attributes):
    now = time.time_ns()
    attributes = {k: str(v) for k, v in (attributes or {}).items()}
    message = {"Type": kind, "Action": action,
               "Actor": {"ID": actor, "Attributes": attributes},
               "scope": "local", "time": now // 1000000000, "timeNano": now}
    if kind in ("container", "image"):
        # Docker's older fields, still sent for these two.
        message.update(status=action, id=actor)
        if kind == "container":
            message["from"] = attributes.get("image", "")
    return (jsonfast.dumps(message, separators=(",", ":")) + "\n").encode()


def open_log(paths):
    """The log, open for appending (write_line), or None."""
    path = log_path(paths)
    try:
        try:
            return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            os.makedirs(paths.runroot, mode=0o700, exist_ok=True)
            return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None


def write_line(fd, data):
    """One line to a log that open_log gave (best effort; the next writer
    through _write rotates it if need be)."""
    try:
        os.write(fd, data)
    except OSError:
        pass


def _write(paths, data):
    fd = open_log(paths)
    if fd is None:
        return
    try:
        try:
            os.write(fd, data)
            written = os.fstat(fd)
        finally:
            os.close(fd)
        if written.st_size > ROTATE_AT:
            _rotate(log_path(paths), written)
    except OSError:
        pass


def _rotate(path, written):
    """events.jsonl -> events.jsonl.1, unless another writer did already
    (the file is then another one)."""
    try:
        current = os.stat(path)
        if (current.st_dev, current.st_ino) == (written.st_dev, written.st_ino):
            os.replace(path, path + ".1")
    except OSError:
        pass
