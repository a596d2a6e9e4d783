"""Health checks, as the unprivileged test user: --health-* flags and the
image's HEALTHCHECK (from `build`), Docker's status rules (starting,
healthy, unhealthy after N failures, the start period, the timeout), ps's
STATUS and health= filter, inspect's State.Health and Config.Healthcheck,
with the native monitor's loop and with the Python supervisor's; the loop
ends with the container."""

import json
import os
import time

import pytest

from conftest import Runner
from test_build import context


@pytest.fixture(scope="module", params=["native", "python"])
def sb(request, test_user, _cli_reachable):
    env = {"SANDBOX_MONITOR": "python"} if request.param == "python" else {}
    runner = Runner(test_user, "health-" + request.param, env=env)
    yield runner
    runner.close()


def health(sb, name):
    return json.loads(sb.ok("inspect", "-f", "{{json .State.Health}}", name).stdout)


def wait_for(sb, name, status, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = health(sb, name)
        if h["Status"] == status:
            return h
        time.sleep(0.1)
    raise AssertionError("%s never became %s: %s" % (name, status, h))


def loops_of(sb, cid):
    """The health loops running for container ``cid``: the native monitor's
    (its argv names the container), or the Python supervisor's child
    named sandbox-health."""
    out = []
    monitor = None
    try:
        with open(os.path.join(sb.root, "containers", cid, "state.json")) as f:
            monitor = json.load(f).get("MonitorPid")
    except OSError:
        pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % pid) as f:
                comm, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        if cid.encode() in argv and b"health" in argv or \
                comm.endswith("(sandbox-health") and int(rest.split()[1]) == monitor:
            out.append(int(pid))
    return out


def test_healthy_unhealthy_and_back(sb, busybox):
    """Failures in a row up to --health-retries make it unhealthy; one
    success makes it healthy again; ps and inspect show it."""
    sb("rm", "-f", "hc")
    cid = sb.ok("run", "-d", "--name", "hc", "--health-cmd", "cat /tmp/ok",
                "--health-interval", "200ms", "--health-retries", "2",
                busybox, "sleep", "60").stdout.strip()
    assert health(sb, "hc")["Status"] in ("starting", "unhealthy")
    h = wait_for(sb, "hc", "unhealthy")
    assert h["FailingStreak"] >= 2
    assert h["Log"][-1]["ExitCode"] == 1 and "No such file" in h["Log"][-1]["Output"]
    rows = sb.ok("ps", "--format", "{{.Names}}|{{.Status}}").stdout.splitlines()
    assert any(r.startswith("hc|Up ") and r.endswith(" (unhealthy)") for r in rows), rows
    assert sb.ok("ps", "-q", "--filter", "health=unhealthy").stdout.strip() == cid[:12]
    sb.ok("exec", "hc", "sh", "-c", "echo fine > /tmp/ok")
    h = wait_for(sb, "hc", "healthy")
    assert h["FailingStreak"] == 0 and h["Log"][-1]["Output"] == "fine\n"
    assert len(h["Log"]) <= 5
    assert sb.ok("ps", "-q", "--filter", "health=healthy").stdout.strip() == cid[:12]
    assert sb.ok("ps", "-q", "--filter", "health=unhealthy").stdout.strip() == ""
    cfg = json.loads(sb.ok("inspect", "-f", "{{json .Config.Healthcheck}}", "hc").stdout)
    assert cfg == {"Test": ["CMD-SHELL", "cat /tmp/ok"], "Interval": 200000000, "Retries": 2}
    loops = loops_of(sb, cid)
    assert len(loops) == 1
    sb.ok("rm", "-f", "hc")
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d" % loops[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists("/proc/%d" % loops[0])


