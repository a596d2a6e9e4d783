"""Safe extraction of one image layer (a tar stream) into a fresh directory.

The extraction runs as root of a user namespace that carries the user's
subordinate id map (``helpers.userns.run_in_userns``), so a file that the
tar says belongs to uid 1000 is chowned to 1000 *inside* the namespace, i.e.
to subuid_start+999 on the host, and the container later sees it as 1000.

We parse with ``tarfile`` but extract with our own loop (never
``extractall``): every entry is checked before anything is written.

- A name that is absolute or climbs out with ".." is refused, and so is an
  entry whose parent directory is a symlink: the layer directory is fresh, so
  such a symlink can only come from this tar, and following it is the classic
  layer breakout (CVE-2018-15664 class; CVE-2019-14271 for `docker cp`).
  Every parent component is checked with lstat as we go.
- A hardlink must point at a non-directory already extracted in this layer,
  reached without symlinks.
- Device nodes are skipped (an unprivileged user namespace cannot create
  them); OCI whiteouts become overlayfs whiteouts (image-spec layer.md,
  "Whiteouts"): ``.wh.NAME`` -> a 0/0 character device NAME (mknod of a
  whiteout is allowed in a user namespace since Linux 5.8), ``.wh..wh..opq``
  -> ``user.overlay.opaque=y`` on the directory, the xattr the kernel reads
  on overlays mounted with ``userxattr`` (Documentation/filesystems/
  overlayfs.rst, "Permission model") and that fuse-overlayfs also honours
  (its is_directory_opaque checks trusted., then user.overlay.opaque).

The diff_id (sha256 of the *uncompressed* tar stream) is computed while
extracting, in one pass.
"""

import errno
import hashlib
import os
import posixpath
import stat
import tarfile

from ..errors import StoreError, UnsafeArchive
from ..fsutil import write_all

from ..container.layerview import (OPAQUE_XATTR, WHITEOUT_META_PREFIX,  # noqa: F401
                                   WHITEOUT_OPAQUE, WHITEOUT_PREFIX)
CHUNK = 1 << 20
HOSTILE_HINT = ("the archive is malformed or hostile; nothing was written "
                "outside the layer and nothing was kept")

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


class _HashingReader:
    """File-like wrapper hashing every byte read through it."""

    def __init__(self, f):
        self._f = f
        self.sha = hashlib.sha256()

    def read(self, n=-1):
        data = self._f.read(n)
        self.sha.update(data)
        return data

    def drain(self):
        # The diff_id covers the whole stream, including the zero blocks
        # after the end-of-archive marker that tarfile does not read.
        while self.read(CHUNK):
            pass

    def digest(self):
        return "sha256:" + self.sha.hexdigest()


class _Prefixed:
    """A raw stream with its first bytes already read (to sniff the magic)."""

    def __init__(self, head, f):
        self._head = head
        self._f = f

    def read(self, n=-1):
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._f.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._f.read(n - len(data))
            return data
        return self._f.read(n)

    def readinto(self, buf):
        # isal's IGzipFile reads its input with readinto.
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)


