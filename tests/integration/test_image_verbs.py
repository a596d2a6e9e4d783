"""save, history, image prune, system df, and the listing flags of images
and image inspect, as the unprivileged test user.  Archives written by
`save` are read by independent tools: skopeo inspects and copies them,
podman (rootless, as the test user) loads them, and a fresh store loads
them back under the same image id."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile

import pytest

import imagetools as it
from conftest import Runner

pytestmark = pytest.mark.skipif(not shutil.which("skopeo"), reason="needs skopeo")

LAYERS = "localhost/layers"


@pytest.fixture(scope="module")
def loaded(sb, images_dir):
    """busybox and localhost/layers (3 layers, whiteouts) in sb's store."""
    for name in ("busybox.tar", "layers.tar"):
        sb.ok("load", "-i", os.path.join(images_dir, name))
    return {n: image_id(sb, n) for n in ("busybox", LAYERS)}


@pytest.fixture
def work(sb):
    """A directory the test user may write, removed afterwards."""
    d = tempfile.mkdtemp(dir=os.path.dirname(sb.root))
    os.chown(d, sb.uid, sb.gid)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def image_id(runner, name):
    return json.loads(runner.ok("image", "inspect", name).stdout)[0]["Id"]


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def skopeo(*args):
    r = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def podman(sb, *args):
    """podman as the test user with its own storage (vfs, short runroot:
    podman refuses one longer than 50 characters)."""
    short = getattr(podman, "dirs", None)
    if short is None:
        short = podman.dirs = tempfile.mkdtemp(prefix="sbpod", dir="/tmp")
        os.chown(short, sb.uid, sb.gid)
    argv = ["podman", "--root", short + "/root", "--runroot", short + "/run",
            "--storage-driver", "vfs", *args]
    return sb.run_raw(argv, env={"XDG_RUNTIME_DIR": short}, timeout=180)


@pytest.fixture(scope="module", autouse=True)
def _podman_cleanup(sb):
    yield
    short = getattr(podman, "dirs", None)
    if short:
        podman(sb, "system", "reset", "-f")
        subprocess.run(["rm", "-rf", "--one-file-system", short])
        podman.dirs = None


def members(path):
    with tarfile.open(path) as tf:
        return {ti.name: ti for ti in tf}


# -- save -------------------------------------------------------------------------------
def test_save_docker_archive_is_read_by_skopeo_podman_and_a_fresh_store(
        sb, loaded, work, fresh_sb, images_dir):
    out = os.path.join(work, "layers.tar")
    sb.ok("save", "-o", out, LAYERS)
    m = members(out)
    manifest = json.loads(tarfile.open(out).extractfile("manifest.json").read())
    assert manifest[0]["RepoTags"] == ["localhost/layers:latest"]
    assert manifest[0]["Config"] == loaded[LAYERS][7:] + ".json"
    # The layers are the blobs load kept: the archive's own, byte for byte.
    with tarfile.open(os.path.join(images_dir, "layers.tar")) as src:
        original = json.loads(src.extractfile("manifest.json").read())[0]["Layers"]
    assert manifest[0]["Layers"] == original
    assert all(m[n].mtime == 0 and m[n].uid == 0 for n in m)

    info = json.loads(skopeo("inspect", "docker-archive:" + out))
    assert len(info["Layers"]) == 3
    skopeo("copy", "-q", "docker-archive:" + out, "oci:" + os.path.join(work, "oci"))
    skopeo("copy", "-q", "docker-archive:" + out,
           "oci-archive:" + os.path.join(work, "copy-oci.tar"))

    # Round trip: a fresh store loads it under the same id, and so does podman.
    r = fresh_sb.ok("load", "-i", out)
    assert r.stdout.strip() == "Loaded image: localhost/layers:latest"
    assert image_id(fresh_sb, LAYERS) == loaded[LAYERS]
    assert fresh_sb.ok("run", "--rm", LAYERS, "cat", "/data/dir/c").stdout == "c\n"
    r = podman(sb, "load", "-i", out)
    assert r.returncode == 0, r.stderr
    r = podman(sb, "image", "inspect", "--format", "{{.Id}}", "localhost/layers:latest")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == loaded[LAYERS][7:]

    # Deterministic: the same image gives the same bytes.
    again = os.path.join(work, "again.tar")
    sb.ok("save", "-o", again, LAYERS)
    assert sha256_file(again) == sha256_file(out)


