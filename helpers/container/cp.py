"""`cp`: files between a container and the host, as a tar stream.

The danger is resolving a container path with the host's root: a symlink
the container owns (``/escape -> /``, or one swapped in mid-copy) would then
make cp read or write a host file (CVE-2018-15664, CVE-2019-14271).  So the
container side never runs in the host's view of the filesystem:

  CLI  the plain user, on the host: reads or writes the host path (or
       stdin/stdout) and streams a tar archive over a pipe.
  W    forked from the CLI, the container side.  Running container: it joins
       the user and mount namespaces of the container's PID 1 through
       /proc/PID/ns, and setns(2) makes the container's root its "/".
       Stopped (created/exited) container: M joins the user's shared user
       namespace, unshares a mount namespace, mounts the container's root
       filesystem on its rootfs/ and forks W, which chroots into it; M
       unmounts it (ending a fuse-overlayfs daemon) when W is done.
       W never enters the container's PID namespace, so the container's
       processes cannot see it, let alone ptrace it.

Every lookup W makes is then the container's own, confined to its root by
the kernel.  W imports nothing after it enters the container (the host's
Python library is out of reach there), and never asks NSS for user names: a
lookup in the container would load the container's libnss_*.so into W, the
exact hole of CVE-2019-14271.

Whichever side extracts treats the archive as hostile (the host side reads
what a container may have arranged): names are relative and never climb out
with "..", every directory below the extraction point is opened with
O_NOFOLLOW relative to its parent's fd, so nothing is ever written through a
symlink, and a file is created with O_EXCL|O_NOFOLLOW after whatever was
there is unlinked.  The path the user names as the destination is resolved
normally (its symlinks followed: on the host it is the user's own choice, in
the container W's root confines it).  The rules mirror helpers/image/
unpack.py, with fds instead of paths because a running container (or a
bind mount it shares with the host) can change the tree while we copy.

Placement follows `docker cp`: a directory source goes *into* an existing
directory, or becomes a missing destination; "SRC/." copies the contents; a
file replaces a file or lands in a directory under its own name.  The
extracting side is cp_extract.py.
"""

import errno
import os
import posixpath
import stat
import tarfile

from .. import linux
from ..errors import SandboxError
# Imported here, not in W: after W enters the container, no import works.
from .runtime import _decode_failure, _report, _wait

CHUNK = 1 << 16
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class CpError(SandboxError):
    """A copy that cannot be done (Docker's CLI exits 1 for these)."""

    exit_code = 1


# ---------------------------------------------------------------------------
# Paths, as `docker cp` reads them
# ---------------------------------------------------------------------------
def wants_contents(path):
    """"dir/." (and "/" or "."): the directory's contents, not itself."""
    return path.endswith("/.") or path in (".", "/") or \
        posixpath.normpath(path) == "/"


def asserts_dir(path):
    """A trailing "/" or "/." says the path must be a directory."""
    return path.endswith("/") or path.endswith("/.") or path == "."


def root_name(path):
    """Name of the archive's root entry for the source ``path``."""
    if wants_contents(path):
        return "."
    return posixpath.basename(posixpath.normpath(os.path.abspath(path)))


def _clean(name, what="entry"):
    """A member name relative to the archive root; absolute names and names
    that climb out with ".." are refused (as in image/unpack.py)."""
    if name.startswith("/"):
        raise CpError("refusing archive %s %r: absolute path" % (what, name),
                      hint="the archive is malformed or hostile")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise CpError("refusing archive %s %r: it points outside the "
                      "destination (\"..\")" % (what, name),
                      hint="the archive is malformed or hostile")
    return "" if norm == "." else norm


def _oserror_text(exc):
    name = exc.filename
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return "%s: %s" % (name, exc.strerror) if name else (exc.strerror or str(exc))


