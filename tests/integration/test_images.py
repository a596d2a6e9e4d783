"""Image verbs against real archives, as the unprivileged test user.

Archives come from skopeo (an independent writer) or are written by hand
for hostile cases; assertions are on what lands on disk, stat'ed from the
host: owners shifted into the user's subordinate range, setuid bits,
hardlinked inodes, overlay whiteouts and opaque xattrs, and for hostile
layers: nothing outside, nothing left in the store.
"""

import glob
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

import imagetools as it
from conftest import describe

pytestmark = pytest.mark.skipif(not shutil.which("skopeo"), reason="needs skopeo")


@pytest.fixture(scope="module")
def built():
    """Every test archive, built once per module, readable by all users."""
    work = tempfile.mkdtemp(prefix="sandbox-test-images-", dir="/var/tmp")
    os.chmod(work, 0o755)
    j = lambda *p: os.path.join(work, *p)   # noqa: E731
    out = {}
    it.busybox_rootfs(j("rootfs"))
    it.tar_dir(j("rootfs"), j("rootfs.tar"))
    it.gzip_file(j("rootfs.tar"), j("rootfs.tar.gz"))
    out["rootfs"], out["rootfs_gz"] = j("rootfs.tar"), j("rootfs.tar.gz")

    it.oci_layout(j("bb-oci"), [j("rootfs.tar")], name="busybox:latest")
    out["busybox_docker"] = j("busybox-docker.tar")
    it.skopeo_copy("oci:" + j("bb-oci") + ":busybox:latest",
                   "docker-archive:" + out["busybox_docker"] + ":busybox:latest")
    out["busybox_oci"] = j("busybox-oci.tar")
    it.skopeo_copy("oci:" + j("bb-oci") + ":busybox:latest",
                   "oci-archive:" + out["busybox_oci"] + ":localhost:5000/tools/bb:v1")

    it.special_staging(j("special"))
    it.whiteout_staging(j("upper"))
    it.tar_dir(j("special"), j("special.tar"))
    it.tar_dir(j("upper"), j("upper.tar"))
    it.oci_layout(j("sp-oci"), [j("rootfs.tar"), j("special.tar"), j("upper.tar")],
                  name="special:latest")
    out["special"] = j("special-docker.tar")
    it.skopeo_copy("oci:" + j("sp-oci") + ":special:latest",
                   "docker-archive:" + out["special"] + ":myorg/special:1")
    out["special_diff_ids"] = [it.sha256_file(j(n)) for n in
                               ("rootfs.tar", "special.tar", "upper.tar")]

    # diff_id mismatch: the config promises another layer than the archive holds.
    out["mismatch"] = it.docker_archive(j("mismatch.tar"), [j("special.tar")],
                                        tags=("mismatch:latest",),
                                        diff_ids=["sha256:" + "0" * 64])
    out["devices"] = it.docker_archive(j("devices.tar"), [it.device_layer(j("dev.tar"))],
                                       tags=("devices:latest",))
    subprocess.run(["zstd", "-q", "-f", j("special.tar"), "-o", j("special.tar.zst")],
                   check=False)
    if os.path.exists(j("special.tar.zst")):
        out["zstd"] = j("special.tar.zst")
    subprocess.run(["chmod", "-R", "a+rX", work], check=True)
    yield out
    shutil.rmtree(work, ignore_errors=True)


# -- helpers -------------------------------------------------------------------
def subid_ranges(user, path):
    pw = pwd.getpwnam(user)
    ranges = []
    with open(path) as f:
        for line in f:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[0] in (user, str(pw.pw_uid)):
                ranges.append((int(parts[1]), int(parts[2])))
    merged = []
    for start, count in sorted(ranges):
        if merged and start <= merged[-1][0] + merged[-1][1]:
            s, c = merged[-1]
            merged[-1] = (s, max(c, start + count - s))
        else:
            merged.append((start, count))
    return merged


def host_id(sb, inside, kind="uid"):
    """The host id of container id ``inside`` for the test user's map."""
    if inside == 0:
        return sb.uid if kind == "uid" else sb.gid
    nxt = 1
    for start, count in subid_ranges(sb.user, "/etc/sub" + kind):
        if nxt <= inside < nxt + count:
            return start + inside - nxt
        nxt += count
    raise AssertionError("no mapping for %d" % inside)


def layer_dirs(sb):
    return sorted(glob.glob(os.path.join(sb.root, "layers", "*", "diff")))


def layer_with(sb, rel):
    found = [d for d in layer_dirs(sb) if os.path.lexists(os.path.join(d, rel))]
    assert found, "no layer holds %s: %s" % (rel, layer_dirs(sb))
    return found[0]


