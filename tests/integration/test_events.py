"""`events`: Docker's event messages, written by each command that changes
something (helpers/events.py) and read back, filtered and followed."""

import json
import signal
import time


def events(sb, since, *args):
    """The events from ``since`` until now (as JSON objects)."""
    out = sb.ok("events", "--since", "%.9f" % since, "--until", "%.9f" % time.time(),
                "--format", "{{json .}}", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_a_containers_life_in_events(sb, busybox):
    since = time.time()
    sb.ok("run", "--rm", "--name", "ev-a", busybox, "true")
    sb("rm", "-f", "ev-b")
    cid = sb.ok("run", "-d", "--name", "ev-b", "-l", "team=x", busybox,
                "sleep", "60").stdout.strip()
    sb.ok("kill", "-s", "USR1", "ev-b")
    sb.ok("stop", "-t", "1", "ev-b")
    sb.ok("rename", "ev-b", "ev-b2")
    sb.ok("rm", "ev-b2")
    got = events(sb, since, "--filter", "container=ev-a")
    assert [e["Action"] for e in got] == ["create", "start", "die", "destroy"], got
    first = got[0]
    assert first["Type"] == "container" and first["status"] == "create"
    assert first["id"] == first["Actor"]["ID"] and len(first["id"]) == 64
    assert first["from"] == busybox and first["Actor"]["Attributes"]["name"] == "ev-a"
    assert first["time"] == first["timeNano"] // 10**9 and since <= first["time"] + 1
    assert got[2]["Actor"]["Attributes"]["exitCode"] == "0"
    got = events(sb, since, "--filter", "container=" + cid[:12])
    assert [e["Action"] for e in got] == ["create", "start", "kill", "kill", "kill", "die",
                                          "stop", "rename", "destroy"], got
    assert [e["Actor"]["Attributes"].get("signal") for e in got[2:5]] == ["10", "15", "9"]
    assert got[7]["Actor"]["Attributes"]["oldName"] == "/ev-b"
    # filters: the same key twice is either; different keys are both
    got = events(sb, since, "--filter", "event=die", "--filter", "label=team=x")
    assert [(e["Action"], e["Actor"]["Attributes"]["exitCode"]) for e in got] == [("die", "137")]
    got = events(sb, since, "--filter", "container=ev-a", "--filter", "container=ev-b2",
                 "--filter", "event=destroy")
    assert len(got) == 2
    text = sb.ok("events", "--since", "%.9f" % since, "--until", "%.9f" % time.time(),
                 "--filter", "container=ev-a", "--filter", "event=start",
                 "--format", "{{.Status}} {{.ID}} {{.From}} {{.Actor.Attributes.name}}").stdout
    assert text == "start %s %s ev-a\n" % (got[0]["id"], busybox)
    # the default line: RFC 3339 with nanoseconds, type, action, id, (attributes)
    line = sb.ok("events", "--since", "%.9f" % since, "--until", "%.9f" % time.time(),
                 "--filter", "container=ev-a", "--filter", "event=die").stdout
    stamp, rest = line.split(" ", 1)
    assert len(stamp.split(".")[1]) >= 10          # nanoseconds and a zone
    assert rest == "container die %s (exitCode=0, image=%s, name=ev-a)\n" % (
        got[0]["id"], busybox)


def test_image_volume_and_network_events(sb, busybox):
    since = time.time()
    sb.ok("tag", busybox, "ev-tag:1")
    sb.ok("rmi", "ev-tag:1")
    sb.ok("volume", "create", "ev-vol")
    sb.ok("volume", "rm", "ev-vol")
    sb("network", "rm", "ev-net")
    sb.ok("network", "create", "ev-net")
    sb.ok("network", "rm", "ev-net")
    got = [(e["Type"], e["Action"], e["Actor"]["Attributes"].get("name"))
           for e in events(sb, since)]
    assert got == [("image", "tag", "docker.io/library/ev-tag:1"),
                   ("image", "untag", "docker.io/library/ev-tag:1"),
                   ("volume", "create", None), ("volume", "destroy", None),
                   ("network", "create", "ev-net"), ("network", "destroy", "ev-net")], got
    assert [e["Action"] for e in events(sb, since, "--filter", "type=volume",
                                        "--filter", "volume=ev-vol")] == ["create", "destroy"]
    assert events(sb, since, "--filter", "type=network", "--filter", "event=tag") == []


def test_events_follow_until_interrupted(sb, busybox):
    watcher = sb.popen("events", "--filter", "container=ev-follow", "--format",
                       "{{.Action}}")
    try:
        time.sleep(0.5)        # (events shows what happens from its start on)
        sb.ok("run", "--rm", "--name", "ev-follow", busybox, "true")
        lines = [watcher.stdout.readline().strip() for _ in range(4)]
        assert lines == ["create", "start", "die", "destroy"]
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=10)
    assert watcher.returncode in (0, 130)


