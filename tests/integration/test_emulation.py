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


def test_without_an_emulator_the_error_says_what_to_install(sb, foreign):
    if os.path.exists(os.path.join(sb.runroot, "binfmt.json")):
        kill(keeper(sb)["pid"])
    r = sb("run", "--rm", foreign, "true", env={"SANDBOX_QEMU_DIR": "/nonexistent"})
    assert r.returncode == 125, describe(r)
    assert "images for linux/arm64 need emulation, and no static qemu-aarch64 was found" \
        in r.stderr
    assert "install qemu-user-static" in r.stderr
    assert sb.ok("ps", "-aq").stdout == ""                # nothing made


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
