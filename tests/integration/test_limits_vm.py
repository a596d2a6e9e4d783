"""Resource limits of real containers on a cgroup v2 host with a systemd user
manager: the qemu guest of scripts/vm-run, where pytest runs as the
unprivileged test user in its linger session (scripts/test's vm phase).
Skipped outside the guest; the hybrid host's side (a warning, or exit 125
with --cgroups=required) is in test_lifecycle.py.

The guest has no test images: the fixture makes a busybox root filesystem
tar from the guest's busybox-static and `sandbox import`s it.
"""

import io
import json
import os
import subprocess
import tarfile
import time

import pytest

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(os.environ.get("SANDBOX_IN_VM") != "1",
                       reason="runs inside the qemu guest (scripts/vm-run; scripts/test's vm phase)"),
]

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CLI:
    def __init__(self, root):
        self.env = dict(os.environ, SANDBOX_ROOT=os.path.join(root, "root"),
                        SANDBOX_RUNROOT=os.path.join(root, "run"))

    def __call__(self, *args, input=None, timeout=120, env=None):
        args = list(args)
        if args[:1] in (["run"], ["create"]):
            # The guest has no user-mode network helper; limits need none.
            args[1:1] = ["--network", "none"]
        return subprocess.run([os.path.join(CHECKOUT, "sandbox")] + args,
                              input=input, capture_output=True, text=True,
                              env=env or self.env, timeout=timeout)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, "exit %d: %s\n%s%s" % (r.returncode, args, r.stdout, r.stderr)
        return r


def busybox_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name, mode=0o755):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        with open("/bin/busybox", "rb") as f:
            data = f.read()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True,
                                 text=True).stdout.split()
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo("bin/" + applet)
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
                           ("etc/group", "root:x:0:\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandbox")
    c = CLI(str(root))
    path = os.path.join(str(root), "busybox.tar")
    with open(path, "wb") as f:
        f.write(busybox_tar())
    c.ok("import", path, "busybox")
    yield c
    for cid in c("ps", "-aq").stdout.split():
        c("rm", "-f", cid)


def cgroup_path(cli, name):
    rec = json.loads(cli.ok("inspect", name).stdout)[0]
    return rec["State"]["CgroupPath"]


def test_limits_land_in_the_containers_cgroup_files(cli):
    out = cli.ok("run", "--rm", "--memory", "32m", "--cpus", "0.5", "--pids-limit", "20",
                 "busybox", "sh", "-c",
                 "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max "
                 "/sys/fs/cgroup/pids.max; cat /proc/self/cgroup").stdout.splitlines()
    assert out[:3] == ["33554432", "50000 100000", "20"]
    assert out[3] == "0::/"                # its own cgroup is its root


def test_container_sits_in_a_delegated_scope_and_can_make_sub_cgroups(cli):
    cli.ok("run", "-d", "--name", "scoped", "--memory", "64m", "busybox", "sleep", "300")
    path = cgroup_path(cli, "scoped")
    assert path.endswith(".scope/container") and "user@%d.service" % os.getuid() in path
    assert open(os.path.join(path, "memory.max")).read().strip() == str(64 << 20)
    sub = cli.ok("exec", "scoped", "sh", "-c", "mkdir /sys/fs/cgroup/sub && echo made")
    assert sub.stdout == "made\n"
    cli.ok("update", "--memory", "96m", "scoped")
    assert open(os.path.join(path, "memory.max")).read().strip() == str(96 << 20)
    stats = cli.ok("stats", "--no-stream", "--format", "{{json .}}", "scoped").stdout
    row = json.loads(stats)
    assert row["PIDs"] != "--" and int(row["PIDs"]) >= 1
    assert row["MemUsage"].endswith("/ 96MiB")
    cli.ok("rm", "-f", "scoped")


def test_only_the_containers_processes_are_in_its_cgroup(cli):
    """sandbox's own process that waits for PID 1 sits in the scope's
    reaper leaf, outside the container's limits: not charged to its memory,
    not counted in its pids.max, not frozen by pause, and never the victim
    of its OOM killer (which ended the whole container, OOMKilled unset)."""
    cli.ok("run", "-d", "--name", "alone", "--memory", "32m", "busybox", "sleep", "300")
    rec = json.loads(cli.ok("inspect", "alone").stdout)[0]
    path = rec["State"]["CgroupPath"]
    pid1 = rec["State"]["Pid"]
    assert open(os.path.join(path, "cgroup.procs")).read().split() == [str(pid1)]
    reaper = os.path.join(os.path.dirname(path), "reaper")
    waiter = open(os.path.join(reaper, "cgroup.procs")).read().split()
    assert waiter == [open("/proc/%d/stat" % pid1).read().split(") ")[1].split()[1]]
    assert open(os.path.join(reaper, "memory.max")).read().strip() == "max"
    cli.ok("pause", "alone")
    assert "frozen 0" in open(os.path.join(reaper, "cgroup.events")).read()
    cli.ok("unpause", "alone")
    cli.ok("rm", "-f", "alone")


def test_pids_limit_counts_only_the_containers_processes(cli):
    # PID 1 and one child (cat) make two, as in Docker.
    out = cli.ok("run", "--rm", "--pids-limit", "2", "busybox", "sh", "-c",
                 "cat /sys/fs/cgroup/pids.max; echo forked").stdout
    assert out == "2\nforked\n"


def test_a_container_gets_podmans_default_pids_limit(cli, tmp_path):
    """Without --pids-limit: pids.max 2048 (podman's default; a fork bomb
    stops in its container), shown in inspect; "pids_limit" in config.json
    changes it, 0 turns it off; the flag wins."""
    def pids(*flags, env=None):
        r = cli("run", "--name", "pl", *flags, "busybox", "cat", "/sys/fs/cgroup/pids.max",
                env=env)
        assert r.returncode == 0, r.stderr
        limit = json.loads(cli.ok("inspect", "pl").stdout)[0]["HostConfig"]["PidsLimit"]
        cli.ok("rm", "pl")
        return r.stdout.strip(), limit
    assert pids() == ("2048", 2048)
    assert pids("--pids-limit", "30") == ("30", 30)
    config = tmp_path / "sandbox"
    config.mkdir()
    env = dict(cli.env, XDG_CONFIG_HOME=str(tmp_path))
    (config / "config.json").write_text('{"pids_limit": 0}')
    assert pids(env=env)[0] == "max"
    (config / "config.json").write_text('{"pids_limit": 500}')
    assert pids(env=env) == ("500", 500)
    (config / "config.json").write_text('{"pids_limit": "lots"}')
    r = cli("run", "--rm", "busybox", "true", env=env)
    assert r.returncode == 125 and '"pids_limit" must be a whole number' in r.stderr


def test_memory_hog_is_oom_killed(cli):
    r = cli("run", "--name", "hog", "--memory", "32m", "--memory-swap", "32m", "busybox",
            "sh", "-c", "head -c 200m /dev/zero | tail")
    assert r.returncode == 137, r.stderr
    state = json.loads(cli.ok("inspect", "hog").stdout)[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    cli.ok("rm", "hog")


def test_detached_memory_hog_is_oom_killed(cli):
    """The same, detached: the native monitor's reaper reads the scope's
    memory.events while it still exists and leaves the marker that the
    supervisor records as OOMKilled."""
    cli.ok("run", "-d", "--name", "dhog", "--memory", "32m", "--memory-swap", "32m",
           "busybox", "sh", "-c", "head -c 200m /dev/zero | tail")
    assert cli.ok("wait", "dhog", timeout=60).stdout.strip() == "137"
    state = json.loads(cli.ok("inspect", "dhog").stdout)[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    cli.ok("rm", "dhog")


def test_keep_id_container_has_its_limits_and_cgroup(cli):
    """--userns keep-id: the container's own user namespace (made inside
    the shared one) owns its cgroup namespace too: its cgroup is its root,
    its limits hold, and the OOM killer's end is recorded."""
    out = cli.ok("run", "--rm", "--userns", "keep-id", "--memory", "32m",
                 "--pids-limit", "20", "busybox", "sh", "-c",
                 "id -u; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max "
                 "/proc/self/cgroup").stdout.split()
    assert out == [str(os.getuid()), "33554432", "20", "0::/"]
    r = cli("run", "--name", "keephog", "--userns", "keep-id", "--memory", "32m",
            "--memory-swap", "32m", "busybox", "sh", "-c", "head -c 200m /dev/zero | tail")
    assert r.returncode == 137, r.stderr
    state = json.loads(cli.ok("inspect", "keephog").stdout)[0]["State"]
    assert state["OOMKilled"] is True
    cli.ok("rm", "keephog")


def test_fork_bomb_stops_at_pids_max(cli):
    # PID 1 stays (a shell that cannot fork exits, and the scope with it);
    # the bomb is an exec'd shell.
    cli.ok("run", "-d", "--name", "bomb", "--pids-limit", "20", "busybox", "sleep", "300")
    path = cgroup_path(cli, "bomb")
    cli("exec", "bomb", "sh", "-c", "for i in $(seq 60); do sleep 30 & done")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = dict(line.split() for line in open(os.path.join(path, "pids.events")))
        if int(events.get("max", 0)) > 0:
            break
        time.sleep(0.2)
    assert int(events["max"]) > 0                  # forks were refused
    assert int(open(os.path.join(path, "pids.current")).read()) <= 20
    cli.ok("rm", "-f", "bomb")


def test_pause_stops_a_counter_and_unpause_resumes_it(cli):
    # Written aside and renamed: `echo > /tmp/n` empties the file before it
    # writes, and a reader in between (exec cat, at once after unpause on
    # the slow guest) would see nothing.
    cli.ok("run", "-d", "--name", "counter", "busybox", "sh", "-c",
           "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; "
           "sleep 0.05; done")
    time.sleep(0.5)
    cli.ok("pause", "counter")
    rec = json.loads(cli.ok("inspect", "counter").stdout)[0]
    assert rec["State"]["Paused"] is True
    path = cgroup_path(cli, "counter")
    assert "frozen 1" in open(os.path.join(path, "cgroup.events")).read()
    # The counter, read from the host through the container's upper layer,
    # stands still while paused.
    counter = os.path.join(rec["GraphDriver"]["Data"]["UpperDir"], "tmp", "n")
    frozen_at = open(counter).read()
    time.sleep(0.5)
    assert open(counter).read() == frozen_at
    cli.ok("unpause", "counter")
    a = int(cli.ok("exec", "counter", "cat", "/tmp/n").stdout)
    time.sleep(0.5)
    b = int(cli.ok("exec", "counter", "cat", "/tmp/n").stdout)
    assert b > a
    cli.ok("rm", "-f", "counter")


def test_cpus_half_holds_a_busy_loop_near_half_a_cpu(cli):
    cli.ok("run", "-d", "--name", "spinner", "--cpus", "0.5", "busybox", "sh", "-c",
           "while :; do :; done")
    path = cgroup_path(cli, "spinner")

    def usage():
        for line in open(os.path.join(path, "cpu.stat")):
            if line.startswith("usage_usec"):
                return int(line.split()[1])
    time.sleep(0.5)
    u0, t0 = usage(), time.monotonic()
    time.sleep(3)
    share = (usage() - u0) / 1e6 / (time.monotonic() - t0)
    cli.ok("rm", "-f", "spinner")
    assert 0.3 < share < 0.7, share


def test_info_lists_the_delegated_controllers(cli):
    text = cli.ok("info").stdout
    assert "Cgroups:         v2 (systemd)" in text
    delegated = [line for line in text.splitlines() if line.strip().startswith("delegated:")][0]
    for controller in ("cpu", "memory", "pids"):
        assert controller in delegated.split()
    out = cli.ok("info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}} {{.MemoryLimit}} "
                 "{{.PidsLimit}} {{json .SecurityOptions}}").stdout.split()
    assert out[:4] == ["2", "systemd", "true", "true"] and "name=cgroupns" in out[4]


def test_exec_runs_inside_the_containers_cgroup(cli):
    cli.ok("run", "-d", "--name", "joined", "--memory", "48m", "busybox", "sleep", "300")
    out = cli.ok("exec", "joined", "sh", "-c",
                 "cat /proc/self/cgroup /sys/fs/cgroup/memory.max").stdout.split()
    assert out == ["0::/", str(48 << 20)]
    cli.ok("rm", "-f", "joined")


def test_delegated_subtree_is_used_without_systemd(cli):
    """A user who owns a delegated cgroup v2 subtree but has no systemd
    user manager to talk to (no bus): sandbox makes its cgroups there."""
    sandbox = os.path.join(CHECKOUT, "sandbox")
    r = subprocess.run(
        ["systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes",
         "env", "-u", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR=/nonexistent",
         sandbox, "run", "--rm", "--network", "none", "--memory", "32m",
         "--pids-limit", "30", "busybox",
         "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max"],
        capture_output=True, text=True, env=cli.env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["33554432", "30"]


def test_block_io_limits_go_to_io_max(cli):
    disk = "/dev/vda"
    dev = os.stat(disk).st_rdev
    majmin = "%d:%d" % (os.major(dev), os.minor(dev))
    out = cli.ok("run", "--rm", "--device-write-bps", disk + ":1mb",
                 "--device-read-iops", disk + ":100", "--blkio-weight", "300",
                 "busybox", "cat", "/sys/fs/cgroup/io.max").stdout
    line = [l for l in out.splitlines() if l.startswith(majmin + " ")][0]
    fields = dict(f.split("=") for f in line.split()[1:])
    assert fields["wbps"] == str(1024 * 1024) and fields["riops"] == "100"


def test_autostart_unit_starts_containers_again_and_leaves_them_running(cli):
    """`system autostart --enable` with a real systemd user manager: the
    unit is installed and enabled; after a container's supervisor died
    (as at a reboot), starting the unit brings back the --restart always
    container and not the --restart no one; stopping the unit leaves the
    container running (KillMode=process); --disable removes the unit."""
    unit_dir = os.path.join(os.path.expanduser("~"), ".config", "systemd", "user")
    unit = os.path.join(unit_dir, "sandbox-autostart.service")
    out = cli.ok("system", "autostart", "--enable").stdout
    assert out.startswith("Enabled %s" % unit)
    assert subprocess.run(["systemctl", "--user", "is-enabled", "sandbox-autostart.service"],
                          capture_output=True, text=True).stdout.strip() == "enabled"
    try:
        for name, policy in (("auto-always", "always"), ("auto-no", "no")):
            cli.ok("run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "600")
            rec = json.loads(cli.ok("inspect", name).stdout)[0]
            cid = rec["Id"]
            with open(os.path.join(cli.env["SANDBOX_ROOT"], "containers", cid,
                                   "state.json")) as f:
                os.kill(json.load(f)["MonitorPid"], 9)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and cli.ok("ps", "-q").stdout.strip():
            time.sleep(0.1)
        assert cli.ok("ps", "-q").stdout == ""
        r = subprocess.run(["systemctl", "--user", "start", "sandbox-autostart.service"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        running = json.loads(cli.ok("inspect", "auto-always").stdout)[0]["State"]
        assert running["Running"]
        assert not json.loads(cli.ok("inspect", "auto-no").stdout)[0]["State"]["Running"]
        subprocess.run(["systemctl", "--user", "stop", "sandbox-autostart.service"],
                       check=True, timeout=60)
        time.sleep(0.5)
        again = json.loads(cli.ok("inspect", "auto-always").stdout)[0]["State"]
        assert again["Running"] and again["Pid"] == running["Pid"]
    finally:
        cli.ok("system", "autostart", "--disable")
        for name in ("auto-always", "auto-no"):
            cli("rm", "-f", name)
    assert not os.path.exists(unit)
    assert subprocess.run(["systemctl", "--user", "is-enabled", "sandbox-autostart.service"],
                          capture_output=True, text=True).returncode != 0
