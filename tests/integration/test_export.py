"""`export`, as the unprivileged test user: a container's root filesystem
as a tar archive (the image's layers with their whiteouts and opaque
directories applied, the container's own changes, owners as they are
inside), for running and stopped containers and every storage driver;
never its volumes, --tmpfs or the kernel's /proc, /sys and /dev; and a
round trip through `import`."""

import io
import os
import stat
import subprocess
import tarfile

import pytest

from test_cp import host_dir


def exported(runner, *args):
    """`export ARGS` to stdout, read back: {name: (TarInfo, data)}."""
    res = subprocess.run(runner.argv("export", *args), capture_output=True, timeout=120,
                         cwd="/")
    assert res.returncode == 0, res.stderr.decode()
    out = {}
    with tarfile.open(fileobj=io.BytesIO(res.stdout), mode="r:") as tf:
        for ti in tf:
            out[ti.name] = (ti, tf.extractfile(ti).read() if ti.isreg() else None)
    return out


@pytest.mark.parametrize("driver", ["overlay", "fuse-overlayfs", "vfs"])
def test_export_applies_the_layers_and_the_containers_changes(fresh_sb, images_dir, driver):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    fresh_sb.ok("--storage-driver", driver, "run", "--name", "changed", "localhost/layers",
                "sh", "-c", "echo new > /data/dir/d && chown 1000:1000 /data/dir/d && "
                            "rm /data/nobody && mkdir /made")
    tree = exported(fresh_sb, "changed")
    names = set(tree)
    assert not any(n.startswith(("/", "./")) for n in names) and "." not in names
    # The image's layers: an opaque directory and a whiteout applied.
    assert sorted(n for n in names if n.startswith("data/dir/")) == ["data/dir/c", "data/dir/d"]
    assert "data/gone" not in names
    ti, _ = tree["data/owned1000"]
    assert (ti.uid, ti.gid) == (1000, 1000)
    assert stat.S_IMODE(tree["data/suid"][0].mode) == 0o4755
    # The container's changes, with the owners they have inside.
    ti, data = tree["data/dir/d"]
    assert data == b"new\n" and (ti.uid, ti.gid) == (1000, 1000)
    assert "data/nobody" not in names
    assert tree["made"][0].isdir()
    assert tree["bin/sh"][0].issym() or tree["bin/sh"][0].islnk()
    # Nothing of the overlay's own bookkeeping (whiteout devices, work dir).
    assert not any(ti.ischr() and ti.devmajor == 0 for ti, _ in tree.values())


def test_export_of_a_running_container_leaves_out_its_mounts(sb, busybox):
    vol = host_dir(sb, "export-vol")
    with open(os.path.join(vol, "host-file"), "w") as f:
        f.write("host\n")
    sb("rm", "-f", "live-ex")
    sb.ok("run", "-d", "--name", "live-ex", "-v", "%s:/mnt/vol" % vol, "--tmpfs", "/scratch",
          busybox, "sh", "-c", "echo live > /live; echo t > /scratch/t; sleep 600")
    try:
        sb.ok("exec", "live-ex", "sh", "-c", "test -e /live || sleep 1")
        tree = exported(sb, "live-ex")
        assert tree["live"][1] == b"live\n"
        assert "mnt/vol" in tree and not any(n.startswith("mnt/vol/") for n in tree)
        assert "scratch" in tree and "scratch/t" not in tree
        for api in ("proc", "sys"):
            assert not any(n.startswith(api + "/") for n in tree), api
        # The container goes on, its writable layer untouched by the export.
        assert sb.ok("exec", "live-ex", "sh", "-c", "echo more >> /live; cat /live").stdout \
            == "live\nmore\n"
    finally:
        sb.ok("rm", "-f", "live-ex")


def test_export_round_trips_through_import(sb, busybox):
    work = host_dir(sb, "export-trip")
    out = os.path.join(work, "rootfs.tar")
    sb("rm", "-f", "trip")
    sb.ok("run", "--name", "trip", busybox, "sh", "-c", "echo kept > /kept")
    try:
        sb.ok("export", "-o", out, "trip")
        assert os.listdir(work) == ["rootfs.tar"]     # nothing left aside
        sb.ok("import", out, "localhost/trip:exported")
        r = sb.ok("run", "--rm", "localhost/trip:exported", "cat", "/kept")
        assert r.stdout == "kept\n"
    finally:
        sb("rm", "-f", "trip")
        sb("rmi", "localhost/trip:exported")


def test_export_errors(sb, busybox):
    r = sb("export", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    sb("rm", "-f", "tty-ex")
    sb.ok("create", "--name", "tty-ex", busybox, "true")
    try:
        status, output = sb.on_terminal("export", "tty-ex")
        assert status == 125
        assert "cowardly refusing to save to a terminal" in output
        # A file it may not write: one line, and nothing left beside it.
        closed = host_dir(sb, "export-closed")
        os.chown(closed, 0, 0)
        os.chmod(closed, 0o755)
        r = sb("export", "-o", os.path.join(closed, "x.tar"), "tty-ex")
        assert r.returncode == 125 and "Permission denied" in r.stderr
        assert len(r.stderr.strip().splitlines()) <= 2
        assert os.listdir(closed) == []
    finally:
        sb("rm", "-f", "tty-ex")
