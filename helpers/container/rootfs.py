"""The container's root filesystem from image layers: the storage drivers.

- ``overlay``: the kernel's overlayfs, mounted inside the user namespace
  (allowed since Linux 5.11) with ``userxattr`` so that opaque directories
  are read from ``user.overlay.opaque`` (Documentation/filesystems/
  overlayfs.rst, "Permission model" and "User xattr").
- ``fuse-overlayfs``: the same layout served by the FUSE daemon, for kernels
  that refuse overlay in a user namespace; needs /dev/fuse usable.
- ``vfs``: the layers copied into one directory, whiteouts applied: slow but
  works everywhere.

The driver is probed once per store and remembered in settings.json; a
container keeps the driver it was created with (upper/ layouts differ).
Everything here except ``choose_driver`` runs inside the container's user
and mount namespaces, as root there.
"""

import errno
import os
import stat

from .. import fsutil, linux
from ..errors import HostError
from .layerview import LowerView, is_opaque, is_whiteout

DRIVERS = ("overlay", "fuse-overlayfs", "vfs")


# ---------------------------------------------------------------------------
# Docker's init layer, shared by every container
# ---------------------------------------------------------------------------
MOUNTPOINTS = "mountpoints"     # layers/mountpoints/diff (store gc keeps it)
_MP_DIRS = (("etc", 0o755),)
_MP_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def with_mountpoints(paths, layers):
    """The image's layers plus, on top, a read-only layer that holds the
    mount points of /etc/hosts, /etc/hostname and /etc/resolv.conf, which
    every container gets: mounting them then writes nothing to the
    container's upper layer (creating /etc/hosts there copies /etc up
    first: most of a millisecond of every start), and a container that
    writes nothing leaves an empty upper layer.  Only where the image has
    them as they are in that layer (/etc a directory of root, mode 755;
    the files regular ones) or not at all: an /etc/resolv.conf symlink
    keeps its meaning, and the merged /etc its owner and mode.  (/proc,
    /sys and /dev are left to the image: their modes differ from image to
    image, and the upper layer gets them only where the image lacks them.)"""
    me = (os.getuid(), os.getgid())
    wanted = {name: mode for name, mode in _MP_DIRS}
    view = LowerView(layers)
    for rel in [name for name, _ in _MP_DIRS] + list(_MP_FILES):
        st = view.lstat(rel)
        if st is None:
            continue
        if rel in wanted:
            if not stat.S_ISDIR(st.st_mode) or (st.st_uid, st.st_gid) != me or \
                    stat.S_IMODE(st.st_mode) != wanted[rel]:
                return layers
        elif not stat.S_ISREG(st.st_mode):
            return layers
    d = _mountpoints_layer(paths)
    return list(layers) + [d] if d else layers


def _mountpoints_layer(paths):
    """layers/mountpoints/diff, made once (atomically: built aside, then
    renamed into place); None if it cannot be made."""
    top = os.path.join(paths.layers, MOUNTPOINTS)
    diff = os.path.join(top, "diff")
    if os.path.isdir(diff):
        return diff
    tmp = os.path.join(paths.layers, ".mountpoints-%d" % os.getpid())
    try:
        os.makedirs(paths.layers, exist_ok=True)
        if os.path.lexists(tmp):
            fsutil.rmtree(tmp)      # left by a process that had our pid
        os.mkdir(tmp)
        base = os.path.join(tmp, "diff")
        os.mkdir(base)
        for name, mode in _MP_DIRS:
            os.mkdir(os.path.join(base, name))
        for rel in _MP_FILES:
            path = os.path.join(base, rel)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC))
            os.chmod(path, 0o644)
        for name, mode in _MP_DIRS:
            os.chmod(os.path.join(base, name), mode)      # (whatever the umask)
        os.chmod(base, 0o755)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, top)
        except OSError:
            fsutil.rmtree(tmp)      # another process made it meanwhile
    except OSError:
        return None
    return diff if os.path.isdir(diff) else None


def overlay_options(layers, upper, work):
    # lowerdir lists the top layer first (overlayfs.rst "Multiple lower
    # layers").  Paths are made relative to the layers' common parent, which
    # the caller chdirs into, to stay under the one-page limit of mount data.
    # Without upper: a read-only mount of the layers alone.
    lower = ":".join(reversed(layers))
    if upper is None:
        return "lowerdir=%s" % lower
    return "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work)


def mount_overlay(layers, upper, work, target, volatile=False):
    """``volatile``: for a container removed when it ends (--rm).  The
    kernel then skips every sync of the upper layer (copy-ups, unmount),
    which costs milliseconds of each start and stop; after a crash the
    upper layer may be incomplete, which does not matter for a container
    that is thrown away (podman does the same for --rm)."""
    where, data = overlay_mount_args(layers, upper, work, volatile)
    cwd = os.getcwd()
    os.chdir(where)
    try:
        linux.mount("overlay", target, "overlay", 0, data)
    finally:
        os.chdir(cwd)