def test_bad_filters_are_refused(sb):
    for flt, message in (("colour=red", "invalid filter 'colour'"),
                         ("type=secret", "invalid filter 'type=secret'")):
        r = sb("events", "--until", "0s", "--filter", flt)
        assert r.returncode == 125 and message in r.stderr, r.stderr


def test_health_status_changes_are_events(sb, busybox):
    since = time.time()
    sb("rm", "-f", "ev-health")
    sb.ok("run", "-d", "--name", "ev-health", "--health-cmd", "true",
          "--health-interval", "1s", busybox, "sleep", "60")
    try:
        for _ in range(100):
            state = sb.ok("inspect", "-f", "{{.State.Health.Status}}", "ev-health").stdout
            if state == "healthy\n":
                break
            time.sleep(0.1)
        assert state == "healthy\n"
        got = events(sb, since, "--filter", "container=ev-health",
                     "--filter", "event=health_status")
        assert [e["Action"] for e in got] == ["health_status: healthy"], got
    finally:
        sb("rm", "-f", "ev-health")


def test_exec_events(sb, busybox):
    since = time.time()
    sb("rm", "-f", "ev-exec")
    sb.ok("run", "-d", "--name", "ev-exec", busybox, "sleep", "60")
    try:
        assert sb("exec", "ev-exec", "sh", "-c", "exit 3").returncode == 3
        got = events(sb, since, "--filter", "container=ev-exec", "--filter", "event=exec_create",
                     "--filter", "event=exec_start", "--filter", "event=exec_die")
        assert [e["Action"] for e in got] == ["exec_create: sh -c exit 3",
                                              "exec_start: sh -c exit 3", "exec_die"], got
        assert len({e["Actor"]["Attributes"]["execID"] for e in got}) == 1
        assert got[2]["Actor"]["Attributes"]["exitCode"] == "3"
        # -d: the CLI returns at once (even with its output captured, as
        # $(...) does), and exec_die comes when the command ends.
        since_d = time.time()
        started = time.monotonic()
        sb.ok("exec", "-d", "ev-exec", "sh", "-c", "sleep 1; exit 4")
        assert time.monotonic() - started < 1
        assert events(sb, since_d, "--filter", "container=ev-exec",
                      "--filter", "event=exec_die") == []
        for _ in range(100):
            got = events(sb, since_d, "--filter", "container=ev-exec",
                         "--filter", "event=exec_die")
            if got:
                break
            time.sleep(0.1)
        assert [e["Actor"]["Attributes"]["exitCode"] for e in got] == ["4"], got
        sb.ok("rm", "-f", "ev-exec")
        got = events(sb, since, "--filter", "container=ev-exec", "--filter", "event=kill",
                     "--filter", "event=die", "--filter", "event=destroy")
        assert [(e["Action"], e["Actor"]["Attributes"].get("signal")) for e in got] == \
            [("kill", "9"), ("die", None), ("destroy", None)], got
    finally:
        sb("rm", "-f", "ev-exec")
