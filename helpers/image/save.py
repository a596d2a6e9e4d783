"""`save`: images from the store to a docker-archive or an OCI image
layout tar, the two formats `load` reads.

- docker-archive (what `docker save` and `skopeo copy ... docker-archive:`
  write): ``manifest.json`` = [{"Config", "RepoTags", "Layers"}], the
  config as ``<hex>.json``, each layer as ``<hex>.tar``.
- oci-archive (image-spec image-layout.md): ``oci-layout``, ``index.json``
  with one manifest descriptor per tag, named by its full name both in
  ``io.containerd.image.name`` (containerd, Docker) and in
  ``org.opencontainers.image.ref.name`` (as podman writes it, so that
  ``skopeo ... oci-archive:FILE:NAME`` finds it), ``blobs/sha256/``.

A layer is written as the blob the store keeps (what the registry served,
or what `load`/`import` read), so that the config's diff_ids still hold and
the image id survives the round trip.  A layer without a blob (an image
stored by an older sandbox) is written as a tar of its diff directory
(``write_layer_tar``: deterministic, overlay whiteouts turned back into OCI
ones); such a tar rarely hashes to the original diff_id, so the config is
rewritten with the new one and the image saved under a new id, with a
warning.

Every member has mtime 0 and owner 0: the same images give the same bytes.
"""

import contextlib
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile

from ..errors import StoreError, warn
from . import reference
from .archive import (DOCKER_LAYER_TAR, MANIFEST_JSON, OCI_CONFIG, OCI_INDEX,
                      OCI_LAYOUT, OCI_MANIFEST, ANNOTATION_CONTAINERD_NAME,
                      ANNOTATION_REF_NAME, docker_manifest, layer_media_type)
from .store import digest_of
from .unpack import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

FORMATS = ("docker-archive", "oci-archive")
CHUNK = 1 << 20


# -- which images, under which names ----------------------------------------------
def resolve(store, names):
    """Docker's parseNames: [(image_id, [full tags])], in the order given.
    A name without tag or digest means every tag of that repository; an id
    saves the image without names."""
    out = {}
    repos = store.repositories()
    for name in names:
        bare = name[7:] if name.startswith("sha256:") else name
        tagged = None
        if reference.is_reference(name) and not name.startswith("sha256:"):
            ref = reference.parse(name, default_tag=False)
            if ref.tag is None and ref.digest is None:
                tags = sorted(k for k in repos if "@" not in k and
                              k.rpartition(":")[0] == ref.name)
                tagged = [(repos[t], t) for t in tags if store.exists(repos[t])]
            elif ref.tag is not None and str(ref) in repos:
                tagged = [(store.lookup(str(ref)), str(ref))]
        if not tagged:
            image_id = store.lookup(name)
            tag = None
            if not image_id[7:].startswith(bare) and "@" not in name:
                tag = str(reference.parse(name))       # found by its tag
            tagged = [(image_id, tag)]
        for image_id, tag in tagged:
            tags = out.setdefault(image_id, [])
            if tag and tag not in tags:
                tags.append(tag)
    return list(out.items())


# -- the layer tar of a diff directory ----------------------------------------------
def write_layer_tar(root, out):
    """Write the layer directory ``root`` (as unpack.py leaves it) to the
    binary stream ``out`` as an OCI layer tar.  Deterministic: entries in
    name order, parents first, owners as numbers without names; hardlinks
    as links to the first name; an overlay whiteout (a 0/0 character
    device) becomes ``.wh.NAME`` and an opaque directory (the
    user.overlay.opaque xattr) gets ``.wh..wh..opq`` (image-spec layer.md,
    "Whiteouts"), as Docker's overlay driver writes them.  Call it as root
    of the user namespace that owns the files."""
    seen = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for rel in _walk(root, ""):
            path = os.path.join(root, rel)
            st = os.lstat(path)
            ti = _header(rel, st)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                head, _, base = rel.rpartition("/")
                ti.name = (head + "/" if head else "") + WHITEOUT_PREFIX + base
                # unpack makes whiteouts with mknod, keeping neither the
                # owner nor the time of the .wh. file: fixed values keep
                # unpack-then-write stable.
                ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = tarfile.REGTYPE, 0o600, 0, 0, 0
                tf.addfile(ti)
                continue
            ti.pax_headers = _xattrs(path)
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
                if _is_opaque(path):
                    opq = _header(rel + "/" + WHITEOUT_OPAQUE, st)
                    opq.type, opq.mode = tarfile.REGTYPE, 0o600
                    tf.addfile(opq)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    ti.type, ti.linkname = tarfile.LNKTYPE, seen[key]
                    tf.addfile(ti)
                    continue
                seen[key] = rel
                ti.size = st.st_size
                with open(path, "rb") as f:
                    tf.addfile(ti, f)
            elif stat.S_ISLNK(st.st_mode):
                ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
                tf.addfile(ti)
            elif stat.S_ISFIFO(st.st_mode):
                ti.type = tarfile.FIFOTYPE
                tf.addfile(ti)
            # sockets and other devices cannot be in a layer: skipped


