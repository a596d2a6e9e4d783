"""`commit`: a new image from a container's changes (docker commit).

The new layer is what `diff` lists (changes.py), as a tar with OCI
whiteouts (``.wh.NAME`` for a deletion), written as root of the user's
shared user namespace (the container's files belong to subordinate ids),
straight into a staged blob of the store.  The store then unpacks it as it
unpacks any layer (the same checks as for a pulled one) and commits the
image: the parent image's layers and blobs, this layer, and the parent's
config with the container's Cmd, Entrypoint, Env, WorkingDir, User and
Labels, `-c` changes on top, and a history entry.
"""

import json
import os
import stat

from ..errors import SandboxError
from .spec import config_env


def write_layer(out_path, driver, cdir, layers):
    """In the user namespace: the container's changes as a layer tar at
    ``out_path``."""
    import tarfile
    from .changes import changes
    from .cp import _Writer
    from ..image.unpack import WHITEOUT_PREFIX
    found = changes(driver, cdir, layers)
    src = os.path.join(cdir, "upper" if driver in ("overlay", "fuse-overlayfs") else "rootfs")
    with open(out_path, "wb") as f:
        writer = _Writer(f)
        for kind, path in found:
            rel = path[1:]
            if kind == "D":
                parent, base = os.path.split(rel)
                ti = tarfile.TarInfo(os.path.join(parent, WHITEOUT_PREFIX + base))
                ti.mode = 0o600
                writer.tf.addfile(ti)
                continue
            full = os.path.join(src, rel)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    writer.add(rel, os.fstat(fd), fd=fd)
                finally:
                    os.close(fd)
            elif stat.S_ISDIR(st.st_mode):
                writer.add(rel, st)
            else:
                dirfd = os.open(os.path.dirname(full), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    writer.add(rel, st, dirfd=dirfd, base=os.path.basename(full))
                finally:
                    os.close(dirfd)
        writer.tf.close()
    return len(found)


def container_config(parent_cfg, spec, st):
    """The image config's "config" for the container: the parent's, with
    what the container ran with (Docker's commit keeps the container's
    Config)."""
    cfg = dict(parent_cfg or {})
    proc = spec.get("process", {})
    env = config_env(proc.get("env", []), st)
    if env:
        cfg["Env"] = env
    if st.get("Entrypoint") is not None:
        cfg["Entrypoint"] = [st["Entrypoint"]] if st["Entrypoint"] else None
        cfg["Cmd"] = st.get("Cmd")
    elif st.get("Cmd"):
        cfg["Cmd"] = st["Cmd"]
    if st.get("User"):
        cfg["User"] = st["User"]
    if st.get("WorkingDir"):
        cfg["WorkingDir"] = st["WorkingDir"]
    if st.get("Labels"):
        cfg["Labels"] = dict(cfg.get("Labels") or {}, **st["Labels"])
    return cfg


def commit(paths, cid, st, name=None, author=None, message=None, changes=None,
           config=None, created_by=None):
    """Commit container ``cid`` (record ``st``): returns the new image id.
    ``config``: the new image's "config" as given (`build`), not the
    container's; ``created_by``: its history entry's (default: the
    container's command)."""
    from ..fsutil import read_json
    from ..image import archive
    from ..image.reference import parse
    from ..image.store import Store
    from ..userns import run_in_userns
    tags = [parse(name)] if name else []
    store = Store(paths)
    parent_id = st["Image"]
    if not store.exists(parent_id):
        raise SandboxError("the image of container %s is gone (removed with rmi -f)"
                           % st.get("Name", cid[:12]),
                           hint="a container can be committed while its image exists")
    parent = store.config(parent_id)
    cdir = paths.container(cid)
    spec = read_json(os.path.join(cdir, "config.json"))
    layers = store.layer_dirs(parent_id, parent)
    tmp = store.new_blob_tmp()
    try:
        run_in_userns(write_layer, tmp, st["Driver"], cdir, layers)
        staged = store.stage_file(tmp)
        layer = store.unpack_layer(lambda: open(tmp, "rb"))
    except BaseException:
        os.unlink(tmp)
        raise
    try:
        created = archive.now_rfc3339()
        image_config = config
        config = dict(parent)
        config["config"] = image_config if image_config is not None else \
            archive.apply_changes(container_config(parent.get("config"), spec, st), changes)
        config["container"] = cid
        config["created"] = created
        if author:
            config["author"] = author
        config.pop("comment", None)
        if message:
            config["comment"] = message
        entry = {"created": created, "created_by": created_by or " ".join(
            (spec.get("process") or {}).get("args") or [])}
        if author:
            entry["author"] = author
        if message:
            entry["comment"] = message
        config["history"] = list(parent.get("history") or []) + [entry]
        config["rootfs"] = {"type": "layers",
                            "diff_ids": list(parent["rootfs"]["diff_ids"]) + [layer.diff_id]}
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        # The parent's blobs and this layer's, for save and push; a parent
        # stored without a manifest gives none to its child either.
        parent_manifest = store.manifest(parent_id)
        manifest = None if parent_manifest is None else archive.docker_manifest(
            config_bytes, list(parent_manifest["layers"]) + [{
                "mediaType": archive.layer_media_type(staged.head), "digest": staged.digest,
                "size": staged.size}])
    except BaseException:
        store.discard([layer.tmpdir])
        os.unlink(tmp)
        raise
    image_id, _ = store.add_image(config_bytes, [None] * len(layers) + [layer],
                                  manifest, tags, blobs=[staged])
    return image_id