def test_timeout_start_period_and_no_healthcheck(sb, busybox):
    sb("rm", "-f", "slow", "grace", "none")
    sb.ok("run", "-d", "--name", "slow", "--health-cmd", "sleep 5",
          "--health-interval", "200ms", "--health-timeout", "300ms",
          "--health-retries", "1", busybox, "sleep", "60")
    h = wait_for(sb, "slow", "unhealthy")
    assert h["Log"][-1]["ExitCode"] == -1
    assert h["Log"][-1]["Output"] == "Health check exceeded timeout (300ms)"
    # Failures within the start period do not count while it starts.
    sb.ok("run", "-d", "--name", "grace", "--health-cmd", "false",
          "--health-interval", "200ms", "--health-retries", "1",
          "--health-start-period", "30s", "--health-start-interval", "200ms",
          busybox, "sleep", "60")
    time.sleep(1.5)
    h = health(sb, "grace")
    assert h["Status"] == "starting" and h["FailingStreak"] == 0 and len(h["Log"]) >= 2
    assert "(health: starting)" in sb.ok("ps", "--filter", "name=grace").stdout
    sb.ok("run", "-d", "--name", "none", "--no-healthcheck", busybox, "sleep", "60")
    none = json.loads(sb.ok("inspect", "none").stdout)[0]
    assert "Health" not in none["State"] and "Healthcheck" not in none["Config"]
    assert "none" in sb.ok("ps", "--format", "{{.Names}}", "--filter", "health=none").stdout
    sb.ok("rm", "-f", "slow", "grace", "none")


def test_flag_errors(sb, busybox):
    r = sb("run", "--rm", "--health-interval", "5 seconds", busybox, "true")
    assert r.returncode == 125 and "invalid --health-interval" in r.stderr
    r = sb("run", "--rm", "--no-healthcheck", "--health-cmd", "true", busybox, "true")
    assert r.returncode == 125 and "conflicts" in r.stderr
    r = sb("ps", "--filter", "health=maybe")
    assert r.returncode == 125


def test_the_images_healthcheck_and_a_foreground_run(sb, busybox):
    """HEALTHCHECK from a Dockerfile (its flags, exec form); a foreground
    `run` checks too; HEALTHCHECK NONE and --no-healthcheck turn it off;
    build's own RUN steps are not checked."""
    ctx = context(sb, "health-build", (
        "FROM busybox\n"
        "HEALTHCHECK --interval=200ms --retries=1 CMD [\"test\", \"-e\", \"/ready\"]\n"
        "RUN touch /built\n"
        "CMD [\"sh\", \"-c\", \"touch /ready; sleep 60\"]\n"))
    r = sb("build", "-q", "-t", "localhost/checked:1", ctx)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(sb.ok("image", "inspect", "-f", "{{json .Config.Healthcheck}}",
                           "localhost/checked:1").stdout)
    assert cfg == {"Interval": 200000000, "Retries": 1,
                   "Test": ["CMD", "test", "-e", "/ready"]}
    sb("rm", "-f", "img-hc")
    sb.ok("run", "-d", "--name", "img-hc", "localhost/checked:1")
    wait_for(sb, "img-hc", "healthy")
    sb.ok("rm", "-f", "img-hc")
    # Foreground: the CLI is the supervisor and runs the loop.
    sb("rm", "-f", "fg-hc")
    p = sb.popen("run", "--name", "fg-hc", "localhost/checked:1")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = sb("inspect", "-f", "{{.State.Health.Status}}", "fg-hc")
            if r.returncode == 0 and r.stdout.strip() == "healthy":
                break
            time.sleep(0.1)
        assert r.stdout.strip() == "healthy", r
    finally:
        sb.ok("stop", "-t", "1", "fg-hc")
        p.communicate(timeout=30)
    sb.ok("rm", "fg-hc")
    ctx = context(sb, "health-none", "FROM localhost/checked:1\nHEALTHCHECK NONE\n")
    image = sb.ok("build", "-q", ctx).stdout.strip()
    none = json.loads(sb.ok("image", "inspect", image).stdout)[0]["Config"]
    assert none["Healthcheck"] == {"Test": ["NONE"]}
    sb("rm", "-f", "off")
    sb.ok("run", "-d", "--name", "off", image, "sleep", "60")
    assert "Health" not in json.loads(sb.ok("inspect", "off").stdout)[0]["State"]
    sb.ok("rm", "-f", "off")
    r = sb("build", context(sb, "health-bad", "FROM busybox\nHEALTHCHECK --every=1s CMD true\n"))
    assert r.returncode == 1 and "HEALTHCHECK: unknown flag --every=1s" in r.stderr
