"""Docker's `manifest create/annotate/inspect/push/rm`: a manifest list (a
multi-platform image: one name, an image per platform) made from images
already in a registry, kept locally until it is pushed.  CI builds each
platform's image on its own machine, pushes them, then joins them:

    sandbox manifest create reg/app:1 reg/app:1-amd64 reg/app:1-arm64
    sandbox manifest push reg/app:1

A local list is a JSON file in <root>/manifests: its name and, per image,
the reference it was made from and its descriptor (media type, size,
digest, platform from the image's config; `annotate` changes the
platform).  As Docker's, the images must be in the list's registry; those
of another repository are copied into the list's at push (their blobs
mounted, the manifest put by digest).  The list is Docker's manifest list
when every image is a Docker schema 2 manifest, else an OCI index.
"""

import hashlib
import json
import os
import urllib.parse

from ..errors import NotFound, SandboxError, UsageError
from .. import fsutil
from ..platforms import VALID_PLATFORMS
from . import reference, registry


def _dir(paths):
    return os.path.join(paths.root, "manifests")


def _path(paths, ref):
    return os.path.join(_dir(paths), urllib.parse.quote(str(ref), safe="") + ".json")


def _list_ref(name):
    ref = reference.parse(name)
    if ref.digest:
        raise UsageError("a manifest list is named by a tag, not a digest: %s" % name)
    return ref


def load(paths, name):
    """The local list named ``name``, or None."""
    try:
        return fsutil.read_json(_path(paths, _list_ref(name)))
    except FileNotFoundError:
        return None


def _save(paths, doc):
    os.makedirs(_dir(paths), mode=0o700, exist_ok=True)
    fsutil.write_json(_path(paths, _list_ref(doc["name"])), doc)


def _platform(config):
    plat = {"architecture": config.get("architecture") or "", "os": config.get("os") or ""}
    for key, field in (("variant", "variant"), ("os.version", "os.version")):
        if config.get(field):
            plat[key] = config[field]
    return plat


def _entry(source, tls_verify):
    """A member of a list: the manifest ``source`` names, as the registry
    has it (not a list itself), and its platform from its config."""
    ref = reference.parse(source)
    client = registry.Client(ref.registry, ref.repository, tls_verify)
    what = "manifest for %s" % ref.familiar_string()
    try:
        body, mt, _ = client.get_manifest(ref.digest or ref.tag, what)
        try:
            doc = json.loads(body)
        except ValueError:
            raise registry.RegistryError("%s is not JSON" % what) from None
        mt = doc.get("mediaType") or mt
        if mt in registry.INDEX_TYPES or "manifests" in doc:
            raise UsageError("%s is a manifest list" % ref.familiar_string(),
                             hint="name the images of one platform each")
        try:
            config = json.loads(client.fetch_blob(doc["config"]["digest"]))
        except (KeyError, TypeError, ValueError):
            raise registry.RegistryError("%s: no readable image config" % what) from None
    finally:
        client.close()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return {"source": source, "repository": ref.repository,
            "descriptor": {"mediaType": mt or registry.MT_DOCKER_MANIFEST,
                           "size": len(body), "digest": digest,
                           "platform": _platform(config)}}


def create(paths, name, sources, amend=False, tls_verify=None):
    """`manifest create`: returns the list's full name."""
    ref = _list_ref(name)
    doc = load(paths, name)
    if doc is not None and not amend:
        raise SandboxError("refusing to amend an existing manifest list with no --amend "
                           "flag", hint="manifest create --amend %s ..." % name)
    if doc is None:
        doc = {"name": str(ref), "entries": []}
    for source in sources:
        sref = reference.parse(source)
        if sref.registry != ref.registry:
            raise UsageError("cannot use source images from a different registry than "
                             "the target image: %s != %s" % (sref.registry, ref.registry))
        entry = _entry(source, tls_verify)
        doc["entries"] = [e for e in doc["entries"]
                          if e["descriptor"]["digest"] != entry["descriptor"]["digest"]]
        doc["entries"].append(entry)
    _save(paths, doc)
    return str(ref)


def annotate(paths, name, member, os_=None, arch=None, variant=None, os_version=None,
             os_features=None):
    doc = load(paths, name)
    if doc is None:
        raise NotFound("No such manifest: %s" % name)
    want = reference.parse(member)
    for e in doc["entries"]:
        if e["source"] == member or str(reference.parse(e["source"])) == str(want) or \
                e["descriptor"]["digest"] == want.digest:
            plat = e["descriptor"]["platform"]
            new_os, new_arch = os_ or plat.get("os"), arch or plat.get("architecture")
            if (os_ or arch) and new_arch not in VALID_PLATFORMS.get(new_os, ()):
                raise UsageError("manifest entry for image has unsupported os/arch "
                                 "combination: %s/%s" % (new_os, new_arch),
                                 hint="an os and architecture as Go names them: "
                                      "linux/amd64, linux/arm64, windows/amd64, ...")
            for key, value in (("os", os_), ("architecture", arch), ("variant", variant),
                               ("os.version", os_version)):
                if value:
                    plat[key] = value
            if os_features:
                plat["os.features"] = list(os_features)
            _save(paths, doc)
            return
    raise NotFound("manifest for image %s does not exist in %s" % (member, name))


