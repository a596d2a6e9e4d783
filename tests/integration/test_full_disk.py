"""When the host's files say no.  A full disk: every verb that writes says
so in one line with a hint (exit 125, no traceback) and leaves the store
as it was; a running container whose log meets a full disk goes on, and
its log keeps only whole records (the store lives on a small tmpfs mounted
for each test).  Files it may not read or write (an archive, the data
directory): one line, with a hint where it is ours."""

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import TESTS_TMP, describe
from registrytools import Registry, skopeo_copy

CHATTY = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.002; done"


@pytest.fixture
def disk(sb):
    """A tmpfs of 1.5 MB owned by the test user: (its path, the environment
    that puts the user's store on it)."""
    os.makedirs(TESTS_TMP, exist_ok=True)
    path = tempfile.mkdtemp(prefix="full-disk-", dir=TESTS_TMP)
    os.chmod(path, 0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k,mode=0700,uid=%d,gid=%d"
                    % (sb.uid, sb.gid), "tmpfs", path], check=True)
    try:
        yield path, {"SANDBOX_ROOT": os.path.join(path, "store")}
    finally:
        for c in sb("ps", "-a", "-q", "--no-trunc", env={"SANDBOX_ROOT": os.path.join(path, "store")}).stdout.split():
            sb("rm", "-f", c, env={"SANDBOX_ROOT": os.path.join(path, "store")})
        subprocess.run(["umount", path], check=False)
        subprocess.run(["umount", "-l", path], check=False, stderr=subprocess.DEVNULL)
        os.rmdir(path)


def grow(path, size="24m"):
    subprocess.run(["mount", "-o", "remount,size=" + size, path], check=True)


def fill(path):
    """Take every byte left (as root: the filler is not the user's)."""
    filler = os.path.join(path, "filler")
    with open(filler, "ab", buffering=0) as f:
        for chunk in (1 << 16, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                pass
    return filler


def files(path):
    return sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names)


def assert_full(result):
    assert result.returncode == 125, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = result.stderr.strip().splitlines()
    assert "no space left on device" in lines[0].lower(), describe(result)
    assert len(lines) == 2 and lines[1].strip().startswith("hint:"), describe(result)


def test_loading_onto_a_full_disk_leaves_the_store_as_it_was(sb, images_dir, disk):
    path, env = disk
    sb.ok("images", env=env)            # the store's own skeleton
    before = files(path)
    rootfs = os.path.join(path, "..", os.path.basename(path) + "-rootfs.tar")
    with tarfile.open(rootfs, "w") as tf:
        data = os.urandom(3 << 20)       # more than the disk holds
        info = tarfile.TarInfo("big")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    os.chmod(rootfs, 0o644)
    try:
        for args in (["load", "-i", os.path.join(images_dir, "busybox.tar")],
                     ["load", "-i", os.path.join(images_dir, "busybox-oci.tar")],
                     ["import", rootfs, "big:1"]):
            result = sb(*args, env=env)
            if args[-1].endswith("busybox-oci.tar"):
                # The layer is refused while it is unpacked (the blob fits).
                assert result.returncode == 125 and "No space left on device" in result.stderr, \
                    describe(result)
                assert "hint: free space" in result.stderr, describe(result)
            else:
                assert_full(result)
            assert files(path) == before, args
            assert sb.ok("images", "-q", env=env).stdout == ""
    finally:
        os.unlink(rootfs)
    grow(path)
    sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"), env=env)
    assert sb.ok("run", "--rm", "busybox", "echo", "ok", env=env).stdout == "ok\n"