def store_is_empty(sb):
    return it.store_leftovers(sb.root)


# -- load ----------------------------------------------------------------------
def test_load_docker_archive_from_skopeo(fresh_sb, built):
    r = fresh_sb.ok("load", "-i", built["busybox_docker"])
    assert r.stdout.strip() == "Loaded image: busybox:latest"
    images = fresh_sb.ok("images").stdout.splitlines()
    assert images[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    row = images[1].split()
    assert row[:2] == ["busybox", "latest"] and len(row[2]) == 12
    assert row[-1].endswith("MB")
    diff = layer_with(fresh_sb, "bin/busybox")
    st = os.lstat(os.path.join(diff, "bin/busybox"))
    assert st.st_uid == fresh_sb.uid                 # container root = the user
    assert stat.S_IMODE(st.st_mode) & 0o111
    assert os.readlink(os.path.join(diff, "bin/sh")) == "busybox"
    insp = json.loads(fresh_sb.ok("image", "inspect", "busybox").stdout)
    assert insp[0]["RepoTags"] == ["busybox:latest"]
    assert insp[0]["Id"].startswith("sha256:" + row[2])
    assert insp[0]["RootFS"]["Layers"] == [it.sha256_file(built["rootfs"])]
    assert insp[0]["Config"]["Cmd"] == ["sh"]
    assert insp[0]["Os"] == "linux"


def test_load_oci_archive_from_stdin_keeps_its_name(fresh_sb, built):
    with open(built["busybox_oci"], "rb") as f:
        r = subprocess.run(fresh_sb.argv("load"), stdin=f, capture_output=True,
                           text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    assert "Loaded image: localhost:5000/tools/bb:v1" in r.stdout
    out = fresh_sb.ok("images", "localhost:5000/tools/bb").stdout.splitlines()
    assert out[1].split()[:2] == ["localhost:5000/tools/bb", "v1"]


def test_layers_are_shared_and_ids_resolve(fresh_sb, built):
    fresh_sb.ok("load", "-i", built["busybox_docker"])
    fresh_sb.ok("load", "-i", built["special"])
    # busybox's only layer is the bottom layer of special: stored once.
    assert len(layer_dirs(fresh_sb)) == 3
    full = json.loads(fresh_sb.ok("image", "inspect", "busybox").stdout)[0]["Id"]
    other = json.loads(fresh_sb.ok("image", "inspect", "myorg/special:1").stdout)[0]["Id"]
    # Digits both ids start with; busybox's prefix is 3 digits, or longer in
    # the one run in 4096 where they share 3 (then 3 are ambiguous).
    shared = next(k for k in range(64) if other[7 + k] != full[7 + k])
    n = max(3, shared + 1)
    for name in (full, full[7:], full[:12 + 7], full[7:7 + n], "docker.io/library/busybox:latest"):
        got = json.loads(fresh_sb.ok("image", "inspect", name).stdout)[0]["Id"]
        assert got == full, name
    if shared:
        both = fresh_sb("image", "inspect", full[7:7 + shared])
        assert both.returncode == 1 and "ambiguous image id prefix" in both.stderr, \
            describe(both)


def test_owners_modes_links_whiteouts(fresh_sb, built):
    r = fresh_sb.ok("load", "-i", built["special"])
    assert "Loaded image: myorg/special:1" in r.stdout
    lower = layer_with(fresh_sb, "data/user1000")
    p = lambda rel: os.path.join(lower, rel)   # noqa: E731
    st = os.lstat(p("data/user1000"))
    assert (st.st_uid, st.st_gid) == (host_id(fresh_sb, 1000), host_id(fresh_sb, 1000, "gid"))
    assert st.st_mtime == 1000000000
    st = os.lstat(p("data/nobody"))
    assert (st.st_uid, st.st_gid) == (host_id(fresh_sb, 65534), host_id(fresh_sb, 65534, "gid"))
    assert stat.S_IMODE(os.lstat(p("data/setuid")).st_mode) == 0o4755
    st = os.lstat(p("data/setgid"))
    assert stat.S_IMODE(st.st_mode) == 0o2755 and st.st_gid == host_id(fresh_sb, 1000, "gid")
    assert os.lstat(p("data/hard1")).st_ino == os.lstat(p("data/hard2")).st_ino
    assert stat.S_ISFIFO(os.lstat(p("data/fifo")).st_mode)
    assert os.readlink(p("data/link")) == "../data/user1000"
    st = os.lstat(p("data/private"))
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == host_id(fresh_sb, 1000)
    assert stat.S_IMODE(os.lstat(p("data")).st_mode) == 0o1777

    upper = layer_with(fresh_sb, "opq/new")
    wh = os.lstat(os.path.join(upper, "removed"))
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert not os.path.lexists(os.path.join(upper, ".wh.removed"))
    assert os.getxattr(os.path.join(upper, "opq"), "user.overlay.opaque") == b"y"
    assert not os.path.lexists(os.path.join(upper, "opq", ".wh..wh..opq"))
    insp = json.loads(fresh_sb.ok("image", "inspect", "myorg/special:1").stdout)[0]
    assert insp["RootFS"]["Layers"] == built["special_diff_ids"]


def test_no_subuid_range_maps_owners_to_root(fresh_sb, built, nosub_user):
    r = fresh_sb("load", "-i", built["special"], user=nosub_user)
    assert r.returncode == 0, r.stderr
    assert "no subordinate id range" in r.stderr
    root = fresh_sb.data_dir(nosub_user)[0]
    diff = [d for d in glob.glob(os.path.join(root, "layers/*/diff"))
            if os.path.exists(os.path.join(d, "data/user1000"))][0]
    uid = pwd.getpwnam(nosub_user).pw_uid
    assert os.lstat(os.path.join(diff, "data/user1000")).st_uid == uid
    assert stat.S_IMODE(os.lstat(os.path.join(diff, "data/setuid")).st_mode) == 0o4755


def test_devices_are_skipped_with_a_warning(fresh_sb, built):
    r = fresh_sb.ok("load", "-i", built["devices"])
    assert "device node" in r.stderr
    diff = layer_with(fresh_sb, "keep")
    assert not os.path.lexists(os.path.join(diff, "dev/null"))


def test_diff_id_mismatch_leaves_nothing(fresh_sb, built):
    r = fresh_sb("load", "-i", built["mismatch"])
    assert r.returncode == 125
    assert "does not match" in r.stderr
    assert store_is_empty(fresh_sb) == []


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_load_interrupted_or_terminated_leaves_nothing(fresh_sb, images_dir, sig):
    """Ctrl-C, or a `kill` / `timeout` (SIGTERM): the layer being unpacked
    and the blob being staged are removed on the way out; Docker's exit
    codes for the signal (130, 143)."""
    import signal
    import time
    p = fresh_sb.popen("load", "-i", os.path.join(images_dir, "debian.tar"))
    time.sleep(0.4)             # in the middle of the 117 MB layer
    assert p.poll() is None, "load was done before the signal: the test proves nothing"
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode == {"SIGINT": 130, "SIGTERM": 143}[sig], err
    assert "Traceback" not in err, err
    assert store_is_empty(fresh_sb) == []


# -- hostile layers --------------------------------------------------------------
@pytest.mark.parametrize("kind", it.HOSTILE_KINDS)
def test_hostile_layer_is_refused(fresh_sb, kind):
    # The target lies in a directory the test user may write, so that a
    # successful escape would really leave a file there.
    base = os.path.dirname(fresh_sb.root)
    outside = os.path.join(base, "escaped")
    work = tempfile.mkdtemp(dir=base)
    layer = it.hostile_layer(os.path.join(work, "layer.tar"), kind, outside)
    archive = it.docker_archive(os.path.join(work, "hostile.tar"), [layer])
    subprocess.run(["chmod", "-R", "a+rX", work], check=True)
    r = fresh_sb("load", "-i", archive)
    assert r.returncode == 125, r
    assert "refusing" in r.stderr and "hint:" in r.stderr
    assert not os.path.lexists(outside)
    assert store_is_empty(fresh_sb) == []


def test_zstd_layer_without_module_is_a_clear_error(fresh_sb, built):
    if "zstd" not in built:
        pytest.skip("no zstd tool")
    try:
        import zstandard  # noqa: F401
        pytest.skip("zstandard is installed: zstd layers are supported")
    except ImportError:
        pass
    r = fresh_sb("import", built["zstd"], "z")
    assert r.returncode == 125
    assert "zstd" in r.stderr and "hint:" in r.stderr
    assert store_is_empty(fresh_sb) == []


# -- import, tag, rmi ------------------------------------------------------------
def test_import_file_and_stdin(fresh_sb, built):
    r = fresh_sb.ok("import", "-m", "hello", "-c", "CMD [\"sh\"]", "-c", "ENV A=1",
                    built["rootfs_gz"], "mybox:1")
    image_id = r.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    insp = json.loads(fresh_sb.ok("image", "inspect", "mybox:1").stdout)[0]
    assert insp["Id"] == image_id
    assert insp["Comment"] == "hello"
    assert insp["Config"]["Cmd"] == ["sh"] and insp["Config"]["Env"] == ["A=1"]
    assert insp["RootFS"]["Layers"] == [it.sha256_file(built["rootfs"])]
    with open(built["rootfs"], "rb") as f:
        r = subprocess.run(fresh_sb.argv("import", "-", "fromstdin"), stdin=f,
                           capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    insp = json.loads(fresh_sb.ok("image", "inspect", "fromstdin").stdout)[0]
    assert insp["Config"]["Cmd"] is None and insp["Comment"] == "Imported from -"
    assert len(layer_dirs(fresh_sb)) == 1        # same content, one layer


def test_tag_rmi_and_gc(fresh_sb, built):
    fresh_sb.ok("load", "-i", built["busybox_docker"])
    fresh_sb.ok("tag", "busybox", "localhost:5000/bb:2")
    fresh_sb.ok("image", "tag", "busybox:latest", "myorg/bb")
    out = fresh_sb.ok("images").stdout
    assert "localhost:5000/bb" in out and "myorg/bb" in out
    image_id = json.loads(fresh_sb.ok("image", "inspect", "busybox").stdout)[0]["Id"]
    r = fresh_sb("rmi", image_id[7:19])
    assert r.returncode == 1 and "referenced in multiple repositories" in r.stderr
    assert fresh_sb.ok("rmi", "myorg/bb").stdout == "Untagged: myorg/bb:latest\n"
    assert fresh_sb.ok("image", "rm", "busybox").stdout == "Untagged: busybox:latest\n"
    r = fresh_sb.ok("rmi", "localhost:5000/bb:2")
    assert r.stdout == "Untagged: localhost:5000/bb:2\nDeleted: %s\n" % image_id
    assert store_is_empty(fresh_sb) == []
    r = fresh_sb("rmi", "busybox")
    assert r.returncode == 1 and "No such image: busybox" in r.stderr


def test_rmi_of_a_tag_of_an_image_in_use(fresh_sb, built):
    """Docker's rule: a container's image may lose a tag while it has
    another; its last tag needs -f (the image would be left dangling)."""
    fresh_sb.ok("load", "-i", built["busybox_docker"])
    fresh_sb.ok("tag", "busybox", "other")
    fresh_sb.ok("create", "--name", "user-of-busybox", "busybox", "true")
    assert fresh_sb.ok("rmi", "other").stdout == "Untagged: other:latest\n"
    r = fresh_sb("rmi", "busybox")
    # (1: Docker's exit status for the daemon's errors; run's are 125)
    assert r.returncode == 1 and "must force" in r.stderr and "container" in r.stderr
    fresh_sb.ok("rm", "user-of-busybox")


def test_rmi_by_id_with_force_removes_every_tag(fresh_sb, built):
    fresh_sb.ok("load", "-i", built["busybox_docker"])
    fresh_sb.ok("tag", "busybox", "other")
    image_id = json.loads(fresh_sb.ok("image", "inspect", "busybox").stdout)[0]["Id"]
    r = fresh_sb.ok("rmi", "-f", image_id)
    assert r.stdout.splitlines() == ["Untagged: busybox:latest", "Untagged: other:latest",
                                     "Deleted: " + image_id]
    assert store_is_empty(fresh_sb) == []


def test_load_over_an_existing_tag_keeps_the_old_image_untagged(fresh_sb, built):
    fresh_sb.ok("import", built["rootfs"], "busybox")
    r = fresh_sb.ok("load", "-i", built["busybox_docker"])
    assert "renaming the old one" in r.stdout
    rows = fresh_sb.ok("images").stdout.splitlines()[1:]
    assert sorted(r.split()[0] for r in rows) == ["<none>", "busybox"]


def test_unknown_and_invalid_names(fresh_sb):
    r = fresh_sb("image", "inspect", "nosuch")
    assert r.returncode == 1 and "No such image: nosuch" in r.stderr
    assert json.loads(r.stdout) == []
    r = fresh_sb("rmi", "nosuch1", "nosuch2")             # one line each, as rm's
    assert r.returncode == 1 and r.stderr.splitlines() == [
        "sandbox: No such image: nosuch1", "sandbox: No such image: nosuch2"]
    r = fresh_sb("tag", "nosuch", "x")
    assert r.returncode == 1
    r = fresh_sb("import", "/nonexistent.tar", "Bad:Name")
    assert r.returncode == 125 and "invalid reference format" in r.stderr