def test_save_oci_archive_of_gzip_layers(sb, loaded, work, fresh_sb, images_dir):
    # busybox-oci.tar holds gzip layers: the blobs are saved as they are.
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox-oci.tar"))
    name = fresh_sb.ok("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.strip()
    original = image_id(fresh_sb, name)
    out = os.path.join(work, "bb-oci.tar")
    fresh_sb.ok("save", "--format", "oci-archive", "-o", out, name)
    m = members(out)
    assert "oci-layout" in m and "index.json" in m
    index = json.loads(tarfile.open(out).extractfile("index.json").read())
    full = index["manifests"][0]["annotations"]["io.containerd.image.name"]
    assert index["manifests"][0]["annotations"][
        "org.opencontainers.image.ref.name"] == full
    manifest = json.loads(tarfile.open(out).extractfile(
        "blobs/sha256/" + index["manifests"][0]["digest"][7:]).read())
    assert manifest["layers"][0]["mediaType"].endswith("tar+gzip")
    info = json.loads(skopeo("inspect", "oci-archive:%s:%s" % (out, full)))
    assert info["Digest"] == index["manifests"][0]["digest"]
    r = podman(sb, "load", "-i", out)
    assert r.returncode == 0, r.stderr
    r = podman(sb, "image", "inspect", "--format", "{{.Id}}", full)
    assert r.stdout.strip() == original[7:], r.stderr
    other = Runner(sb.user, "oci-roundtrip")
    try:
        other.ok("load", "-i", out)
        assert image_id(other, name) == original
    finally:
        other.close()


def test_save_several_images_and_every_tag_of_a_repository(sb, loaded, work):
    sb.ok("tag", "busybox", "busybox:second")
    try:
        out = os.path.join(work, "two.tar")
        with open(out, "wb") as f:      # stdout, not a terminal
            r = subprocess.run(sb.argv("save", "busybox", loaded[LAYERS][7:19]),
                               stdout=f, stderr=subprocess.PIPE, cwd="/")
        assert r.returncode == 0, r.stderr
        entries = json.loads(tarfile.open(out).extractfile("manifest.json").read())
        assert sorted(entries[0]["RepoTags"]) == ["busybox:latest", "busybox:second"]
        assert entries[1]["RepoTags"] is None            # saved by id
        # busybox's layer is layers' bottom layer: written once.
        assert sum(n.endswith(".tar") for n in members(out)) == 3
    finally:
        sb.ok("rmi", "busybox:second")


def test_save_refuses_a_terminal_and_unknown_images(sb, loaded, work):
    status, output = sb.on_terminal("save", "busybox")
    assert status == 125
    assert "cowardly refusing to save to a terminal" in output
    out = os.path.join(work, "none.tar")
    r = sb("save", "-o", out, "nosuch")
    assert r.returncode == 1 and "No such image: nosuch" in r.stderr
    assert not os.path.exists(out) and os.listdir(work) == []
    r = sb("save", "--format", "zip", "busybox")
    assert r.returncode == 125
    r = sb("save", "-o", "/nonexistent/dir/x.tar", "busybox")
    assert r.returncode == 125 and "cannot write /nonexistent/dir/x.tar" in r.stderr
    r = sb("save", "-o", work, "busybox")             # a directory
    assert r.returncode == 125 and "cannot write" in r.stderr
    assert os.listdir(work) == []


def test_save_without_blobs_regenerates_layers_with_whiteouts(fresh_sb, images_dir, work):
    """A store from an older sandbox kept no layer blobs: the layers are
    written from their directories, overlay whiteouts back as .wh. files."""
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    shutil.rmtree(os.path.join(fresh_sb.root, "blobs"))
    out = os.path.join(work, "regen.tar")
    r = fresh_sb.ok("save", "-o", out, LAYERS)
    assert "saved with new diff_ids" in r.stderr
    again = os.path.join(work, "regen2.tar")
    fresh_sb.ok("save", "-o", again, LAYERS)
    assert sha256_file(again) == sha256_file(out)
    with tarfile.open(out) as tf:
        entry = json.loads(tf.extractfile("manifest.json").read())[0]
        top = tarfile.open(fileobj=tf.extractfile(entry["Layers"][2]))
        names = {ti.name: ti for ti in top}
        mid = {ti.name: ti for ti in tarfile.open(fileobj=tf.extractfile(entry["Layers"][1]))}
    assert "data/.wh.gone" in names and names["data/.wh.gone"].isreg()
    assert "data/dir/.wh..wh..opq" in names
    assert not any("overlay" in k for ti in names.values() for k in ti.pax_headers)
    assert (mid["data/owned1000"].uid, mid["data/owned1000"].gid) == (1000, 1000)
    assert mid["data/suid"].mode == 0o4755
    assert mid["data/hard2"].islnk() and mid["data/hard2"].linkname == "data/hard1"
    assert mid["data/fifo"].isfifo()
    # It loads, and a container sees the whiteouts applied.
    other = Runner(fresh_sb.user, "regen-load")
    try:
        other.ok("load", "-i", out)
        r = other.ok("run", "--rm", LAYERS, "sh", "-c",
                     "ls /data/dir; test -e /data/gone || echo gone-is-gone")
        assert r.stdout.split() == ["c", "gone-is-gone"]
    finally:
        other.close()


# -- history ------------------------------------------------------------------------------
def test_history(sb, loaded):
    lines = sb.ok("history", LAYERS).stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    rows = lines[1:]
    assert len(rows) == 3
    assert rows[0].startswith(loaded[LAYERS][7:19] + " ")
    assert all(r.startswith("<missing> ") for r in rows[1:])
    assert "layer 2" in rows[0] and "layer 0" in rows[2]
    assert rows[2].split()[-1].endswith("MB")
    assert sb.ok("image", "history", "-q", LAYERS).stdout.split() == \
        [loaded[LAYERS][7:19], "<missing>", "<missing>"]
    full = sb.ok("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
                 LAYERS).stdout.splitlines()
    assert full[0].startswith(loaded[LAYERS] + "|")
    table = sb.ok("history", "--format", "table {{.ID}}\t{{.CreatedBy}}", LAYERS).stdout
    assert table.splitlines()[0].split() == ["IMAGE", "CREATED", "BY"]
    rows = [json.loads(x) for x in sb.ok("history", "--format", "json", LAYERS)
            .stdout.splitlines()]
    assert rows[0]["ID"] == loaded[LAYERS][7:19] and "CreatedSince" in rows[0]
    r = sb("history", "nosuch")
    assert r.returncode == 1 and "No such image: nosuch" in r.stderr


def test_history_of_an_imported_image(fresh_sb, images_dir):
    # Any tar will do as a root filesystem.
    fresh_sb.ok("import", "-m", "my comment", os.path.join(images_dir, "busybox.tar"), "imp")
    lines = fresh_sb.ok("history", "imp").stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(image_id(fresh_sb, "imp")[7:19] + " ")
    assert lines[1].endswith("MB    my comment")


# -- images: filters, digests, formats; image inspect -f ------------------------------------
def test_images_filters_and_formats(fresh_sb, images_dir):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    fresh_sb.ok("import", "-c", "LABEL team=infra", "-c", "LABEL tier=1",
                os.path.join(images_dir, "busybox.tar"), "labelled:1")
    fresh_sb.ok("import", os.path.join(images_dir, "busybox.tar"), "dangle")
    fresh_sb.ok("import", os.path.join(images_dir, "busybox.tar"), "dangle")  # untags
    q = lambda *f: fresh_sb.ok("images", "--format", "{{.Repository}}:{{.Tag}}",  # noqa
                               *f).stdout.split()
    assert sorted(q()) == ["<none>:<none>", "busybox:latest", "dangle:latest",
                           "labelled:1"]
    assert q("-f", "dangling=true") == ["<none>:<none>"]
    assert "<none>:<none>" not in q("--filter", "dangling=false")
    assert q("-f", "reference=bus*") == ["busybox:latest"]
    assert q("-f", "reference=labelled:*") == ["labelled:1"]
    assert q("-f", "label=team=infra") == ["labelled:1"]
    assert q("-f", "label=team") == ["labelled:1"]
    assert q("-f", "label=team=other") == []
    # busybox.tar's config is from 2000; the imports are from now.
    assert q("-f", "before=labelled:1") == ["busybox:latest"]
    assert "busybox:latest" not in q("-f", "since=busybox")
    r = fresh_sb("images", "-f", "colour=red")
    assert r.returncode == 125 and "invalid filter" in r.stderr

    rows = [json.loads(x) for x in fresh_sb.ok("images", "--format", "json").stdout.splitlines()]
    assert {"Repository", "Tag", "ID", "Digest", "CreatedSince", "CreatedAt", "Size"} <= \
        set(rows[0])
    table = fresh_sb.ok("images", "--format", "table {{.Repository}}\t{{.ID}}").stdout
    assert table.splitlines()[0].split() == ["REPOSITORY", "IMAGE", "ID"]
    full = fresh_sb.ok("images", "-q", "--no-trunc", "busybox").stdout.split()
    assert full == [image_id(fresh_sb, "busybox")]
    header = fresh_sb.ok("images", "--digests").stdout.splitlines()[0].split()
    assert header[:3] == ["REPOSITORY", "TAG", "DIGEST"]

    assert fresh_sb.ok("image", "inspect", "-f", "{{.Id}} {{index .RepoTags 0}}",
                       "busybox").stdout.strip() == image_id(fresh_sb, "busybox") + \
        " busybox:latest"
    assert fresh_sb.ok("image", "inspect", "--format", "{{json .Config.Labels}}",
                       "labelled:1").stdout.strip() == '{"team":"infra","tier":"1"}'
    r = fresh_sb("image", "inspect", "-f", "{{.Nope}}", "busybox")
    assert r.returncode == 125 and "Nope" in r.stderr


# -- rmi and image prune collect layers and blobs ----------------------------------------------
def test_rmi_collects_layers_and_blobs(fresh_sb, images_dir):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    assert len(os.listdir(os.path.join(fresh_sb.root, "blobs", "sha256"))) == 3
    fresh_sb.ok("rmi", LAYERS)
    # busybox's layer and blob are shared with layers' bottom layer: kept.
    left = it.store_leftovers(fresh_sb.root)
    assert len([x for x in left if x.startswith("layers/")]) == 1
    assert len([x for x in left if x.startswith("blobs/")]) == 1
    fresh_sb.ok("rmi", "busybox")
    assert it.store_leftovers(fresh_sb.root) == []


def test_image_prune(fresh_sb, images_dir):
    bb = os.path.join(images_dir, "busybox.tar")
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    fresh_sb.ok("import", bb, "old")
    dangling = image_id(fresh_sb, "old")
    fresh_sb.ok("import", "-m", "newer", bb, "old")      # the first one is dangling now
    # No: nothing happens.
    r = fresh_sb.ok("image", "prune", input="n\n")
    assert r.stdout == ("WARNING! This will remove all dangling images.\nAre you sure "
                        "you want to continue? [y/N] Total reclaimed space: 0B\n")
    assert fresh_sb("image", "inspect", dangling).returncode == 0
    r = fresh_sb.ok("image", "prune", input="y\n")
    assert "Deleted Images:\ndeleted: %s\n\nTotal reclaimed space: " % dangling in r.stdout
    assert fresh_sb("image", "inspect", dangling).returncode == 1
    r = fresh_sb.ok("image", "prune", "-f")
    assert r.stdout == "Total reclaimed space: 0B\n"

    # -a: every image no container uses; the one a container uses stays.
    fresh_sb.ok("create", "--name", "user", LAYERS, "true")
    r = fresh_sb.ok("image", "prune", "-a", "-f")
    assert r.stdout.startswith("Deleted Images:\nuntagged: old:latest\ndeleted: sha256:")
    assert r.stdout.splitlines()[-1].startswith("Total reclaimed space: ")
    assert not r.stdout.splitlines()[-1].endswith(" 0B")
    out = fresh_sb.ok("images", "--format", "{{.Repository}}").stdout.split()
    assert out == [LAYERS]
    fresh_sb.ok("rm", "user")
    r = fresh_sb.ok("image", "prune", "-af")
    assert "untagged: localhost/layers:latest" in r.stdout
    assert it.store_leftovers(fresh_sb.root) == []


# -- system df ----------------------------------------------------------------------------
def test_system_df(fresh_sb, images_dir):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    fresh_sb.ok("run", "--name", "writer", "-v", "vol:/vol", "busybox", "sh", "-c",
                "head -c 300000 /dev/zero > /big; head -c 5000 /dev/zero > /vol/f")
    fresh_sb.ok("volume", "create", "spare")
    lines = fresh_sb.ok("system", "df").stdout.splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = {r[0]: r[1:] for r in (re.split(r"\s{2,}", line.strip()) for line in lines[1:])}
    assert rows["Images"][:2] == ["2", "1"]
    # layers' bottom layer is busybox's only layer: counted once, and
    # layers' two upper layers are all that is reclaimable.
    assert rows["Images"][2] == "1.98MB" and rows["Images"][3].startswith("86B (0%)")
    assert rows["Containers"][:2] == ["1", "0"]
    assert rows["Containers"][2] == "300kB" and rows["Containers"][3] == "300kB (100%)"
    assert rows["Local Volumes"] == ["2", "1", "5kB", "0B (0%)"]
    assert rows["Build Cache"] == ["0", "0", "0B", "0B"]
    verbose = fresh_sb.ok("system", "df", "-v").stdout
    for title in ("Images space usage:", "Containers space usage:",
                  "Local Volumes space usage:", "Build cache usage: 0B"):
        assert title in verbose
    assert "writer" in verbose and "spare" in verbose
    assert "SHARED SIZE" in verbose and "UNIQUE SIZE" in verbose
