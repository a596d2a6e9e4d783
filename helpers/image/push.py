"""`push`: blobs first (each checked with HEAD, then mounted from another
repository of the same registry or uploaded), then the manifest, byte for
byte as the store keeps it, so that its digest is the one pulls verify
(distribution spec, "Pushing blobs" and "Pushing Manifests")."""

import json
import os
import urllib.parse

from ..errors import StoreError, UsageError
from . import reference, registry
from .registry import RegistryError


def push(store, name, tls_verify=None, progress=None):
    """Push the image tagged ``name``; returns (tag, digest, size)."""
    ref = reference.parse(name)
    if ref.digest:
        raise UsageError("cannot push a digest reference", hint="push NAME[:TAG]")
    image_id = store.lookup(str(ref))
    digest, size, _ = push_image(store, image_id, ref, ref.tag, tls_verify, progress)
    return ref.tag, digest, size


def push_image(store, image_id, ref, tag, tls_verify=None, progress=None):
    """Push image ``image_id`` to the repository of ``ref`` under ``tag``,
    or only by its digest (tag None: a member of a list to be pushed);
    returns (digest, size, media type) of its manifest."""
    from .progress import Progress
    progress = progress or Progress("quiet")
    manifest_bytes = _manifest_bytes(store, image_id)
    manifest = json.loads(manifest_bytes)
    media_type = manifest.get("mediaType") or (
        registry.MT_OCI_MANIFEST if (manifest.get("config") or {}).get("mediaType", "")
        .startswith("application/vnd.oci") else registry.MT_DOCKER_MANIFEST)
    client = registry.Client(ref.registry, ref.repository, tls_verify, actions="pull,push")
    sources = [d.partition("@")[0].split("/", 1)[1] for d in store.digests(image_id)
               if d.split("/", 1)[0] == ref.registry]
    sources = [s for s in sources if s != ref.repository]
    progress.line("The push refers to repository [%s]" % ref.name)
    try:
        layers = list(manifest.get("layers") or [])
        for desc in reversed(layers):
            _push_blob(store, client, desc, None, sources, progress, True)
        cfg = manifest["config"]
        _push_blob(store, client, cfg, store.config_bytes(image_id), sources, progress, False)
        digest = "sha256:" + _sha256(manifest_bytes)
        resp = client.request("PUT", "/v2/%s/manifests/%s" % (ref.repository, tag or digest),
                              {"Content-Type": media_type}, manifest_bytes)
        if resp.status not in (200, 201):
            raise client.check(resp, "manifest for %s" % ref.familiar_string())
        resp.read()
        resp.release()
    finally:
        client.close()
    store.record_digest(image_id, ref.name, digest)
    progress.line("%s: digest: %s size: %d" % (tag or "(by digest)", digest,
                                                len(manifest_bytes)))
    return digest, len(manifest_bytes), media_type


def _sha256(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def _manifest_bytes(store, image_id):
    try:
        with open(store.paths.image_manifest(image_id), "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise StoreError("image %s has no manifest in the store" % image_id[7:19],
                         hint="it was loaded or imported by an older sandbox: "
                              "load, import or pull it again") from None


def _push_blob(store, client, desc, data, sources, progress, is_layer):
    digest = desc["digest"]
    short = digest.partition(":")[2][:12]
    repo = client.repository
    resp = client.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
    resp.read()
    resp.release()
    if resp.status == 200:
        if is_layer:
            progress.layer(short, "Layer already exists")
        return
    if resp.status not in (404,):
        raise client.check(resp, "blob %s" % digest, body=b"")
    path = store.paths.blob(digest)
    if data is None and not os.path.isfile(path):
        raise StoreError("layer blob %s is not in the store" % digest,
                         hint="the image was loaded by an older sandbox, which "
                              "kept no layer blobs: load or pull it again")
    if is_layer:
        progress.layer(short, "Preparing")
    location = None
    for source in sources:
        resp = client.request("POST", "/v2/%s/blobs/uploads/?%s" % (
            repo, urllib.parse.urlencode({"mount": digest, "from": source})), body=b"")
        resp.read()
        resp.release()
        if resp.status == 201:
            if is_layer:
                progress.layer(short, "Mounted from %s" % source)
            return
        if resp.status == 202:
            location = resp.headers.get("Location")
            break
    if location is None:
        resp = client.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"")
        body = resp.read()
        resp.release()
        if resp.status != 202:
            raise client.check(resp, "upload of blob %s" % digest, body=body)
        location = resp.headers.get("Location")
    if not location:
        raise RegistryError("the registry started an upload without a Location")
    url = urllib.parse.urljoin(client.url("/v2/%s/blobs/uploads/" % repo), location)
    url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
    size = len(data) if data is not None else os.path.getsize(path)
    if is_layer:
        progress.layer(short, "Pushing", 0, size)
    body = data if data is not None else (lambda: open(path, "rb"))
    resp = client.request("PUT", url, {"Content-Type": "application/octet-stream",
                                       "Content-Length": str(size)}, body)
    text = resp.read()
    resp.release()
    if resp.status != 201:
        raise client.check(resp, "upload of blob %s" % digest, body=text)
    if is_layer:
        progress.layer(short, "Pushed", size, size)