def test_pulling_onto_a_full_disk_leaves_the_store_as_it_was(sb, images_dir, disk,
                                                            tmp_path):
    path, env = disk
    registry = Registry(str(tmp_path))
    try:
        name = "%s/library/busybox:latest" % registry.host
        skopeo_copy("docker-archive:" + os.path.join(images_dir, "busybox.tar"),
                    "docker://" + name)
        sb.ok("images", env=env)
        before = files(path)
        assert_full(sb("pull", "-q", name, env=env))
        # A pull keeps the blobs it finished (the next one does not fetch
        # them again), each whole; nothing else stays.
        blobs = os.path.join(path, "store", "blobs", "sha256")
        kept = [f for f in files(path) if f not in before]
        assert all(os.path.dirname(f) == blobs for f in kept), kept
        for f in kept:
            with open(f, "rb") as blob:
                assert hashlib.sha256(blob.read()).hexdigest() == os.path.basename(f)
        assert sb.ok("images", "-q", env=env).stdout == ""
        grow(path)
        sb.ok("pull", "-q", name, env=env)
        assert sb.ok("run", "--rm", name, "echo", "ok", env=env).stdout == "ok\n"
    finally:
        registry.stop()


def test_no_container_is_created_on_a_full_disk(sb, images_dir, disk):
    path, env = disk
    grow(path)
    sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"), env=env)
    filler = fill(path)
    for args in (["run", "--rm", "busybox", "true"], ["run", "busybox", "true"],
                 ["run", "-d", "busybox", "sleep", "5"], ["create", "busybox", "true"],
                 ["run", "--rm", "--network", "none", "busybox", "true"]):
        assert_full(sb(*args, env=env))
        assert sb.ok("ps", "-a", "-q", env=env).stdout == ""
    containers = os.path.join(path, "store", "containers")
    assert not os.path.exists(containers) or os.listdir(containers) == []
    os.unlink(filler)
    assert sb.ok("run", "--rm", "busybox", "echo", "ok", env=env).stdout == "ok\n"


@pytest.mark.parametrize("supervisor", ["native", "python"])
def test_a_log_that_meets_a_full_disk_keeps_whole_records(sb, images_dir, disk, supervisor):
    path, env = disk
    if supervisor == "python":
        env = dict(env, SANDBOX_MONITOR="python")
    grow(path)
    sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"), env=env)
    cid = sb.ok("run", "-d", "busybox", "sh", "-c", CHATTY, env=env).stdout.strip()
    time.sleep(0.3)
    filler = fill(path)
    time.sleep(0.5)
    os.unlink(filler)
    time.sleep(0.5)
    assert sb.ok("inspect", "-f", "{{.State.Running}}", cid, env=env).stdout == "true\n"
    log = os.path.join(path, "store", "containers", cid, cid + "-json.log")
    with open(log, "rb") as f:
        records = [json.loads(line) for line in f]      # every line whole
    numbers = [int(r["log"].split()[1]) for r in records]
    gaps = [(a, b) for a, b in zip(numbers, numbers[1:]) if b != a + 1]
    assert len(gaps) == 1, gaps          # the lines the full disk cost, and only them
    shown = sb.ok("logs", cid, env=env).stdout.split("\n")
    assert shown[-2] == "line %d" % numbers[-1] or int(shown[-2].split()[1]) > numbers[-1]
    sb.ok("rm", "-f", cid, env=env)


def test_files_it_cannot_use_are_one_line_errors(sb, images_dir, tmp_path):
    busybox = os.path.join(images_dir, "busybox.tar")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o755)                # root's: not the test user's to write
    for args, env, message, hint in (
            (["load", "-i", "/etc/shadow"], None, "/etc/shadow: Permission denied", False),
            (["load", "-i", "/etc"], None, "/etc: Is a directory", False),
            (["import", "/etc/shadow", "x:1"], None, "/etc/shadow: Permission denied", False),
            (["--root", str(closed), "load", "-i", busybox], None, "Permission denied", True),
            (["load", "-i", busybox], {"HOME": "/", "SANDBOX_ROOT": None},
             "/.local: Permission denied", True)):
        result = sb(*args, env=env)
        assert result.returncode == 125 and "Traceback" not in result.stderr, describe(result)
        lines = result.stderr.strip().splitlines()
        assert message in lines[0], describe(result)
        assert len(lines) == (2 if hint else 1), describe(result)
        if hint:
            assert "--root" in lines[1], describe(result)
    assert os.listdir(closed) == []
