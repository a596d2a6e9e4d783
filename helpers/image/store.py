"""The content-addressed image store (DESIGN.md section 3).

    blobs/sha256/<hex>            compressed blobs as a registry served them
    layers/<chain-id hex>/diff/   one extracted layer, shared by chain id
    layers/<chain-id hex>/meta.json   {"diff_id", "chain_id", "parent", "size"}
    images/<config hex>.json      image config, byte for byte (id = its sha256)
    images/<config hex>.manifest  the manifest it came from
    repositories.json             {"docker.io/library/busybox:latest": "sha256:..."}
    build-cache/<key>             the image a build step made (buildcache.py)

Readers take no lock: every file is replaced by an atomic rename, and
objects become visible bottom-up (layers, then the config, then the tag), so
whoever finds a tag finds its config and layers.  Writers and the garbage
collector hold ``paths.store_lock``; the collector never removes a layer
that a committed image references, and a layer being extracted lives in
``paths.tmp`` (same filesystem) until the locked commit renames it in.

Chain ids follow the OCI image spec (config.md, "Layer ChainID"):
chain_id(L1) = diff_id(L1), chain_id(Ln) = sha256(chain_id(Ln-1) + " " +
diff_id(Ln)); the same layer on the same parents is stored once.
"""

import os

from .. import fsutil, jsonfast, pids
from ..errors import ImageNotFound, StoreError
from . import reference


def chain_ids(diff_ids):
    """Chain ids for a list of diff_ids, bottom layer first."""
    out = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + _sha256(
                (out[-1] + " " + diff_id).encode()).hexdigest())
    return out


def _sha256(data=b""):
    # `run` computes chain ids of a few dozen bytes: the builtin _sha256
    # saves loading OpenSSL through hashlib (3-4 ms on the start path).
    try:
        from _sha256 import sha256
    except ImportError:           # Python 3.12+ calls it _sha2
        from hashlib import sha256
    return sha256(data)


def digest_of(data):
    return "sha256:" + _sha256(data).hexdigest()


class PendingLayer:
    """A layer extracted into ``paths.tmp`` and not yet committed."""

    def __init__(self, tmpdir, diff_id, size):
        self.tmpdir = tmpdir
        self.diff_id = diff_id
        self.size = size


class StagedBlob:
    """A blob copied into ``paths.tmp`` and hashed, not yet committed;
    ``head`` holds its first bytes (to tell its compression)."""

    def __init__(self, tmp, digest, size, head):
        self.tmp = tmp
        self.digest = digest
        self.size = size
        self.head = head


