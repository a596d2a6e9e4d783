"""`diff`: what a container changed in its root filesystem, as Docker lists
it ("A /path" added, "C /path" changed, "D /path" deleted, sorted by path).

Run as root of the user's shared user namespace (userns.run_in_userns):
the layers and the upper layer hold files of subordinate ids that the plain
user may not read.  Only lstat and listing: no file is opened, no symlink
followed.

The overlay drivers keep the changes in the upper layer: an overlay
whiteout (a 0/0 character device, or fuse-overlayfs's ``.wh.NAME`` file)
is a deletion; anything else is an addition when the image's layers do not
have the path, else a change.  A directory is copied up when anything below
it changes, so it is listed as changed only when something listed is below
it or its own mode or owner differ, and the mount points sandbox itself
makes for a container (/etc/hosts, /etc/hostname, /etc/resolv.conf, the
kernel's /proc, /sys and /dev) are left out, as Docker's init layer keeps
them out of its list.  The vfs driver keeps a whole copy: it is compared
with the image's layers entry by entry (type, mode, owner, size, mtime,
symlink target).
"""

import os
import stat

from .layerview import OPAQUE_MARKS, WHITEOUT_PREFIX, LowerView, is_opaque, is_whiteout

# Made by sandbox in a container's upper layer as mount points
# (runtime.plan_mounts) where the shared mount point layer does not serve
# (rootfs.with_mountpoints), and by containers of older versions.
RUNTIME_DIRS = frozenset(("/proc", "/sys", "/dev"))
RUNTIME_FILES = frozenset(("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"))


def _mount_point(path, st):
    """Is this entry of the upper layer one of those mount points?  The
    files only as sandbox makes them, empty: one the user put there (a
    build's COPY of an /etc/resolv.conf, a symlink) is a change like any."""
    if path in RUNTIME_DIRS:
        return True
    return path in RUNTIME_FILES and stat.S_ISREG(st.st_mode) and st.st_size == 0


def _same(a, b, link_a=None, link_b=None):
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return True
    if stat.S_ISLNK(a.st_mode):
        return link_a == link_b
    return a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime)


def upper_changes(upper, layers):
    """[(kind, "/path")] from an overlay driver's upper layer."""
    lower = LowerView(layers)
    found = []

    def walk(rel):
        """Returns True when something below ``rel`` was listed."""
        listed = False
        with os.scandir(os.path.join(upper, rel) if rel else upper) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            name = entry.name
            if name in OPAQUE_MARKS:
                continue                   # fuse-overlayfs's mark: see _opaque
            if name.startswith(WHITEOUT_PREFIX):
                name = name[len(WHITEOUT_PREFIX):]
                child = os.path.join(rel, name) if rel else name
                found.append(("D", "/" + child))
                listed = True
                continue
            child = os.path.join(rel, name) if rel else name
            path = "/" + child
            st = entry.stat(follow_symlinks=False)
            if _mount_point(path, st):
                continue
            if is_whiteout(st):
                found.append(("D", path))
                listed = True
                continue
            before = lower.lstat(child)
            if stat.S_ISDIR(st.st_mode):
                index = len(found)
                below = walk(child)
                if is_opaque(entry.path) and before is not None and stat.S_ISDIR(before.st_mode):
                    # Deleted and made again: what the layers had is gone.
                    mine = set(os.listdir(entry.path))
                    for gone in lower.listdir(child):
                        if gone not in mine:
                            found.append(("D", path + "/" + gone))
                            below = True
                if before is None or not stat.S_ISDIR(before.st_mode):
                    found.insert(index, ("A", path))
                elif below or is_opaque(entry.path) or \
                        (st.st_mode, st.st_uid, st.st_gid) != \
                        (before.st_mode, before.st_uid, before.st_gid):
                    found.insert(index, ("C", path))
                else:
                    continue
                listed = True
            else:
                found.append(("A" if before is None else "C", path))
                listed = True
        return listed

    walk("")
    return sorted(found, key=lambda kp: kp[1])


def tree_changes(tree, layers):
    """[(kind, "/path")] of a full copy (vfs) against the image's layers."""
    lower = LowerView(layers)
    found = []

    def walk(rel):
        mine = os.path.join(tree, rel) if rel else tree
        names = sorted(os.listdir(mine))
        theirs = set(lower.listdir(rel))
        for name in sorted(set(names) | theirs):
            child = os.path.join(rel, name) if rel else name
            path = "/" + child
            if name not in names:
                if path not in RUNTIME_DIRS | RUNTIME_FILES:
                    found.append(("D", path))
                continue
            st = os.lstat(os.path.join(mine, name))
            if _mount_point(path, st):
                continue
            hit = lower.find(child) if name in theirs else None
            if hit is None:
                found.append(("A", path))
                if stat.S_ISDIR(st.st_mode):
                    _added_below(os.path.join(mine, name), path, found)
                continue
            lower_path, before = hit
            link_a = link_b = None
            if stat.S_ISLNK(st.st_mode) and stat.S_ISLNK(before.st_mode):
                link_a = os.readlink(os.path.join(mine, name))
                link_b = os.readlink(lower_path)
            index = len(found)
            if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(before.st_mode):
                walk(child)
                if len(found) > index or not _same(st, before):
                    found.insert(index, ("C", path))
            elif not _same(st, before, link_a, link_b):
                found.append(("C", path))

    walk("")
    return sorted(found, key=lambda kp: kp[1])


def _added_below(top, prefix, found):
    for name in sorted(os.listdir(top)):
        path = os.path.join(top, name)
        found.append(("A", prefix + "/" + name))
        if stat.S_ISDIR(os.lstat(path).st_mode):
            _added_below(path, prefix + "/" + name, found)


def changes(driver, cdir, layers):
    """The container's changes, for `diff` (in the user namespace)."""
    if driver in ("overlay", "fuse-overlayfs"):
        return upper_changes(os.path.join(cdir, "upper"), layers)
    return tree_changes(os.path.join(cdir, "rootfs"), layers)