def decompressed(raw):
    """Wrap ``raw`` (a binary stream) so that reads return the tar bytes,
    whatever compression its magic number says it has."""
    head = raw.read(6)
    stream = _Prefixed(head, raw)
    if head.startswith(GZIP_MAGIC):
        try:
            from isal import igzip   # several times faster than zlib (DESIGN 6)
            return igzip.IGzipFile(fileobj=stream, mode="rb")
        except ImportError:
            import gzip
            return gzip.GzipFile(fileobj=stream, mode="rb")
    if head.startswith(ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            raise StoreError("this layer is zstd-compressed and the zstandard "
                             "module is not installed",
                             hint="install python3-zstandard (or pip install "
                                  "zstandard into sandbox's environment)") from None
        return zstandard.ZstdDecompressor().stream_reader(stream)
    if head.startswith(BZIP2_MAGIC) or head.startswith(XZ_MAGIC):
        raise StoreError("unsupported layer compression (bzip2/xz); image "
                         "layers are tar, tar+gzip or tar+zstd")
    return stream


def _clean_name(name, what="entry"):
    """Normalize a tar member name to a path relative to the layer root;
    refuse absolute names and names that climb out (``..``)."""
    if name.startswith("/"):
        raise UnsafeArchive("refusing layer %s %r: absolute path" % (what, name),
                            hint=HOSTILE_HINT)
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise UnsafeArchive("refusing layer %s %r: it points outside the layer "
                            "(\"..\")" % (what, name),
                            hint=HOSTILE_HINT)
    return "" if norm == "." else norm


class _Extractor:
    """State of one extraction; runs inside the user namespace."""

    def __init__(self, dest, idmap, same_owner=True):
        self.dest = dest
        self.idmap = idmap
        self.same_owner = same_owner
        self.real_dirs = {""}       # relative dirs verified not to be symlinks
        self.dirs = {}              # rel -> (mode, mtime) applied at the end
        self.size = 0
        self.devices = []
        self.remapped = False
        self.xattrs_dropped = set()

    # -- paths --------------------------------------------------------------
    def host(self, rel):
        return os.path.join(self.dest, rel) if rel else self.dest

    def ensure_parents(self, rel, entry):
        """Make sure every parent of ``rel`` is a real directory (created
        0755 root:root when the tar lacks it, as Docker does)."""
        parent = posixpath.dirname(rel)
        if parent in self.real_dirs:
            return
        walked = ""
        for comp in parent.split("/"):
            walked = posixpath.join(walked, comp) if walked else comp
            if walked in self.real_dirs:
                continue
            path = self.host(walked)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                self.real_dirs.add(walked)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeArchive(
                    "refusing layer entry %r: it would be written through the "
                    "symlink %r" % (entry, walked),
                    hint=HOSTILE_HINT)
            if not stat.S_ISDIR(st.st_mode):
                raise StoreError("layer entry %r: parent %r is not a directory"
                                 % (entry, walked))
            self.real_dirs.add(walked)

    def clear(self, rel, keep_dir=False):
        """Remove what an earlier entry put at ``rel``.  Returns True when
        a directory was kept (both old and new are directories)."""
        path = self.host(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            from ..fsutil import rmtree
            rmtree(path)
            prefix = rel + "/"
            self.real_dirs = {d for d in self.real_dirs
                              if d != rel and not d.startswith(prefix)}
            self.dirs = {d: v for d, v in self.dirs.items()
                         if d != rel and not d.startswith(prefix)}
        else:
            os.unlink(path)
        return False

    # -- metadata -------------------------------------------------------------
    def owner(self, ti):
        uid, gid = ti.uid, ti.gid
        if not self.same_owner:
            return -1, -1          # chown(2): -1 leaves the owner alone
        if self.idmap.single:
            if uid or gid:
                self.remapped = True
            return 0, 0
        if not self.idmap.has_uid(uid) or not self.idmap.has_gid(gid):
            raise StoreError(
                "layer entry %r is owned by %d:%d, outside this user's "
                "subordinate id range (%s)" % (ti.name, uid, gid,
                                               self.idmap.describe()),
                hint="give the user a range of 65536 ids or more in "
                     "/etc/subuid and /etc/subgid")
        return uid, gid

    def xattrs(self, target, ti):
        for key, value in ti.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if name.startswith(("user.overlay.", "trusted.overlay.")):
                # Overlay metadata (redirect, metacopy, opaque) must come
                # only from our whiteout translation, never from the tar.
                self.xattrs_dropped.add(name)
                continue
            raw = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, raw)
                else:
                    os.setxattr(target, name, raw, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EINVAL,
                                     errno.EACCES):
                    raise
                if not name.startswith("trusted."):
                    self.xattrs_dropped.add(name)

    # -- entries ------------------------------------------------------------
    def entry(self, tf, ti):
        rel = _clean_name(ti.name)
        if ti.ischr() or ti.isblk():     # (tarfile's isdev() includes fifos)
            self.devices.append(rel)
            return
        base = posixpath.basename(rel)
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(rel, base)
            return
        if rel:
            self.ensure_parents(rel, ti.name)
        path = self.host(rel)
        uid, gid = self.owner(ti)
        if ti.isdir():
            if not self.clear(rel, keep_dir=True) and rel:
                os.mkdir(path, 0o700)
            self.real_dirs.add(rel)
            os.chown(path, uid, gid, follow_symlinks=False)
            self.xattrs(path, ti)
            self.dirs[rel] = (stat.S_IMODE(ti.mode), ti.mtime)
            return
        if not rel:
            raise StoreError("layer entry %r: the layer root is not a directory"
                             % ti.name)
        if ti.isreg():
            self.clear(rel)
            self.regular(tf, ti, path, uid, gid)
        elif ti.issym():
            self.clear(rel)
            os.symlink(ti.linkname, path)
            os.chown(path, uid, gid, follow_symlinks=False)
            self.xattrs(path, ti)
            os.utime(path, ns=(_ns(ti.mtime),) * 2, follow_symlinks=False)
        elif ti.islnk():
            target = self.link_target(ti)
            self.clear(rel)
            os.link(target, path, follow_symlinks=False)
        elif ti.isfifo():
            self.clear(rel)
            os.mkfifo(path, 0o600)
            self.metadata(path, ti, uid, gid)
        else:
            raise StoreError("layer entry %r has an unknown type %r"
                             % (ti.name, ti.type))

    def regular(self, tf, ti, path, uid, gid):
        src = tf.extractfile(ti)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        try:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                write_all(fd, chunk)
            self.metadata(fd, ti, uid, gid)
        finally:
            os.close(fd)
        self.size += ti.size

    def metadata(self, target, ti, uid, gid):
        # chmod after chown: chown clears setuid/setgid (chown(2)).
        os.chown(target, uid, gid)
        self.xattrs(target, ti)
        os.chmod(target, stat.S_IMODE(ti.mode))
        os.utime(target, ns=(_ns(ti.mtime),) * 2)

    def link_target(self, ti):
        rel = _clean_name(ti.linkname, "hardlink target")
        if not rel:
            raise UnsafeArchive("refusing hardlink %r to the layer root" % ti.name,
                                hint=HOSTILE_HINT)
        walked = ""
        for comp in rel.split("/")[:-1]:
            walked = posixpath.join(walked, comp) if walked else comp
            try:
                st = os.lstat(self.host(walked))
            except FileNotFoundError:
                break
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeArchive(
                    "refusing hardlink %r -> %r: the target is reached through "
                    "the symlink %r" % (ti.name, ti.linkname, walked),
                    hint=HOSTILE_HINT)
        target = self.host(rel)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise StoreError("layer entry %r: hardlink target %r is not in this "
                             "layer" % (ti.name, ti.linkname)) from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeArchive("refusing hardlink %r to the directory %r"
                                % (ti.name, ti.linkname), hint=HOSTILE_HINT)
        return target

    def whiteout(self, rel, base):
        parent = posixpath.dirname(rel)
        if parent:
            self.ensure_parents(rel, rel)
        if base == WHITEOUT_OPAQUE:
            os.setxattr(self.host(parent), OPAQUE_XATTR, b"y",
                        follow_symlinks=False)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return      # aufs bookkeeping (.wh..wh.plnk, ...): not content
        victim = base[len(WHITEOUT_PREFIX):]
        if victim in ("", ".", ".."):
            raise UnsafeArchive("refusing whiteout %r: no file to delete" % rel,
                                hint=HOSTILE_HINT)
        vrel = posixpath.join(parent, victim) if parent else victim
        self.clear(vrel)
        os.mknod(self.host(vrel), stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def finish(self):
        # Deepest first, so that setting a parent's mtime comes after every
        # change inside it, and a read-only directory is locked last.
        for rel in sorted(self.dirs, key=lambda r: r.count("/") + bool(r),
                          reverse=True):
            mode, mtime = self.dirs[rel]
            path = self.host(rel)
            os.chmod(path, mode)
            os.utime(path, ns=(_ns(mtime),) * 2, follow_symlinks=False)


def _ns(mtime):
    return int(mtime * 1_000_000_000)


def extract(raw, dest, idmap, same_owner=True):
    """Extract the layer stream ``raw`` into the new directory ``dest``.
    Call this as root of a user namespace with ``idmap``; without
    ``same_owner`` files keep the caller's ids (tar --no-same-owner; for
    tests without namespaces).  Returns a dict:
    diff_id, size (bytes of regular files), devices (skipped entries),
    remapped (owners forced to 0), xattrs_dropped."""
    hashed = _HashingReader(decompressed(raw))
    os.mkdir(dest, 0o755)
    ex = _Extractor(dest, idmap, same_owner)
    current = None
    try:
        with tarfile.open(fileobj=hashed, mode="r|", errorlevel=2) as tf:
            for ti in tf:
                current = ti.name
                ex.entry(tf, ti)
            current = None
            ex.finish()
        hashed.drain()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            what = "%s: %s" % (exc.strerror, exc.filename or "")
        else:
            what = str(exc) or type(exc).__name__
        where = " at entry %r" % current if current else ""
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise StoreError("cannot extract layer%s: %s" % (where, what.rstrip(": ")),
                         hint="free space on the disk that holds the store "
                              "(sandbox system prune, sandbox rmi)" if full else
                              "the layer is truncated or corrupt, or the "
                              "disk is full") from None
    return {"diff_id": hashed.digest(), "size": ex.size,
            "devices": ex.devices, "remapped": ex.remapped,
            "xattrs_dropped": sorted(ex.xattrs_dropped)}


def extract_in_userns(open_stream, dest, idmap=None):
    """Run ``extract`` in a user namespace with the user's id map.
    ``open_stream`` is called in the child and returns the raw (possibly
    compressed) layer stream; nothing is pickled on the way in, since the
    child is a fork.  Warnings about skipped content are printed here, once."""
    from .. import userns
    from ..errors import warn
    idmap = idmap or userns.current_id_map()

    def child():
        with open_stream() as raw:
            return extract(raw, dest, idmap)

    result = userns.run_in_userns(child, idmap=idmap)
    if result["remapped"]:
        warn("this user has no subordinate id range; files are owned by root "
             "inside the container", hint=userns.single_map_hint(),
             once_key="unpack-remapped")
    if result["devices"]:
        warn("skipped %d device node(s) in an image layer (e.g. /%s): an "
             "unprivileged user cannot create them"
             % (len(result["devices"]), result["devices"][0]),
             once_key="unpack-devices")
    if result["xattrs_dropped"]:
        warn("dropped extended attributes not allowed here: %s"
             % ", ".join(result["xattrs_dropped"][:5]), once_key="unpack-xattrs")
    return result


def remove_in_userns(*paths):
    """Delete trees that may hold files owned by subordinate ids (which the
    plain user cannot remove) from inside the user namespace, in one fork."""
    from .. import userns
    from ..fsutil import rmtree
    paths = [p for p in paths if os.path.lexists(p)]
    if not paths:
        return

    def remove_all():
        for p in paths:
            rmtree(p)

    userns.run_in_userns(remove_all)