class Store:
    def __init__(self, paths):
        self.paths = paths

    # -- reading (no lock) ----------------------------------------------------
    def repositories(self):
        """{full "name:tag": image id}."""
        return fsutil.read_json(self.paths.repositories, default={}) or {}

    def image_ids(self):
        try:
            names = os.listdir(self.paths.images)
        except FileNotFoundError:
            return []
        return sorted("sha256:" + n[:-5] for n in names
                      if n.endswith(".json") and reference.is_hex(n[:-5], 64))

    def exists(self, image_id):
        return os.path.exists(self.paths.image_config(image_id))

    def lookup(self, name_or_id):
        """Resolve a reference, a full id (with or without "sha256:") or an
        unambiguous id prefix to an image id, in Docker's order: an exact
        id, then a tag, then an id prefix."""
        s = name_or_id
        bare = s[len("sha256:"):] if s.startswith("sha256:") else s
        if reference.is_hex(bare, 64) and self.exists("sha256:" + bare):
            return "sha256:" + bare
        try:
            ref = reference.parse(s)
        except Exception:   # noqa: BLE001 - not a name; maybe an id prefix
            ref = None
        if ref is not None:
            image_id = self.repositories().get(str(ref))
            if image_id and self.exists(image_id):
                return image_id
        if reference.is_hex(bare):
            matches = [i for i in self.image_ids() if i[7:].startswith(bare)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ImageNotFound(
                    "ambiguous image id prefix %s: it matches %d images"
                    % (s, len(matches)), hint="give more characters of the id")
        raise ImageNotFound("No such image: %s" % s)

    def config_bytes(self, image_id):
        try:
            return fsutil.read_bytes(self.paths.image_config(image_id))
        except FileNotFoundError:
            raise ImageNotFound("No such image: %s" % image_id) from None

    def config(self, image_id):
        return jsonfast.loads(self.config_bytes(image_id))

    def manifest(self, image_id):
        try:
            with open(self.paths.image_manifest(image_id), "rb") as f:
                return jsonfast.loads(f.read())
        except FileNotFoundError:
            return None

    def diff_ids(self, image_id):
        return list(((self.config(image_id).get("rootfs") or {})
                     .get("diff_ids")) or [])

    def chain_ids(self, image_id):
        return chain_ids(self.diff_ids(image_id))

    def layer_dirs(self, image_id, config=None):
        """Absolute paths of the image's layer diff/ directories, bottom
        layer first.  ``config``: the image config if the caller has it."""
        out = []
        diff_ids = list(((config or self.config(image_id)).get("rootfs") or {})
                        .get("diff_ids") or [])
        for cid in chain_ids(diff_ids):
            d = os.path.join(self.paths.layer(cid), "diff")
            if not os.path.isdir(os.path.dirname(d)):
                raise StoreError("layer %s of image %s is missing from the store"
                                 % (cid, image_id[7:19]),
                                 hint="remove the image (sandbox rmi -f) and "
                                      "load or pull it again")
            out.append(d)
        return out

    def layer_meta(self, chain_id):
        return fsutil.read_json(os.path.join(self.paths.layer(chain_id),
                                             "meta.json"), default={}) or {}

    def size(self, image_id):
        """Bytes of the image's regular files, summed over its layers."""
        return sum(self.layer_meta(c).get("size", 0)
                   for c in self.chain_ids(image_id))

    def names(self, image_id, full=False):
        """The image's repo tags, familiar ("busybox:latest") unless
        ``full`` ("docker.io/library/busybox:latest")."""
        tags = sorted(k for k, v in self.repositories().items()
                      if v == image_id and "@" not in k)
        return tags if full else [reference.familiar_name(t) for t in tags]

    # -- adding images --------------------------------------------------------
    def _tmpdir(self, kind):
        os.makedirs(self.paths.tmp, exist_ok=True)
        import tempfile
        # The pid in the name lets gc() recognise leftovers of dead loads.
        return tempfile.mkdtemp(prefix="%s-%d-" % (kind, os.getpid()),
                                dir=self.paths.tmp)

    def unpack_layer(self, open_stream, expected_diff_id=None):
        """Extract a layer stream into a temp dir -> PendingLayer.  Raises
        StoreError when the diff_id differs from ``expected_diff_id``;
        nothing is left behind on failure."""
        from . import unpack
        tmpdir = self._tmpdir("layer")
        try:
            result = unpack.extract_in_userns(open_stream,
                                              os.path.join(tmpdir, "diff"))
            if expected_diff_id and result["diff_id"] != expected_diff_id:
                raise StoreError(
                    "layer content does not match the image config: diff_id "
                    "is %s, expected %s" % (result["diff_id"], expected_diff_id),
                    hint="the archive is corrupt or was tampered with")
        except BaseException:
            self.discard([tmpdir])
            raise
        return PendingLayer(tmpdir, result["diff_id"], result["size"])

    def has_layer(self, chain_id):
        return os.path.isdir(self.paths.layer(chain_id))

    def commit_layer(self, pending, chain_id, parent):
        """Make one verified layer visible on its own (a pull commits each
        layer as it completes, so that an interrupted pull keeps them).
        Returns False when the layer was already stored (``pending`` is
        then discarded)."""
        with fsutil.locked(self.paths.store_lock):
            os.makedirs(self.paths.layers, exist_ok=True)
            final = self.paths.layer(chain_id)
            if os.path.isdir(final):
                stored = False
            else:
                fsutil.write_json(os.path.join(pending.tmpdir, "meta.json"), {
                    "diff_id": pending.diff_id, "chain_id": chain_id,
                    "parent": parent, "size": pending.size})
                os.chmod(pending.tmpdir, 0o755)
                os.rename(pending.tmpdir, final)
                stored = True
        if not stored:
            self.discard([pending.tmpdir])
        return stored

    # -- blobs ------------------------------------------------------------------
    def has_blob(self, digest):
        return os.path.isfile(self.paths.blob(digest))

    def blob_tmp(self, digest):
        """A temp path for a blob being downloaded (gc removes it once its
        process is dead)."""
        os.makedirs(self.paths.tmp, exist_ok=True)
        return os.path.join(self.paths.tmp, "blob-%d-%s" % (
            os.getpid(), digest.partition(":")[2][:16]))

    def new_blob_tmp(self):
        """A new empty file in ``paths.tmp`` for a blob made here (gc
        removes it once its process is dead)."""
        import tempfile
        os.makedirs(self.paths.tmp, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="blob-%d-" % os.getpid(), dir=self.paths.tmp)
        os.close(fd)
        return tmp

    def stage_blob(self, raw, digest=None):
        """Copy the stream ``raw`` into ``paths.tmp`` while hashing it ->
        StagedBlob.  With ``digest``, a blob that hashes otherwise is
        refused (StoreError) and nothing is left behind."""
        tmp = self.new_blob_tmp()
        try:
            with open(tmp, "wb") as out:
                got, size, head = _hash_copy(raw, out)
            if digest and got != digest:
                raise StoreError("blob %s does not match its digest (got %s)"
                                 % (digest, got), hint="the archive is corrupt")
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        os.chmod(tmp, 0o644)
        return StagedBlob(tmp, got, size, head)

    def stage_file(self, tmp):
        """A blob already written at ``tmp`` (from new_blob_tmp), hashed in
        place -> StagedBlob."""
        with open(tmp, "rb") as f:
            got, size, head = _hash_copy(f)
        os.chmod(tmp, 0o644)
        return StagedBlob(tmp, got, size, head)

    def add_blob_file(self, tmp_path, digest):
        """Rename a verified blob into place."""
        os.makedirs(self.paths.blobs, exist_ok=True)
        os.rename(tmp_path, self.paths.blob(digest))

    def digests(self, image_id):
        """The image's repo digests ("name@sha256:..."), full names."""
        return sorted(k for k, v in self.repositories().items()
                      if v == image_id and "@" in k)

    def record_digest(self, image_id, name, digest):
        """Remember that ``name`` (full repository) served this image as
        ``digest`` (RepoDigests); one digest per repository and image."""
        with fsutil.locked(self.paths.store_lock):
            repos = self.repositories()
            for k in [k for k, v in repos.items() if v == image_id and
                      k.partition("@")[0] == name and "@" in k]:
                del repos[k]
            repos[name + "@" + digest] = image_id
            fsutil.write_json(self.paths.repositories, repos)

    def add_image(self, config_bytes, layers, manifest=None, tags=(), blobs=()):
        """Commit an image.  ``layers`` has one item per rootfs.diff_ids entry:
        a PendingLayer, None (reuse the stored layer with that chain id) or a
        callable returning the layer stream (extracted here unless stored).
        ``tags`` are Reference objects or strings; ``blobs`` StagedBlobs
        (the manifest's layers, for push and save), committed under the
        same lock so that gc cannot take them before the image holds them.
        Returns (image_id, [(tag, previous image id)]) for tags that moved."""
        config = jsonfast.loads(config_bytes)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers):
            raise StoreError("the image config lists %d layers, the archive %d"
                             % (len(diff_ids), len(layers)))
        cids = chain_ids(diff_ids)
        pending = {}
        try:
            for i, item in enumerate(layers):
                if isinstance(item, PendingLayer):
                    if item.diff_id != diff_ids[i]:
                        raise StoreError("layer %d: diff_id %s does not match the "
                                         "config's %s" % (i + 1, item.diff_id,
                                                          diff_ids[i]))
                    pending[i] = item
                elif item is not None and not self.has_layer(cids[i]):
                    pending[i] = self.unpack_layer(item, diff_ids[i])
            image_id = digest_of(config_bytes)
            leftovers = []
            with fsutil.locked(self.paths.store_lock):
                moved = self._commit(image_id, config_bytes, manifest, tags,
                                     diff_ids, cids, pending, leftovers, blobs)
        except BaseException:
            self.discard([p.tmpdir for p in pending.values()])
            for b in blobs:
                try:
                    os.unlink(b.tmp)
                except OSError:
                    pass
            raise
        self.discard(leftovers)
        return image_id, moved

    def _commit(self, image_id, config_bytes, manifest, tags, diff_ids, cids,
                pending, leftovers, blobs):
        os.makedirs(self.paths.layers, exist_ok=True)
        os.makedirs(self.paths.images, exist_ok=True)
        for b in blobs:
            if self.has_blob(b.digest):
                os.unlink(b.tmp)
            else:
                self.add_blob_file(b.tmp, b.digest)
        for i, cid in enumerate(cids):
            final = self.paths.layer(cid)
            p = pending.get(i)
            if p is None:
                if not os.path.isdir(final):
                    raise StoreError("layer %s vanished while loading (removed "
                                     "by a concurrent rmi)" % cid,
                                     hint="run the command again")
                continue
            if os.path.isdir(final):
                leftovers.append(p.tmpdir)    # stored meanwhile by someone else
                continue
            fsutil.write_json(os.path.join(p.tmpdir, "meta.json"), {
                "diff_id": diff_ids[i], "chain_id": cid,
                "parent": cids[i - 1] if i else None, "size": p.size})
            os.chmod(p.tmpdir, 0o755)
            os.rename(p.tmpdir, final)        # the layer becomes visible here
        if manifest is not None:
            fsutil.atomic_write(self.paths.image_manifest(image_id), manifest)
        path = self.paths.image_config(image_id)
        if not os.path.exists(path):
            fsutil.atomic_write(path, config_bytes)
        repos = self.repositories()
        moved = []
        for tag in tags:
            key = str(tag)
            old = repos.get(key)
            if old and old != image_id:
                moved.append((key, old))
            repos[key] = image_id
        if tags:
            fsutil.write_json(self.paths.repositories, repos)
        return moved

    def discard(self, tmpdirs):
        """Remove temp dirs (in the user namespace: they hold subuid files)."""
        tmpdirs = [d for d in tmpdirs if os.path.lexists(d)]
        if not tmpdirs:
            return
        from . import unpack
        try:
            unpack.remove_in_userns(*tmpdirs)
        except Exception:   # noqa: BLE001 - best effort; gc() retries later
            for d in tmpdirs:
                try:
                    fsutil.rmtree(d)
                except OSError:
                    pass

    def write_blob(self, data):
        """Store ``data`` under its digest; returns the digest."""
        digest = digest_of(data)
        os.makedirs(self.paths.blobs, exist_ok=True)
        path = self.paths.blob(digest)
        if not os.path.exists(path):
            fsutil.atomic_write(path, data)
        return digest

    # -- tags and removal -----------------------------------------------------
    def tag(self, image_id, target):
        """Point the tag ``target`` (a Reference or string) at ``image_id``."""
        with fsutil.locked(self.paths.store_lock):
            if not self.exists(image_id):
                raise ImageNotFound("No such image: %s" % image_id)
            repos = self.repositories()
            repos[str(target)] = image_id
            fsutil.write_json(self.paths.repositories, repos)
        _event(self.paths, "tag", image_id, str(target))

    def untag(self, ref):
        """Remove one tag; returns the image id it pointed to."""
        with fsutil.locked(self.paths.store_lock):
            repos = self.repositories()
            image_id = repos.pop(str(ref), None)
            if image_id is None:
                raise ImageNotFound("No such image: %s" % ref.familiar_string())
            fsutil.write_json(self.paths.repositories, repos)
        _event(self.paths, "untag", image_id, str(ref))
        return image_id

    def delete_image(self, image_id):
        """Remove the image record and every tag pointing at it; returns the
        removed tags (full names).  Layers go in the next gc()."""
        with fsutil.locked(self.paths.store_lock):
            repos = self.repositories()
            tags = sorted(k for k, v in repos.items() if v == image_id)
            if tags:
                for k in tags:
                    del repos[k]
                fsutil.write_json(self.paths.repositories, repos)
            for path in (self.paths.image_manifest(image_id),
                         self.paths.image_config(image_id)):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        for tag in tags:
            _event(self.paths, "untag", image_id, tag)
        _event(self.paths, "delete", image_id, image_id)
        return tags

    def gc(self):
        """Remove layers and blobs that no image references, and temp dirs
        left by dead processes.  Returns the chain ids removed."""
        doomed, removed = [], []
        with fsutil.locked(self.paths.store_lock):
            keep_layers, keep_blobs = set(), set()
            for image_id in self.image_ids():
                try:
                    keep_layers.update(c.partition(":")[2]
                                       for c in self.chain_ids(image_id))
                except (OSError, ValueError):
                    continue
                keep_blobs.add(image_id[7:])
                for d in _manifest_digests(self.manifest(image_id)):
                    keep_blobs.add(d.partition(":")[2])
            os.makedirs(self.paths.tmp, exist_ok=True)
            for hexid in _listdir(self.paths.layers):
                if hexid in keep_layers or hexid == "mountpoints":
                    continue        # (the containers' shared init layer: rootfs.py)
                # Renamed out under the lock, deleted after it: the layer
                # disappears atomically and the slow delete blocks no one.
                grave = os.path.join(self.paths.tmp, "gc-%d-%s" % (os.getpid(), hexid))
                os.rename(os.path.join(self.paths.layers, hexid), grave)
                doomed.append(grave)
                removed.append("sha256:" + hexid)
            for hexid in _listdir(self.paths.blobs):
                if hexid not in keep_blobs:
                    try:
                        os.unlink(os.path.join(self.paths.blobs, hexid))
                    except FileNotFoundError:
                        pass
            for name in _listdir(self.paths.tmp):
                parts = name.split("-")
                if len(parts) >= 3 and parts[1].isdigit() and \
                        name not in [os.path.basename(d) for d in doomed] and \
                        not _pid_alive(int(parts[1])):
                    doomed.append(os.path.join(self.paths.tmp, name))
        self.discard(doomed)
        return removed


