"""Detached containers and the container verbs, daemonless: run -d, ps,
logs, stop, kill, rm, wait, exec, inspect, create/start, restart, rename,
top, prune; the supervisor's death; many CLIs at once."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import Runner, describe
from helpers.container import monitor


@pytest.fixture(scope="module", params=["native", "python"])
def sb(request, test_user, _cli_reachable):
    """Every test here runs twice: with the native monitor holding detached
    containers (the default once scripts/setup-host has built it), and with
    the Python supervisor that stays when it is missing."""
    env = {"SANDBOX_MONITOR": "python"} if request.param == "python" else {}
    runner = Runner(test_user, "lifecycle-" + request.param, env=env)
    yield runner
    runner.close()



def rund(sb, image, *args, name=None, flags=()):
    cmd = ["run", "-d"] + (["--name", name] if name else []) + list(flags) + [image] + list(args)
    result = sb.ok(*cmd)
    cid = result.stdout.strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid), result.stdout
    return cid


def state_of(sb, ref):
    return json.loads(sb.ok("inspect", ref).stdout)[0]["State"]


def test_run_d_prints_id_and_keeps_running(sb, busybox):
    started = time.monotonic()
    cid = rund(sb, busybox, "sleep", "60", name="bg")
    assert time.monotonic() - started < 10
    ps = sb.ok("ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED",
                             "STATUS", "PORTS", "NAMES"]
    row = [line for line in ps if line.startswith(cid[:12])]
    assert row and "Up " in row[0] and row[0].rstrip().endswith("bg")
    assert sb.ok("ps", "-q", "--no-trunc").stdout.split() == [cid]
    st = state_of(sb, "bg")
    assert st["Running"] and st["Status"] == "running" and st["Pid"] > 0
    # The container's PID 1 is a real process of the test user's namespace.
    assert os.path.exists("/proc/%d" % st["Pid"])
    sb.ok("rm", "-f", "bg")
    assert sb.ok("ps", "-a", "-q").stdout.strip() == ""


def test_logs_into_a_reader_that_stops_early(sb, busybox):
    """`sandbox logs X | head -1`: the closed pipe ends it quietly, exit 0."""
    cid = rund(sb, busybox, "sh", "-c", "seq 1 100000; sleep 60")
    deadline = time.monotonic() + 30
    while "100000" not in sb.ok("logs", "--tail", "1", cid).stdout:
        assert time.monotonic() < deadline, "the output never reached the log"
        time.sleep(0.1)
    p = sb.popen("logs", cid, stdin=subprocess.DEVNULL)
    assert p.stdout.readline() == "1\n"
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=30) == 0 and err == "", err
    sb.ok("rm", "-f", cid)


def test_logs_keep_streams_apart_and_follow(sb, busybox):
    rund(sb, busybox, "sh", "-c", "echo out1; echo err1 >&2; sleep 1; echo out2",
         name="talker")
    follow = sb("logs", "-f", "talker", timeout=30)
    assert follow.stdout == "out1\nout2\n"
    assert follow.stderr == "err1\n"
    tail = sb.ok("logs", "--tail", "1", "talker")
    assert tail.stdout + tail.stderr == "out2\n"
    ts = sb.ok("logs", "-t", "talker").stdout.splitlines()
    assert ts[0].endswith(" out1") and ts[0][4] == "-" and ts[0][10] == "T"
    cid = json.loads(sb.ok("inspect", "talker").stdout)[0]["Id"]
    with open(os.path.join(sb.root, "containers", cid, cid + "-json.log")) as f:
        entries = [json.loads(line) for line in f]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "out1\n"), ("stderr", "err1\n"), ("stdout", "out2\n")]
    assert all(e["time"].endswith("Z") for e in entries)
    since = sb.ok("logs", "--since", "0", "talker")
    assert since.stdout == "out1\nout2\n"
    sb.ok("rm", "talker")


def test_stop_with_handler_is_fast(sb, busybox):
    rund(sb, busybox, "sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 0.05; done",
         name="polite")
    _wait_log(sb, "polite", "up")
    started = time.monotonic()
    sb.ok("stop", "polite")
    assert time.monotonic() - started < 1.5
    st = state_of(sb, "polite")
    assert st["Status"] == "exited" and st["ExitCode"] == 0
    sb.ok("rm", "polite")


def test_stop_t1_of_a_container_ignoring_term_gives_137(sb, busybox):
    rund(sb, busybox, "sleep", "60", name="stubborn")
    started = time.monotonic()
    sb.ok("stop", "-t", "1", "stubborn")
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 4
    st = state_of(sb, "stubborn")
    assert st["ExitCode"] == 137 and st["Status"] == "exited"
    assert "Exited (137)" in sb.ok("ps", "-a", "--filter", "name=stubborn").stdout
    sb.ok("rm", "stubborn")


def test_kill_wait_and_rm_rules(sb, busybox):
    rund(sb, busybox, "sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.05; done",
         name="victim")
    refused = sb("rm", "victim")
    assert refused.returncode == 1 and "running" in refused.stderr
    waiter = sb.popen("wait", "victim")
    time.sleep(0.3)
    sb.ok("kill", "-s", "USR1", "victim")
    out, _ = waiter.communicate(timeout=20)
    assert waiter.returncode == 0 and out.strip() == "42"
    sb.ok("rm", "victim")
    gone = sb("inspect", "victim")
    assert gone.returncode == 1
    missing = sb("stop", "no-such-container")
    assert missing.returncode == 1 and "No such container: no-such-container" in missing.stderr


def _wait_log(sb, name, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in sb.ok("logs", name).stdout:
            return
        time.sleep(0.05)
    raise AssertionError("%r never appeared in the log of %s" % (text, name))


def test_exec_sees_pid_1_files_env_and_status(sb, busybox):
    rund(sb, busybox, "sh", "-c", "echo data > /tmp/f; sleep 60", name="host1",
         flags=["-e", "FROM_RUN=yes"])
    _wait_for_file(sb, "host1", "/tmp/f")
    text = sb.ok("exec", "host1", "sh", "-c",
                 "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /tmp/f; echo $FROM_RUN; "
                 "hostname").stdout
    lines = text.splitlines()
    assert lines[0].strip() == "sleep 60"          # sh exec'd its last command
    assert lines[1:3] == ["data", "yes"]
    assert len(lines[3]) == 12          # the short id as host name
    assert sb("exec", "host1", "sh", "-c", "exit 9").returncode == 9
    assert sb("exec", "host1", "no-such").returncode == 127
    user = sb.ok("exec", "-u", "app", "-w", "/tmp", "-e", "X=1", "host1", "sh", "-c",
                 "id -u; pwd; echo $X").stdout.split()
    assert user == ["1000", "/tmp", "1"]
    relative = sb("exec", "-w", "tmp", "host1", "pwd")
    assert relative.returncode == 125 and "needs to be an absolute path" in relative.stderr
    piped = sb("exec", "-i", "host1", "cat", input="through stdin\n")
    assert piped.stdout == "through stdin\n"
    sb.ok("rm", "-f", "host1")
    stopped = sb("exec", "host1", "true")
    assert stopped.returncode == 1


def _wait_for_file(sb, name, path, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sb("exec", name, "test", "-e", path).returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError("%s never appeared in %s" % (path, name))


def test_inspect_shape_and_templates(sb, busybox):
    rund(sb, busybox, "sleep", "60", name="looked-at",
         flags=["-e", "A=1", "-l", "tier=db", "--restart", "on-failure:3"])
    data = json.loads(sb.ok("inspect", "looked-at").stdout)
    assert isinstance(data, list) and len(data) == 1
    c = data[0]
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount",
                "Driver", "Platform", "HostConfig", "GraphDriver", "Mounts",
                "Config", "NetworkSettings"):
        assert key in c, key
    assert c["Name"] == "/looked-at" and c["Path"] == "sleep" and c["Args"] == ["60"]
    assert c["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert c["Config"]["Labels"] == {"tier": "db"}
    assert os.path.isdir(c["GraphDriver"]["Data"]["UpperDir"])
    fmt = lambda t: sb.ok("inspect", "-f", t, "looked-at").stdout.strip()   # noqa: E731
    assert int(fmt("{{.State.Pid}}")) == c["State"]["Pid"]
    assert fmt("{{.Name}}") == "/looked-at"
    assert json.loads(fmt("{{json .Config}}"))["Labels"] == {"tier": "db"}
    # Docker's order: the image's Env, then -e values.
    assert fmt("{{index .Config.Env 0}}").startswith("PATH=")
    assert "A=1;" in fmt("{{range .Config.Env}}{{.}};{{end}}")
    # ... and not what the runtime adds (Docker's Config.Env has neither):
    # the process has them.
    assert not [e for e in c["Config"]["Env"] if e.startswith(("HOSTNAME=", "HOME="))]
    process_env = sb.ok("exec", "looked-at", "env").stdout.split()
    assert "HOME=/root" in process_env and "A=1" in process_env
    assert fmt("{{if .State.Running}}up{{else}}down{{end}}") == "up"
    bad = sb("inspect", "-f", "{{.NoSuchField}}", "looked-at")
    assert bad.returncode != 0 and "NoSuchField" in bad.stderr
    sb.ok("rm", "-f", "looked-at")


def test_ps_filters_and_formats(sb, busybox):
    rund(sb, busybox, "sleep", "60", name="f-run", flags=["-l", "team=a"])
    sb.ok("run", "--name", "f-done", busybox, "true")
    names = lambda *a: sb.ok("ps", *a, "--format", "{{.Names}}").stdout.split()   # noqa: E731
    assert "f-run" in names() and "f-done" not in names()
    assert set(names("-a", "--filter", "name=f-")) == {"f-run", "f-done"}
    assert names("-a", "--filter", "status=exited", "--filter", "name=f-") == ["f-done"]
    assert names("--filter", "label=team=a") == ["f-run"]
    labelled = sb.ok("ps", "-a", "--filter", "name=f-", "--format",
                     '{{.Names}}:{{.Label "team"}}').stdout.split()
    assert sorted(labelled) == ["f-done:", "f-run:a"]
    r = sb("ps", "--format", "{{.Label}}")
    assert r.returncode == 125 and "wrong number of args for Label" in r.stderr
    assert set(names("-a", "--filter", "ancestor=busybox", "--filter", "name=f-")) == \
        {"f-done", "f-run"}
    assert names("-a", "--filter", "ancestor=localhost/nothing") == []
    assert names("-n", "1") == ["f-done"] and names("-l") == ["f-done"]
    table = sb.ok("ps", "--format", "table {{.Names}}\\t{{.Status}}").stdout.splitlines()
    assert table[0].split() == ["NAMES", "STATUS"]
    js = [json.loads(line) for line in sb.ok("ps", "-a", "--format", "json").stdout.splitlines()]
    assert {"f-run", "f-done"} <= {j["Names"] for j in js}
    # The same key twice: either value; different keys: both (Docker's rule)
    assert set(names("-a", "--filter", "status=exited", "--filter", "status=running",
                     "--filter", "name=f-")) == {"f-run", "f-done"}
    # before/since (creation order), volume, network, publish, expose
    sb.ok("create", "--name", "f-later", "-v", "f-vol:/data", "-p", "127.0.0.1::8080",
          "--expose", "9000-9001/udp", busybox, "true")
    assert names("-a", "--filter", "since=f-done") == ["f-later"]
    assert set(names("-a", "--filter", "before=f-later", "--filter", "name=f-")) == \
        {"f-run", "f-done"}
    assert names("-a", "--filter", "volume=f-vol") == ["f-later"]
    assert names("-a", "--filter", "volume=/data", "--filter", "name=f-") == ["f-later"]
    assert names("-a", "--filter", "publish=8080", "--filter", "name=f-") == ["f-later"]
    assert names("-a", "--filter", "publish=8080/udp", "--filter", "name=f-") == []
    assert names("-a", "--filter", "expose=9001/udp", "--filter", "name=f-") == ["f-later"]
    assert names("-a", "--filter", "expose=8000-8100", "--filter", "name=f-") == ["f-later"]
    assert set(names("-a", "--filter", "network=pasta", "--filter", "name=f-")) == \
        {"f-run", "f-done", "f-later"}
    assert set(names("-a", "--filter", "is-task=false", "--filter", "name=f-")) == \
        {"f-run", "f-done", "f-later"}
    for flt, code in (("before=nosuch", 1), ("publish=http", 125), ("colour=red", 125)):
        assert sb("ps", "--filter", flt).returncode == code, flt
    sb.ok("rm", "-f", "-v", "f-run", "f-done", "f-later")
    sb("volume", "rm", "f-vol")


def test_create_start_attach_restart_rename(sb, busybox):
    cid = sb.ok("create", "--name", "later", busybox, "sh", "-c", "echo ran; exit 3").stdout.strip()
    assert len(cid) == 64
    assert state_of(sb, "later")["Status"] == "created"
    assert "Created" in sb.ok("ps", "-a", "--filter", "name=later").stdout
    attached = sb("start", "-a", "later")
    assert attached.returncode == 3 and attached.stdout == "ran\n"
    sb.ok("rename", "later", "renamed")
    clash = sb("rename", "renamed", "renamed")      # the name is taken (by itself)
    assert clash.returncode == 1 and "already in use" in clash.stderr, describe(clash)
    assert state_of(sb, "renamed")["ExitCode"] == 3
    assert sb("inspect", "later").returncode == 1
    sb.ok("start", "renamed")
    assert sb.ok("wait", "renamed").stdout.strip() == "3"
    assert sb.ok("logs", "renamed").stdout == "ran\nran\n"
    rund(sb, busybox, "sh", "-c", "echo boot; sleep 60", name="again")
    _wait_log(sb, "again", "boot")
    sb.ok("restart", "-t", "0", "again")
    _wait_log(sb, "again", "boot\nboot")
    assert state_of(sb, "again")["Running"]
    # restart -s: the signal it stops with (Docker 23's flag).
    rund(sb, busybox, "sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo up; "
         "while :; do sleep 0.05; done", name="signalled")
    _wait_log(sb, "signalled", "up")
    started = time.monotonic()
    sb.ok("restart", "-s", "USR1", "-t", "10", "signalled")
    assert time.monotonic() - started < 5
    _wait_log(sb, "signalled", "up\ngot-usr1\nup")
    r = sb("restart", "-s", "NOPE", "signalled")
    assert r.returncode == 125 and "NOPE" in r.stderr
    sb.ok("rm", "-f", "renamed", "again", "signalled")


def test_restart_policy_on_failure_is_carried_out(sb, busybox):
    rund(sb, busybox, "sh", "-c", "echo try; exit 1", name="flaky",
         flags=["--restart", "on-failure:2"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        c = json.loads(sb.ok("inspect", "flaky").stdout)[0]
        if c["State"]["Status"] == "exited" and c["RestartCount"] == 2:
            break
        time.sleep(0.1)
    assert c["RestartCount"] == 2 and c["State"]["ExitCode"] == 1
    assert sb.ok("logs", "flaky").stdout == "try\ntry\ntry\n"
    conflict = sb("run", "--rm", "--restart", "always", busybox, "true")
    assert conflict.returncode == 125
    sb.ok("rm", "flaky")
    # Attached, as Docker's: the CLI ends with the first exit; the
    # container's supervisor restarts it all the same.
    first = sb("run", "--name", "flaky-fg", "--restart", "on-failure:2", busybox,
               "sh", "-c", "echo try; exit 4")
    assert first.returncode == 4 and first.stdout == "try\n"
    deadline = time.monotonic() + 20
    while json.loads(sb.ok("inspect", "flaky-fg").stdout)[0]["RestartCount"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    sb.ok("wait", "flaky-fg")
    assert sb.ok("logs", "flaky-fg").stdout == "try\ntry\ntry\n"
    sb.ok("rm", "flaky-fg")
    # Restarts leave no zombie behind in the supervisor (each round's network
    # helper, health loop and C are reaped).
    cid = rund(sb, busybox, "sh", "-c", "sleep 0.3; exit 3", name="again",
               flags=["--restart", "always", "--health-cmd", "true",
                      "--health-interval", "100ms"])
    deadline = time.monotonic() + 20
    while json.loads(sb.ok("inspect", "again").stdout)[0]["RestartCount"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with open(os.path.join(sb.root, "containers", cid, "state.json")) as f:
        supervisor = json.load(f)["MonitorPid"]
    zombies = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == supervisor:
            with open("/proc/%s/comm" % pid) as f:
                zombies.append((pid, f.read().strip()))
    assert not zombies
    sb.ok("rm", "-f", "again")


def test_detached_rm_leaves_nothing(fresh_sb, images_dir):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    cid = rund(fresh_sb, "busybox", "sh", "-c", "touch /x; sleep 0.3", flags=["--rm"])
    deadline = time.monotonic() + 15
    while os.path.exists(os.path.join(fresh_sb.root, "containers", cid)):
        assert time.monotonic() < deadline, "the --rm container is still there"
        time.sleep(0.05)
    assert fresh_sb.ok("ps", "-a", "-q").stdout == ""
    with open("/proc/self/mountinfo") as f:
        assert fresh_sb.root not in f.read()


def test_killed_supervisor_shows_exited_and_rm_cleans(sb, busybox):
    cid = rund(sb, busybox, "sleep", "60", name="orphan")
    with open(os.path.join(sb.root, "containers", cid, "state.json")) as f:
        monitor = json.load(f)["MonitorPid"]
    os.kill(monitor, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st = state_of(sb, "orphan")
        if st["Status"] == "exited":
            break
        time.sleep(0.05)
    assert st["Status"] == "exited" and not st["Running"]
    assert "Exited" in sb.ok("ps", "-a", "--filter", "name=orphan").stdout
    sb.ok("rm", "orphan")
    assert not os.path.exists(os.path.join(sb.root, "containers", cid))


def test_system_autostart_starts_what_dockers_daemon_would_after_a_crash(sb, busybox):
    """Every supervisor killed (as a reboot does): the containers show
    exited; `system autostart` starts again those Docker's daemon restarts
    at its start (always, even if stopped by the user; unless-stopped
    unless stopped; on-failure after a failure, with retries left) and
    prints their names; the others stay down.  `--enable` needs a systemd
    user manager (the qemu guest's test has one): here it says so, and
    leaves no unit behind."""
    cases = {"as-always": (["--restart", "always"], None, True),
             "as-always-stopped": (["--restart", "always"], "stop", True),
             "as-unless": (["--restart", "unless-stopped"], None, True),
             "as-unless-stopped": (["--restart", "unless-stopped"], "stop", False),
             "as-failure": (["--restart", "on-failure:2"], None, True),
             "as-failure-ok": (["--restart", "on-failure"], "exit0", False),
             "as-no": ([], None, False)}
    for name, (flags, how, _) in cases.items():
        cmd = ["true"] if how == "exit0" else ["sleep", "300"]
        rund(sb, busybox, *cmd, name=name, flags=flags)
        if how == "stop":
            sb.ok("stop", "-t", "0", name)
    sb.ok("wait", "as-failure-ok")
    monitors = []
    for name in cases:
        st = state_of(sb, name)
        if st["Running"]:
            cid = json.loads(sb.ok("inspect", name).stdout)[0]["Id"]
            with open(os.path.join(sb.root, "containers", cid, "state.json")) as f:
                monitors.append(json.load(f)["MonitorPid"])
    assert len(monitors) == 4
    for pid in monitors:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sb.ok("ps", "-q").stdout.strip():
        time.sleep(0.1)
    assert sb.ok("ps", "-q").stdout == ""
    r = sb.ok("system", "autostart")
    want = {name for name, (_, _, starts) in cases.items() if starts}
    assert set(r.stdout.split()) == want, r.stdout
    for name in cases:
        assert state_of(sb, name)["Running"] == (name in want), name
    assert sb.ok("system", "autostart").stdout == ""      # all up: nothing more
    r = sb("system", "autostart", "--enable", env={"DBUS_SESSION_BUS_ADDRESS": None})
    assert r.returncode == 125 and "cannot enable autostart" in r.stderr, r.stderr
    unit = os.path.join(sb.home, ".config", "systemd", "user", "sandbox-autostart.service")
    assert not os.path.exists(unit)
    for name in cases:
        sb.ok("rm", "-f", name)


def test_killed_supervisor_of_an_rm_container_takes_it_along(sb, busybox):
    """The supervisor of a detached --rm container killed: the container
    ends with it, and the process between them (C, or the native reaper it
    became) removes it as the supervisor would have: gone from ps -a, its
    name free, nothing of it left in the store."""
    cid = rund(sb, busybox, "sleep", "60", name="orphan-rm", flags=["--rm"])
    cdir = os.path.join(sb.root, "containers", cid)
    with open(os.path.join(cdir, "state.json")) as f:
        st = json.load(f)
    deadline = time.monotonic() + 10     # (the native monitor takes over a moment later)
    while sb._env.get("SANDBOX_MONITOR") != "python" and time.monotonic() < deadline and \
            os.path.basename(os.readlink("/proc/%d/exe" % st["MonitorPid"])) != monitor.NATIVE_NAME:
        time.sleep(0.05)
    os.kill(st["MonitorPid"], signal.SIGKILL)
    while os.path.exists(cdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(cdir)
    assert sb.ok("ps", "-a", "-q", "--filter", "name=orphan-rm").stdout == ""
    assert not [n for n in os.listdir(os.path.join(sb.root, "tmp")) if cid in n]
    rund(sb, busybox, "true", name="orphan-rm", flags=["--rm"])


def test_a_damaged_record_is_listed_dead_and_removable(sb, busybox):
    """A state.json that cannot be read (a disk error, a hand edit): ps -a
    lists the container as Dead, the other verbs say so in one line, and
    rm removes it, its supervisor included, freeing its name."""
    cid = rund(sb, busybox, "sleep", "60", name="damaged")
    path = os.path.join(sb.root, "containers", cid, "state.json")
    with open(path) as f:
        monitor = json.load(f)["MonitorPid"]
    with open(path, "w") as f:
        f.write('{"Id": "' + cid[:20])
    rows = sb.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout.splitlines()
    assert "damaged Dead" in rows
    for verb in (["inspect"], ["stop"], ["exec"], ["start"]):
        r = sb(*verb, "damaged", *(["true"] if verb == ["exec"] else []))
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
        assert "the record of container %s is damaged" % cid[:12] in r.stderr, r.stderr
        assert "hint: sandbox rm %s" % cid[:12] in r.stderr
    sb.ok("rm", "damaged")
    assert not os.path.exists(os.path.dirname(path))
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d" % monitor) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists("/proc/%d" % monitor)
    sb.ok("create", "--name", "damaged", busybox, "true")
    sb.ok("rm", "damaged")


def test_top_and_prune(sb, busybox):
    rund(sb, busybox, "sh", "-c", "sleep 60 & sleep 61", name="busy")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        top = sb.ok("top", "busy").stdout
        if "sleep 61" in top and "sleep 60" in top:
            break
        time.sleep(0.05)
    assert "PID" in top.splitlines()[0] and "sleep 61" in top and "sleep 60" in top
    # ps options that select every process (-e, aux): still only the
    # container's rows (Docker filters ps's output by its PID column)
    for ps_args in (["-eo", "pid,comm"], ["aux"]):
        rows = sb.ok("top", "busy", *ps_args).stdout.splitlines()
        assert "PID" in rows[0].split() and len(rows) == 3, rows
    r = sb("top", "busy", "-o", "comm")
    assert r.returncode == 125 and "couldn't find PID field" in r.stderr
    sb.ok("run", "--name", "stale", busybox, "sh", "-c",
          "head -c 250000 /dev/zero > /written; mkdir /d; chown 1000 /d; chmod 700 /d")
    pruned = sb.ok("container", "prune", "-f").stdout
    assert "Deleted Containers:" in pruned
    # what it wrote, measured before it went (Docker's sum of SizeRw)
    assert pruned.strip().splitlines()[-1] == "Total reclaimed space: 250kB", pruned
    assert "stale" not in sb.ok("ps", "-a", "--format", "{{.Names}}").stdout
    assert "busy" in sb.ok("ps", "--format", "{{.Names}}").stdout
    paused = sb("pause", "busy")
    assert paused.returncode == 1 and "freezer" in paused.stderr
    sb.ok("rm", "-f", "busy")


def test_twenty_parallel_runs_then_rm_all(fresh_sb, images_dir):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    results = [None] * 20

    def start(i):
        results[i] = fresh_sb("run", "-d", "--name", "par%d" % i, "busybox", "sleep", "60")
    threads = [threading.Thread(target=start, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    assert len(fresh_sb.ok("ps", "-q").stdout.split()) == 20
    removers = [threading.Thread(target=lambda i=i: fresh_sb.ok("rm", "-f", "par%d" % i))
                for i in range(20)]
    for t in removers:
        t.start()
    for t in removers:
        t.join()
    assert fresh_sb.ok("ps", "-a", "-q").stdout == ""
    assert os.listdir(os.path.join(fresh_sb.root, "containers")) == []
    assert os.listdir(os.path.join(fresh_sb.root, "names")) == []
    fresh_sb.ok("run", "--rm", "busybox", "true")


def test_one_name_asked_for_at_once_goes_to_one_container(sb, busybox):
    """Two `create --name same` at once, the first slowed down by strace
    (each mkdir waits 0.3 s): the second starts as soon as the first has
    taken the name.  One of them gets it, the other is told it is taken.
    (Both used to: the name was taken before the container's directory
    existed, and a name without a directory counted as free.)"""
    link = os.path.join(sb.root, "names", "same")
    first = sb.popen_raw(["strace", "-f", "-o", "/dev/null", "-e", "trace=mkdir",
                          "-e", "inject=mkdir:delay_enter=300000",
                          sb.cli, "create", "--name", "same", busybox, "true"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not os.path.islink(link) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert os.path.islink(link), "the first create never took the name"
        second = sb("create", "--name", "same", busybox, "true")
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    codes = sorted([first.returncode, second.returncode])
    assert codes[0] == 0 and codes[1] != 0, (out, err, describe(second))
    assert "already in use" in (err if first.returncode else second.stderr)
    ids = sb.ok("ps", "-a", "-q", "--no-trunc", "--filter", "name=same").stdout.split()
    assert len(ids) == 1
    sb.ok("rm", "same")


def test_init_reaps_and_forwards_signals(sb, busybox):
    out = sb.ok("run", "--rm", "--init", busybox, "sh", "-c", "ps -o pid,comm; true").stdout
    procs = [line.split() for line in out.splitlines()[1:]]
    assert procs[0] == ["1", "sandbox-init"] and procs[1] == ["2", "sh"]
    assert sb("run", "--rm", "--init", busybox, "sh", "-c", "exit 5").returncode == 5
    assert sb("run", "--rm", "--init", busybox, "no-such").returncode == 127
    # sleep as PID 1 ignores SIGTERM; under --init it gets it and stop is quick.
    rund(sb, busybox, "sleep", "60", name="inited", flags=["--init"])
    started = time.monotonic()
    sb.ok("stop", "inited")
    assert time.monotonic() - started < 3
    assert state_of(sb, "inited")["ExitCode"] == 143
    # Orphans are reaped: no zombie stays under PID 1.
    rund(sb, busybox, "sh", "-c", "(sleep 0.2 &) ; sleep 60", name="reaper", flags=["--init"])
    time.sleep(1)
    stat = sb.ok("exec", "reaper", "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; true").stdout
    assert " Z " not in stat
    sb.ok("rm", "-f", "inited", "reaper")


def test_init_and_exec_do_not_show_the_clis_environment(sb, busybox):
    """--init's PID 1 and exec's process before its exec are forks of the
    CLI: the container's processes must not read the user's command line
    or environment from /proc/PID/cmdline and environ."""
    env = {"SANDBOX_TEST_SECRET": "hunter2"}
    show = "tr '\\0' '\\n' < /proc/1/cmdline; tr '\\0' '\\n' < /proc/1/environ"
    out = sb.ok("run", "--rm", "--init", "-e", "FLAG_SECRET=swordfish", busybox,
                "sh", "-c", show, env=env).stdout
    assert out.split() == ["sandbox-init"], out
    rund(sb, busybox, "sleep", "60", name="inited2", flags=["--init"])
    # exec's process is seen by the container's until its exec: scrubbed
    # then (linux.scrub_command_line, tests/unit), and it execs with the
    # container's environment.
    out = sb.ok("exec", "inited2", "sh", "-c", "cat /proc/$$/environ | tr '\\0' '\\n'",
                env=env).stdout
    assert "hunter2" not in out and "PATH=" in out
    sb.ok("rm", "-f", "inited2")


def test_init_holds_nothing_of_the_host_in_its_memory(sb, busybox):
    """--init's PID 1 is sandbox-init (native/init.c), a fresh exec: its
    memory, which the container's processes can read through /proc/1/mem
    where ptrace is not restricted, holds the container's command and
    environment and nothing of the CLI's (here a secret in the caller's
    environment and one on its command line).  The Python init, a fork of
    the CLI, is kept only where sandbox-init is missing (without it the
    root of the store and the label would be found)."""
    if sb._env.get("SANDBOX_MONITOR") == "python":
        pytest.skip("the Python init is a fork of the CLI (its heap holds the CLI's data)")
    cid = rund(sb, busybox, "sleep", "60", name="inited3",
               flags=["--init", "--label", "note=hunter3-on-the-command-line"])
    pid = state_of(sb, cid)["Pid"]
    assert os.path.basename(os.readlink("/proc/%d/exe" % pid)) == monitor.INIT_NAME
    memory = b""
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if perms.startswith("r"):
                try:
                    mem.seek(start)
                    memory += mem.read(end - start)
                except (OSError, ValueError):
                    pass
    assert b"sleep" in memory and b"PATH=" in memory     # its command and environment
    for secret in (b"hunter3", sb.root.encode(), b"SANDBOX_ROOT"):
        assert secret not in memory, secret
    sb.ok("rm", "-f", "inited3")


def test_the_callers_open_fds_reach_neither_container_nor_supervisor(sb, busybox):
    """A shell or CI runner may leave fds open to the CLI: here a
    directory fd on the host's / (through which a container would read
    the host's files) and a pipe's write end (held by a supervisor, it
    would keep the caller's reader waiting for months).  Neither may reach
    the container's processes (also --init's PID 1, exec'd ones) or the
    detached container's supervisor; the CLI itself can still read
    /dev/fd/N (--env-file <(...))."""
    host_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    r, w = os.pipe()
    ours = {host_root, w}

    def run(*args):
        return subprocess.run(sb.argv(*args), pass_fds=tuple(ours), capture_output=True,
                              text=True, timeout=120, cwd="/")

    def fds(text):
        return {int(n) for n in text.split() if n.isdigit()}
    try:
        for flags in ([], ["--init"]):
            out = run("run", "--rm", *flags, busybox, "sh", "-c",
                      "ls /proc/1/fd; ls /proc/self/fd")
            assert out.returncode == 0, describe(out)
            assert not fds(out.stdout) & ours, (flags, out.stdout)
        for flags in ([], ["--init"]):
            assert run("run", "-d", "--name", "fdkeep", *flags, busybox,
                       "sleep", "60").returncode == 0
            out = run("exec", "fdkeep", "sh", "-c", "ls /proc/1/fd; ls /proc/self/fd")
            assert not fds(out.stdout) & ours, (flags, out.stdout)
            sb.ok("rm", "-f", "fdkeep")
        # The supervisors are gone (rm -f): nobody holds the pipe's write
        # end but us.
        os.close(w)
        ours.discard(w)
        os.set_blocking(r, False)
        assert os.read(r, 1) == b""
        env = os.open("/", os.O_RDONLY)     # a number for the fd below
        os.close(env)
        out = subprocess.run(
            sb.argv("run", "--rm", "--env-file", "/dev/fd/%d" % host_root, busybox, "true"),
            pass_fds=(host_root,), capture_output=True, text=True, timeout=60, cwd="/")
        # (a directory is no env file: the CLI got as far as reading it)
        assert out.returncode == 125 and "/dev/fd/%d" % host_root in out.stderr, describe(out)
    finally:
        for fd in ours | {r}:
            try:
                os.close(fd)
            except OSError:
                pass
        sb("rm", "-f", "fdkeep")


def test_a_create_killed_midway_leaves_nothing_that_lasts(sb, busybox):
    """SIGKILL of the CLI while it makes a container, delivered by strace at
    an exact syscall (-P: the one on that path): when it reads the host's
    resolv.conf (its directory made, its name taken, no record yet) and
    when it takes the name.  What it leaves holds no name for good (it
    used to, forever, invisible to ps and rm), and `container prune` takes
    it away."""
    sb.ok("create", "--name", "warm", busybox, "true")
    sb.ok("rm", "warm")
    containers = os.path.join(sb.root, "containers")
    before = set(os.listdir(containers))

    def killed_at(syscall, path, name):
        out = sb.run_raw(["strace", "-f", "-o", "/dev/null", "-P", path,
                          "-e", "trace=" + syscall, "-e", "inject=%s:signal=KILL:when=1" % syscall,
                          sb.cli, "create", "--name", name, busybox, "true"])
        assert out.returncode != 0, describe(out)
        left = set(os.listdir(containers)) - before
        assert len(left) == 1, left
        assert not os.path.exists(os.path.join(containers, *left, "state.json"))
        assert name not in sb.ok("ps", "-a", "--format", "{{.Names}}").stdout.split()
        return left.pop()

    leftover = killed_at("openat", "/etc/resolv.conf", "killed1")
    assert os.readlink(os.path.join(sb.root, "names", "killed1")) == leftover
    sb.ok("create", "--name", "killed1", busybox, "true")   # its maker is gone
    assert not os.path.exists(os.path.join(containers, leftover))
    sb.ok("rm", "killed1")
    leftover = killed_at("symlink", os.path.join(sb.root, "names", "killed2"), "killed2")
    assert leftover in sb.ok("container", "prune", "-f").stdout
    assert set(os.listdir(containers)) == before


def test_attach_passes_stdin_and_returns_the_exit_code(sb, busybox):
    rund(sb, busybox, "sh", "-c", "while read l; do echo \"got $l\"; done; echo end; exit 6",
         name="reader", flags=["-i"])
    attached = sb("attach", "reader", input="a\nb\n", timeout=30)
    assert attached.returncode == 6
    assert attached.stdout == "got a\ngot b\nend\n"
    # The exit is recorded before attach hears of it (`attach X; rm X`).
    assert sb.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                 "reader").stdout == "exited 6\n"
    sb.ok("rm", "reader")
    sb.ok("create", "-i", "--name", "starter", busybox, "sh", "-c", "read l; echo \"in $l\"; exit 2")
    started = sb("start", "-ai", "starter", input="hello\n", timeout=30)
    assert started.returncode == 2 and started.stdout == "in hello\n"
    assert sb.ok("inspect", "-f", "{{.State.Status}}", "starter").stdout == "exited\n"
    stopped = sb("attach", "starter")
    assert stopped.returncode == 1 and "stopped container" in stopped.stderr
    sb.ok("rm", "starter")


def test_detached_tty_container_is_attachable(sb, busybox):
    import pexpect
    rund(sb, busybox, "sh", name="ttybox", flags=["-i", "-t"])
    argv = sb.argv("attach", "ttybox")
    child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=20)
    # ash asked for the cursor position (ESC [6n) at its first prompt, before
    # we attached, and takes the next input line as the answer: give it one,
    # then another to get a fresh prompt.
    child.sendline("")
    time.sleep(0.5)
    child.sendline("")
    child.expect("# ")
    child.sendline("echo $((40+2))")
    child.expect("42")
    child.sendline("exit 4")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    assert "42" in sb.ok("logs", "ttybox").stdout
    sb.ok("rm", "ttybox")


def _log_files(sb, cid):
    d = os.path.join(sb.root, "containers", cid)
    return sorted(n for n in os.listdir(d) if n.startswith(cid + "-json.log"))


SLOW_LINES = "i=1; while [ $i -le %d ]; do echo line$i; i=$((i+1)); sleep 0.002; done"


def test_log_rotation_keeps_max_file_files_and_logs_reads_them_in_order(sb, busybox):
    """--log-opt max-size/max-file as Docker's json-file: rotated files
    <log>.1 and <log>.2 beside the live one, no more; each rotated file
    holds at least max-size bytes; `logs` reads them oldest first, so
    what it shows is the newest lines without a gap."""
    cid = rund(sb, busybox, "sh", "-c", SLOW_LINES % 400,
               flags=["--log-opt", "max-size=2k", "--log-opt", "max-file=3"])
    assert sb.ok("wait", cid, timeout=60).stdout.strip() == "0"
    assert _log_files(sb, cid) == [cid + "-json.log", cid + "-json.log.1",
                                   cid + "-json.log.2"]
    d = os.path.join(sb.root, "containers", cid)
    for name in (cid + "-json.log.1", cid + "-json.log.2"):
        size = os.path.getsize(os.path.join(d, name))
        assert 2048 <= size < 2048 + 4096, (name, size)
    shown = sb.ok("logs", cid).stdout.split()
    numbers = [int(w[4:]) for w in shown]
    assert numbers[-1] == 400 and numbers[0] > 1, numbers[:3]
    assert numbers == list(range(numbers[0], 401))
    assert sb.ok("logs", "--tail", "3", cid).stdout.split() == ["line398", "line399", "line400"]
    cfg = json.loads(sb.ok("inspect", cid).stdout)[0]["HostConfig"]["LogConfig"]
    assert cfg == {"Type": "json-file", "Config": {"max-size": "2k", "max-file": "3"}}
    sb.ok("rm", cid)


def test_logs_follow_goes_on_across_rotations(sb, busybox):
    """`logs -f` started before the output: every line once, in order,
    though the writer rotated the file many times under it."""
    cid = rund(sb, busybox, "sh", "-c", "sleep 1; " + SLOW_LINES % 600,
               flags=["--log-opt", "max-size=4k", "--log-opt", "max-file=4"])
    follow = sb("logs", "-f", cid, timeout=90)
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.split() == ["line%d" % i for i in range(1, 601)]
    assert len(_log_files(sb, cid)) == 4
    sb.ok("rm", cid)


def test_max_file_1_empties_the_log_in_place(sb, busybox):
    cid = rund(sb, busybox, "sh", "-c", SLOW_LINES % 300,
               flags=["--log-opt", "max-size=1k"])
    assert sb.ok("wait", cid, timeout=60).stdout.strip() == "0"
    assert _log_files(sb, cid) == [cid + "-json.log"]
    path = os.path.join(sb.root, "containers", cid, cid + "-json.log")
    assert os.path.getsize(path) < 1024 + 4096
    shown = sb.ok("logs", cid).stdout.split()
    assert shown and shown[-1] == "line300" and len(shown) < 300
    sb.ok("rm", cid)


def test_log_driver_none_keeps_nothing(sb, busybox):
    cid = rund(sb, busybox, "sh", "-c", "echo hidden; sleep 60",
               flags=["--log-driver", "none"])
    r = sb("logs", cid)
    assert r.returncode == 1
    assert "configured logging driver does not support reading" in r.stderr
    info = json.loads(sb.ok("inspect", cid).stdout)[0]
    assert info["LogPath"] == ""
    assert info["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}}
    assert _log_files(sb, cid) == []
    sb.ok("rm", "-f", cid)
    # In the foreground the output still reaches the terminal; `start -a`
    # attaches (what the container writes once attached).
    r = sb.ok("run", "--rm", "--log-driver", "none", busybox, "echo", "shown")
    assert r.stdout == "shown\n"
    cid = sb.ok("create", "--log-driver", "none", busybox,
                "sh", "-c", "sleep 1; echo attached; exit 3").stdout.strip()
    r = sb("start", "-a", cid, timeout=30)
    assert (r.returncode, r.stdout) == (3, "attached\n"), r.stderr
    sb.ok("rm", cid)


def test_log_attrs_from_labels_and_env_and_logs_details(sb, busybox):
    """--log-opt labels=, labels-regex=, env=, env-regex= as Docker's
    json-file: each line carries those of the container's labels and
    variables as "attrs" (for log shippers; before "time", as Docker
    writes it); `logs --details` puts them before each line (sorted,
    query-escaped), a container without any gets the space alone; with
    -t the time comes first."""
    cid = rund(sb, busybox, "sh", "-c", "echo one; echo two >&2; sleep 60",
               flags=["--label", "team=web ops", "--label", "com.example.tier=front",
                      "--label", "other=x", "-e", "STAGE=prod", "-e", "APP_ID=7",
                      "--log-opt", "labels=team,missing",
                      "--log-opt", "labels-regex=^com\\.example",
                      "--log-opt", "env=STAGE", "--log-opt", "env-regex=^APP_"])
    want = {"team": "web ops", "com.example.tier": "front", "STAGE": "prod", "APP_ID": "7"}
    path = os.path.join(sb.root, "containers", cid, cid + "-json.log")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
            not os.path.exists(path) or len(open(path).read().splitlines()) < 2):
        time.sleep(0.05)
    with open(path) as f:
        lines = f.read().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        entry = json.loads(line)
        assert list(entry) == ["log", "stream", "attrs", "time"]
        assert entry["attrs"] == want
    prefix = "APP_ID=7,STAGE=prod,com.example.tier=front,team=web+ops "
    r = sb.ok("logs", "--details", cid)
    assert (r.stdout, r.stderr) == (prefix + "one\n", prefix + "two\n")
    r = sb.ok("logs", "--details", "-t", cid)
    stamp, rest = r.stdout.split(" ", 1)
    assert stamp.endswith("Z") and rest == prefix + "one\n"
    assert sb.ok("logs", cid).stdout == "one\n"
    sb.ok("rm", "-f", cid)
    cid = rund(sb, busybox, "echo", "plain")
    sb.ok("wait", cid)
    assert sb.ok("logs", "--details", cid).stdout == " plain\n"
    with open(os.path.join(sb.root, "containers", cid, cid + "-json.log")) as f:
        assert "attrs" not in json.loads(f.readline())
    sb.ok("rm", cid)


@pytest.mark.parametrize("flags, message", [
    (["--log-opt", "env-regex=(unclosed"], "invalid env-regex '(unclosed'"),
    (["--log-driver", "syslog"], "unsupported log driver 'syslog'"),
    (["--log-opt", "max-size=lots"], "invalid max-size 'lots'"),
    (["--log-opt", "max-size=0"], "max-size must be a positive number"),
    (["--log-opt", "max-file=0"], "max-file cannot be less than 1"),
    (["--log-opt", "compress=true"], "unknown log opt 'compress' for json-file log driver"),
    (["--log-driver", "none", "--log-opt", "max-size=1m"],
     "unknown log opt 'max-size' for none log driver"),
    (["--log-opt", "max-size"], "invalid --log-opt 'max-size'"),
    (["--log-opt", "mode=fast"], "logger: unknown mode 'fast'"),
])
def test_bad_log_flags_are_refused_before_anything_is_made(sb, busybox, flags, message):
    r = sb("run", "-d", *flags, busybox, "true")
    assert r.returncode == 125 and message in r.stderr, r.stderr
    assert sb.ok("ps", "-a", "-q").stdout == ""


def test_log_defaults_from_config_json(sb, busybox):
    """Docker's daemon.json keys in ~/.config/sandbox/config.json: the
    defaults, merged under the flags when the driver is the same."""
    config = os.path.join(os.path.dirname(sb.root), "config-logs")
    os.makedirs(os.path.join(config, "sandbox"), exist_ok=True)
    with open(os.path.join(config, "sandbox", "config.json"), "w") as f:
        json.dump({"log-opts": {"max-size": "8k", "max-file": "2"}}, f)
    subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), config], check=True)
    env = {"XDG_CONFIG_HOME": config}
    cid = sb.ok("create", "--log-opt", "max-file=5", busybox, "true", env=env).stdout.strip()
    cfg = json.loads(sb.ok("inspect", cid).stdout)[0]["HostConfig"]["LogConfig"]
    assert cfg == {"Type": "json-file", "Config": {"max-size": "8k", "max-file": "5"}}
    cid2 = sb.ok("create", "--log-driver", "none", busybox, "true", env=env).stdout.strip()
    cfg = json.loads(sb.ok("inspect", cid2).stdout)[0]["HostConfig"]["LogConfig"]
    assert cfg == {"Type": "none", "Config": {}}
    sb.ok("rm", cid, cid2)


def test_run_sig_proxy_false_leaves_the_signal_to_the_cli(sb, busybox):
    """--sig-proxy=false (Docker's): the CLI is attached to a container of
    its own supervisor; SIGINT ends the CLI (130) and the container runs
    on.  stdin still goes through with -i."""
    p = sb.popen("run", "--name", "unproxied", "--sig-proxy=false", busybox, "sh", "-c",
                 "trap 'echo got-int' INT; echo ready; sleep 60")
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=20) == 130
        assert state_of(sb, "unproxied")["Running"]
        assert "got-int" not in sb.ok("logs", "unproxied").stdout
    finally:
        p.kill()
        sb("rm", "-f", "unproxied")
    r = sb("run", "--rm", "-i", "--sig-proxy=false", busybox, "sh", "-c", "cat; exit 6",
           input="piped\n")
    assert (r.returncode, r.stdout) == (6, "piped\n")


def test_ps_and_inspect_sizes(sb, busybox):
    """ps -s: Docker's SIZE column, what the container wrote (its upper
    layer) and, virtual, with its image; inspect -s: SizeRw, SizeRootFs."""
    cid = rund(sb, busybox, "sh", "-c", "head -c 300000 /dev/zero > /big; echo done; sleep 60",
               name="sized")
    _wait_log(sb, "sized", "done")
    info = json.loads(sb.ok("inspect", "-s", "sized").stdout)[0]
    assert info["SizeRw"] == 300000
    assert info["SizeRootFs"] > 300000 + 1_000_000          # with busybox's ~2 MB
    row = sb.ok("ps", "-s", "--format", "{{.Names}}|{{.Size}}").stdout.strip()
    assert row.startswith("sized|300kB (virtual ") and row.endswith("MB)"), row
    assert sb.ok("ps", "-s").stdout.splitlines()[0].split()[-1] == "SIZE"
    sb.ok("rm", "-f", cid)


def test_limits_on_a_host_without_cgroup_delegation(sb, busybox):
    """This CI host has the hybrid layout: limits warn and run, or fail with
    --cgroups=required; pause/stats/update say why they cannot work."""
    warned = sb("run", "--rm", "--memory", "32m", "--cpus", "0.5", busybox, "true")
    assert warned.returncode == 0
    assert warned.stderr.count("WARNING") == 1
    assert "resource limits are not available here" in warned.stderr
    assert "--memory, --cpus are ignored" in warned.stderr
    required = sb("run", "--rm", "--memory", "32m", "--cgroups=required", busybox, "true")
    assert required.returncode == 125
    assert "--cgroups=required" in required.stderr and "hint:" in required.stderr
    bad = sb("run", "--rm", "--memory", "lots", busybox, "true")
    assert bad.returncode == 125
    rund(sb, busybox, "sleep", "60", name="limited", flags=["--memory", "64m", "--pids-limit", "20"])
    hc = json.loads(sb.ok("inspect", "limited").stdout)[0]["HostConfig"]
    assert hc["Memory"] == 64 * 1024 * 1024 and hc["PidsLimit"] == 20
    stats = sb.ok("stats", "--no-stream", "limited")
    assert stats.stdout.splitlines()[0].split()[:2] == ["CONTAINER", "ID"]
    full = sb.ok("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", "limited")
    assert full.stdout.strip() == hc_id(sb, "limited")
    update = sb("update", "--memory", "128m", "limited")
    assert update.returncode == 1 and "own cgroup" in update.stderr
    sb.ok("rm", "-f", "limited")


def test_stats_without_a_cgroup_come_from_proc(sb, busybox):
    """Without a cgroup of its own (this host's hybrid layout), `stats`
    sums the container's processes in /proc: CPU, memory, storage I/O,
    tasks; NET I/O (with a cgroup too) from its network namespace."""
    from conftest import host_http_server
    server = host_http_server("0.0.0.0", b"x" * (2 * 1000 * 1000))
    try:
        rund(sb, busybox, "sh", "-c",
             "dd if=/dev/zero of=/written bs=1M count=8 && sync && "
             "wget -q -O /dev/null http://host.docker.internal:%d/ && "
             "touch /ready && while :; do :; done" % server.server_address[1],
             name="busy", flags=["--add-host", "host.docker.internal:host-gateway"])
        rund(sb, busybox, "sleep", "60", name="idle", flags=["--network", "host"])
        with open(os.path.join(sb.root, "containers", hc_id(sb, "busy"), "state.json")) as f:
            if json.load(f).get("Cgroup"):
                pytest.skip("the containers have cgroups here (the VM tests cover those)")
        for _ in range(100):
            if sb("exec", "busy", "test", "-e", "/ready").returncode == 0:
                break
            time.sleep(0.1)
        rows = {}
        for line in sb.ok("stats", "--no-stream", "--format", "json").stdout.splitlines():
            row = json.loads(line)
            rows[row["Name"]] = row
        busy, idle = rows["busy"], rows["idle"]
        assert float(busy["CPUPerc"].rstrip("%")) > 30, busy
        assert busy["PIDs"] == "1" and idle["PIDs"] == "1"
        used, limit = busy["MemUsage"].split(" / ")
        assert used.endswith(("KiB", "MiB")) and limit.endswith("GiB"), busy
        read, written = busy["BlockIO"].split(" / ")
        assert written.endswith("MB") and float(written[:-2]) >= 8, busy
        received, sent = busy["NetIO"].split(" / ")
        assert received.endswith("MB") and float(received[:-2]) >= 2, busy
        assert idle["NetIO"] == "0B / 0B" and idle["CPUPerc"] == "0.00%", idle
    finally:
        server.shutdown()
        server.server_close()
        sb("rm", "-f", "busy", "idle")


def test_attach_socket_with_a_deep_run_root(sb, busybox):
    """sun_path holds 108 bytes; run roots can be deeper than that."""
    deep = os.path.join(sb.runroot, "d" * 60, "e" * 30)
    os.makedirs(deep, exist_ok=True)
    for d in (os.path.dirname(deep), deep):
        os.chown(d, sb.uid, sb.gid)
    env = {"SANDBOX_RUNROOT": deep}
    sb.ok("run", "-d", "-i", "--network", "none", "--name", "deep", busybox, "sh", "-c",
          "read l; echo got $l", env=env)
    out = sb("attach", "deep", input="hi\n", env=env, timeout=30)
    assert out.returncode == 0 and out.stdout == "got hi\n"
    sb.ok("rm", "-f", "deep", env=env)


def test_ps_shows_published_ports(sb, busybox):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rund(sb, busybox, "sleep", "60", name="porter", flags=["-p", "127.0.0.1:%d:80" % port])
    assert sb.ok("ps", "--filter", "name=porter", "--format", "{{.Ports}}").stdout.strip() == \
        "127.0.0.1:%d->80/tcp" % port
    assert "127.0.0.1:%d->80/tcp" % port in sb.ok("ps").stdout
    sb.ok("stop", "-t", "0", "porter")
    assert sb.ok("ps", "-a", "--filter", "name=porter", "--format", "{{.Ports}}").stdout.strip() == ""
    sb.ok("rm", "porter")


@pytest.mark.parametrize("restart", ["no", "unless-stopped"])
def test_idle_container_is_held_by_the_expected_supervisor(sb, busybox, restart):
    """Native: once the container runs, its supervisor and C have become
    sandbox-monitor (a fraction of a Python process's memory), and they
    still do the supervisor's work at the end.  Python: both stay Python.
    With a restart policy too (the frozen binary once kept Python there)."""
    cid = rund(sb, busybox, "sh", "-c", "echo up; sleep 60", flags=("--restart", restart))
    with open(os.path.join(sb.root, "containers", cid, "state.json")) as f:
        st = json.load(f)
    with open("/proc/%d/stat" % st["Pid"]) as f:
        c_pid = int(f.read().rsplit(")", 1)[1].split()[1])

    def held_by():
        return {os.path.basename(os.readlink("/proc/%d/exe" % pid)).replace(" (deleted)", "")
                for pid in (st["MonitorPid"], c_pid)}
    # `run -d` returns once the command runs; the exec into the monitor
    # follows a moment later.
    python = sb._env.get("SANDBOX_MONITOR") == "python"
    deadline = time.monotonic() + (0.5 if python else 10)
    while held_by() != {monitor.NATIVE_NAME} and time.monotonic() < deadline:
        time.sleep(0.05)
    if python:
        assert monitor.NATIVE_NAME not in held_by(), held_by()
    else:
        assert held_by() == {monitor.NATIVE_NAME}, held_by()
    sb.ok("stop", "-t", "0", cid)
    assert state_of(sb, cid)["ExitCode"] == 137
    assert sb.ok("logs", cid).stdout == "up\n"
    sb.ok("rm", cid)


def test_no_bootloader_environment_reaches_the_processes_left_running(sb, busybox):
    """The frozen binary's bootloader points LD_LIBRARY_PATH at its bundled
    libraries and sets _PYI_* variables: none of the processes that stay
    (supervisor or monitor, C, the user namespace keeper) keep them, or
    host tools they start would load our libraries.  (From a checkout
    there is nothing to remove: this holds trivially.)  What a process got
    at its exec is what /proc shows: forks of the CLI (a Python supervisor,
    C) show the CLI's, and are left out."""
    cid = rund(sb, busybox, "sleep", "60")
    needle = ("SANDBOX_ROOT=" + sb.root).encode()
    seen = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env and cmdline[0] != sb.cli.encode():
            seen.append(cmdline)
            assert not [v for v in env if v.startswith((b"_PYI_", b"LD_LIBRARY_PATH"))], cmdline
    assert any(c[0] == b"sandbox-userns" for c in seen), seen
    sb.ok("rm", "-f", cid)


def hc_id(sb, name):
    return sb.ok("inspect", "-f", "{{.Id}}", name).stdout.strip()


def test_wait_condition_running_healthy_and_stopped(sb, busybox):
    """podman's `wait --condition`: returns once the container is in that
    state (printing -1, as podman does), healthy by its health check;
    stopped/exited print the exit code; a container that ends before it
    gets there is an error, and an unknown condition is refused."""
    cid = sb.ok("create", "--name", "waitcond", "--health-cmd", "test -e /tmp/ok",
                "--health-interval", "200ms", busybox, "sh", "-c",
                "sleep 1; touch /tmp/ok; sleep 2; exit 6").stdout.strip()
    waiter = sb.popen("wait", "--condition", "running", "-i", "50", "waitcond")
    time.sleep(0.3)
    assert waiter.poll() is None                # created, not running yet
    sb.ok("start", cid)
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and out.strip() == "-1"
    r = sb.ok("wait", "--condition", "healthy", "--interval", "100ms", cid, timeout=30)
    assert r.stdout == "-1\n"
    assert "healthy" in sb.ok("ps", "--filter", "health=healthy", "--format",
                              "{{.Status}}").stdout
    r = sb.ok("wait", "--condition", "stopped", "waitcond", timeout=30)
    assert r.stdout == "6\n"
    r = sb("wait", "--condition", "paused", "waitcond", timeout=30)
    assert r.returncode == 1 and "exited (6) before it was paused" in r.stderr
    r = sb("wait", "--condition", "sleeping", "waitcond")
    assert r.returncode == 125 and "invalid condition 'sleeping'" in r.stderr
    sb.ok("rm", "waitcond")
