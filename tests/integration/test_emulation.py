"""Images of another architecture, as the unprivileged test user: busybox
for arm64 (foreign.tar) runs through qemu-aarch64-static, which sandbox
registers in a binfmt_misc of the user's own user namespace (Linux 6.7+),
not the host's: the host has no registration here, and the emulator is a
file in the test images (Debian's qemu-user-static, never installed), found
through $SANDBOX_QEMU_DIR.  Without it: a clear error before the start."""

import json
import os
import signal
import time

import pytest

from conftest import describe


@pytest.fixture(scope="module")
def foreign(sb, images_dir):
    path = os.path.join(images_dir, "foreign.tar")
    if not os.path.exists(path):
        pytest.skip("no foreign.tar: scripts/make-test-images makes it on amd64 hosts only")
    sb.ok("load", "-i", path)
    return "localhost/foreign:latest"


def qemu_env(images_dir):
    return {"SANDBOX_QEMU_DIR": os.path.join(images_dir, "qemu")}


def keeper(sb):
    with open(os.path.join(sb.runroot, "binfmt.json")) as f:
        return json.load(f)


def kill(pid):
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_host_binfmt_does_not_know_arm64():
    """The premise: what runs arm64 below is ours, not the host's."""
    if os.path.ismount("/proc/sys/fs/binfmt_misc"):
        names = os.listdir("/proc/sys/fs/binfmt_misc")
        assert not any("aarch64" in n or "arm64" in n for n in names), names


def test_run_exec_and_start_an_arm64_image(sb, foreign, images_dir):
    env = qemu_env(images_dir)
    assert sb.ok("image", "inspect", "-f", "{{.Architecture}}", foreign).stdout == "arm64\n"
    r = sb("run", "--rm", foreign, "sh", "-c", "uname -m; echo ok", env=env)
    assert r.returncode == 0, describe(r)
    assert r.stdout == "aarch64\nok\n"
    cid = sb.ok("run", "-d", foreign, "sleep", "600", env=env).stdout.strip()
    try:
        assert sb.ok("exec", cid, "uname", "-m").stdout == "aarch64\n"
        # The registration is not the container's to see or change.
        r = sb.ok("exec", cid, "sh", "-c", "ls /proc/sys/fs/binfmt_misc | wc -l; "
                  "mount -t binfmt_misc none /mnt 2>/dev/null && echo mounted || echo refused")
        assert r.stdout == "0\nrefused\n"
        rec = keeper(sb)
        assert "arm64" in rec["arches"]
        with open("/proc/%d/cmdline" % rec["pid"], "rb") as f:
            assert f.read().split(b"\0")[0] == b"sandbox-binfmt"
        # The keeper killed: the next exec, or start, makes it again.
        kill(rec["pid"])
        assert sb.ok("exec", cid, "uname", "-m", env=env).stdout == "aarch64\n"
        again = keeper(sb)
        assert again["pid"] != rec["pid"]
        sb.ok("stop", "-t", "0", cid)
        kill(again["pid"])
        sb.ok("start", cid, env=env)
        assert sb.ok("exec", cid, "uname", "-m").stdout == "aarch64\n"
        assert keeper(sb)["pid"] != again["pid"]
    finally:
        sb("rm", "-f", cid)


def test_without_an_emulator_a_warning_says_what_to_install(sb, foreign):
    """As Docker runs an image of another platform all the same (some say
    the wrong one): a warning naming the package, then exec format error."""
    if os.path.exists(os.path.join(sb.runroot, "binfmt.json")):
        kill(keeper(sb)["pid"])
    r = sb("run", "--rm", foreign, "true", env={"SANDBOX_QEMU_DIR": "/nonexistent"})
    assert r.returncode == 126, describe(r)
    assert "WARNING: images for linux/arm64 need emulation, and no static qemu-aarch64 " \
        "was found" in r.stderr
    assert "install qemu-user-static" in r.stderr
    assert 'exec: "/bin/true": exec format error' in r.stderr


