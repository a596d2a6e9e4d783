"""`load` of image archives and `import` of root filesystem tars.

Two archive formats are read, whoever wrote them:

- docker-archive (`docker save`, `podman save`, `skopeo copy ...
  docker-archive:`): ``manifest.json`` = [{"Config", "RepoTags", "Layers"}],
  each path a member of the tar.
- OCI image layout in a tar (`skopeo copy ... oci-archive:`, `podman save
  --format oci-archive`): ``oci-layout``, ``index.json``, ``blobs/sha256/``
  (image-spec image-layout.md).  The name comes from the descriptor's
  ``io.containerd.image.name`` annotation (containerd, podman, buildkit) or
  ``org.opencontainers.image.ref.name``.

Layers are never held in memory: each is streamed from its member of the
archive (opened afresh by the extracting child, so parent and child never
share a file offset) and checked against the config's rootfs.diff_ids.
A non-seekable input (stdin) is spooled to ``paths.tmp`` first, because the
index of a docker-archive may come after its layers.
"""

import contextlib
import datetime
import io
import json
import os
import posixpath
import shlex
import shutil
import tarfile
import tempfile

from ..errors import StoreError, UsageError
from . import reference
from .store import chain_ids, digest_of
from ..platforms import host_arch  # noqa: F401  (archive.host_arch: build, pull, info)

MANIFEST_JSON = "manifest.json"
OCI_INDEX = "index.json"
OCI_LAYOUT = "oci-layout"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"



def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


class _Member:
    """A reader over ``size`` bytes at ``offset`` of a file."""

    def __init__(self, path, offset, size):
        self._f = open(path, "rb")
        self._f.seek(offset)
        self._left = size

    def read(self, n=-1):
        if self._left <= 0:
            return b""
        if n is None or n < 0 or n > self._left:
            n = self._left
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Archive:
    """Random access to the members of an (uncompressed) tar file."""

    def __init__(self, path):
        self.path = path
        try:
            self.tf = tarfile.open(path, "r:")
        except tarfile.TarError as exc:
            raise StoreError("not an image archive: %s" % exc,
                             hint="give a tar made by `docker save`, `podman "
                                  "save` or skopeo (docker-archive or "
                                  "oci-archive)") from None
        self.members = {}
        for ti in self.tf:
            self.members[posixpath.normpath(ti.name.lstrip("/"))] = ti

    def has(self, name):
        return posixpath.normpath(name.lstrip("/")) in self.members

    def member(self, name):
        ti = self.members.get(posixpath.normpath(name.lstrip("/")))
        if ti is None:
            raise StoreError("image archive lacks %r" % name)
        while ti.issym() or ti.islnk():
            # docker save links identical layers (<id>/layer.tar -> ../x/layer.tar).
            base = posixpath.dirname(ti.name) if ti.issym() else ""
            target = posixpath.normpath(posixpath.join(base, ti.linkname))
            nxt = self.members.get(target)
            if nxt is None or nxt is ti:
                raise StoreError("image archive: %r links to missing %r"
                                 % (name, ti.linkname))
            ti = nxt
        if not ti.isreg():
            raise StoreError("image archive: %r is not a file" % name)
        return ti

    def read(self, name, limit=64 << 20):
        ti = self.member(name)
        if ti.size > limit:
            raise StoreError("image archive: %r is too large for metadata" % name)
        with _Member(self.path, ti.offset_data, ti.size) as m:
            return m.read()

    def read_json(self, name):
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise StoreError("image archive: %r is not valid JSON: %s"
                             % (name, exc)) from None

    def opener(self, name):
        ti = self.member(name)
        path, offset, size = self.path, ti.offset_data, ti.size
        return lambda: _Member(path, offset, size)

    def close(self):
        self.tf.close()


