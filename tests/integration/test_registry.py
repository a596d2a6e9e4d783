"""pull (and run's pull) against a real registry: Debian's docker-registry on
127.0.0.1, plain HTTP, seeded by skopeo and by hand-made manifests."""

import hashlib
import json
import os
import signal
import subprocess
import tarfile
import time

import pytest

from registrytools import (MT_OCI_INDEX, RawPusher, Registry, TamperProxy, serve_http,
                           gzip_bytes, skopeo_copy, tar_bytes, zstd_bytes)
from conftest import describe

LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def busybox_layer(images_dir):
    """The uncompressed busybox layer tar of busybox.tar (a docker-archive)."""
    with tarfile.open(os.path.join(images_dir, "busybox.tar")) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
        return tf.extractfile(manifest[0]["Layers"][0]).read()


@pytest.fixture(scope="module")
def reg(tmp_path_factory, images_dir):
    r = Registry(str(tmp_path_factory.mktemp("registry")))
    host = r.host
    arc = lambda name: "docker-archive:" + os.path.join(images_dir, name)  # noqa: E731
    skopeo_copy(arc("busybox.tar"), "docker://%s/library/busybox:latest" % host)
    skopeo_copy(arc("layers.tar"), "docker://%s/layers:latest" % host)
    skopeo_copy(arc("busybox.tar"), "docker://%s/oci/busybox:latest" % host, "--format", "oci")
    push = RawPusher(host)
    base = busybox_layer(images_dir)
    extra = tar_bytes({"etc/variant": b"zstd\n"})
    push.image("formats", "zstd", [(base, zstd_bytes(base), LAYER_ZSTD),
                                   (extra, zstd_bytes(extra), LAYER_ZSTD)])
    plain = tar_bytes({"etc/variant": b"plain\n"})
    push.image("formats", "plain", [(base, base, LAYER_TAR), (plain, plain, LAYER_TAR)])
    broken = tar_bytes({"big": os.urandom(200_000)})
    gz = gzip_bytes(broken)
    push.image("formats", "truncated", [(base, gzip_bytes(base), LAYER_GZ),
                                        (broken, gz[:len(gz) // 2], LAYER_GZ)])
    # A manifest list: the amd64 entry is busybox; the arm64 entry has the
    # same layer and a config that says arm64 and a different Cmd.
    amd = push.image("multi", "amd64", [(base, gzip_bytes(base), LAYER_GZ)],
                     arch="amd64", cmd=["echo", "amd64"])
    arm = push.image("multi", "arm64", [(base, gzip_bytes(base), LAYER_GZ)],
                     arch="arm64", cmd=["echo", "arm64"])
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm["digest"],
         "size": arm["size"], "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd["digest"],
         "size": amd["size"], "platform": {"os": "linux", "architecture": "amd64"}}]}
    r.index_digest, _ = push.manifest("multi", "latest", index, MT_OCI_INDEX)
    r.amd, r.arm = amd, arm
    # A big-ish layer (random, does not compress) for the kill -9 test.
    big = tar_bytes({"blob%d" % i: os.urandom(1 << 20) for i in range(6)})
    push.image("big", "latest", [(base, gzip_bytes(base), LAYER_GZ),
                                 (big, gzip_bytes(big), LAYER_GZ)])
    yield r
    r.stop()


def images_table(sb):
    out = sb.ok("images").stdout.splitlines()
    return [line.split() for line in out[1:]]


# --- pulls that work -----------------------------------------------------------------
def test_pull_docker_v2_then_run_and_inspect(sb, reg):
    name = "%s/library/busybox" % reg.host
    r = sb.ok("pull", name)
    lines = r.stdout.splitlines()
    assert lines[0] == "Using default tag: latest"
    assert lines[1] == "latest: Pulling from library/busybox"
    assert any(line.endswith(": Pull complete") for line in lines), r.stdout
    assert lines[-3].startswith("Digest: sha256:")
    assert lines[-2] == "Status: Downloaded newer image for %s:latest" % name
    assert lines[-1] == "%s:latest" % name
    assert "\x1b" not in r.stdout        # no terminal: no escapes
    assert sb.ok("run", "--rm", name, "echo", "hello").stdout == "hello\n"
    info = json.loads(sb.ok("image", "inspect", name).stdout)[0]
    assert info["RepoTags"] == ["%s:latest" % name]
    assert info["RepoDigests"] == ["%s@%s" % (name, lines[-3].split()[1])]
    # Again: nothing downloaded, up to date.
    r = sb.ok("pull", name + ":latest")
    assert "Status: Image is up to date for %s:latest" % name in r.stdout
    assert "Pull complete" not in r.stdout


def test_pull_quiet_prints_only_the_name(fresh_sb, reg):
    r = fresh_sb.ok("pull", "-q", "%s/library/busybox:latest" % reg.host)
    assert r.stdout == "%s/library/busybox:latest\n" % reg.host
    assert r.stderr == ""


def test_pull_layers_whiteouts_and_reuse(sb, reg):
    name = "%s/layers" % reg.host
    r = sb.ok("pull", name)
    # The busybox layer came with the first test's pull: not fetched again.
    assert "Already exists" in r.stdout, r.stdout
    out = sb.ok("run", "--rm", name, "sh", "-c",
                "ls /data; ls -A /data/dir; stat -c '%u %a' /data/owned1000 /data/suid").stdout
    assert "gone" not in out.split()
    assert "owned1000" in out
    assert "1000 644" in out and "0 4755" in out, out


def test_pull_oci_manifest(fresh_sb, reg):
    name = "%s/oci/busybox" % reg.host
    fresh_sb.ok("pull", name)
    assert fresh_sb.ok("run", "--rm", name, "echo", "oci").stdout == "oci\n"


@pytest.mark.parametrize("tag,variant", [("zstd", "zstd"), ("plain", "plain")])
def test_pull_zstd_and_uncompressed_layers(sb, reg, tag, variant):
    name = "%s/formats:%s" % (reg.host, tag)
    sb.ok("pull", name)
    assert sb.ok("run", "--rm", name, "cat", "/etc/variant").stdout == variant + "\n"


def test_run_platform_pulls_that_platform_and_q_is_quiet(fresh_sb, reg):
    """run --platform: the arm64 entry (its config says arm64 and runs
    `echo arm64`; its layer is this host's busybox, so it can run here);
    a local image of another platform counts as missing; -q: no pull
    output.  create pulls a missing image as run does."""
    name = "%s/multi" % reg.host
    r = fresh_sb.ok("run", "--rm", "-q", "--platform", "linux/arm64", name)
    # (only, where no qemu-aarch64-static is found, the warning that its
    # programs cannot be emulated: these are this host's)
    assert r.stdout == "arm64\n" and [line for line in r.stderr.splitlines() if not (
        line.startswith("WARNING: images for linux/arm64 need emulation") or
        line.startswith("  hint: install qemu-user-static"))] == [], r.stderr
    r = fresh_sb.ok("run", "--rm", "--platform", "linux/arm64/v8", name)
    assert r.stdout == "arm64\n" and "Pulling" not in r.stderr + r.stdout
    r = fresh_sb("run", "--rm", "--pull=never", "--platform", "linux/amd64", name)
    assert r.returncode == 125
    assert "does not match the specified platform: wanted linux/amd64, actual: linux/arm64" \
        in r.stderr
    r = fresh_sb.ok("run", "--rm", "--platform", "linux/amd64", name)
    assert r.stdout == "amd64\n" and "Pulling from multi" in r.stderr, r.stderr
    r = fresh_sb("run", "--rm", "--platform", "linux/", name)
    assert r.returncode == 125 and "invalid platform 'linux/'" in r.stderr
    assert fresh_sb.ok("run", "--rm", "--platform", "amd64", name).stdout == "amd64\n"
    fresh_sb.ok("rmi", name)
    cid = fresh_sb.ok("create", "-q", name).stdout.strip()
    assert len(cid) == 64
    assert fresh_sb.ok("start", "-a", cid).stdout == "amd64\n"
    fresh_sb.ok("rm", cid)


def test_manifest_list_platform_selection(fresh_sb, reg):
    name = "%s/multi" % reg.host
    r = fresh_sb.ok("pull", name)
    assert "Digest: %s" % reg.index_digest in r.stdout
    info = json.loads(fresh_sb.ok("image", "inspect", name).stdout)[0]
    assert info["Architecture"] == "amd64" and info["Id"] == reg.amd["config"]
    assert info["RepoDigests"] == ["%s@%s" % (name, reg.index_digest)]
    fresh_sb.ok("pull", "--platform", "linux/arm64", name + ":latest")
    info = json.loads(fresh_sb.ok("image", "inspect", name).stdout)[0]
    assert info["Architecture"] == "arm64" and info["Id"] == reg.arm["config"]
    r = fresh_sb("pull", "--platform", "linux/s390x", name)
    assert r.returncode == 1
    assert "no matching manifest for linux/s390x" in r.stderr


def test_pull_by_digest(fresh_sb, reg):
    name = "%s/multi@%s" % (reg.host, reg.amd["digest"])
    r = fresh_sb.ok("pull", name)
    assert r.stdout.splitlines()[0] == "%s: Pulling from multi" % reg.amd["digest"]
    assert fresh_sb.ok("run", "--rm", name).stdout == "amd64\n"


def test_run_pulls_a_missing_image(fresh_sb, reg):
    name = "%s/library/busybox" % reg.host
    r = fresh_sb("run", "--rm", "--pull=never", name, "true")
    assert r.returncode == 125 and "Unable to find image" in r.stderr
    r = fresh_sb.ok("run", "--rm", name, "echo", "pulled")
    assert r.stdout.endswith("pulled\n")
    assert "Unable to find image '%s:latest' locally" % name in r.stderr
    assert "Status: Downloaded newer image" in r.stderr


# --- failures ---------------------------------------------------------------------------
def assert_store_consistent(sb, reg):
    """`images` works and a following pull and run of busybox are right."""
    sb.ok("images")
    name = "%s/library/busybox" % reg.host
    sb.ok("pull", "-q", name)
    assert sb.ok("run", "--rm", name, "echo", "ok").stdout == "ok\n"


def test_unknown_tag_and_repository(fresh_sb, reg):
    r = fresh_sb("pull", "%s/library/busybox:nope" % reg.host)
    assert r.returncode == 1, describe(r)
    assert "manifest for %s/library/busybox:nope not found" % reg.host in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2
    r = fresh_sb("pull", "%s/nosuchrepo" % reg.host)
    assert r.returncode == 1
    assert "not found" in r.stderr and "nosuchrepo" in r.stderr
    assert fresh_sb.ok("images").stdout.count("\n") == 1


def test_registry_down_fails_within_seconds(fresh_sb):
    from registrytools import free_port
    start = time.monotonic()
    r = fresh_sb("pull", "127.0.0.1:%d/busybox" % free_port())
    assert r.returncode == 1
    assert time.monotonic() - start < 6
    assert "cannot reach registry" in r.stderr and "Connection refused" in r.stderr


def test_digest_mismatch_from_tampering_proxy(fresh_sb, reg):
    proxy = TamperProxy(reg.host, mode="corrupt")
    try:
        r = fresh_sb("pull", "%s/library/busybox" % proxy.host)
    finally:
        proxy.stop()
    assert r.returncode != 0
    assert "does not match its digest" in r.stderr, r.stderr
    assert fresh_sb.ok("images").stdout.count("\n") == 1
    assert not os.listdir(os.path.join(fresh_sb.root, "layers")) if os.path.isdir(
        os.path.join(fresh_sb.root, "layers")) else True
    assert_store_consistent(fresh_sb, reg)


def test_truncated_gzip_layer(fresh_sb, reg):
    r = fresh_sb("pull", "%s/formats:truncated" % reg.host)
    assert r.returncode != 0
    assert "truncated or corrupt" in r.stderr or "cannot extract layer" in r.stderr, r.stderr
    assert "formats" not in fresh_sb.ok("images").stdout
    assert_store_consistent(fresh_sb, reg)


def test_kill_9_mid_pull_then_pull_succeeds(fresh_sb, reg):
    proxy = TamperProxy(reg.host, mode="slow", rate=1_000_000)
    name = "%s/big" % proxy.host
    try:
        p = fresh_sb.popen("pull", name)
        time.sleep(2.5)
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        assert "big" not in fresh_sb.ok("images").stdout
        proxy.mode = None
        r = fresh_sb.ok("pull", name)
        assert "Status: Downloaded newer image" in r.stdout
    finally:
        proxy.stop()
    assert fresh_sb.ok("run", "--rm", name, "sh", "-c", "ls /blob* | wc -l").stdout == "6\n"
    # The temp dirs of the killed pull are collected by the next gc.
    fresh_sb.ok("rmi", name)
    leftovers = os.listdir(os.path.join(fresh_sb.root, "tmp"))
    assert leftovers == [], leftovers


@pytest.mark.terminal
def test_pull_on_a_terminal_draws_bars_with_bytes_and_speed(fresh_sb, reg):
    """On a terminal: one bar per layer with bytes and speed while it
    downloads, Docker's status words, the closing lines; without one
    (every other pull test) plain lines only."""
    import pexpect
    proxy = TamperProxy(reg.host, mode="slow", rate=4_000_000)
    name = "%s/big" % proxy.host
    try:
        argv = fresh_sb.argv("pull", name)
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=60,
                              dimensions=(24, 120))
        child.expect(r"Downloading \[[^\]]*\] +[0-9.]+[kM]B/[0-9.]+MB +[0-9.]+[kM]B/s")
        child.expect(pexpect.EOF)
        child.close()
        out = child.before
        # Without a terminal: plain lines, no bar.
        r = fresh_sb.ok("pull", name)
    finally:
        proxy.stop()
    assert child.exitstatus == 0, out
    assert "Pull complete" in out and "Download complete" in out, out
    assert "Digest: sha256:" in out and "Status: Downloaded newer image for " in out, out
    assert "[" not in r.stdout and "Image is up to date" in r.stdout, r.stdout


