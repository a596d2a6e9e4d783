"""`cp`: extracting a tar stream into a directory, on the side that
receives (the host, or W in the container): the archive is hostile.
See cp.py for the rules and who runs where."""


import errno
import os
import posixpath
import stat
import tarfile

from ..fsutil import write_all
from .cp import _DIR_FLAGS, CHUNK, CpError, _clean, _oserror_text, asserts_dir

# ---------------------------------------------------------------------------
# Extracting it
# ---------------------------------------------------------------------------
def placement(dest, src_name, src_is_dir, missing):
    """Docker's rules (moby pkg/archive PrepareArchiveCopy): where to
    extract and what the archive's root entry becomes.  Returns
    (directory to extract into, name for the root entry, "" meaning the
    directory itself)."""
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise CpError("%s: not a directory" % dest.rstrip("/")) from None
    except OSError as exc:
        raise CpError(_oserror_text(exc)) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        return dest, "" if src_name == "." else src_name
    if st is not None and src_is_dir:
        raise CpError("cannot copy a directory to a file: %s" % dest)
    if st is None and not src_is_dir and asserts_dir(dest):
        raise CpError("no such directory: %s" % dest,
                      hint="create it first, or name a file without the "
                           "trailing \"/\"")
    norm = posixpath.normpath(dest)
    parent, base = posixpath.split(norm)
    if not base or base in (".", ".."):
        raise CpError("invalid destination %s" % dest)
    parent = parent or "."
    if not os.path.isdir(parent):
        raise missing(parent)
    return parent, base


class Extractor:
    """Safe extraction below the directory ``top``.  ``owners``: "none"
    (keep the extracting user's ids: the host side), "root" (0:0, Docker's
    default into a container) or "keep" (the archive's ids, which must be
    mapped in ``idmap``: cp -a)."""

    def __init__(self, top, owners, idmap=None, mapped=None):
        self.mapped = mapped or (lambda rel: rel)
        try:
            self.top = os.open(top, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise CpError(_oserror_text(exc)) from None
        self.owners = owners
        self.idmap = idmap
        self.fds = {}
        self.dirs = []
        self.devices = []

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        os.close(self.top)

    # -- walking without ever following a symlink -------------------------
    def parent(self, rel, create=True):
        """(fd of rel's parent directory, rel's last component)."""
        parts = rel.split("/")
        fd = self.top
        walked = ""
        for comp in parts[:-1]:
            walked = posixpath.join(walked, comp) if walked else comp
            cached = self.fds.get(walked)
            if cached is not None:
                fd = cached
                continue
            try:
                nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise CpError("archive entry %r: %r does not exist"
                                  % (rel, walked)) from None
                # A parent the archive lacks: 0755 as Docker makes it.
                os.mkdir(comp, 0o755, dir_fd=fd)
                nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                self.dirs.append((walked, 0o755, None) +
                                 ((-1, -1) if self.owners == "none" else (0, 0)))
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                raise CpError("refusing to write %r through %r: not a "
                              "directory (a symlink is never followed)"
                              % (rel, walked),
                              hint="the archive is malformed or hostile, or "
                                   "the destination holds a symlink there"
                              ) from None
            if len(self.fds) >= 64:
                for old in self.fds.values():
                    os.close(old)
                self.fds.clear()
            self.fds[walked] = nfd
            fd = nfd
        return fd, parts[-1]

    @staticmethod
    def existing(pfd, name):
        try:
            return os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def ids(self, ti):
        if self.owners == "none":
            return None
        if self.owners == "root":
            return 0, 0
        if not (self.idmap.has_uid(ti.uid) and self.idmap.has_gid(ti.gid)):
            raise CpError("%s is owned by %d:%d, which is not mapped in the "
                          "container's user namespace (%s)"
                          % (ti.name, ti.uid, ti.gid, self.idmap.describe()),
                          hint="copy without -a (the files then belong to "
                               "the container's root)")
        return ti.uid, ti.gid

    def fd_meta(self, fd, ti, ids):
        # chmod after chown: chown clears setuid and setgid (chown(2)).
        if ids is not None:
            os.fchown(fd, *ids)
        os.fchmod(fd, stat.S_IMODE(ti.mode))
        os.utime(fd, ns=(_ns(ti.mtime),) * 2)

    # -- entries ------------------------------------------------------------
    def entry(self, tf, ti, rel):
        """Put the member ``ti`` at ``rel`` (relative to top; "" is top)."""
        if not rel:
            if not ti.isdir():
                raise CpError("archive entry %r: the destination is a "
                              "directory" % ti.name)
            return       # top exists already: Docker leaves it alone
        if ti.ischr() or ti.isblk():
            # Neither the plain user nor root of a user namespace may
            # create device nodes.
            self.devices.append(rel)
            return
        ids = self.ids(ti)
        pfd, name = self.parent(rel)
        old = self.existing(pfd, name)
        if ti.isdir():
            if old is None:
                os.mkdir(name, 0o700, dir_fd=pfd)
            elif not stat.S_ISDIR(old.st_mode):
                raise CpError("cannot overwrite non-directory %r with a "
                              "directory" % rel)
            self.dirs.append((rel, stat.S_IMODE(ti.mode), ti.mtime) + (ids or (-1, -1)))
            return
        if old is not None:
            if stat.S_ISDIR(old.st_mode):
                raise CpError("cannot overwrite directory %r with a "
                              "non-directory" % rel)
            os.unlink(name, dir_fd=pfd)
        if ti.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                         os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(ti)
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    write_all(fd, chunk)
                self.fd_meta(fd, ti, ids)
            finally:
                os.close(fd)
        elif ti.issym():
            os.symlink(ti.linkname, name, dir_fd=pfd)
            if ids is not None:
                os.chown(name, *ids, dir_fd=pfd, follow_symlinks=False)
            os.utime(name, ns=(_ns(ti.mtime),) * 2, dir_fd=pfd,
                     follow_symlinks=False)
        elif ti.islnk():
            tpfd, tname = self.link_target(ti)
            os.link(tname, name, src_dir_fd=tpfd, dst_dir_fd=pfd,
                    follow_symlinks=False)
        elif ti.isfifo():
            os.mkfifo(name, 0o600, dir_fd=pfd)
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW |
                         os.O_CLOEXEC, dir_fd=pfd)
            try:
                self.fd_meta(fd, ti, ids)
            finally:
                os.close(fd)
        else:
            raise CpError("archive entry %r has an unsupported type %r"
                          % (ti.name, ti.type))

    def link_target(self, ti):
        rel = self.mapped(_clean(ti.linkname, "hardlink target"))
        if not rel:
            raise CpError("refusing hardlink %r to the destination directory"
                          % ti.name)
        pfd, name = self.parent(rel, create=False)
        st = self.existing(pfd, name)
        if st is None:
            raise CpError("archive entry %r: hardlink target %r is missing"
                          % (ti.name, ti.linkname))
        if stat.S_ISDIR(st.st_mode):
            raise CpError("refusing hardlink %r to the directory %r"
                          % (ti.name, ti.linkname))
        return pfd, name

    def finish(self):
        """Directory metadata last, deepest first: a read-only directory
        must not be locked before its contents are written."""
        for rel, mode, mtime, uid, gid in sorted(
                self.dirs, key=lambda d: d[0].count("/"), reverse=True):
            pfd, name = self.parent(rel, create=False)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW |
                         os.O_CLOEXEC, dir_fd=pfd)
            try:
                if uid != -1:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                if mtime is not None:
                    os.utime(fd, ns=(_ns(mtime),) * 2)
            finally:
                os.close(fd)