@contextlib.contextmanager
def _seekable_tar(store, source):
    """Yield the path of an uncompressed tar holding ``source`` (a path, or
    a binary stream such as stdin).  Compressed or unseekable input is
    spooled into ``paths.tmp`` and removed afterwards."""
    from .unpack import decompressed
    spool = None
    try:
        if isinstance(source, str):
            with open(source, "rb") as f:
                head = f.read(6)
            if not head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")):
                yield source
                return
            raw = open(source, "rb")
        else:
            raw = source
        os.makedirs(store.paths.tmp, exist_ok=True)
        fd, spool = tempfile.mkstemp(prefix="spool-%d-" % os.getpid(),
                                     dir=store.paths.tmp)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(decompressed(raw), out, 1 << 20)
        if raw is not source:
            raw.close()
        yield spool
    finally:
        if spool:
            with contextlib.suppress(OSError):
                os.unlink(spool)


def load(store, source):
    """Load every image of an archive.  Returns a list of
    (image_id, [Reference...], [(full tag, previous id)...])."""
    with _seekable_tar(store, source) as path:
        arch = _Archive(path)
        try:
            if arch.has(MANIFEST_JSON):
                return [_load_docker(store, arch, entry)
                        for entry in _docker_entries(arch)]
            if arch.has(OCI_INDEX):
                return _load_oci(store, arch)
            raise StoreError("not an image archive: no manifest.json (docker-"
                             "archive) or index.json (OCI layout) in it",
                             hint="for a root filesystem tar use `sandbox import`")
        finally:
            arch.close()


def _docker_entries(arch):
    entries = arch.read_json(MANIFEST_JSON)
    if not isinstance(entries, list) or not entries:
        raise StoreError("image archive: manifest.json holds no image")
    return entries


def _load_docker(store, arch, entry):
    config_bytes = arch.read(entry["Config"])
    layers = list(entry.get("Layers") or [])
    tags = [reference.parse(t) for t in entry.get("RepoTags") or []]
    config = _parse_config(config_bytes)
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(layers):
        raise StoreError("image archive: %s lists %d layers, its config %d"
                         % (MANIFEST_JSON, len(layers), len(diff_ids)))
    sources = [arch.opener(name) for name in layers]
    staged = []
    try:
        descs = [_keep_layer_blob(store, src, diff_id, chain_id, staged)
                 for src, diff_id, chain_id in zip(sources, diff_ids,
                                                   chain_ids(diff_ids))]
        # Kept for push and save: a Docker v2 manifest of the layers as the
        # archive holds them (their blobs are kept too).
        manifest = docker_manifest(config_bytes, descs)
        image_id, moved = store.add_image(config_bytes, sources, manifest, tags,
                                          blobs=staged)
    except BaseException:
        _unlink_staged(staged)
        raise
    return image_id, tags, moved


def docker_manifest(config_bytes, layer_descs):
    """The Docker v2 manifest (bytes) of a config and its layer blobs."""
    return json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST_V2,
        "config": {"mediaType": DOCKER_CONFIG, "digest": digest_of(config_bytes),
                   "size": len(config_bytes)},
        "layers": layer_descs,
    }, indent=2).encode()


def layer_media_type(head, oci=False):
    """The media type of a layer blob whose first bytes are ``head``."""
    from .unpack import GZIP_MAGIC, ZSTD_MAGIC
    if head.startswith(GZIP_MAGIC):
        return OCI_LAYER + "+gzip" if oci else DOCKER_LAYER_TAR + ".gzip"
    if head.startswith(ZSTD_MAGIC):
        return OCI_LAYER + "+zstd" if oci else DOCKER_LAYER_TAR + ".zstd"
    return OCI_LAYER if oci else DOCKER_LAYER_TAR


def _keep_layer_blob(store, opener, diff_id, chain_id, staged, digest=None):
    """Keep an archive's layer as a blob (appended to ``staged``) unless
    the store has it; returns its Docker manifest descriptor.  ``digest``:
    the blob's digest when the archive says it (OCI layouts)."""
    with opener() as raw:
        head = raw.read(16)
    media_type = layer_media_type(head)
    known = digest or (diff_id if media_type == DOCKER_LAYER_TAR else None)
    if known and store.has_blob(known):
        return {"mediaType": media_type, "digest": known,
                "size": os.path.getsize(store.paths.blob(known))}
    with opener() as raw:
        blob = store.stage_blob(raw, digest)
    staged.append(blob)
    # The blob must hold what the config says.  Uncompressed, its digest
    # is the diff_id; compressed, extraction checks the same bytes, unless
    # the layer is stored already and nothing else will read them.
    if media_type == DOCKER_LAYER_TAR:
        got = blob.digest
    elif store.has_layer(chain_id):
        got = _diff_id_of(blob.tmp)
    else:
        got = diff_id
    if got != diff_id:
        raise StoreError("layer content does not match the image config: diff_id "
                         "is %s, expected %s" % (got, diff_id),
                         hint="the archive is corrupt or was tampered with")
    return {"mediaType": media_type, "digest": blob.digest, "size": blob.size}


