"""The build cache: the image a build step made, found again by the step's key.

    build-cache/<key>     the id of the image the step made (one line),
                          written atomically; its mtime is its last use
    build-cache/lock      a build holds it shared from start to end;
                          pruning takes it alone (and skips the cache
                          while a build runs: it never removes an image a
                          running build has just found)

A key chains all that a step's result depends on (image/build.py): the key
of the step before it (the first one: the FROM image's id), and the step as
it runs: for RUN its argv, the build args in its environment and its
mounts (a bind mount's files by digest; not a cache mount's or a secret's
contents), for COPY
and ADD a digest of the tar it writes into the image (names, contents,
modes, owners, link targets; not modification times, as Docker's builder),
for a change of the config the whole new config.  The same Dockerfile on
the same context finds the same images, down to the final image's id.

A cached image is an image of the store like any other (gc keeps its
layers because it exists), but while it has no name `images` lists it only
with -a (Docker's intermediate images), `image prune` leaves it alone, and
`builder prune` and `system prune` remove it.
"""

import errno
import fcntl
import os

from .. import fsutil


def key(*parts):
    from .store import digest_of
    return digest_of("\0".join(parts).encode())[7:]


def _is_key(name):
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class BuildCache:
    def __init__(self, paths):
        self.dir = os.path.join(paths.root, "build-cache")

    def hold(self, shared=True, wait=True):
        """The cache's lock (an open fd), or None when ``wait`` is False
        and someone else holds it."""
        os.makedirs(self.dir, exist_ok=True)
        fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) |
                        (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        return fd

    def get(self, store, k):
        """The image cached for key ``k``, if it is still in the store."""
        path = os.path.join(self.dir, k)
        try:
            image_id = fsutil.read_text(path).strip()
        except FileNotFoundError:
            return None
        if not image_id.startswith("sha256:") or not store.exists(image_id):
            return None
        try:
            os.utime(path)
        except OSError:
            pass
        return image_id

    def put(self, k, image_id):
        fsutil.atomic_write(os.path.join(self.dir, k), (image_id + "\n").encode(),
                            durable=False)

    def entries(self):
        """{key: image id} of every entry."""
        out = {}
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return out
        for name in names:
            if _is_key(name):
                try:
                    out[name] = fsutil.read_text(os.path.join(self.dir, name)).strip()
                except FileNotFoundError:
                    pass
        return out

    def hidden(self, store, entries=None):
        """The cached images that have no name: what `images` shows only
        with -a.  ``entries``: self.entries(), when the caller has them."""
        named = set(store.repositories().values())
        return {i for i in (entries or self.entries()).values() if i not in named}

    def prune(self, store, in_use):
        """Remove every entry, and each cached image that has no name and
        that no container uses (``in_use``: image ids); the caller runs the
        store's gc.  Returns the removed image ids, or None when a build is
        running (nothing removed)."""
        fd = self.hold(shared=False, wait=False)
        if fd is None:
            return None
        try:
            entries = self.entries()
            named = set(store.repositories().values())
            for k in entries:
                try:
                    os.unlink(os.path.join(self.dir, k))
                except FileNotFoundError:
                    pass
            removed = []
            for image_id in sorted(set(entries.values())):
                if image_id in named or image_id in in_use or not store.exists(image_id):
                    continue
                store.delete_image(image_id)
                removed.append(image_id)
            return removed
        finally:
            os.close(fd)