def overlay_mount_args(layers, upper, work, volatile=False):
    """(directory, data): the kernel overlay mount of ``layers``, made
    from that directory (the layers' common parent: their paths are
    relative to it, to stay under the one-page limit of mount data).
    Also what the native C mounts (runtime.Starter.mount_root_early)."""
    if not layers:
        # overlay needs at least one lower dir: an empty one will do.
        empty = os.path.join(os.path.dirname(work), "empty")
        os.makedirs(empty, exist_ok=True)
        layers = [empty]
    common = os.path.commonpath([os.path.dirname(p) for p in layers])
    rel = [os.path.relpath(p, common) for p in layers]
    data = overlay_options(rel, upper, work) + ",userxattr"
    if volatile:
        data += ",volatile"
    return common, data


OVERLAY_HINT = ("this kernel may not allow overlay in a user namespace (needs Linux "
                "5.11+): use --storage-driver fuse-overlayfs or vfs")


def mount_fuse_overlayfs(layers, upper, work, target, idmapping=None):
    """``idmapping``: (uid map, gid map) of the user namespace this runs
    in, relative to the one that owns the files ([(inside, outside,
    count)]: userns.keep_id_maps): the files are shown with the ids they
    have there, and new ones stored so (fuse-overlayfs(1), uidmapping)."""
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise fuse_unusable()
    binary = find_program("fuse-overlayfs")
    if binary is None:
        raise HostError("fuse-overlayfs is not installed",
                        hint="apt-get install fuse-overlayfs, or use "
                             "--storage-driver overlay or vfs")
    if not layers:
        empty = os.path.join(os.path.dirname(work), "empty")
        os.makedirs(empty, exist_ok=True)
        layers = [empty]
    from ..proc import run_checked
    # fuse-overlayfs daemonizes once the mount is up; the daemon lives in
    # this mount namespace and exits when the mount is detached at teardown.
    options = overlay_options(layers, upper, work)
    if idmapping:
        options += "".join(",%s=%s" % (key, ":".join(
            "%d:%d:%d" % m for m in mapping)) for key, mapping in
            zip(("uidmapping", "gidmapping"), idmapping))
    run_checked([binary, "-o", options, target])


def fuse_unusable():
    mode = ""
    try:
        mode = " (mode %04o)" % stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    except OSError:
        pass
    return HostError("/dev/fuse is not usable by this user%s" % mode,
                     hint="as root: chmod 0666 /dev/fuse (the default on "
                          "Debian, Fedora and Ubuntu), or modprobe fuse")


def find_program(name):
    for d in ("/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


# -- vfs: copy the layers, applying whiteouts --------------------------------
def copy_layers(layers, target):
    """Merge ``layers`` (bottom first) into ``target`` as overlay would show
    them.  Owners, modes, xattrs, hardlinks and times are kept."""
    for layer in layers:
        _merge(layer, target)


def copy_tree(src, dst):
    """Copy the tree ``src`` into the existing directory ``dst`` (owners,
    modes, xattrs, hardlinks, times), ``dst`` taking ``src``'s owner and
    mode: filling a new volume from the image."""
    _merge(src, dst)
    _copy_meta(src, dst, os.lstat(src))


def _merge(src_root, dst_root):
    links = {}
    dirs = []
    for src_dir, subdirs, files in os.walk(src_root):
        rel = os.path.relpath(src_dir, src_root)
        dst_dir = os.path.normpath(os.path.join(dst_root, rel))
        if rel != ".":
            st = os.lstat(src_dir)
            if os.path.lexists(dst_dir) and not (os.path.isdir(dst_dir) and
                                                 not os.path.islink(dst_dir)):
                fsutil.rmtree(dst_dir)
            if is_opaque(src_dir):
                fsutil.rmtree(dst_dir)
            if not os.path.lexists(dst_dir):
                os.mkdir(dst_dir, 0o700)
            _copy_meta(src_dir, dst_dir, st)
            dirs.append((src_dir, dst_dir, st))
        for name in files + [d for d in subdirs if os.path.islink(os.path.join(src_dir, d))]:
            s = os.path.join(src_dir, name)
            d = os.path.join(dst_dir, name)
            st = os.lstat(s)
            if os.path.lexists(d):
                fsutil.rmtree(d)
            if is_whiteout(st):
                continue
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], d)
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(s, d)
            elif stat.S_ISFIFO(st.st_mode):
                os.mkfifo(d)
            else:
                continue
            _copy_meta(s, d, st)
            if st.st_nlink > 1:
                links[key] = d
    for s, d, st in reversed(dirs):
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_file(src, dst):
    """The bytes of ``src`` into the new file ``dst``: copy_file_range
    (reflinks or in-kernel copies within one file system), else sendfile.
    Filling a volume copies from the container's overlay to the volume's
    file system, and since Linux 5.19 copy_file_range refuses to cross
    file systems of different types (EXDEV): every file of a non-empty
    image directory failed the container's start."""
    with open(src, "rb") as fi:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fi.fileno()).st_size
            offset = 0
            copy = os.copy_file_range
            while offset < size:
                try:
                    n = copy(fi.fileno(), fd, size - offset)
                except OSError as exc:
                    if copy is not os.copy_file_range or exc.errno not in (
                            errno.EXDEV, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                        raise
                    copy = _sendfile             # from the same offset on
                    continue
                if n == 0:
                    break
                offset += n
        finally:
            os.close(fd)


def _sendfile(src_fd, dst_fd, count):
    return os.sendfile(dst_fd, src_fd, None, count)


def _copy_meta(src, dst, st):
    link = stat.S_ISLNK(st.st_mode)
    try:
        for name in os.listxattr(src, follow_symlinks=False):
            if name.startswith("user.overlay."):
                continue
            try:
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False),
                            follow_symlinks=False)
            except OSError:
                pass
    except OSError:
        pass
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