def source_stat(path, follow_link, missing):
    """lstat (stat with -L, or with a trailing "/") of a source, with
    Docker's errors: ``missing(path)`` when it is not there, "not a
    directory" for "file/"."""
    follow = follow_link or asserts_dir(path)
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        bare = posixpath.normpath(path)
        if asserts_dir(path) and os.path.exists(bare) and not os.path.isdir(bare):
            raise CpError("%s: not a directory" % bare) from None
        raise missing(path) from None
    except OSError as exc:
        raise CpError(_oserror_text(exc)) from None
    if asserts_dir(path) and not stat.S_ISDIR(st.st_mode):
        raise CpError("%s: not a directory" % path)
    return st


# ---------------------------------------------------------------------------
# Producing the archive
# ---------------------------------------------------------------------------
class _Padded:
    """A file of announced size: reads return exactly what tarfile asks for,
    zero-padded if the file shrank meanwhile (a running container may be
    writing it), never more than the size in the header."""

    def __init__(self, fd, size):
        self.fd = fd
        self.left = size

    def read(self, n):
        n = min(n, self.left)
        parts = []
        got = 0
        while got < n:
            data = os.read(self.fd, n - got)
            if not data:
                parts.append(b"\0" * (n - got))
                break
            parts.append(data)
            got += len(data)
        self.left -= n
        return b"".join(parts)


class _Writer:
    def __init__(self, out, skip=()):
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.links = {}
        self.skip = skip

    def info(self, name, st, kind):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        # uname/gname stay "": looking them up would consult the
        # container's NSS configuration and libraries (CVE-2019-14271).
        ti.mtime = int(st.st_mtime)
        return ti

    def add(self, name, st, dirfd=None, base=None, fd=None):
        """One entry: ``fd`` is open on it (directories, files), or it is
        ``base`` in the directory ``dirfd``."""
        mode = st.st_mode
        if st.st_nlink > 1 and not stat.S_ISDIR(mode):
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key)
            if first is not None:
                ti = self.info(name, st, tarfile.LNKTYPE)
                ti.linkname = first
                self.tf.addfile(ti)
                return
            self.links[key] = name
        if stat.S_ISDIR(mode):
            self.tf.addfile(self.info(name, st, tarfile.DIRTYPE))
        elif stat.S_ISREG(mode):
            ti = self.info(name, st, tarfile.REGTYPE)
            ti.size = st.st_size
            self.tf.addfile(ti, _Padded(fd, st.st_size))
        elif stat.S_ISLNK(mode):
            ti = self.info(name, st, tarfile.SYMTYPE)
            ti.linkname = os.readlink(base, dir_fd=dirfd)
            self.tf.addfile(ti)
        elif stat.S_ISFIFO(mode):
            self.tf.addfile(self.info(name, st, tarfile.FIFOTYPE))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti = self.info(name, st, tarfile.CHRTYPE if stat.S_ISCHR(mode)
                           else tarfile.BLKTYPE)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tf.addfile(ti)
        # sockets are skipped, as Docker does

    def tree(self, dirfd, prefix):
        """Everything below the directory ``dirfd``; every child is opened
        with O_NOFOLLOW relative to its parent, so a directory swapped for
        a symlink meanwhile is archived as the symlink, never followed."""
        with os.scandir(dirfd) as it:
            names = sorted(e.name for e in it)
        for base in names:
            name = posixpath.join(prefix, base)
            try:
                st = os.stat(base, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue            # removed meanwhile
            if stat.S_ISDIR(st.st_mode):
                try:
                    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY |
                                 os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                try:
                    st = os.fstat(fd)
                    self.add(name, st)
                    if (st.st_dev, st.st_ino) not in self.skip:
                        self.tree(fd, name)
                finally:
                    os.close(fd)
            elif stat.S_ISREG(st.st_mode):
                self.file(name, base, dirfd)
            else:
                self.add(name, st, dirfd=dirfd, base=base)

    def file(self, name, base, dirfd):
        try:
            # O_NONBLOCK: a file swapped for a fifo must not hang us.
            fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK |
                         os.O_CLOEXEC, dir_fd=dirfd)
        except (FileNotFoundError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) or exc.errno == errno.ELOOP:
                return              # removed or replaced meanwhile
            raise
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                self.add(name, st, fd=fd)
        finally:
            os.close(fd)


