"""The image's layers as overlay merges them, read without mounting them:
what a path is in the merged view (LowerView), and the marks of the two
overlay layouts (the kernel's, in layers sandbox unpacks and its upper
layers; fuse-overlayfs's, in its upper layers).  Light (no tarfile, no
hashlib): container starts use it (rootfs.with_mountpoints)."""

import os
import stat

# OCI's whiteout names (image-spec layer.md), as layers carry them; the
# unpacker (image/unpack.py) turns them into the kernel overlay's marks.
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "user.overlay.opaque"

# An opaque directory's mark in fuse-overlayfs's upper layer: the OCI name,
# or the one its versions write.
OPAQUE_MARKS = (WHITEOUT_OPAQUE, WHITEOUT_PREFIX + ".opq")


def is_whiteout(st):
    """The kernel overlay's whiteout: a 0/0 character device."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path):
    """The kernel's mark (the xattr) or fuse-overlayfs's (a .wh..wh..opq file)."""
    try:
        if os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y":
            return True
    except OSError:
        pass
    return any(os.path.lexists(os.path.join(path, m)) for m in OPAQUE_MARKS)


class LowerView:
    """The image's layers merged as overlay merges them, for lookups."""

    def __init__(self, layers):
        self.top_down = list(reversed(layers))

    def find(self, rel):
        """(host path, os.lstat) of ``rel`` ("etc/passwd") in the merged
        layers, or None."""
        parts = rel.split("/")
        for layer in self.top_down:
            path = layer
            for i, part in enumerate(parts):
                path = os.path.join(path, part)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    if os.path.lexists(os.path.join(os.path.dirname(path),
                                                    WHITEOUT_PREFIX + part)):
                        return None            # fuse-overlayfs / OCI whiteout
                    break                      # not in this layer: go down
                if is_whiteout(st):
                    return None
                if i == len(parts) - 1:
                    return path, st
                if not stat.S_ISDIR(st.st_mode):
                    return None                # a file hides what is below
                if is_opaque(path):
                    # Nothing below this directory comes from lower layers.
                    full = os.path.join(layer, rel)
                    try:
                        return full, os.lstat(full)
                    except FileNotFoundError:
                        return None
        return None

    def lstat(self, rel):
        """os.lstat of ``rel`` in the merged layers, or None."""
        found = self.find(rel)
        return found and found[1]

    def listdir(self, rel):
        names = set()
        for layer in self.top_down:
            path = os.path.join(layer, rel)
            try:
                entries = os.listdir(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            names.update(n for n in entries if not n.startswith(WHITEOUT_PREFIX))
            if is_opaque(path):
                break
        return sorted(n for n in names if self.lstat(os.path.join(rel, n) if rel else n))