# -- driver choice ----------------------------------------------------------
def _probe_overlay(scratch):
    """Runs in a user+mount namespace: can the kernel mount overlay here?"""
    lower = os.path.join(scratch, "l")
    upper = os.path.join(scratch, "u")
    work = os.path.join(scratch, "w")
    merged = os.path.join(scratch, "m")
    for d in (lower, upper, work, merged):
        os.makedirs(d, exist_ok=True)
    try:
        linux.mount("overlay", merged, "overlay", 0,
                    "lowerdir=%s,upperdir=%s,workdir=%s,userxattr" % (lower, upper, work))
    except OSError as exc:
        return "overlay: %s" % exc.strerror
    linux.umount2(merged, linux.MNT_DETACH)
    return None


def choose_driver(paths):
    """The storage driver for new containers: forced by --storage-driver
    ($SANDBOX_STORAGE_DRIVER), else remembered, else probed now."""
    forced = os.environ.get("SANDBOX_STORAGE_DRIVER")
    if forced:
        if forced not in DRIVERS:
            from ..errors import UsageError
            raise UsageError("unknown storage driver %r" % forced,
                             hint="one of: " + ", ".join(DRIVERS))
        return forced
    settings = fsutil.read_json(paths.settings, default={})
    if settings.get("storage_driver") in DRIVERS:
        return settings["storage_driver"]
    driver, _ = probe_driver(paths)
    os.makedirs(paths.root, exist_ok=True)
    with fsutil.locked(paths.store_lock):
        settings = fsutil.read_json(paths.settings, default={})
        settings["storage_driver"] = driver
        fsutil.write_json(paths.settings, settings)
    return driver


def probe_driver(paths):
    """(driver, reasons the better ones were passed over)."""
    from ..userns import run_in_userns
    reasons = []
    os.makedirs(paths.tmp, exist_ok=True)
    import tempfile
    scratch = tempfile.mkdtemp(prefix="probe-", dir=paths.tmp)
    try:
        why = run_in_userns(_probe_overlay, scratch, extra_flags=linux.CLONE_NEWNS)
    finally:
        fsutil.rmtree(scratch)
    if why is None:
        return "overlay", reasons
    reasons.append(why)
    if find_program("fuse-overlayfs") and os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "fuse-overlayfs", reasons
    reasons.append("fuse-overlayfs: %s" % (
        "not installed" if not find_program("fuse-overlayfs")
        else "/dev/fuse not accessible"))
    return "vfs", reasons


def mount_rootfs(driver, layers, cdir, target, volatile=False, read_only=False,
                 idmapping=None):
    """Make ``target`` the container's root filesystem (inside the
    container's mount namespace).  ``cdir`` is the container directory with
    upper/ and work/ (overlay drivers) or the copied tree (vfs);
    ``volatile``: see mount_overlay.  ``read_only``: a second view of a
    container that may be running (its upper layer becomes the top lower
    layer: overlay reads its whiteouts and opaque directories as it does a
    lower layer's, and never writes to it).  ``idmapping``: see
    mount_fuse_overlayfs (fuse-overlayfs only)."""
    upper = os.path.join(cdir, "upper")
    work = os.path.join(cdir, "work")
    if read_only and driver in ("overlay", "fuse-overlayfs"):
        layers = list(layers) + [upper]
        upper = None
    if driver == "overlay":
        try:
            mount_overlay(layers, upper, work, target, volatile)
        except OSError as exc:
            raise HostError("cannot mount overlayfs: %s" % exc.strerror,
                            hint=OVERLAY_HINT)
    elif driver == "fuse-overlayfs":
        mount_fuse_overlayfs(layers, upper, work, target, idmapping)
    else:
        marker = os.path.join(cdir, ".vfs-complete")
        if not os.path.exists(marker):
            # First start: copy once; the tree then is the container's
            # writable layer, like Docker's vfs driver.
            copy_layers(layers, target)
            with open(marker, "w"):
                pass
        # pivot_root needs a mount point: bind the tree onto itself.
        linux.mount(target, target, None, linux.MS_BIND | linux.MS_REC)
        if read_only:
            linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)


def unmount_rootfs(target):
    try:
        linux.umount2(target, linux.MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise
