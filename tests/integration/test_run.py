"""`sandbox run` as the unprivileged test user: what the container sees.

Every test starts a real container (user, mount, PID, IPC, UTS, cgroup and
network namespaces, overlay root) and asserts on what the process inside
observed, so a wrong uid map, a missing mount or a leaked capability fails."""

import json
import os
import select
import signal
import subprocess
import time

import pytest

from helpers.container import monitor

DOCKER_DEFAULT_CAPS = 0xA80425FB     # Docker's 14 default capabilities


def sh(sb, image, script, *flags, **kw):
    return sb("run", "--rm", *flags, image, "sh", "-c", script, **kw)


def out(sb, image, script, *flags, **kw):
    result = sh(sb, image, script, *flags, **kw)
    assert result.returncode == 0, "exit %d\nstdout:%s\nstderr:%s" % (
        result.returncode, result.stdout, result.stderr)
    return result.stdout


# -- identity and isolation -------------------------------------------------
def test_root_with_the_whole_subuid_range(sb, busybox, test_user):
    text = out(sb, busybox, "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map")
    lines = text.splitlines()
    assert lines[:2] == ["0", "0"]
    maps = [line.split() for line in lines[2:]]
    with open("/etc/subuid") as f:
        start, count = [line.strip().split(":")[1:] for line in f
                        if line.startswith(test_user + ":")][0]
    assert maps[0] == ["0", str(sb.uid), "1"]
    assert maps[1] == ["1", start, count] and int(count) == 65536
    assert maps[2][0] == "0" and maps[3][0] == "1" and maps[3][2] == "65536"


def test_command_is_pid_1_and_ps_sees_only_the_container(sb, busybox):
    text = out(sb, busybox, "echo $$; ps -o pid,comm; true")
    lines = text.splitlines()
    assert lines[0] == "1"
    procs = [line.split() for line in lines[2:]]
    assert procs[0] == ["1", "sh"]
    assert len(procs) == 2, text      # sh and ps, nothing of the host


def test_hostname_is_the_short_id_not_the_hosts(sb, busybox):
    name = out(sb, busybox, "hostname").strip()
    assert name != os.uname().nodename
    assert len(name) == 12 and all(c in "0123456789abcdef" for c in name)
    assert out(sb, busybox, "hostname; cat /etc/hostname", "--hostname", "box1") == "box1\nbox1\n"


def test_network_namespace_has_only_loopback(sb, busybox):
    text = out(sb, busybox, "ls /sys/class/net; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo-up",
               "--network", "none")
    assert text.split() == ["lo", "lo-up"]
    host = out(sb, busybox, "ls /sys/class/net", "--network", "host").split()
    assert sorted(host) == sorted(os.listdir("/sys/class/net"))


def test_chown_to_a_mapped_id_works(sb, busybox):
    text = out(sb, busybox, "touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f")
    assert text == "1000:1000\n"


def test_containers_do_not_share_writes(sb, busybox):
    out(sb, busybox, "echo secret > /root/note; echo x >> /etc/passwd")
    text = out(sb, busybox, "ls /root; grep -c x /etc/passwd; true")
    assert "note" not in text


def test_kernel_interfaces_are_masked_and_read_only(sb, busybox):
    script = """
        for f in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts; do
            printf '%s:' $f; head -c 64 $f 2>/dev/null | wc -c; done
        ls /sys/firmware | wc -l
        echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-ro
        echo b > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-ro
        touch /sys/x 2>/dev/null && echo sysfs-writable || echo sysfs-ro
        mount -t tmpfs none /tmp 2>/dev/null && echo mounted || echo mount-refused
    """
    text = out(sb, busybox, script)
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts"):
        assert "%s:0" % path in text
    lines = text.split()
    assert lines[-5:] == ["0", "sys-ro", "sysrq-ro", "sysfs-ro", "mount-refused"]
    # Docker's --security-opt systempaths=unconfined: nothing masked or
    # made read-only (the rest of the confinement stays)
    open_paths = out(sb, busybox, "head -c 64 /proc/interrupts | wc -c; "
                     "grep -c ' /proc/sys ' /proc/self/mounts; "
                     "grep ^Seccomp: /proc/self/status",
                     "--security-opt", "systempaths=unconfined").split()
    assert int(open_paths[0]) > 0 and open_paths[1:] == ["0", "Seccomp:", "2"]


def test_default_capabilities_are_dockers(sb, busybox):
    text = out(sb, busybox, "grep ^Cap /proc/self/status")
    caps = dict(line.split(":\t") for line in text.splitlines())
    assert int(caps["CapEff"], 16) == DOCKER_DEFAULT_CAPS
    assert int(caps["CapBnd"], 16) == DOCKER_DEFAULT_CAPS
    assert int(caps["CapInh"], 16) == 0


def test_cap_add_drop_and_privileged(sb, busybox):
    dropped = out(sb, busybox, "grep ^CapEff /proc/self/status", "--cap-drop", "ALL")
    assert int(dropped.split()[1], 16) == 0
    no_chown = sh(sb, busybox, "touch /tmp/f; chown 5 /tmp/f", "--cap-drop", "chown")
    assert no_chown.returncode != 0
    added = out(sb, busybox, "mount -t tmpfs none /tmp && echo mounted",
                "--cap-add", "SYS_ADMIN")
    assert added == "mounted\n"
    priv = out(sb, busybox, "grep -E '^CapEff|^NoNewPrivs' /proc/self/status; "
               "head -c 64 /proc/interrupts | wc -c", "--privileged")
    fields = priv.split()
    last_cap = int(open("/proc/sys/kernel/cap_last_cap").read())
    assert int(fields[1], 16) == (1 << (last_cap + 1)) - 1
    assert int(fields[-1]) > 0          # nothing masked
    bad = sb("run", "--rm", "--cap-add", "NOPE", busybox, "true")
    assert bad.returncode == 125 and "unknown capability" in bad.stderr


def test_no_new_privileges(sb, busybox):
    default = out(sb, busybox, "grep ^NoNewPrivs /proc/self/status")
    assert default.split()[1] == "0"
    nnp = out(sb, busybox, "grep ^NoNewPrivs /proc/self/status",
              "--security-opt", "no-new-privileges")
    assert nnp.split()[1] == "1"


def test_seccomp_filter_is_on_by_default(sb, busybox):
    text = out(sb, busybox, "grep ^Seccomp: /proc/self/status")
    assert text.split()[1] == "2"
    off = out(sb, busybox, "grep ^Seccomp: /proc/self/status",
              "--security-opt", "seccomp=unconfined")
    assert off.split()[1] == "0"


# -- filesystem options -------------------------------------------------------
def test_read_only_root_and_tmpfs(sb, busybox):
    text = out(sb, busybox, "touch /x 2>/dev/null && echo wrote || echo ro; "
               "touch /scratch/y && echo tmpfs-ok", "--read-only", "--tmpfs", "/scratch")
    assert text == "ro\ntmpfs-ok\n"


def test_bind_volume_writes_reach_the_host(sb, busybox):
    host = os.path.join(os.path.dirname(sb.root), "vol")
    os.makedirs(host, exist_ok=True)
    os.chown(host, sb.uid, sb.gid)
    out(sb, busybox, "echo from-container > /data/file", "-v", host + ":/data")
    path = os.path.join(host, "file")
    assert open(path).read() == "from-container\n"
    assert os.stat(path).st_uid == sb.uid          # container root = the user
    ro = sh(sb, busybox, "cat /data/file && echo x > /data/other", "-v", host + ":/data:ro")
    assert ro.returncode != 0 and ro.stdout == "from-container\n"
    assert not os.path.exists(os.path.join(host, "other"))
    # ./rel is the current directory's (Docker 23+): missing here, refused.
    relative = sb("run", "--rm", "-v", "./rel:/x", busybox, "true")
    assert relative.returncode == 125 and "bind source path does not exist: /" in \
        relative.stderr and relative.stderr.split("\n")[0].endswith("/rel")


# -- image config and flags ---------------------------------------------------
def test_image_config_env_cmd_and_user(sb, busybox):
    # The image's Cmd is ["sh"]: with stdin a pipe and -i, sh reads it.
    result = sb("run", "--rm", "-i", busybox, input="echo $PATH; id -u\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "0"]
    app = out(sb, busybox, "id -u; id -g; echo $HOME; pwd", "-u", "app", "-w", "/tmp/new")
    assert app.split() == ["1000", "1000", "/home/app", "/tmp/new"]
    relative = sb("run", "--rm", "-w", "tmp", busybox, "pwd")
    assert relative.returncode == 125 and relative.stdout == "", relative.stderr
    assert "the working directory 'tmp' is invalid, it needs to be an absolute path" \
        in relative.stderr
    numeric = out(sb, busybox, "id -u; id -g", "-u", "65534:65534")
    assert numeric.split() == ["65534", "65534"]
    env = out(sb, busybox, "echo $A-$B-$C-$D", "-e", "A=1", "-e", "B=two words",
              "-e", "C", "-e", "D", env={"C": "from-caller"})
    assert env == "1-two words-from-caller-\n"
    unknown = sb("run", "--rm", "-u", "nosuchuser", busybox, "true")
    assert unknown.returncode != 0 and "nosuchuser" in unknown.stderr


def test_env_file_and_entrypoint(sb, busybox):
    envfile = os.path.join(os.path.dirname(sb.root), "env.list")
    with open(envfile, "w") as f:
        f.write("# comment\nFOO=bar\nEMPTY=\n")
    os.chmod(envfile, 0o644)
    text = out(sb, busybox, "echo $FOO", "--env-file", envfile)
    assert text == "bar\n"
    ep = sb.ok("run", "--rm", "--entrypoint", "echo", busybox, "a", "b")
    assert ep.stdout == "a b\n"


def test_stdin_only_with_i(sb, busybox):
    piped = sb("run", "--rm", "-i", busybox, "cat", input="hello\n")
    assert piped.stdout == "hello\n"
    closed = sb("run", "--rm", busybox, "cat", input="hello\n")
    assert closed.returncode == 0 and closed.stdout == ""


# -- exit codes and signals ---------------------------------------------------
def test_exit_codes(sb, busybox):
    assert sh(sb, busybox, "exit 7").returncode == 7
    not_found = sb("run", "--rm", busybox, "no-such-command")
    assert not_found.returncode == 127
    assert "no-such-command" in not_found.stderr and "not found" in not_found.stderr
    not_exec = sb("run", "--rm", busybox, "/etc/passwd")
    assert not_exec.returncode == 126, not_exec.stderr
    assert "permission denied" in not_exec.stderr
    killed = sh(sb, busybox, "sh -c 'kill -9 $$'; exit $?")
    assert killed.returncode == 137
    no_image = sb("run", "--rm", "no-such-image", "true")
    assert no_image.returncode == 125 and "Unable to find image" in no_image.stderr
    bad_flag = sb("run", "--no-such-flag", busybox)
    assert bad_flag.returncode == 125


def test_a_program_of_another_platform_gives_126(sb, busybox):
    """An ELF header for arm64 (what `run --platform linux/arm64` of a real
    image brings where nothing emulates it): exec format error, 126, for
    PID 1, under --init and for exec; not a setup failure (125)."""
    d = os.path.join(os.path.dirname(sb.root), "foreign")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "prog")
    with open(path, "wb") as f:
        f.write(b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00\xb7\x00" + b"\0" * 44)
    os.chmod(path, 0o755)
    os.chmod(d, 0o755)
    for extra in ([], ["--init"]):
        r = sb("run", "--rm", *extra, "-v", path + ":/prog:ro", busybox, "/prog")
        assert r.returncode == 126, r.stderr
        assert 'exec: "/prog": exec format error' in r.stderr
        assert "another architecture" in r.stderr
    cid = sb.ok("run", "-d", "-v", path + ":/prog:ro", busybox, "sleep", "60").stdout.strip()
    r = sb("exec", cid, "/prog")
    assert r.returncode == 126 and "exec format error" in r.stderr, r.stderr
    sb.ok("rm", "-f", cid)


def test_sigint_is_forwarded(sb, busybox):
    proc = sb.popen("run", "--rm", busybox, "sh", "-c",
                    "trap 'exit 130' INT; echo ready; while :; do sleep 0.1; done")
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 130


def test_sigterm_is_forwarded(sb, busybox):
    proc = sb.popen("run", "--rm", busybox, "sh", "-c",
                    "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done")
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 3
    assert proc.stdout.read() == "got-term\n"


def test_pid_1_without_handler_ignores_sigint(sb, busybox):
    # sleep installs no handler; as PID 1 the kernel drops the signal.
    proc = sb.popen("run", "--rm", busybox, "sleep", "2")
    time.sleep(0.8)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def test_sigkill_of_the_container_gives_137(sb, busybox):
    proc = sb.popen("run", "--name", "victim", busybox, "sh", "-c", "echo ready; sleep 60")
    assert proc.stdout.readline() == "ready\n"
    state = _state_of(sb, "victim")
    assert state["Status"] == "running" and state["Pid"] > 0
    os.kill(state["Pid"], signal.SIGKILL)
    assert proc.wait(timeout=20) == 137
    state = _state_of(sb, "victim")
    assert state["Status"] == "exited" and state["ExitCode"] == 137


def _state_of(sb, name):
    cid = os.readlink(os.path.join(sb.root, "names", name))
    with open(os.path.join(sb.root, "containers", cid, "state.json")) as f:
        return json.load(f)


# -- cleanup --------------------------------------------------------------------
def test_rm_leaves_nothing(fresh_sb, images_dir):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    fresh_sb.ok("run", "--rm", "--name", "gone", "busybox", "sh", "-c",
                "touch /x; mkdir -p /home/app/d; chown 1000 /home/app/d; touch /home/app/d/f")
    assert os.listdir(os.path.join(fresh_sb.root, "containers")) == []
    assert os.listdir(os.path.join(fresh_sb.root, "names")) == []
    with open("/proc/self/mountinfo") as f:
        assert fresh_sb.root not in f.read()
    # The name is free again.
    fresh_sb.ok("run", "--rm", "--name", "gone", "busybox", "true")
    # The directory left the store before `run` returned (renamed into the
    # staging area); the container's C process deletes it right after.
    staging = os.path.join(fresh_sb.root, "tmp")

    def graves():
        return [n for n in (os.listdir(staging) if os.path.isdir(staging) else [])
                if n.startswith("rm-")]
    deadline = time.monotonic() + 10
    while graves() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert graves() == []


@pytest.mark.parametrize("flags, error", [
    (["-u", "nosuchuser"], "unable to find user nosuchuser"),       # (create)
    (["-u", "99999999"], "user 99999999:0 is not mapped"),          # (G's plan)
    (["-v", "/nonexistent/x:/x"], "bind source path does not exist: /nonexistent/x"),
])
def test_a_run_refused_after_its_root_is_mounted_leaves_nothing(fresh_sb, images_dir,
                                                                 flags, error):
    """C mounts the root filesystem while the CLI still writes the record
    (Starter.mount_root_early): a refusal after that (an unknown user is
    found only then; an unmapped one or a missing bind source while G's
    plan is made) ends C before the directory goes, and leaves nothing."""
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    for _ in range(5):
        res = fresh_sb("run", "--rm", "--name", "never", *flags, "busybox", "true")
        assert res.returncode == 125 and error in res.stderr, res.stderr
        assert os.listdir(os.path.join(fresh_sb.root, "containers")) == []
        assert os.listdir(os.path.join(fresh_sb.root, "names")) == []
        assert fresh_sb.ok("ps", "-aq").stdout == ""
    fresh_sb.ok("run", "--rm", "--name", "never", "busybox", "true")


def _cpus_allowed(pid="self"):
    with open("/proc/%s/status" % pid) as f:
        return next(line.split()[1] for line in f if line.startswith("Cpus_allowed_list:"))


def test_the_container_and_its_helpers_keep_the_whole_cpu_set(sb, busybox):
    """The CLI and C split the CPUs between them while a container starts
    (runtime.Starter); the container, its network helper and its
    supervisor get the caller's whole set back."""
    whole = _cpus_allowed()
    inside = sb.ok("run", "--rm", busybox, "grep", "Cpus_allowed_list", "/proc/self/status")
    assert inside.stdout.split()[-1] == whole
    sb.ok("network", "create", "cpus")
    # The foreground run leaves its user network's holder and helper behind.
    sb.ok("run", "--rm", "--network", "cpus", busybox, "true")
    cid = sb.ok("run", "-d", busybox, "sleep", "60").stdout.strip()
    try:
        pids = subprocess.run(["pgrep", "-u", str(sb.uid)], capture_output=True,
                              text=True).stdout.split()
        assert len(pids) >= 4          # supervisor, C, PID 1, pasta, the network's ...
        for pid in pids:
            try:
                assert _cpus_allowed(pid) == whole, open("/proc/%s/cmdline" % pid).read()
            except FileNotFoundError:
                pass
    finally:
        sb.ok("rm", "-f", cid)
        sb.ok("network", "rm", "cpus")


def _comm(pid):
    with open("/proc/%s/comm" % pid) as f:
        return f.read().strip()


def _ppid(pid):
    with open("/proc/%s/status" % pid) as f:
        return int(next(line.split()[1] for line in f if line.startswith("PPid:")))


@pytest.mark.parametrize("flags, native", [
    ([], True),
    (["-v", "/etc/hostname:/etc/host-name:ro", "-w", "/tmp/work", "-u", "1000:1000"], True),
    (["--ulimit", "nofile=512:512"], False),     # (a step of the Python G)
])
def test_a_foreground_run_starts_through_the_native_c_where_it_can(sb, busybox, flags,
                                                                   native):
    """C, the container's parent, is sandbox-init's start mode
    (native/start.c) for a foreground run whose setup it can carry out,
    and the Python fork of the CLI otherwise; the container is the same,
    and either is gone with it, --rm leaving nothing."""
    name = "nativec%d" % len(flags)
    proc = sb.popen("run", "--rm", "--name", name, *flags, busybox, "sh", "-c",
                    "echo up; id -u; pwd; ulimit -n; cat /etc/host-name 2>/dev/null; "
                    "echo end; sleep 60")
    try:
        assert proc.stdout.readline() == "up\n"
        cid, pid = sb.ok("inspect", "-f", "{{.Id}} {{.State.Pid}}", name).stdout.split()
        assert (_comm(_ppid(pid)) == "sandbox-start") == native
        lines = list(iter(lambda: proc.stdout.readline().strip(), "end"))
        if "-u" in flags:
            with open("/etc/hostname") as f:
                assert lines[:2] + lines[3:] == ["1000", "/tmp/work", f.read().strip()]
        else:
            assert lines[:2] == ["0", "/"] and len(lines) == 3
        if "--ulimit" in flags:
            assert lines[2] == "512"
        os.kill(int(pid), signal.SIGKILL)
        assert proc.wait(timeout=10) == 137
    finally:
        proc.kill()
        proc.communicate()
    assert sb.ok("ps", "-a", "-q", "--filter", "name=" + name).stdout == ""
    deadline = time.monotonic() + 10     # (C removes the directory after the CLI exits)
    while os.path.exists(os.path.join(sb.root, "containers", cid)) or [
            n for n in os.listdir(os.path.join(sb.root, "tmp")) if cid in n]:
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.parametrize("flags, native", [([], True), (["--ulimit", "nofile=512:512"], False)])
def test_a_detached_container_starts_through_the_native_c_where_it_can(sb, busybox, flags,
                                                                      native):
    """A detached container's C is the native one too where it can be, and
    becomes the native monitor's reaper as the Python C does: exec'd with
    no environment by the native C, with the supervisor's by the Python
    one."""
    cid = sb.ok("run", "-d", "--rm", *flags, busybox, "sleep", "60").stdout.strip()
    try:
        pid = int(sb.ok("inspect", "-f", "{{.State.Pid}}", cid).stdout)
        reaper = _ppid(pid)
        assert _comm(reaper) == "sandbox-monitor"
        with open("/proc/%d/environ" % reaper, "rb") as f:
            assert (f.read() == b"") == native
    finally:
        sb.ok("rm", "-f", cid)


@pytest.mark.parametrize("rm", [True, False])
def test_a_run_whose_cli_is_killed_ends_its_container_as_any_end(sb, busybox, rm):
    """SIGKILL of a foreground `run` (a CI job cancelled hard, the OOM
    killer): its container ends with it, and then as after any end: an
    --rm one is removed (gone from ps -a, its name free again, nothing left
    in the store), one without --rm stays, exited (137)."""
    name = "killedcli-rm" if rm else "killedcli"
    proc = sb.popen("run", *(["--rm"] if rm else []), "--name", name, busybox,
                    "sh", "-c", "echo up; sleep 60")
    try:
        assert proc.stdout.readline() == "up\n"
        cid = sb.ok("inspect", "-f", "{{.Id}}", name).stdout.strip()
    finally:
        proc.kill()
        proc.communicate()
    deadline = time.monotonic() + 10
    if rm:
        while os.path.exists(os.path.join(sb.root, "containers", cid)) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert sb.ok("ps", "-a", "-q", "--filter", "name=" + name).stdout == ""
        assert sb.ok("run", "--rm", "--name", name, busybox, "echo", "again").stdout == "again\n"
        leftovers = os.listdir(os.path.join(sb.root, "tmp")) if os.path.isdir(
            os.path.join(sb.root, "tmp")) else []
        assert not [n for n in leftovers if cid in n], leftovers
    else:
        while sb.ok("inspect", "-f", "{{.State.Status}}", name).stdout.strip() != "exited" \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sb.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                     name).stdout.split() == ["exited", "137"]
        sb.ok("rm", name)


def test_rm_containers_get_a_volatile_overlay(sb, busybox):
    """--rm: the upper layer is thrown away, so the kernel need not sync it
    (overlay's volatile option); a kept container's is synced as usual."""
    script = "grep ' / / ' /proc/self/mountinfo"
    assert "volatile" in out(sb, busybox, script)
    kept = sb.ok("run", busybox, "sh", "-c", script)
    assert "userxattr" in kept.stdout and "volatile" not in kept.stdout


def test_the_runtime_files_leave_the_upper_layer_empty(sb, busybox):
    """/etc/hosts, /etc/hostname and /etc/resolv.conf are mounted on the
    shared mount point layer (layers/mountpoints), not on files made in
    the container's upper layer: a container that writes nothing leaves
    it empty.  An image whose /etc/resolv.conf is a symlink keeps it: the
    file is mounted where the symlink points, as before."""
    cid = sb.ok("run", "-d", busybox, "sh", "-c", "cat /etc/hostname; sleep 60").stdout.strip()
    upper = os.path.join(sb.root, "containers", cid, "upper")
    deadline = time.monotonic() + 10
    while cid[:12] not in sb.ok("logs", cid).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert os.listdir(upper) == []
    assert sb.ok("diff", cid).stdout == ""
    sb.ok("rm", "-f", cid)
    # (A RUN cannot replace the mounted file: COPY places the symlink.)
    ctx = os.path.join(os.path.dirname(sb.root), "linked-resolv")
    os.makedirs(os.path.join(ctx, "etc"), exist_ok=True)
    link = os.path.join(ctx, "etc", "resolv.conf")
    if not os.path.islink(link):
        os.symlink("/run/net/resolv.conf", link)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM %s\nRUN mkdir -p /run/net\nCOPY etc/ /etc/\n" % busybox)
    for d in (ctx, os.path.join(ctx, "etc")):
        os.chmod(d, 0o755)
    sb.ok("build", "-q", "-t", "localhost/linked-resolv", ctx)
    r = sb.ok("run", "--rm", "localhost/linked-resolv", "sh", "-c",
              "readlink /etc/resolv.conf; grep -c nameserver /run/net/resolv.conf")
    assert r.stdout.split()[0] == "/run/net/resolv.conf" and int(r.stdout.split()[1]) >= 1
    sb.ok("rmi", "localhost/linked-resolv")


def test_name_clash_is_refused(sb, busybox):
    sb.ok("run", "--name", "taken", busybox, "true")
    again = sb("run", "--name", "taken", busybox, "true")
    assert again.returncode == 125
    assert "already in use" in again.stderr


# -- storage drivers ------------------------------------------------------------
@pytest.mark.parametrize("driver", ["overlay", "fuse-overlayfs", "vfs"])
def test_storage_drivers_show_the_layers_right(fresh_sb, images_dir, driver):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    script = ("ls /data/dir; test -e /data/gone && echo gone-visible; "
              "stat -c '%u:%g %a' /data/owned1000 /data/nobody /data/suid; "
              "echo new > /data/dir/d; cat /data/dir/d; grep -o '^[a-z-]*overlay[a-z-]*' /proc/mounts "
              "| head -1")
    result = fresh_sb("--storage-driver", driver, "run", "--rm", "localhost/layers",
                      "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["c"]                    # opaque dir: a and b gone
    assert "gone-visible" not in result.stdout          # whiteout honoured
    assert lines[1:4] == ["1000:1000 644", "65534:65534 644", "0:0 4755"]
    assert lines[4] == "new"
    info = fresh_sb.ok("--storage-driver", driver, "info").stdout
    assert "Storage driver:  %s" % driver in info


def test_info_reports_the_host(sb):
    text = sb.ok("info").stdout
    assert "Storage driver:  overlay" in text          # kernel 6.x: overlay in userns
    assert "ID map:          uid 0->%d (1)" % sb.uid in text
    assert "Cgroups:" in text and "newuidmap" in text
    # scripts/setup-host built it (and the frozen binary carries it).
    assert "Supervisor:      native monitor" in text
    assert monitor.NATIVE_NAME in text
    assert "Setup, --init:   " in text and monitor.INIT_NAME in text
    text = sb.ok("info", env={"SANDBOX_MONITOR": "python"}).stdout
    assert "Supervisor:      Python (no native monitor)" in text
    assert "Setup, --init:   Python (no sandbox-init)" in text


def test_info_format_takes_dockers_fields(sb, busybox):
    """`info --format` as scripts use Docker's: its field names, counts of
    containers and images, the cgroup version this hybrid host has (1), the
    rootless security option; {{json .}} and json give the whole object,
    sandbox's own report under .Sandbox; an unknown field is an error."""
    sb.ok("run", "-d", "--name", "info-up", busybox, "sleep", "60")
    try:
        out = sb.ok("info", "--format", "{{.ServerVersion}}|{{.Driver}}|{{.CgroupVersion}}|"
                    "{{.OSType}}|{{.Architecture}}|{{.ContainersRunning}}|{{.NCPU}}|"
                    "{{.DockerRootDir}}").stdout.strip().split("|")
        assert out[1:5] == ["overlay", "1", "linux", os.uname().machine]
        assert out[0] and int(out[5]) == 1 and int(out[6]) == os.cpu_count()
        assert out[7] == sb.root
        whole = json.loads(sb.ok("info", "--format", "{{json .}}").stdout)
        assert whole == json.loads(sb.ok("info", "--format", "json").stdout)
        assert "name=rootless" in whole["SecurityOptions"]
        assert whole["Images"] >= 1 and whole["Containers"] >= 1
        assert whole["Sandbox"]["storage_driver"] == "overlay"
        assert any("no resource limits" in w for w in whole["Warnings"])
        r = sb("info", "--format", "{{.NoSuchField}}")
        assert r.returncode == 125 and "NoSuchField" in r.stderr
    finally:
        sb("rm", "-f", "info-up")


# -- a user without a subordinate id range -------------------------------------
def test_single_id_map_without_subuid_range(sb, images_dir, nosub_user):
    load = sb("load", "-i", os.path.join(images_dir, "busybox.tar"), user=nosub_user)
    assert load.returncode == 0, load.stderr
    result = sb("run", "--rm", "busybox", "sh", "-c",
                "id -u; cat /proc/self/uid_map; touch /tmp/f; chown 1000 /tmp/f",
                user=nosub_user)
    assert result.returncode != 0
    lines = result.stdout.splitlines()
    assert lines[0] == "0"
    assert len(lines) == 2 and lines[1].split()[2] == "1"     # one id mapped
    assert "no subordinate id range" in result.stderr
    assert "chown" in result.stderr                            # the warning says why
    assert result.stderr.count("WARNING") == 1


# -- a real distribution ----------------------------------------------------------
@pytest.fixture(scope="module")
def debian(sb, images_dir):
    sb.ok("load", "-i", os.path.join(images_dir, "debian.tar"), timeout=300)
    return "localhost/debian:bookworm"


def test_debian_keeps_owners_and_useradd_works(sb, debian):
    text = out(sb, debian, "stat -c '%U:%G %g %a' /etc/shadow; "
               "useradd -m -u 1234 bob && id bob && stat -c %u /home/bob")
    lines = text.splitlines()
    assert lines[0] == "root:shadow 42 640"
    assert lines[1].startswith("uid=1234(bob)")
    assert lines[2] == "1234"


@pytest.fixture(scope="module")
def threads_probe(sb):
    """native/threads_and_clone3.c, built static (busybox has no libc) next
    to the module's store, where the test user reads it."""
    import tempfile
    out = tempfile.mkdtemp(dir=os.path.dirname(sb.root))
    os.chmod(out, 0o755)
    src = os.path.join(os.path.dirname(__file__), "native", "threads_and_clone3.c")
    subprocess.run(["gcc", "-O2", "-static", "-pthread", "-o",
                    os.path.join(out, "threads_and_clone3"), src], check=True)
    return out


def test_seccomp_refuses_new_namespaces_unless_sys_admin(sb, busybox, threads_probe):
    """As Docker's and podman's default profiles: a new user namespace
    would give the container every capability over namespaces of its own
    (netfilter, mounts), past its bounding set.  Threads and posix_spawn
    still work (glibc falls back from clone3's ENOSYS to clone)."""
    tries = ("for f in -U -n -m -p -i -u -C; do unshare $f true 2>/dev/null "
             "&& echo \"$f made\" || echo \"$f refused\"; done")
    assert out(sb, busybox, tries).split() == \
        ["-U", "refused", "-n", "refused", "-m", "refused", "-p", "refused",
         "-i", "refused", "-u", "refused", "-C", "refused"]
    probe = out(sb, busybox, "/probe/threads_and_clone3", "-v", threads_probe + ":/probe:ro")
    assert probe == "thread 42\nspawn 0\nclone3 ENOSYS\n"
    # CAP_SYS_ADMIN lifts the rules (Docker's rule), as does seccomp=unconfined
    made = out(sb, busybox, "unshare -U true && unshare -n true && echo made",
               "--cap-add", "SYS_ADMIN")
    assert made == "made\n"
    assert out(sb, busybox, "unshare -U true && echo made",
               "--security-opt", "seccomp=unconfined") == "made\n"
    probe = out(sb, busybox, "/probe/threads_and_clone3", "-v", threads_probe + ":/probe:ro",
                "--cap-add", "SYS_ADMIN")
    assert probe == "thread 42\nspawn 0\nclone3 EINVAL\n"
    # exec runs under the same filter
    sb.ok("run", "-d", "--name", "no-new-ns", busybox, "sleep", "60")
    r = sb("exec", "no-new-ns", "unshare", "-U", "true")
    assert r.returncode == 1 and "Operation not permitted" in r.stderr
    sb.ok("rm", "-f", "no-new-ns")


def test_a_seccomp_profile_replaces_the_default_filter(sb, busybox):
    """--security-opt seccomp=PROFILE (Docker's form): its rules, for the
    container's process and exec's, instead of sandbox's own filter; rules
    that include a capability apply only with it; a bad profile is refused
    before anything is made."""
    import pathlib
    import tempfile
    tmp_path = pathlib.Path(tempfile.mkdtemp(dir=os.path.dirname(sb.root)))  # (the user's)
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30,
         "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}))
    os.chmod(tmp_path, 0o755)
    os.chmod(profile, 0o644)
    flags = ["--security-opt", "seccomp=%s" % profile]
    text = out(sb, busybox, "mkdir /x 2>&1; rmdir /none 2>&1; "
               "unshare -U true && echo own-userns", *flags).splitlines()
    assert text[0] == "mkdir: can't create directory '/x': Permission denied"
    assert "No such file or directory" in text[1]     # rmdir's rule needs SYS_ADMIN
    assert text[2] == "own-userns"                    # the profile's rules, not sandbox's
    text = sh(sb, busybox, "rmdir /none 2>&1", *flags, "--cap-add", "SYS_ADMIN").stdout
    assert "Read-only file system" in text
    sb.ok("run", "-d", "--name", "profiled", *flags, busybox, "sleep", "60")
    r = sb("exec", "profiled", "mkdir", "/z")
    assert r.returncode == 1 and "Permission denied" in r.stderr
    sb.ok("rm", "-f", "profiled")
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_NOTIFY"}')
    os.chmod(bad, 0o644)
    r = sb("run", "--rm", "--security-opt", "seccomp=%s" % bad, busybox, "true")
    assert r.returncode == 125 and "SCMP_ACT_NOTIFY is not supported" in r.stderr


def test_seccomp_denies_keyctl(sb, debian):
    # perl-base is in every Debian: syscall 250 is keyctl on x86_64.
    script = "perl -e '$r = syscall(250, 0, 0, 0, 0); print $r == -1 ? qq{$!\\n} : qq{ok\\n}'"
    assert out(sb, debian, script) == "Operation not permitted\n"
    # setreuid (113) passes: the deny list once held i386's vm86old by its
    # 32-bit number, which on x86_64 is setreuid
    script = "perl -e '$r = syscall(113, -1, -1); print $r == -1 ? qq{$!\\n} : qq{ok\\n}'"
    assert out(sb, debian, script) == "ok\n"


def test_seccomp_denies_io_uring_and_personas_that_weaken_aslr(sb, debian):
    # io_uring_setup (425) with a zeroed params block; setarch is util-linux's
    script = ("perl -e 'my $p = qq{\\0} x 120; $r = syscall(425, 1, $p); "
              "print $r == -1 ? qq{$!\\n} : qq{ok\\n}'; "
              "setarch -R true 2>/dev/null && echo no-aslr || echo refused; "
              "setarch linux32 uname -m")
    assert out(sb, debian, script) == "Operation not permitted\nrefused\ni686\n"
    unconfined = out(sb, debian, "setarch -R true && echo no-aslr",
                     "--security-opt", "seccomp=unconfined")
    assert unconfined == "no-aslr\n"


def test_unusable_dev_fuse_is_explained(fresh_sb, images_dir):
    """Many VMs ship /dev/fuse 0600: the error must say what to do."""
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    mode = os.stat("/dev/fuse").st_mode & 0o777
    os.chmod("/dev/fuse", 0o600)
    try:
        result = fresh_sb("--storage-driver", "fuse-overlayfs", "run", "--rm",
                          "busybox", "true")
        info = fresh_sb("info")
    finally:
        os.chmod("/dev/fuse", mode)
    assert result.returncode == 125
    assert "/dev/fuse is not usable" in result.stderr
    assert "chmod 0666 /dev/fuse" in result.stderr
    assert "/dev/fuse is not usable by this user" in info.stdout
    assert os.listdir(os.path.join(fresh_sb.root, "containers")) == []


def test_the_user_namespace_keeper_holds_no_inherited_fd(sb, busybox):
    """The keeper (`sandbox-userns`, which lives on) must not keep what its
    first caller had open: scripts/test's lock, held by a keeper forever,
    made the next run of the suite wait forever."""
    runroot = os.path.join(sb.data_dir()[1], "fresh-keeper")
    r, w = os.pipe()
    try:
        proc = sb.popen("run", "--rm", "--network", "none", busybox, "true",
                        env={"SANDBOX_RUNROOT": runroot}, pass_fds=(w,),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        w = None
        assert proc.wait(timeout=60) == 0
        # EOF once every process that inherited the pipe has let it go.
        ready, _, _ = select.select([r], [], [], 20)
        assert ready and os.read(r, 1) == b"", "a process kept the caller's fd"
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
        with open(os.path.join(runroot, "userns.json")) as f:
            os.kill(json.load(f)["pid"], signal.SIGKILL)


def test_ulimit_sysctl_shm_size_group_add_device_and_cidfile(sb, busybox):
    cidfile = os.path.join(sb.root, "..", "cid")
    if os.path.exists(cidfile):
        os.unlink(cidfile)
    fuse = ["--device", "/dev/fuse"] if os.access("/dev/fuse", os.R_OK | os.W_OK) and \
        oct(os.stat("/dev/fuse").st_mode)[-3:] == "666" else []
    r = sb("run", "--name", "tuned", "--cidfile", cidfile,
           "--ulimit", "nofile=256:512", "--ulimit", "core=0",
           "--sysctl", "net.ipv4.ip_unprivileged_port_start=0",
           "--sysctl", "kernel.shmmax=1000000", "--sysctl", "fs.mqueue.msg_max=20",
           "--shm-size", "8m", "--group-add", "app", "--group-add", "4321", *fuse,
           busybox, "sh", "-c",
           "ulimit -n; ulimit -Hn; ulimit -c; cat /proc/sys/net/ipv4/ip_unprivileged_port_start"
           " /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max; "
           "df -k /dev/shm | tail -1 | awk '{print $2}'; id -G; "
           "test -c /dev/fuse && echo fuse || echo no-fuse")
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert out[:8] == ["256", "512", "0", "0", "1000000", "20", "8192", "0"], out
    assert out[8:10] == ["1000", "4321"]
    assert out[10] == ("fuse" if fuse else "no-fuse")
    with open(cidfile) as f:
        cid = f.read()
    info = json.loads(sb.ok("inspect", "tuned").stdout)[0]
    assert info["Id"] == cid
    hc = info["HostConfig"]
    assert hc["ShmSize"] == 8 * 1024 * 1024 and hc["GroupAdd"] == ["app", "4321"]
    assert {"Name": "nofile", "Soft": 256, "Hard": 512} in hc["Ulimits"]
    assert hc["Sysctls"]["kernel.shmmax"] == "1000000"
    if fuse:
        assert hc["Devices"][0]["PathOnHost"] == "/dev/fuse"
    # The id file is not overwritten.
    r = sb("run", "--rm", "--cidfile", cidfile, busybox, "true")
    assert r.returncode == 125 and "Container ID file found" in r.stderr
    sb.ok("rm", "tuned")
    os.unlink(cidfile)
    for flags, message in (
            (["--ulimit", "nofile=10:999999999"], "above this user's hard limit"),
            (["--ulimit", "bogus=1"], "invalid --ulimit"),
            (["--sysctl", "vm.swappiness=1"], "not allowed in a container"),
            (["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
             "not allowed with --network host"),
            (["--device", "/dev/null-nope"], "--device /dev/null-nope"),
            (["--device", "/etc/passwd"], "not a device node"),
            (["--shm-size", "lots"], "invalid size"),
            (["--group-add", "nosuchgroup"], "unable to find group nosuchgroup")):
        r = sb("run", "--rm", *flags, busybox, "true")
        assert r.returncode == 125 and message in r.stderr, (flags, r.stderr)
        assert "Traceback" not in r.stderr


def test_labels_annotations_domainname_oom_score_and_cgroupns(sb, busybox):
    label_file = os.path.join(os.path.dirname(sb.root), "labels")
    with open(label_file, "w") as f:
        f.write("# a comment\n\nteam=core\nempty\ntier=file\n")
    os.chmod(label_file, 0o644)
    r = sb("run", "--name", "decorated", "--label-file", label_file, "--label", "tier=flag",
           "--annotation", "org.example.note=hi", "--domainname", "example.org",
           "--oom-score-adj", "500", "--cgroupns", "host", busybox, "sh", "-c",
           "cat /proc/sys/kernel/domainname /proc/self/oom_score_adj; "
           "readlink /proc/self/ns/cgroup")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["example.org", "500", os.readlink("/proc/self/ns/cgroup")]
    info = json.loads(sb.ok("inspect", "decorated").stdout)[0]
    assert info["Config"]["Labels"] == {"team": "core", "empty": "", "tier": "flag"}
    assert info["Config"]["Domainname"] == "example.org"
    hc = info["HostConfig"]
    assert hc["Annotations"] == {"org.example.note": "hi"}
    assert (hc["OomScoreAdj"], hc["CgroupnsMode"]) == (500, "host")
    sb.ok("rm", "decorated")
    # By default: a cgroup namespace of its own, the user's OOM score.
    r = sb.ok("run", "--rm", busybox, "sh", "-c",
              "cat /proc/self/oom_score_adj; readlink /proc/self/ns/cgroup")
    assert r.stdout.split()[0] == "0"
    assert r.stdout.split()[1] != os.readlink("/proc/self/ns/cgroup")
    for flags, message in (
            (["--oom-score-adj", "-500"], "may raise it, not lower it"),
            (["--oom-score-adj", "1001"], "between -1000 and 1000"),
            (["--annotation", "io.sandbox.init=true"], "io.sandbox.* keys are sandbox's own"),
            (["--label-file", "/nonexistent"], "cannot read label file /nonexistent"),
            (["--cgroupns", "other"], "invalid choice"),
            (["-a", "stdmiddle"], "valid streams are STDIN, STDOUT and STDERR"),
            (["-d", "-a", "stdout"], "conflicting options: -a and -d")):
        r = sb("run", "--rm", *flags, busybox, "true")
        assert r.returncode == 125 and message in r.stderr, (flags, r.stderr)
        assert "Traceback" not in r.stderr


def test_attach_only_some_streams(sb, busybox):
    script = "echo out; echo err >&2; cat"
    r = sb("run", "--rm", "-a", "stderr", busybox, "sh", "-c", script)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "err\n")
    r = sb("run", "--rm", "-a", "STDOUT", "-i", busybox, "sh", "-c", script, input="in\n")
    assert (r.stdout, r.stderr) == ("out\n", "")      # stdin not attached
    r = sb("run", "--rm", "-a", "stdin", "-a", "stdout", "-i", busybox, "sh", "-c", script,
           input="in\n")
    assert r.stdout == "out\nin\n"


def test_sharing_another_containers_pid_ipc_and_uts_namespaces(sb, busybox):
    """--pid/--ipc/--uts container:NAME: a sidecar sees the other
    container's processes (its PID 1 included), IPC namespace and host
    name; without them it sees its own."""
    sb("rm", "-f", "shared-target")
    sb.ok("run", "-d", "--name", "shared-target", "--hostname", "target-host",
          busybox, "sleep", "60")
    try:
        probe = ("ps -o comm | grep -c '^sleep'; hostname; "
                 "[ $(readlink /proc/1/ns/ipc) = $(readlink /proc/self/ns/ipc) ] "
                 "&& echo same-ipc || echo other-ipc")
        out = sb.ok("run", "--rm", "--pid", "container:shared-target", "--ipc",
                    "container:shared-target", "--uts", "container:shared-target",
                    busybox, "sh", "-c", probe).stdout.split()
        assert out == ["1", "target-host", "same-ipc"], out
        out = sb.ok("run", "--rm", "--pid", "container:shared-target", busybox,
                    "sh", "-c", probe).stdout.split()
        assert out[0] == "1" and out[1] != "target-host" and out[2] == "other-ipc", out
        out = sb.ok("run", "--rm", busybox, "sh", "-c", probe).stdout.split()
        assert out[0] == "0", out
        mode = sb.ok("inspect", "-f", "{{.HostConfig.PidMode}}", "shared-target").stdout
        assert mode == "\n"
        for flags, message in ((["--pid", "elsewhere"], "invalid --pid 'elsewhere'"),
                               (["--ipc", "container:nope"], "no such container"),
                               (["--uts", "container:shared-target", "-h", "x"],
                                "conflicting options")):
            r = sb("run", "--rm", *flags, busybox, "true")
            assert r.returncode == 125 and message in r.stderr, (flags, r.stderr)
        sb.ok("stop", "-t", "0", "shared-target")
        r = sb("run", "--rm", "--pid", "container:shared-target", busybox, "true")
        assert r.returncode == 125 and "it is not running" in r.stderr
    finally:
        sb("rm", "-f", "shared-target")


def _host_processes(marker):
    """Host pids whose command line holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def test_pid_host_sees_the_hosts_processes_and_ends_its_own(sb, busybox):
    """--pid host (Docker's, as rootless podman has it): the container
    stays in the host's PID namespace (the host's /proc bound, still with
    the masked and read-only paths), so it sees the host's processes and its
    command is not PID 1; its own processes still end with it (C kills what
    is left in its mount namespace), `top` lists only them, `inspect` says
    host."""
    witness = sb.popen_raw(["sleep", "31.4159"])
    try:
        out = sb.ok("run", "--rm", "--pid", "host", busybox, "sh", "-c",
                    "echo pid=$$; ps -o args | grep -c '^sleep 31.4159'; "
                    "wc -c < /proc/keys; touch /proc/sys/kernel/x 2>&1 || echo ro").stdout
        lines = out.split("\n")
        assert lines[0] != "pid=1" and lines[1] == "1" and lines[2].strip() == "0", out
        assert "ro" in lines[-2], out
    finally:
        witness.kill()
        witness.wait()
    sb.ok("run", "--rm", "--pid", "host", busybox, "sh", "-c", "sleep 27.1828 >/dev/null 2>&1 & echo up")
    assert _host_processes("sleep\x0027.1828") == []
    sb("rm", "-f", "pid-host")
    sb.ok("run", "-d", "--name", "pid-host", "--pid", "host", busybox,
          "sh", "-c", "sleep 16.18 >/dev/null 2>&1 & exec sleep 600")
    try:
        for _ in range(100):
            top = sb.ok("top", "pid-host").stdout
            if "16.18" in top:
                break
            time.sleep(0.05)
        assert [line.split()[-2:] for line in top.splitlines()[1:]] == \
            [["sleep", "600"], ["sleep", "16.18"]], top
        assert sb.ok("inspect", "-f", "{{.HostConfig.PidMode}}", "pid-host").stdout == "host\n"
        sb.ok("rm", "-f", "pid-host")
        assert _host_processes("sleep\x0016.18") == []
    finally:
        sb("rm", "-f", "pid-host")


def test_uts_and_ipc_host(sb, busybox):
    """--uts host: the host's name (and no --hostname); --ipc host: the
    host's IPC namespace and its /dev/shm (no --shm-size)."""
    import socket
    out = sb.ok("run", "--rm", "--uts", "host", busybox, "hostname").stdout
    assert out == socket.gethostname() + "\n"
    r = sb("run", "--rm", "--uts", "host", "--hostname", "x", busybox, "true")
    assert r.returncode == 125 and "conflicting options: --hostname and --uts host" in r.stderr
    name = "sandbox-test-shm-%d" % os.getpid()
    with open("/dev/shm/" + name, "w") as f:
        f.write("from the host\n")
    try:
        out = sb.ok("run", "--rm", "--ipc", "host", busybox, "cat", "/dev/shm/" + name).stdout
        assert out == "from the host\n"
        r = sb("run", "--rm", busybox, "cat", "/dev/shm/" + name)
        assert r.returncode == 1
        mode = sb.ok("run", "--rm", "--ipc", "host", busybox, "readlink", "/proc/self/ns/ipc")
        assert mode.stdout.strip() == os.readlink("/proc/self/ns/ipc")
    finally:
        os.unlink("/dev/shm/" + name)
    r = sb("run", "--rm", "--ipc", "host", "--shm-size", "1m", busybox, "true")
    assert r.returncode == 125 and "--shm-size and --ipc host" in r.stderr


def test_userns_host_is_the_default_and_other_modes_are_refused(sb, busybox):
    """--userns host (rootless Docker's and podman's name for the user's own
    namespace, which compose files set) runs as the default does: the same
    id map; podman's auto and nomap are refused with the reason, before
    anything is made (keep-id: test_keep_id.py)."""
    default = sb.ok("run", "--rm", busybox, "cat", "/proc/self/uid_map").stdout
    host = sb.ok("run", "--rm", "--userns", "host", busybox, "cat", "/proc/self/uid_map")
    assert host.stdout == default and default.split()[:2] == ["0", str(sb.uid)]
    before = sb.ok("ps", "-aq").stdout
    r = sb("run", "--rm", "--userns=auto", busybox, "true")
    assert r.returncode == 125
    assert "--userns auto is not supported" in r.stderr and "keep-id" in r.stderr
    assert sb.ok("ps", "-aq").stdout == before


def test_dockers_network_sysctls_let_any_user_bind_low_ports_and_ping(sb, busybox, debian):
    """As Docker (20.10+) sets them in a container's own network namespace:
    net.ipv4.ip_unprivileged_port_start=0 (a non-root process binds port
    80, there only) and net.ipv4.ping_group_range over the container's
    groups (ICMP echo sockets without CAP_NET_RAW: a real echo of
    127.0.0.1); --sysctl overrides them; with --network host the host's
    values stay.  The native setup writes them (sysctls no longer take the
    Python one)."""
    script = ("cat /proc/sys/net/ipv4/ip_unprivileged_port_start "
              "/proc/sys/net/ipv4/ping_group_range; "
              "(nc -l -p 80 > /tmp/got &); sleep 0.3; echo hello | nc 127.0.0.1 80; "
              "sleep 0.3; cat /tmp/got")
    r = sb("run", "--rm", "-u", "1000", "--cap-drop", "ALL", "--network", "none",
           busybox, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert out[0] == "0"
    low, high = out[1].split()
    assert low == "0" and int(high) >= 1000
    assert out[2] == "hello", r.stdout
    echo = ('use Socket; alarm 10; socket(S, PF_INET, SOCK_DGRAM, 1) or die "socket: $!\\n"; '
            'send(S, pack("C C n n n a*", 8, 0, 0, 0, 1, "hi"), 0, '
            'sockaddr_in(0, inet_aton("127.0.0.1"))) or die "send: $!\\n"; '
            'recv(S, $r, 64, 0); print "reply ", unpack("C", $r), "\\n"')
    r = sb("run", "--rm", "-u", "1000", "--cap-drop", "ALL", debian, "perl", "-e", echo)
    assert (r.returncode, r.stdout) == (0, "reply 0\n"), r.stderr
    r = sb("run", "--rm", "-u", "1000", "--network", "host", debian, "perl", "-e", echo)
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        host_open = f.read().split()[0] == "0"
    assert (r.returncode == 0) == host_open, r.stderr
    r = sb.ok("run", "--rm", "--sysctl", "net.ipv4.ip_unprivileged_port_start=2000",
              busybox, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert r.stdout == "2000\n"
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        host_value = f.read()
    r = sb.ok("run", "--rm", "--network", "host", busybox, "cat",
              "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert r.stdout == host_value
    r = sb("run", "--rm", "--sysctl", "net.ipv4.no_such_thing=1", busybox, "true")
    assert r.returncode == 125 and "cannot set sysctl net.ipv4.no_such_thing=1" in r.stderr


def test_dockers_cli_settings_psformat_imagesformat_detachkeys(sb, busybox, tmp_path):
    """Docker's config.json keys for the CLI: psFormat, imagesFormat,
    volumesFormat, networksFormat (ours first, else Docker's own file in
    $DOCKER_CONFIG), used when no --format is given; -q still wins;
    detachKeys becomes the default of --detach-keys (a bad one refused)."""
    home = os.path.join(os.path.dirname(sb.root), "clisettings")
    ours, docker = os.path.join(home, "xdg"), os.path.join(home, "docker")
    os.makedirs(os.path.join(ours, "sandbox"), exist_ok=True)
    os.makedirs(docker, exist_ok=True)
    with open(os.path.join(docker, "config.json"), "w") as f:
        json.dump({"psFormat": "docker-ps {{.Names}}", "imagesFormat": "{{.Repository}}!",
                   "auths": {}}, f)
    with open(os.path.join(ours, "sandbox", "config.json"), "w") as f:
        json.dump({"psFormat": "ours {{.Names}} {{.Status}}",
                   "volumesFormat": "vol={{.Name}}"}, f)
    subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), home], check=True)
    env = {"XDG_CONFIG_HOME": ours, "DOCKER_CONFIG": docker}
    sb.ok("run", "-d", "--name", "fmt-one", busybox, "sleep", "60")
    sb.ok("volume", "create", "fmt-vol")
    try:
        assert sb.ok("ps", env=env).stdout.startswith("ours fmt-one Up ")
        assert sb.ok("ps", "--format", "{{.Names}}", env=env).stdout == "fmt-one\n"
        assert len(sb.ok("ps", "-q", env=env).stdout.strip()) == 12
        assert "busybox!" in sb.ok("images", env=env).stdout.split()
        assert "vol=fmt-vol" in sb.ok("volume", "ls", env=env).stdout.split()
        with open(os.path.join(ours, "sandbox", "config.json"), "w") as f:
            json.dump({"detachKeys": "ctrl-"}, f)
        r = sb("attach", "fmt-one", env=env)
        assert r.returncode == 125 and "invalid detach keys 'ctrl-'" in r.stderr
        assert sb.ok("ps", env=env).stdout.startswith("docker-ps fmt-one")
    finally:
        sb("rm", "-f", "fmt-one")
        sb("volume", "rm", "fmt-vol")


def test_a_user_mount_replaces_the_default_at_its_place(sb, busybox):
    """--tmpfs /dev/shm:size=1m is the container's /dev/shm (one mount,
    its size; --shm-size sizes only the default one, as Docker)."""
    out = sb.ok("run", "--rm", "--tmpfs", "/dev/shm:size=1m", "--shm-size", "8m", busybox,
                "sh", "-c", "grep -c ' /dev/shm ' /proc/self/mountinfo; "
                "df -k /dev/shm | tail -1 | awk '{print $2}'").stdout.split()
    assert out == ["1", "1024"], out
    out = sb.ok("run", "--rm", "--shm-size", "8m", busybox, "sh", "-c",
                "df -k /dev/shm | tail -1 | awk '{print $2}'").stdout
    assert out == "8192\n"