def _ns(mtime):
    return int(mtime * 1_000_000_000)


def extract_archive(stream, dest, owners, idmap=None, raw=False, missing=None):
    """Extract the tar ``stream`` at ``dest``.  ``raw`` (cp - CONTAINER:DIR):
    the archive goes into the existing directory ``dest`` as it is.
    Otherwise it is one of ours (root entry first, named after the source)
    and lands where `docker cp` would put it (``placement``).  Returns the
    paths of skipped device nodes."""
    try:
        tf = tarfile.open(fileobj=stream, mode="r|")
        first = tf.next()
    except (tarfile.TarError, EOFError) as exc:
        raise CpError("invalid tar archive: %s" % exc) from None
    if first is None:
        if raw:
            return []
        raise CpError("the copy produced no archive")
    if raw:
        try:
            st = os.stat(dest)
        except FileNotFoundError:
            raise missing(dest) from None
        if not stat.S_ISDIR(st.st_mode):
            raise CpError("destination %s must be a directory" % dest)
        top, root, target = dest, None, ""
    else:
        root = _clean(first.name)
        if "/" in root:
            raise CpError("invalid copy archive: its first entry %r is not "
                          "the source" % first.name)
        top, target = placement(dest, root or ".", first.isdir(), missing)

    def mapped(rel):
        if root is None:
            return rel
        if root:
            if rel == root:
                rel = ""
            elif rel.startswith(root + "/"):
                rel = rel[len(root) + 1:]
            else:
                raise CpError("invalid copy archive: %r lies outside its "
                              "root %r" % (rel, root))
        return posixpath.join(target, rel) if rel else target

    ex = Extractor(top, owners, idmap, mapped)
    ti = first
    try:
        while ti is not None:
            rel = mapped(_clean(ti.name))
            try:
                ex.entry(tf, ti, rel)
            except OSError as exc:
                raise CpError("%s: %s" % (posixpath.join(top, rel),
                                          exc.strerror or exc)) from None
            tf.members = []         # tarfile keeps every member otherwise
            ti = tf.next()
        ex.finish()
    except (tarfile.TarError, EOFError) as exc:
        raise CpError("invalid tar archive: %s" % exc) from None
    finally:
        ex.close()
    return ex.devices

