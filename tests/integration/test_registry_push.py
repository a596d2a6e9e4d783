"""push: to a registry that lacks the blobs (uploads), across repositories
(mounts), again (already there); then read by independent clients: skopeo
verifies every digest, podman pulls and runs it."""

import hashlib
import json
import os
import subprocess
import tempfile

import pytest

from conftest import Runner
from registrytools import Registry, skopeo_copy


@pytest.fixture(scope="module")
def regs(tmp_path_factory, images_dir):
    a = Registry(str(tmp_path_factory.mktemp("src-registry")))
    skopeo_copy("docker-archive:" + os.path.join(images_dir, "layers.tar"),
                "docker://%s/layers:latest" % a.host)
    b = Registry(str(tmp_path_factory.mktemp("dst-registry")))
    yield a, b
    a.stop()
    b.stop()


def test_push_upload_mount_exists_then_skopeo_and_podman(sb, regs, tmp_path):
    a, b = regs
    sb.ok("pull", "-q", "%s/layers" % a.host)
    v1 = "%s/mine/layers:v1" % b.host
    sb.ok("tag", "%s/layers" % a.host, v1)
    r = sb.ok("push", v1)
    lines = r.stdout.splitlines()
    assert lines[0] == "The push refers to repository [%s/mine/layers]" % b.host
    assert sum(line.endswith(": Pushed") for line in lines) == 3, r.stdout
    assert lines[-1].startswith("v1: digest: sha256:")
    digest = lines[-1].split()[2]
    # Another repository of the same registry: the blobs are mounted.
    v2 = "%s/other/layers:v2" % b.host
    sb.ok("tag", v1, v2)
    r = sb.ok("push", v2)
    assert r.stdout.count("Mounted from mine/layers") == 3, r.stdout
    r = sb.ok("push", v1)
    assert r.stdout.count("Layer already exists") == 3, r.stdout
    # -q: no progress, the reference alone (as Docker); --digestfile: the
    # manifest's digest, for scripts.
    r = sb.ok("push", "-q", "--digestfile", "/tmp/sbdigest-%d" % os.getpid(), v1)
    assert r.stdout == v1 + "\n" and r.stderr == ""
    with open("/tmp/sbdigest-%d" % os.getpid()) as f:
        assert f.read() == digest
    os.unlink("/tmp/sbdigest-%d" % os.getpid())
    info = json.loads(sb.ok("image", "inspect", v1).stdout)[0]
    assert "%s/mine/layers@%s" % (b.host, digest) in info["RepoDigests"]

    # skopeo checks every blob against its digest while copying.
    out = str(tmp_path / "copy")
    r = subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                        "docker://" + v1, "dir:" + out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "docker://" + v1],
                       capture_output=True, text=True)
    assert json.loads(r.stdout)["Digest"] == digest

    # podman, rootless as the test user, with storage of its own.
    home = os.path.dirname(sb.root)
    pod = os.path.join(home, "podman")
    # podman refuses a runroot path longer than 50 characters.
    short = tempfile.mkdtemp(prefix="sbpod", dir="/tmp")
    os.chown(short, sb.uid, sb.gid)
    xdg = os.path.join(short, "xdg")
    for d in (pod, xdg):
        os.makedirs(d, exist_ok=True)
        os.chown(d, sb.uid, sb.gid)
        os.chmod(d, 0o700)
    env = {"XDG_RUNTIME_DIR": xdg}
    podman = ["podman", "--root", pod + "/root", "--runroot", short + "/run",
              "--storage-driver", "vfs"]
    r = sb.run_raw(podman + ["pull", "-q", "--tls-verify=false", v1], env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    r = sb.run_raw(podman + ["run", "--rm", "--runtime", "runc", "--network", "none", v1,
                             "sh", "-c", "cat /data/owned1000; ls /data"], env=env, timeout=180)
    sb.run_raw(podman + ["system", "reset", "-f"], env=env)
    subprocess.run(["rm", "-rf", "--one-file-system", short])
    assert r.returncode == 0, r.stderr
    assert "gone" not in r.stdout.split()
    assert "owned1000" in r.stdout


def test_push_unknown_image_and_loaded_image(fresh_sb, regs, images_dir):
    a, b = regs
    r = fresh_sb("push", "%s/nothing:here" % b.host)
    assert r.returncode == 1 and "No such image" in r.stderr


def test_push_of_loaded_and_imported_images(fresh_sb, regs, images_dir, tmp_path):
    """load and import keep the layer blobs: their images push, and skopeo
    pulls them back with every digest verified."""
    a, b = regs
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    fresh_sb.ok("import", "-m", "imported", os.path.join(images_dir, "busybox.tar"), "imp")
    for source, target in (("localhost/layers", "%s/loaded/layers:v1" % b.host),
                           ("imp", "%s/loaded/imp:v1" % b.host)):
        fresh_sb.ok("tag", source, target)
        r = fresh_sb.ok("push", target)
        digest = r.stdout.splitlines()[-1].split()[2]
        out = str(tmp_path / target.rsplit("/", 1)[-1].replace(":", "-"))
        r = subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                            "docker://" + target, "dir:" + out],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "docker://" + target],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["Digest"] == digest
        rows = fresh_sb.ok("images", "--digests", "--format",
                           "{{.Repository}} {{.Digest}}", target.rsplit(":", 1)[0]).stdout
        assert rows.split() == [target.rsplit(":", 1)[0], digest]
        inspect = json.loads(fresh_sb.ok("image", "inspect", source).stdout)[0]
        assert len(info["Layers"]) == len(inspect["RootFS"]["Layers"])
        # The config skopeo fetched is ours, byte for byte: same image id.
        with open(os.path.join(out, inspect["Id"][7:]), "rb") as f:
            assert "sha256:" + hashlib.sha256(f.read()).hexdigest() == inspect["Id"]
    # Pulled back by sandbox into a store of its own: the same image id.
    other = Runner(fresh_sb.user, "pull-back")
    try:
        other.ok("pull", "-q", "%s/loaded/layers:v1" % b.host)
        got = json.loads(other.ok("image", "inspect", "%s/loaded/layers:v1" % b.host)
                         .stdout)[0]["Id"]
        assert got == json.loads(fresh_sb.ok("image", "inspect", "localhost/layers")
                                 .stdout)[0]["Id"]
    finally:
        other.close()


def test_build_pull_and_push(sb, regs, tmp_path):
    """build --pull fetches the FROM image again even though it is stored;
    build --push pushes every -t name once built."""
    a, b = regs
    base = "%s/layers" % a.host
    sb.ok("pull", "-q", base)
    ctx = os.path.join(sb.data_dir()[0].rsplit("/", 1)[0], "push-ctx")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM %s\nRUN echo built > /built\n" % base)
    subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), ctx], check=True)
    r = sb("build", ctx)
    assert r.returncode == 0 and "Pulling from" not in r.stdout + r.stderr, r.stderr
    name = "%s/built/layers:v1" % b.host
    r = sb("build", "--pull", "-t", name, "--push", ctx)
    assert r.returncode == 0, r.stderr
    assert "Pulling from layers" in r.stderr          # (already there: not missing)
    assert "Unable to find image" not in r.stderr
    assert "The push refers to repository [%s/built/layers]" % b.host in r.stdout
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "docker://" + name],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["Layers"]) == 4