def _walk(root, rel):
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        child = rel + "/" + e.name if rel else e.name
        yield child
        if e.is_dir(follow_symlinks=False):
            yield from _walk(root, child)


def _header(name, st):
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    return ti


def _xattrs(path):
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(("user.overlay.", "trusted.overlay.")):
            continue        # overlay bookkeeping, written back as whiteouts
        with contextlib.suppress(OSError):
            value = os.getxattr(path, name, follow_symlinks=False)
            out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _is_opaque(path):
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class _HashingWriter:
    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)


def _regenerate(store, layer_dir, tmp):
    """write_layer_tar of ``layer_dir`` into ``tmp``, in the user namespace
    that owns its files -> (digest, size)."""
    from .. import userns

    def child():
        with open(tmp, "wb") as f:
            w = _HashingWriter(f)
            write_layer_tar(layer_dir, w)
        return "sha256:" + w.sha.hexdigest(), w.size

    return userns.run_in_userns(child)


# -- the images' parts --------------------------------------------------------------
class _Blob:
    """One blob of the archive: a file in the store (or a temp file)."""

    def __init__(self, path, digest, size, media_type=None):
        self.path, self.digest, self.size = path, digest, size
        self.media_type = media_type


class _Image:
    def __init__(self, image_id, tags, config_bytes, layers, manifest_bytes=None):
        self.id, self.tags = image_id, tags
        self.config_bytes, self.layers = config_bytes, layers
        self.manifest_bytes = manifest_bytes      # an OCI manifest to reuse


def _collect(store, image_id, tags, temps):
    """The config and layer blobs of one image, regenerating missing layers
    (their temp files are appended to ``temps``)."""
    config_bytes = store.config_bytes(image_id)
    config = json.loads(config_bytes)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    manifest = store.manifest(image_id) or {}
    descs = manifest.get("layers") or []
    if len(descs) != len(diff_ids):
        descs = [{}] * len(diff_ids)
    layers, rewritten = [], False
    dirs = store.layer_dirs(image_id, config) if not all(
        store.has_blob(d.get("digest", "x:")) for d in descs) else None
    for i, (desc, diff_id) in enumerate(zip(descs, diff_ids)):
        digest = desc.get("digest")
        if digest and store.has_blob(digest):
            path = store.paths.blob(digest)
            layers.append(_Blob(path, digest, os.path.getsize(path), _media(path)))
            continue
        os.makedirs(store.paths.tmp, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="blob-%d-" % os.getpid(),
                                   dir=store.paths.tmp)
        os.close(fd)
        temps.append(tmp)
        digest, size = _regenerate(store, dirs[i], tmp)
        layers.append(_Blob(tmp, digest, size, DOCKER_LAYER_TAR))
        if digest != diff_id:
            diff_ids[i], rewritten = digest, True
    if rewritten:
        config["rootfs"]["diff_ids"] = diff_ids
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        warn("image %s has layers without a stored blob, and their tars as "
             "written now differ from the originals: it is saved with new "
             "diff_ids, as image %s" % (image_id[7:19], digest_of(config_bytes)),
             hint="pull or load the image again to keep its id")
    reuse = None
    if not rewritten and all(store.has_blob(d.get("digest", "x:")) for d in descs) \
            and (manifest.get("mediaType") == OCI_MANIFEST or
                 (manifest.get("config") or {}).get("mediaType") == OCI_CONFIG):
        with open(store.paths.image_manifest(image_id), "rb") as f:
            reuse = f.read()            # as the registry served it: same digest
    return _Image(image_id, tags, config_bytes, layers, reuse)