def body(doc):
    """The list as it is pushed (bytes): Docker's manifest list, or an OCI
    index when a member is an OCI manifest."""
    docker = all(e["descriptor"]["mediaType"] == registry.MT_DOCKER_MANIFEST
                 for e in doc["entries"])
    out = {"schemaVersion": 2,
           "mediaType": registry.MT_DOCKER_LIST if docker else registry.MT_OCI_INDEX,
           "manifests": [e["descriptor"] for e in doc["entries"]]}
    return json.dumps(out, indent=3).encode()


def push(paths, name, purge=False, tls_verify=None):
    """`manifest push`: the members of other repositories copied into the
    list's (blobs mounted, manifests put by digest), then the list under
    its tag.  Returns the list's digest."""
    doc = load(paths, name)
    if doc is None:
        raise NotFound("No such manifest: %s" % name)
    if not doc["entries"]:
        raise UsageError("%s has no images" % name)
    ref = _list_ref(doc["name"])
    data = body(doc)
    client = registry.Client(ref.registry, ref.repository, tls_verify, actions="pull,push")
    try:
        for e in doc["entries"]:
            if e["repository"] != ref.repository:
                _copy_member(client, e, tls_verify)
        put(client, ref, data)
    finally:
        client.close()
    if purge:
        remove(paths, name)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put(client, ref, data):
    """The list ``data`` (body()) under ``ref``'s tag."""
    mt = json.loads(data)["mediaType"]
    resp = client.request("PUT", "/v2/%s/manifests/%s" % (ref.repository, ref.tag),
                          {"Content-Type": mt}, data)
    text = resp.read()
    resp.release()
    if resp.status not in (200, 201):
        raise client.check(resp, "manifest list %s" % ref.familiar_string(), text)


def push_built(store, name, image_ids, tls_verify=None, progress=None):
    """`build --platform A,B --push -t NAME`: each platform's image pushed
    to NAME's repository by digest, then the list of them under NAME's
    tag.  Returns the list's digest."""
    from .push import push_image
    ref = _list_ref(name)
    descriptors = []
    for image_id in image_ids:
        digest, size, mt = push_image(store, image_id, ref, None, tls_verify, progress)
        descriptors.append({"mediaType": mt, "size": size, "digest": digest,
                            "platform": _platform(store.config(image_id))})
    data = body({"entries": [{"descriptor": d} for d in descriptors]})
    client = registry.Client(ref.registry, ref.repository, tls_verify, actions="pull,push")
    try:
        put(client, ref, data)
    finally:
        client.close()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _copy_member(client, entry, tls_verify):
    """A member from another repository of the registry into the list's:
    its config and layers mounted (the registry copies nothing), then its
    manifest, byte for byte, by digest."""
    src = reference.parse(entry["source"])
    digest = entry["descriptor"]["digest"]
    source = registry.Client(src.registry, src.repository, tls_verify)
    try:
        manifest, _, _ = source.get_manifest(digest, "manifest %s" % digest)
    finally:
        source.close()
    doc = json.loads(manifest)
    repo = client.repository
    for desc in [doc["config"]] + list(doc.get("layers") or []):
        resp = client.request("POST", "/v2/%s/blobs/uploads/?%s" % (
            repo, urllib.parse.urlencode({"mount": desc["digest"], "from": src.repository})),
            body=b"")
        text = resp.read()
        resp.release()
        if resp.status != 201:
            raise SandboxError("cannot copy %s from %s into %s: the registry did not mount "
                               "blob %s (%d)" % (entry["source"], src.repository, repo,
                                                 desc["digest"], resp.status),
                               hint="push that image to %s first" % repo, exit_code=1)
    resp = client.request("PUT", "/v2/%s/manifests/%s" % (repo, digest),
                          {"Content-Type": entry["descriptor"]["mediaType"]}, manifest)
    text = resp.read()
    resp.release()
    if resp.status not in (200, 201):
        raise client.check(resp, "manifest %s" % digest, text)


def remove(paths, name):
    try:
        os.unlink(_path(paths, _list_ref(name)))
    except FileNotFoundError:
        raise NotFound("No such manifest: %s" % name) from None