def test_manifest_inspect(sb, reg):
    """`manifest inspect`: what the registry has, tab-indented, nothing
    pulled; a tag it lacks exits 1 (the CI idiom for "does it exist")."""
    out = sb.ok("manifest", "inspect", "%s/library/busybox" % reg.host).stdout
    doc = json.loads(out)
    assert doc["schemaVersion"] == 2 and len(doc["layers"]) == 1 and "config" in doc
    assert out.startswith("{\n\t\"schemaVersion\": 2")
    index = json.loads(sb.ok("manifest", "inspect", "%s/multi" % reg.host).stdout)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64", "amd64"]
    by_digest = json.loads(sb.ok("manifest", "inspect", "%s/multi@%s"
                                 % (reg.host, reg.amd["digest"])).stdout)
    assert by_digest["config"]["mediaType"].endswith("config.v1+json")
    r = sb("manifest", "inspect", "%s/library/busybox:nosuchtag" % reg.host)
    assert r.returncode == 1
    assert "no such manifest: %s/library/busybox:nosuchtag" % reg.host in r.stderr
    assert sb.ok("images", "-q", "%s/multi" % reg.host).stdout == ""


def test_registry_mirrors_docker_and_podman_style(fresh_sb, reg, tmp_path_factory):
    """Pulls try mirrors first: Docker's "registry-mirrors" (URLs, for
    Docker Hub) from our config.json, passing over one that is down; and
    podman's registries.conf mirrors for any registry, with a namespace
    in the mirror's location.  Without a working mirror the registry
    itself is asked (unreachable here: the pull fails, clearly)."""
    sb = fresh_sb
    home = os.path.join(os.path.dirname(sb.root), "mirrors-xdg")
    os.makedirs(os.path.join(home, "sandbox"), exist_ok=True)
    os.makedirs(os.path.join(home, "containers"), exist_ok=True)
    with open(os.path.join(home, "sandbox", "config.json"), "w") as f:
        json.dump({"registry-mirrors": ["http://127.0.0.1:1", "http://%s" % reg.host]}, f)
    subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), home], check=True)
    env = {"XDG_CONFIG_HOME": home}
    r = sb("pull", "busybox", env=env)
    assert r.returncode == 0, r.stderr
    assert "Status: Downloaded newer image for busybox:latest" in r.stdout
    assert sb.ok("run", "--rm", "busybox", "echo", "mirrored").stdout == "mirrored\n"
    images = sb.ok("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert "busybox:latest" in images
    # A mirror without the image: on to Docker Hub, which is out of reach.
    r = sb("pull", "busybox:nosuchtag", env=env)
    assert r.returncode != 0 and "registry-1.docker.io" in r.stderr, r.stderr

    # podman's registries.conf: a mirror (namespace "oci") of a registry
    # that does not exist; the mirror serves oci/busybox.
    with open(os.path.join(home, "containers", "registries.conf"), "w") as f:
        f.write('[[registry]]\nlocation = "registry.invalid:5000"\n'
                '[[registry.mirror]]\nlocation = "127.0.0.1:1"\n'
                '[[registry.mirror]]\nlocation = "%s/oci"\ninsecure = true\n' % reg.host)
    subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), home], check=True)
    r = sb("pull", "-q", "registry.invalid:5000/busybox", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "registry.invalid:5000/busybox:latest\n"
    r = sb("pull", "registry.invalid:5000/other", env=env)
    assert r.returncode != 0 and "registry.invalid" in r.stderr


def test_search_a_registrys_catalog_and_an_index_search_api(sb, reg):
    """`search HOST/TERM`: a distribution registry (no search API) is
    listed from its catalog, the names holding TERM (as podman's search);
    a registry with the index's /v1/search (Docker Hub's API) is asked
    that, with Docker's columns, --limit, --filter stars= and
    is-official=, --no-trunc and --format."""
    r = sb.ok("search", "%s/busy" % reg.host)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    names = sorted(line.split()[0] for line in lines[1:])
    assert names == ["%s/library/busybox" % reg.host, "%s/oci/busybox" % reg.host]
    r = sb.ok("search", "--format", "{{.Name}}", "%s/multi" % reg.host)
    assert r.stdout == "%s/multi\n" % reg.host

    asked = []
    long_text = "a tiny image " * 8

    def handle(h, method):
        asked.append(h.path)
        if not h.path.startswith("/v1/search?"):
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        body = json.dumps({"results": [
            {"name": "tools/box", "description": long_text, "star_count": 120,
             "is_official": True},
            {"name": "tools/boxlet", "description": "small", "star_count": 3,
             "is_official": False}]}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    server = serve_http("127.0.0.1", handle)
    host = "127.0.0.1:%d" % server.server_address[1]
    try:
        r = sb.ok("search", "--limit", "7", "%s/box" % host)
        assert asked[-1] == "/v1/search?q=box&n=7"
        rows = r.stdout.splitlines()
        assert rows[1].startswith("%s/tools/box " % host) and rows[1].rstrip().endswith(
            "120       [OK]")
        assert "a tiny image a tiny image a tiny image a tin…" in rows[1]
        assert rows[2].split() == ["%s/tools/boxlet" % host, "small", "3"]
        r = sb.ok("search", "--filter", "stars=10", "--format", "{{.Name}} {{.StarCount}}",
                  "%s/box" % host)
        assert r.stdout == "%s/tools/box 120\n" % host
        r = sb.ok("search", "--filter", "is-official=false", "--no-trunc", "--format",
                  "{{.Name}}", "%s/box" % host)
        assert r.stdout == "%s/tools/boxlet\n" % host
        r = sb("search", "--filter", "colour=red", "%s/box" % host)
        assert r.returncode == 125 and "invalid filter 'colour=red'" in r.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_manifest_create_annotate_push_and_pull_by_platform(fresh_sb, reg):
    """Docker's manifest verbs: a list of two images of the registry (one
    per platform) made locally, annotated, inspected, pushed (skopeo reads
    the same bytes back), then pulled per platform; a member of another
    repository is copied in at push; lists, other registries and an
    existing list without --amend are refused; rm forgets it."""
    sb, host = fresh_sb, reg.host
    name = "%s/multi:both" % host
    r = sb.ok("manifest", "create", name, "%s/multi:amd64" % host, "%s/multi:arm64" % host)
    assert r.stdout == "Created manifest list %s\n" % name
    r = sb("manifest", "create", name, "%s/multi:amd64" % host)
    assert r.returncode == 125 and "no --amend" in r.stderr
    sb.ok("manifest", "annotate", "--variant", "v8", name, "%s/multi:arm64" % host)
    r = sb("manifest", "annotate", "--arch", "arm65", name, "%s/multi:arm64" % host)
    assert r.returncode == 125 and "unsupported os/arch combination: linux/arm65" in r.stderr
    local = json.loads(sb.ok("manifest", "inspect", name).stdout)
    assert local["mediaType"] == "application/vnd.oci.image.index.v1+json"
    plats = {m["digest"]: m["platform"] for m in local["manifests"]}
    assert plats[reg.amd["digest"]] == {"architecture": "amd64", "os": "linux"}
    assert plats[reg.arm["digest"]] == {"architecture": "arm64", "os": "linux",
                                        "variant": "v8"}
    digest = sb.ok("manifest", "push", "--purge", name).stdout.strip()
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          "docker://" + name], capture_output=True, check=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    assert json.loads(raw)["manifests"] == local["manifests"]
    r = sb("manifest", "rm", name)              # (--purge removed it)
    assert r.returncode == 1 and "No such manifest" in r.stderr
    sb.ok("pull", "-q", "--platform", "linux/arm64", name)
    cfg = json.loads(sb.ok("image", "inspect", name).stdout)[0]
    assert cfg["Architecture"] == "arm64"
    assert sb.ok("run", "--rm", "--pull", "always", name).stdout == "amd64\n"  # (ours)

    # A member from another repository: copied into the list's at push.
    other = "%s/copied/app:list" % host
    sb.ok("manifest", "create", other, "%s/library/busybox:latest" % host)
    assert json.loads(sb.ok("manifest", "inspect", other).stdout)["mediaType"] == \
        "application/vnd.docker.distribution.manifest.list.v2+json"
    sb.ok("manifest", "push", other)
    sb.ok("manifest", "rm", other)
    assert sb.ok("run", "--rm", other, "echo", "copied").stdout == "copied\n"

    for args, message in (
            ([name + "2", "%s/multi:latest" % host], "is a manifest list"),
            ([name + "3", "other.example:5000/x:1"], "different registry"),
            ([name + "4", "%s/nothing:here" % host], "nothing")):
        r = sb("manifest", "create", *args)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)