def _diff_id_of(path):
    """sha256 of a (compressed) layer blob's tar stream."""
    import hashlib
    from .unpack import decompressed
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        stream = decompressed(f)
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def _unlink_staged(staged):
    for blob in staged:
        with contextlib.suppress(OSError):
            os.unlink(blob.tmp)


def _parse_config(config_bytes):
    try:
        config = json.loads(config_bytes)
        diff_ids = config["rootfs"]["diff_ids"]
        if not isinstance(diff_ids, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise StoreError("image archive: the image config has no "
                         "rootfs.diff_ids") from None
    return config


def _blob_name(digest):
    algo, _, hexpart = (digest or "").partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        raise StoreError("image archive: unsupported digest %r" % digest)
    return "blobs/sha256/" + hexpart


def _read_blob(arch, desc):
    data = arch.read(_blob_name(desc.get("digest")))
    if digest_of(data) != desc["digest"]:
        raise StoreError("image archive: blob %s does not match its digest"
                         % desc["digest"], hint="the archive is corrupt")
    return data


def _load_oci(store, arch):
    index = arch.read_json(OCI_INDEX)
    results = []
    for desc in index.get("manifests") or []:
        name = _oci_name(desc.get("annotations") or {})
        manifest_desc = _pick_manifest(arch, desc)
        manifest_bytes = _read_blob(arch, manifest_desc)
        manifest = json.loads(manifest_bytes)
        config_bytes = _read_blob(arch, manifest["config"])
        diff_ids = _parse_config(config_bytes)["rootfs"]["diff_ids"]
        layer_descs = manifest.get("layers") or []
        if len(layer_descs) != len(diff_ids):
            raise StoreError("image archive: the manifest lists %d layers, the "
                             "config %d" % (len(layer_descs), len(diff_ids)))
        sources = [arch.opener(_blob_name(ld.get("digest"))) for ld in layer_descs]
        tags = [name] if name else []
        staged = []
        try:
            # The manifest's blobs are kept as they are, for push and save.
            for src, ld, diff_id, chain_id in zip(sources, layer_descs, diff_ids,
                                                  chain_ids(diff_ids)):
                _keep_layer_blob(store, src, diff_id, chain_id, staged, ld["digest"])
            image_id, moved = store.add_image(config_bytes, sources, manifest_bytes,
                                              tags, blobs=staged)
        except BaseException:
            _unlink_staged(staged)
            raise
        results.append((image_id, tags, moved))
    if not results:
        raise StoreError("image archive: index.json lists no image")
    return results


def _pick_manifest(arch, desc):
    """Follow nested indexes down to one manifest, preferring this host's
    platform (a multi-arch layout)."""
    for _ in range(4):
        if desc.get("mediaType") not in INDEX_TYPES:
            return desc
        children = json.loads(_read_blob(arch, desc)).get("manifests") or []
        if not children:
            raise StoreError("image archive: an empty image index")
        want = ("linux", host_arch())
        desc = next((c for c in children
                     if ((c.get("platform") or {}).get("os"),
                         (c.get("platform") or {}).get("architecture")) == want),
                    children[0])
    raise StoreError("image archive: image indexes nested too deep")


def _oci_name(annotations):
    """The name an OCI layout gives its image, or None (untagged)."""
    full = annotations.get(ANNOTATION_CONTAINERD_NAME)
    if full:
        return reference.parse(full)
    ref = annotations.get(ANNOTATION_REF_NAME)
    if not ref:
        return None
    if ":" in ref or "/" in ref:
        return reference.parse(ref)     # skopeo's oci:DIR:name:tag form
    # A bare value: a tag by the spec ("latest") when nothing names the
    # repository; skopeo writes a bare repository name ("oci:DIR:busybox").
    if reference.is_reference(ref) and ref != reference.DEFAULT_TAG:
        return reference.parse(ref)
    return None


# -- import ---------------------------------------------------------------
CHANGE_VERBS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD",
                "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def apply_changes(cfg, changes):
    """Apply `docker import -c` Dockerfile instructions to a config dict."""
    for change in changes or []:
        verb, _, rest = change.strip().partition(" ")
        verb, rest = verb.upper(), rest.strip()
        if verb not in CHANGE_VERBS:
            raise UsageError("%s is not a valid change command" % verb,
                             hint="-c takes one of " + ", ".join(CHANGE_VERBS))
        if verb in ("CMD", "ENTRYPOINT"):
            cfg[verb.capitalize() if verb == "CMD" else "Entrypoint"] = \
                _exec_form(rest, shell=True)
        elif verb == "ENV":
            env = [e for e in cfg.get("Env") or []]
            for k, v in _pairs(rest):
                env = [e for e in env if e.partition("=")[0] != k] + [k + "=" + v]
            cfg["Env"] = env
        elif verb == "LABEL":
            cfg["Labels"] = dict(cfg.get("Labels") or {}, **dict(_pairs(rest)))
        elif verb == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else p + "/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif verb == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _exec_form(rest, shell=False):
                vols[v] = {}
            cfg["Volumes"] = vols
        elif verb == "USER":
            cfg["User"] = rest
        elif verb == "WORKDIR":
            cfg["WorkingDir"] = posixpath.join(cfg.get("WorkingDir") or "/", rest)
        elif verb == "STOPSIGNAL":
            cfg["StopSignal"] = rest
        elif verb == "ONBUILD":
            cfg["OnBuild"] = (cfg.get("OnBuild") or []) + [rest]
    return cfg


def json_list(rest):
    """An instruction's arguments in the JSON array form, or None."""
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return value
    return None


def _exec_form(rest, shell):
    value = json_list(rest)
    if value is not None:
        return value
    return ["/bin/sh", "-c", rest] if shell else rest.split()


def _pairs(rest):
    words = shlex.split(rest)
    if len(words) == 2 and "=" not in words[0]:
        return [(words[0], words[1])]        # legacy "ENV key value"
    out = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k:
            raise UsageError("invalid key=value %r in change %r" % (w, rest))
        out.append((k, v))
    return out


def import_rootfs(store, source, name=None, message=None, changes=None, platform=None):
    """`docker import`: one layer from a root filesystem tar (plain or
    gzip; a path, or "-" for stdin).  Returns (image_id, [(tag, old id)]).
    ``platform``: (os, arch, variant) the image says it is for (--platform;
    default this host's).
    The tar is kept as the layer's blob (push and save need it): it is
    copied into the store first and extracted from there."""
    tags = [reference.parse(name)] if name else []
    container_config = apply_changes({"Env": None, "Cmd": None}, changes)
    if source == "-":
        blob = store.stage_blob(io.open(0, "rb", closefd=False))
        src_name = "-"
    else:
        if not os.path.isfile(source):
            raise UsageError("cannot import %s: no such file" % source)
        with open(source, "rb") as f:
            blob = store.stage_blob(f)
        src_name = source
    try:
        layer = store.unpack_layer(lambda: open(blob.tmp, "rb"))
    except BaseException:
        _unlink_staged([blob])
        raise
    try:
        created = now_rfc3339()
        comment = message or "Imported from " + src_name
        os_, arch, variant = platform or ("linux", host_arch(), None)
        config = {
            "architecture": arch,
            "comment": comment,
            "config": container_config,
            "created": created,
            "history": [{"created": created, "comment": comment}],
            "os": os_,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        }
        if variant:
            config["variant"] = variant
    except BaseException:
        store.discard([layer.tmpdir])
        _unlink_staged([blob])
        raise
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    manifest = docker_manifest(config_bytes, [{
        "mediaType": layer_media_type(blob.head), "digest": blob.digest,
        "size": blob.size}])
    return store.add_image(config_bytes, [layer], manifest, tags, blobs=[blob])
