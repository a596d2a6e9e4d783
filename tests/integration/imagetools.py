"""Builders of test images and hostile archives (run as root, by pytest).

Layers are made with GNU tar from staging directories (so owners, setuid
bits, hardlinks and fifos are real), the OCI layout is written by hand, and
docker-archive / oci-archive tars are produced from it by skopeo, a tool
independent of ours.  Hostile layers are written with tarfile.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

BUSYBOX = "/bin/busybox"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def busybox_rootfs(dest):
    """A minimal root filesystem: static busybox, its applet symlinks,
    /etc/passwd and /etc/group."""
    for d in ("bin", "etc", "tmp", "root"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        link = os.path.join(dest, "bin", applet)
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n"
                "user:x:1000:1000:user:/home/user:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write("root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")
    return dest


def special_staging(dest):
    """A layer exercising owners, modes, hardlinks and a fifo."""
    os.makedirs(os.path.join(dest, "data", "private"))
    os.makedirs(os.path.join(dest, "opq"))
    os.makedirs(os.path.join(dest, "lower-only"))

    def write(rel, text, mode=0o644, owner=(0, 0)):
        p = os.path.join(dest, rel)
        with open(p, "w") as f:
            f.write(text)
        os.chown(p, *owner)
        os.chmod(p, mode)

    write("data/user1000", "owned by 1000\n", owner=(1000, 1000))
    write("data/nobody", "owned by nobody\n", owner=(65534, 65534))
    write("data/setuid", "#!/bin/sh\n", mode=0o4755)
    write("data/setgid", "#!/bin/sh\n", mode=0o2755, owner=(0, 1000))
    write("data/hard1", "linked\n")
    os.link(os.path.join(dest, "data/hard1"), os.path.join(dest, "data/hard2"))
    os.mkfifo(os.path.join(dest, "data/fifo"), 0o640)
    os.symlink("../data/user1000", os.path.join(dest, "data/link"))
    os.chown(os.path.join(dest, "data/private"), 1000, 1000)
    os.chmod(os.path.join(dest, "data/private"), 0o700)
    os.chmod(os.path.join(dest, "data"), 0o1777)
    write("opq/old", "hidden by the opaque dir above\n")
    write("removed", "deleted by a whiteout above\n")
    write("lower-only/kept", "stays\n")
    os.utime(os.path.join(dest, "data/user1000"), (1000000000, 1000000000))
    return dest


def whiteout_staging(dest):
    """An upper layer deleting /removed and making /opq opaque."""
    os.makedirs(os.path.join(dest, "opq"))
    open(os.path.join(dest, ".wh.removed"), "w").close()
    open(os.path.join(dest, "opq", ".wh..wh..opq"), "w").close()
    with open(os.path.join(dest, "opq", "new"), "w") as f:
        f.write("new\n")
    return dest


def tar_dir(src, out):
    """A layer tar of ``src`` with numeric owners, like image builders make."""
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", src, "-cf", out, "."],
                   check=True)
    return out


def gzip_file(src, out):
    with open(src, "rb") as f, gzip.open(out, "wb") as g:
        shutil.copyfileobj(f, g)
    return out


def oci_layout(dest, layer_tars, name=None, cmd=("sh",), compress=True,
               diff_ids=None):
    """Write an OCI image layout with the given layer tars (gzipped unless
    ``compress`` is False).  ``diff_ids`` overrides the config's (to test
    mismatch).  ``name`` goes into org.opencontainers.image.ref.name."""
    blobs = os.path.join(dest, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data_path=None, data=None):
        if data is None:
            with open(data_path, "rb") as f:
                data = f.read()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest[7:]), "wb") as f:
            f.write(data)
        return digest, len(data)

    layers, real_diff_ids = [], []
    for tar in layer_tars:
        real_diff_ids.append(sha256_file(tar))
        if compress:
            gz = tar + ".gz"
            gzip_file(tar, gz)
            digest, size = put(gz)
            mt = "application/vnd.oci.image.layer.v1.tar+gzip"
        else:
            digest, size = put(tar)
            mt = "application/vnd.oci.image.layer.v1.tar"
        layers.append({"mediaType": mt, "digest": digest, "size": size})
    config = {
        "architecture": "amd64", "os": "linux",
        "created": "2024-01-02T03:04:05.123456789Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": list(cmd) if cmd else None, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids or real_diff_ids},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "test"}
                    for _ in layer_tars],
    }
    cdigest, csize = put(data=json.dumps(config).encode())
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cdigest, "size": csize},
                "layers": layers}
    mdigest, msize = put(data=json.dumps(manifest).encode())
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": mdigest, "size": msize}
    if name:
        desc["annotations"] = {"org.opencontainers.image.ref.name": name}
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [desc]}, f)
    with open(os.path.join(dest, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return {"config": cdigest, "diff_ids": real_diff_ids}


def skopeo_copy(src, dst):
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", src, dst],
                   check=True, capture_output=True)
    return dst


def tar_of_dir(src, out):
    """A plain tar of a whole directory tree (an OCI layout -> oci-archive
    without skopeo, for layouts skopeo refuses, e.g. bad diff_ids)."""
    with tarfile.open(out, "w") as tf:
        for name in sorted(os.listdir(src)):
            tf.add(os.path.join(src, name), arcname=name)
    return out


def docker_archive(out, layer_tars, tags=("hostile:latest",), diff_ids=None):
    """A docker-archive written by hand (for layers skopeo would refuse or
    rewrite): manifest.json, <config>.json, <n>/layer.tar."""
    real = [sha256_file(t) for t in layer_tars]
    config = {"architecture": "amd64", "os": "linux",
              "created": "2024-01-02T03:04:05Z",
              "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids or real}}
    cbytes = json.dumps(config).encode()
    cname = hashlib.sha256(cbytes).hexdigest() + ".json"
    with tarfile.open(out, "w") as tf:
        _add_bytes(tf, cname, cbytes)
        names = []
        for i, t in enumerate(layer_tars):
            names.append("%d/layer.tar" % i)
            tf.add(t, arcname=names[-1])
        _add_bytes(tf, "manifest.json", json.dumps(
            [{"Config": cname, "RepoTags": list(tags), "Layers": names}]).encode())
    return out


def _add_bytes(tf, name, data, **attrs):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    for k, v in attrs.items():
        setattr(ti, k, v)
    tf.addfile(ti, io.BytesIO(data))


# -- hostile layers -------------------------------------------------------
def hostile_layer(out, kind, outside):
    """A layer tar that tries to write ``outside`` (an absolute host path
    whose parent exists) in one of several ways."""
    with tarfile.open(out, "w") as tf:
        _add_bytes(tf, "ok", b"harmless\n")
        if kind == "dotdot":
            rel = os.path.relpath(outside, "/")
            _add_bytes(tf, "../" * 30 + rel, b"escaped\n")
        elif kind == "absolute":
            _add_bytes(tf, outside, b"escaped\n")
        elif kind == "symlink-parent":
            link = tarfile.TarInfo("lnk")
            link.type = tarfile.SYMTYPE
            link.linkname = os.path.dirname(outside)
            tf.addfile(link)
            _add_bytes(tf, "lnk/" + os.path.basename(outside), b"escaped\n")
        elif kind == "symlink-parent-deep":
            d = tarfile.TarInfo("a")
            d.type = tarfile.DIRTYPE
            d.mode = 0o755
            tf.addfile(d)
            link = tarfile.TarInfo("a/b")
            link.type = tarfile.SYMTYPE
            link.linkname = "../../../../../../../../" + os.path.dirname(outside).lstrip("/")
            tf.addfile(link)
            _add_bytes(tf, "a/b/" + os.path.basename(outside), b"escaped\n")
        elif kind == "hardlink-absolute":
            h = tarfile.TarInfo("pw")
            h.type = tarfile.LNKTYPE
            h.linkname = "/etc/passwd"
            tf.addfile(h)
        elif kind == "hardlink-dotdot":
            h = tarfile.TarInfo("pw")
            h.type = tarfile.LNKTYPE
            h.linkname = "../../../../../../../../etc/passwd"
            tf.addfile(h)
        elif kind == "hardlink-via-symlink":
            link = tarfile.TarInfo("etc")
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc"
            tf.addfile(link)
            h = tarfile.TarInfo("pw")
            h.type = tarfile.LNKTYPE
            h.linkname = "etc/passwd"
            tf.addfile(h)
        elif kind == "whiteout-dotdot":
            _add_bytes(tf, "sub/.wh...", b"")
        else:
            raise ValueError(kind)
    return out


HOSTILE_KINDS = ("dotdot", "absolute", "symlink-parent", "symlink-parent-deep",
                 "hardlink-absolute", "hardlink-dotdot", "hardlink-via-symlink",
                 "whiteout-dotdot")


def device_layer(out):
    """A layer holding a character device (skipped with a warning)."""
    with tarfile.open(out, "w") as tf:
        _add_bytes(tf, "keep", b"x\n")
        dev = tarfile.TarInfo("dev/null")
        dev.type = tarfile.CHRTYPE
        dev.devmajor, dev.devminor = 1, 3
        tf.addfile(dev)
    return out


def store_leftovers(root):
    """What a sandbox store at ``root`` still holds of images: layers,
    image records, blobs, temp files and tags ([] when empty).  Not the
    containers' shared mount point layer (layers/mountpoints: three empty
    files, of no image; container/rootfs.py)."""
    leftovers = []
    for sub in ("layers", "images", "tmp", "blobs/sha256"):
        d = os.path.join(root, sub)
        if os.path.isdir(d):
            leftovers += [os.path.join(sub, n) for n in os.listdir(d)
                          if (sub, n) != ("layers", "mountpoints")]
    repos = os.path.join(root, "repositories.json")
    if os.path.exists(repos):
        with open(repos) as f:
            if json.load(f):
                leftovers.append("repositories.json")
    return leftovers