def api_mounts():
    """(dev, ino) of /proc, /sys and /dev when they are mounts, as in a
    running container: their contents are the kernel's, not the container's
    files, and Docker's archive of a container never holds them either."""
    root_dev = os.stat("/").st_dev
    found = set()
    for path in ("/proc", "/sys", "/dev"):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_dev != root_dev:
            found.add((st.st_dev, st.st_ino))
    return found


def write_archive(out, src, follow_link, missing, skip=()):
    """Write a tar of ``src`` to the binary stream ``out``: its root entry is
    named after src's last component ("." for "dir/."), below it the tree,
    except the contents of the directories in ``skip`` ((dev, ino) pairs).
    ``missing(path)`` makes the error for a source that is not there."""
    st = source_stat(src, follow_link, missing)
    name = root_name(src)
    follow = follow_link or asserts_dir(src)
    writer = _Writer(out, skip)
    try:
        nofollow = 0 if follow else os.O_NOFOLLOW
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | nofollow | os.O_CLOEXEC)
            try:
                writer.add(name, os.fstat(fd))
                writer.tree(fd, name)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | nofollow | os.O_CLOEXEC)
            try:
                writer.add(name, os.fstat(fd), fd=fd)
            finally:
                os.close(fd)
        else:
            parent = os.path.dirname(src) or "."
            dirfd = os.open(parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                writer.add(name, st, dirfd=dirfd, base=os.path.basename(src))
            finally:
                os.close(dirfd)
        writer.tf.close()
        out.flush()
    except BaseException:
        # A half archive must not be flushed by tarfile's __del__ later
        # (into a pipe that is gone, with a traceback on stderr).
        writer.tf.fileobj.closed = True
        raise


def write_tree(out, top):
    """Everything below the directory ``top`` as a tar on the binary stream
    ``out``, names relative to it (`export`)."""
    writer = _Writer(out)
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            writer.tree(fd, "")
        finally:
            os.close(fd)
        writer.tf.close()
        out.flush()
    except BaseException:
        writer.tf.fileobj.closed = True       # as in write_archive
        raise


# ---------------------------------------------------------------------------
# The container side: W in the container's root
# ---------------------------------------------------------------------------
def _close_fds_except(keep):
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _run_work(work, err_w):
    """In W: run ``work()``; leave through os._exit (house style 5).  A
    broken pipe means the CLI gave up: it reports its own reason."""
    code = 1
    try:
        work()
        code = 0
    except BrokenPipeError:
        pass
    except OSError as exc:
        _report(err_w, CpError(_oserror_text(exc)))
    except BaseException as exc:   # noqa: BLE001 - reported to the CLI
        _report(err_w, exc)
    finally:
        os._exit(code)


def _running_namespaces(st):
    """fds of PID 1's user and mount namespaces, or None when it is gone
    (the start time is checked again after the open: a pid reused in
    between would hand us another process's namespaces)."""
    from .state import alive
    pid, start = st.get("Pid"), st.get("PidStart")
    if not alive(pid, start):
        return None
    fds = []
    try:
        for ns in ("user", "mnt"):
            fds.append(os.open("/proc/%d/ns/%s" % (pid, ns),
                               os.O_RDONLY | os.O_CLOEXEC))
    except OSError:
        fds.append(-1)
    if -1 in fds or not alive(pid, start):
        for fd in fds:
            if fd >= 0:
                os.close(fd)
        return None
    return fds


def _settled(paths, cid, st):
    """The record once a container that says it runs but whose PID 1 is
    gone has been recorded as exited (its supervisor still tears down)."""
    import time
    from . import state
    deadline = time.monotonic() + 5
    while state.is_running(st) and time.monotonic() < deadline:
        time.sleep(0.05)
        st = state.refresh(paths, cid)
        if _running_namespaces(st) is not None and state.is_running(st):
            break
    return st


def spawn(paths, cid, st, work, keep_fd):
    """Fork W, which runs ``work()`` with the container's root as "/" and
    ``keep_fd`` its only fd besides stdio.  Returns (pid, err_r) for
    ``collect``."""
    from . import state
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    nsfds = _running_namespaces(st) if state.is_running(st) else None
    if nsfds is None and state.is_running(st):
        st = _settled(paths, cid, st)
        nsfds = _running_namespaces(st) if state.is_running(st) else None
    if nsfds is not None:
        pid = os.fork()
        if pid == 0:
            def enter_and_work():
                os.close(err_r)
                _close_fds_except({keep_fd, err_w} | set(nsfds))
                # The user namespace first: it owns the mount namespace,
                # and joining it grants what setns(CLONE_NEWNS) needs.
                linux.setns(nsfds[0], linux.CLONE_NEWUSER)
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
                # setns into a mount namespace makes its root our root and
                # cwd (setns(2)): the container's, after its pivot_root.
                linux.setns(nsfds[1], linux.CLONE_NEWNS)
                for fd in nsfds:
                    os.close(fd)
                os.chdir("/")
                work()
            _run_work(enter_and_work, err_w)
        for fd in nsfds:
            os.close(fd)
    else:
        pid = _spawn_stopped(paths, cid, st, work, keep_fd, err_r, err_w)
    os.close(err_w)
    return pid, err_r


def spawn_in_rootfs(paths, cid, st, work, keep_fd):
    """As spawn, but W's "/" is the container's root file system alone,
    mounted afresh and read-only (its layers and its upper layer), whether
    the container runs or not: none of its runtime mounts (/proc, /dev,
    volumes, --tmpfs) is in it.  For `export`."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = _spawn_stopped(paths, cid, st, work, keep_fd, err_r, err_w, read_only=True)
    os.close(err_w)
    return pid, err_r


def _spawn_stopped(paths, cid, st, work, keep_fd, err_r, err_w, read_only=False):
    from ..fsutil import read_json
    from ..image.store import Store
    from ..userns import join_userns, shared_userns_fd
    from . import rootfs as rootfs_mod
    cdir = paths.container(cid)
    read_json(os.path.join(cdir, "config.json"))     # a complete container
    layers = rootfs_mod.with_mountpoints(paths, Store(paths).layer_dirs(st["Image"]))
    target = os.path.join(cdir, "rootfs")
    nsfd = shared_userns_fd()
    pid = os.fork()
    if pid:
        os.close(nsfd)
        return pid
    # M: the root filesystem in a mount namespace of its own.
    code = 1
    mounted = False
    try:
        # Only the data pipe's end W uses: a copy of the other end here
        # would keep its reader from ever seeing EOF.
        _close_fds_except({keep_fd, err_w, nsfd})
        join_userns(nsfd)
        linux.unshare(linux.CLONE_NEWNS)
        # Private propagation before any mount, so nothing leaks to the host.
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        os.makedirs(target, exist_ok=True)
        rootfs_mod.mount_rootfs(st["Driver"], layers, cdir, target, read_only=read_only)
        mounted = True
        wpid = os.fork()
        if wpid == 0:
            def chroot_and_work():
                # No fd into the host's tree may survive the chroot (an
                # openat(fd, "..") would walk out of it).
                _close_fds_except({keep_fd, err_w})
                os.chdir(target)
                os.chroot(".")
                os.chdir("/")
                work()
            _run_work(chroot_and_work, err_w)
        os.close(keep_fd)          # only W holds the data pipe
        code = _wait(wpid)
    except BaseException as exc:   # noqa: BLE001 - reported to the CLI
        code = _report(err_w, exc if not isinstance(exc, OSError)
                       else CpError(_oserror_text(exc)))
    finally:
        try:
            if mounted:
                # Detach the rootfs: for fuse-overlayfs this ends the daemon.
                rootfs_mod.unmount_rootfs(target)
        finally:
            os._exit(code)


def collect(pid, err_r):
    """Wait for W (or M); its error, or None when it succeeded or left
    silently (a broken pipe: the CLI's own error is the one to show)."""
    from ..fsutil import read_all
    try:
        failure = read_all(err_r)
    finally:
        os.close(err_r)
    code = _wait(pid)
    if failure:
        return _decode_failure(failure)
    if code not in (0, 1):
        return CpError("the copy in the container failed (exit %d)" % code)
    return None

