"""Atomic writes, file locks and symlink-safe path resolution."""

import errno
import fcntl
import os
import stat

from . import jsonfast


def write_all(fd, data):
    """os.write until all of ``data`` is written (pipes take it in parts)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_all(fd):
    """os.read until EOF."""
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def read_bytes(path, limit=None):
    """A whole file, with os.open and os.read: the built-in open() also
    costs an fstat, an isatty ioctl, an lseek and a buffer (four system
    calls more for each file that the start path reads).  ``limit``: one
    read of at most that many bytes (a small /proc file is read whole at
    once)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_all(fd) if limit is None else os.read(fd, limit)
    finally:
        os.close(fd)


def read_text(path, errors="strict"):
    return read_bytes(path).decode("utf-8", errors)


def atomic_write(path, data, mode=0o644, durable=True):
    """Write ``data`` (bytes or str) to ``path`` so that readers see the old
    content or the new one, never a mix: temp file, fsync, rename.
    ``durable=False`` skips the fsync, for files private to one container
    whose loss in a power cut costs nothing (it saves milliseconds on the
    start path)."""
    if isinstance(data, str):
        data = data.encode()
    d = os.path.dirname(path) or "."
    tmp = os.path.join(d, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.close(fd)
    os.rename(tmp, path)


def write_new(path, data, mode=0o644):
    """Create ``path``, which must not exist, with ``data``.  For files in a
    directory we just made and nobody reads yet (a new container's hosts,
    resolv.conf, config.json): no temp file, rename or fsync needed, since
    a crash leaves the whole directory half-made, not the file."""
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def write_json(path, obj, mode=0o644, durable=True):
    atomic_write(path, jsonfast.dumps(obj, separators=(",", ":")) + "\n", mode, durable)


def read_json(path, default=None):
    """Read a JSON file; ``default`` if it does not exist.  Malformed JSON
    raises ValueError (json.JSONDecodeError)."""
    try:
        return jsonfast.loads(read_bytes(path))
    except FileNotFoundError:
        if default is not None:
            return default
        raise


class locked:
    """``with locked(path) as fd``: hold an flock on ``path`` (created if
    missing) for the with-block.  A class, not contextlib.contextmanager:
    contextlib imports collections and functools, milliseconds that every
    command holding a container's lock would pay."""

    def __init__(self, path, shared=False, make_dir=True):
        """``make_dir``: create the lock's directory if it is missing
        (False: a missing directory raises FileNotFoundError)."""
        self.path = path
        self.shared = shared
        self.make_dir = make_dir
        self.fd = None

    def __enter__(self):
        if self.make_dir:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return fd

    def __exit__(self, *exc_info):
        os.close(self.fd)
        self.fd = None


def resolve_in_root(root, path, follow_last=True):
    """Resolve ``path`` as the container would see it with ``root`` as "/".

    Symlinks are followed, but an absolute link target restarts at ``root``
    and ``..`` never climbs above it, so the result always lies inside
    ``root`` (the class of bug behind CVE-2021-30465 and CVE-2024-21626 is
    resolving a container path with the host's root).  Missing components are
    kept as they are.  Returns a host path.
    """
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved = []          # components below root, already free of links
    budget = 40            # like the kernel's MAXSYMLINKS
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if not parts and not follow_last:
            resolved.append(part)
            break
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            budget -= 1
            if budget < 0:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def rmtree(path):
    """Remove a tree without following symlinks; a missing path is not an
    error.  Directories without write or search permission (mode 0555 or
    000 in an image) are opened up first.  Written on os.scandir rather than
    shutil, whose import (bz2, lzma) costs milliseconds in the teardown of
    every `run --rm`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    _rmtree_dir(path, st)


def _rmtree_dir(path, st):
    if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
        os.chmod(path, 0o700)
    with os.scandir(path) as it:
        entries = list(it)
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _rmtree_dir(entry.path, entry.stat(follow_symlinks=False))
            else:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