def _media(path):
    with open(path, "rb") as f:
        return layer_media_type(f.read(16))


# -- writing --------------------------------------------------------------------------
class _Writer:
    """Members of the output tar, each written once."""

    def __init__(self, out):
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.written = set()

    def _info(self, name, size, kind=tarfile.REGTYPE):
        ti = tarfile.TarInfo(name)
        ti.type, ti.size, ti.mtime = kind, size, 0
        ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        ti.uname = ti.gname = ""
        return ti

    def dir(self, name):
        if name not in self.written:
            self.written.add(name)
            self.tf.addfile(self._info(name, 0, tarfile.DIRTYPE))

    def data(self, name, data):
        if name not in self.written:
            self.written.add(name)
            self.tf.addfile(self._info(name, len(data)), io.BytesIO(data))

    def file(self, name, blob):
        if name in self.written:
            return
        self.written.add(name)
        with open(blob.path, "rb") as f:
            if os.fstat(f.fileno()).st_size != blob.size:
                raise StoreError("blob %s changed size while saving" % blob.digest)
            self.tf.addfile(self._info(name, blob.size), f)

    def close(self):
        self.tf.close()


def _write_docker(w, images):
    entries = []
    for img in images:
        for blob in img.layers:
            w.file(blob.digest[7:] + ".tar", blob)
        config_name = digest_of(img.config_bytes)[7:] + ".json"
        w.data(config_name, img.config_bytes)
        entries.append({"Config": config_name,
                        "RepoTags": [reference.familiar_name(t) for t in img.tags]
                        or None,
                        "Layers": [b.digest[7:] + ".tar" for b in img.layers]})
    w.data(MANIFEST_JSON, json.dumps(entries, separators=(",", ":")).encode())


def _write_oci(w, images):
    w.data(OCI_LAYOUT, b'{"imageLayoutVersion":"1.0.0"}')
    w.dir("blobs/")
    w.dir("blobs/sha256/")
    index = []
    for img in images:
        for blob in img.layers:
            w.file("blobs/sha256/" + blob.digest[7:], blob)
        w.data("blobs/sha256/" + digest_of(img.config_bytes)[7:], img.config_bytes)
        manifest = img.manifest_bytes or _oci_manifest(img)
        digest = digest_of(manifest)
        w.data("blobs/sha256/" + digest[7:], manifest)
        desc = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}
        for tag in img.tags or [None]:
            d = dict(desc)
            if tag:
                d["annotations"] = {ANNOTATION_CONTAINERD_NAME: tag,
                                    ANNOTATION_REF_NAME: tag}
            index.append(d)
    w.data(OCI_INDEX, json.dumps({"schemaVersion": 2,
                                  "mediaType": "application/vnd.oci.image.index.v1+json",
                                  "manifests": index}, separators=(",", ":")).encode())


def _oci_manifest(img):
    docker = json.loads(docker_manifest(img.config_bytes, []))
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": dict(docker["config"], mediaType=OCI_CONFIG),
        "layers": [{"mediaType": _oci_media(b.media_type), "digest": b.digest,
                    "size": b.size} for b in img.layers],
    }, separators=(",", ":")).encode()


def _oci_media(docker_type):
    suffix = docker_type[len(DOCKER_LAYER_TAR):]          # "", ".gzip", ".zstd"
    return "application/vnd.oci.image.layer.v1.tar" + suffix.replace(".", "+")


def save(store, names, out, fmt="docker-archive"):
    """Write the images ``names`` to the binary stream ``out``."""
    if fmt not in FORMATS:
        raise StoreError("unknown archive format %r" % fmt,
                         hint="--format takes " + " or ".join(FORMATS))
    targets = resolve(store, names)
    temps = []
    try:
        images = [_collect(store, image_id, tags, temps) for image_id, tags in targets]
        w = _Writer(out)
        (_write_oci if fmt == "oci-archive" else _write_docker)(w, images)
        w.close()
    finally:
        for t in temps:
            with contextlib.suppress(OSError):
                os.unlink(t)