def test_build_for_arm64_on_this_host(sb, busybox, foreign, images_dir):
    """build --platform linux/arm64: the FROM image of that platform, its
    RUN steps emulated, TARGET* ARGs of it; a FROM --platform=$BUILDPLATFORM
    stage runs natively (the cross-compiling pattern); FROM scratch says
    arm64 too.  A platform nothing emulates is refused first."""
    from test_cp import user_files
    ctx = user_files(sb, "cross-ctx", {"Dockerfile": (
        "FROM --platform=$BUILDPLATFORM busybox AS tools\n"
        "ARG TARGETARCH\n"
        "RUN echo \"tools: $(uname -m) for $TARGETARCH\" > /note\n"
        "FROM %s\n"
        "ARG TARGETPLATFORM\n"
        "COPY --from=tools /note /note\n"
        "RUN echo \"main: $(uname -m) for $TARGETPLATFORM\" >> /note\n"
        "CMD [\"cat\", \"/note\"]\n" % foreign)})
    env = qemu_env(images_dir)
    r = sb("build", "-q", "--platform", "linux/arm64", "-t", "localhost/cross:1", ctx, env=env)
    assert r.returncode == 0, describe(r)
    assert sb.ok("run", "--rm", "localhost/cross:1", env=env).stdout == \
        "tools: x86_64 for arm64\nmain: aarch64 for linux/arm64\n"
    assert sb.ok("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}",
                 "localhost/cross:1").stdout == "linux/arm64\n"
    assert sb.ok("run", "--rm", "--platform", "linux/arm64", foreign, "uname", "-m",
                 env=env).stdout == "aarch64\n"
    r = sb("build", "-q", "--platform", "linux/arm64", "-f", "-", "-t", "localhost/cross:2",
           ctx, input="FROM scratch\nCOPY Dockerfile /\n", env=env)
    assert r.returncode == 0, describe(r)
    assert sb.ok("image", "inspect", "-f", "{{.Architecture}}",
                 "localhost/cross:2").stdout == "arm64\n"
    r = sb("build", "--platform", "linux/mips", ctx)
    assert r.returncode == 125 and "sandbox cannot build for it" in r.stderr, describe(r)


def test_build_for_two_platforms_and_push_a_manifest_list(sb, busybox, foreign, images_dir,
                                                          tmp_path_factory):
    """buildx's `build --platform linux/amd64,linux/arm64 --push -t NAME`:
    each platform built (arm64 emulated), pushed by digest, and a manifest
    list of both under NAME; a pull of each platform runs its own."""
    from registrytools import Registry
    from test_cp import user_files
    import subprocess
    reg = Registry(str(tmp_path_factory.mktemp("registry")))
    try:
        env = qemu_env(images_dir)
        sb.ok("tag", busybox, "localhost/base:amd64")
        sb.ok("tag", foreign, "localhost/base:arm64")
        ctx = user_files(sb, "multi-ctx", {"Dockerfile": (
            "FROM localhost/base:$TARGETARCH\n"
            "RUN uname -m > /arch\n"
            "CMD [\"cat\", \"/arch\"]\n")})
        name = "%s/multi:1" % reg.host
        r = sb("build", "-q", "--platform", "linux/amd64,linux/arm64", "--push", "-t", name,
               ctx, env=env)
        assert r.returncode == 0, describe(r)
        digest = r.stdout.strip()
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                              "docker://" + name], capture_output=True, check=True).stdout
        import hashlib
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
        plats = sorted(m["platform"]["architecture"] for m in json.loads(raw)["manifests"])
        assert plats == ["amd64", "arm64"]
        for plat, machine in (("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")):
            r = sb("run", "--rm", "--pull", "always", "--platform", plat, name, env=env)
            assert r.returncode == 0 and r.stdout == machine + "\n", describe(r)
        r = sb("build", "--platform", "linux/amd64,linux/arm64", "-t", name, ctx)
        assert r.returncode == 125 and "pushed as a manifest list" in r.stderr
    finally:
        reg.stop()


def test_the_hosts_own_entries_still_hold_in_containers(sb, foreign, images_dir):
    """A user namespace's binfmt_misc hides the host's from its processes:
    the keeper registers the host's entries again.  Here (as root) the
    host gets an extension entry for *.sbtest run by /bin/true (looked up
    in the container, no F flag), removed at the end."""
    import subprocess
    mounted = os.path.ismount("/proc/sys/fs/binfmt_misc")
    if not mounted:
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc",
                        "/proc/sys/fs/binfmt_misc"], check=True)
    try:
        with open("/proc/sys/fs/binfmt_misc/register", "w") as f:
            f.write(":sbtest:E::sbtest::/bin/true:")
        if os.path.exists(os.path.join(sb.runroot, "binfmt.json")):
            kill(keeper(sb)["pid"])
        env = qemu_env(images_dir)
        r = sb("run", "--rm", foreign, "sh", "-c", "uname -m; printf x > /tmp/a.sbtest; "
               "chmod +x /tmp/a.sbtest; /tmp/a.sbtest && echo ran", env=env)
        assert r.stdout == "aarch64\nran\n", describe(r)
    finally:
        with open("/proc/sys/fs/binfmt_misc/sbtest", "w") as f:
            f.write("-1")
        if not mounted:
            subprocess.run(["umount", "/proc/sys/fs/binfmt_misc"], check=True)
        if os.path.exists(os.path.join(sb.runroot, "binfmt.json")):
            kill(keeper(sb)["pid"])