def _hash_copy(raw, out=None):
    """Read the stream ``raw`` to its end (copying it to ``out`` if given)
    -> (digest, size, its first bytes)."""
    import hashlib
    sha, size, head = hashlib.sha256(), 0, b""
    while True:
        chunk = raw.read(1 << 20)
        if not chunk:
            break
        if not head:
            head = chunk[:16]
        sha.update(chunk)
        if out is not None:
            out.write(chunk)
        size += len(chunk)
    return "sha256:" + sha.hexdigest(), size, head


def _manifest_digests(manifest):
    if not isinstance(manifest, dict):
        return []
    out = []
    cfg = manifest.get("config")
    if isinstance(cfg, dict) and cfg.get("digest"):
        out.append(cfg["digest"])
    for layer in manifest.get("layers") or []:
        if isinstance(layer, dict) and layer.get("digest"):
            out.append(layer["digest"])
    return out


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _pid_alive(pid):
    """A process with this pid runs (a zombie does not: a pull killed with
    its parent waits for a late-reaping init, and its temp dirs are dead)."""
    return not pids.ended(pids.stat_fields(pid))


def _event(paths, action, image_id, name):
    """An image event (events.py): Docker's Actor is the image id, its
    "name" attribute the tag (or the id)."""
    from .. import events
    events.emit(paths, "image", action, image_id, {"name": name})
