"""`compose`, as the unprivileged test user: a project of a web server
(published port), a database with a named volume and a one-shot client,
from a compose.yaml with .env interpolation and an override file; up -d,
ps, logs, exec, run, port, down [-v]; what up does again (nothing where
nothing changed, a new container where the service changed); a build
with args, a healthcheck that another service waits for, the foreground
up with prefixed output, --exit-code-from, Ctrl-C; and the errors."""

import json
import os
import signal
import time

import pytest

from conftest import describe
from registrytools import Registry, skopeo_copy
from test_cp import user_files
from test_network import free_port, wait_http

COMPOSE = """\
name: shop
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo web says $${GREETING}; mkdir -p /www && echo $${PAGE} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    environment:
      GREETING: ${GREETING:-hello}
      PAGE: page-${PAGE_VERSION}
    ports:
      - "127.0.0.1:${WEB_PORT}:8080"
    depends_on: [db]
    init: true
    labels:
      tier: front
  db:
    image: busybox
    init: true
    command: sh -c 'echo db ready; exec sleep 3600'
    volumes:
      - data:/data
      - ./conf:/conf:ro
    networks:
      default:
        aliases: [database]
volumes:
  data:
"""


project = user_files          # (a compose project's directory)


def names(sb):
    return sorted(sb.ok("ps", "-a", "--format", "{{.Names}}").stdout.split())


@pytest.fixture
def shop(sb, busybox):
    port = free_port()
    top = project(sb, "shop", {"compose.yaml": COMPOSE, "conf/app.conf": "x=1\n",
                               ".env": "WEB_PORT=%d\nPAGE_VERSION=1 # from .env\n" % port})
    yield top, port
    sb("compose", "down", "-v", "-t", "1", cwd=top)


@pytest.mark.binary
def test_up_detached_ps_logs_exec_and_down(sb, shop):
    top, port = shop
    r = sb("compose", "up", "-d", cwd=top)
    assert r.returncode == 0, describe(r)
    for line in (" Network shop_default  Created", " Volume shop_data  Created",
                 " Container shop-db-1  Started", " Container shop-web-1  Started"):
        assert line in r.stderr
    assert r.stderr.index("shop-db-1  Started") < r.stderr.index("shop-web-1  Started")
    assert wait_http(port) == "page-1\n"
    ps = sb.ok("compose", "ps", cwd=top).stdout.splitlines()
    assert ps[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS",
                             "PORTS"]
    assert [line.split()[0] for line in ps[1:]] == ["shop-web-1", "shop-db-1"]
    assert "127.0.0.1:%d->8080/tcp" % port in ps[1]
    assert sb.ok("compose", "ps", "--services", cwd=top).stdout == "web\ndb\n"
    info = json.loads(sb.ok("inspect", "shop-web-1").stdout)[0]
    labels = info["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == "shop"
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "1"
    assert labels["tier"] == "front"
    assert "GREETING=hello" in info["Config"]["Env"]
    # Services reach each other by name and alias on the project's network.
    r = sb.ok("compose", "exec", "-T", "web", "sh", "-c",
              "ping -c1 -W2 db >/dev/null && ping -c1 -W2 database >/dev/null && "
              "cat /etc/hostname >/dev/null && echo reached", cwd=top)
    assert r.stdout == "reached\n"
    r = sb.ok("compose", "exec", "-T", "db", "sh", "-c",
              "cat /conf/app.conf; echo kept > /data/f; cat /data/f; touch /conf/no 2>/dev/null || echo ro",
              cwd=top)
    assert r.stdout == "x=1\nkept\nro\n"
    r = sb("compose", "exec", "-T", "db", "sh", "-c", "exit 7", cwd=top)
    assert r.returncode == 7
    logs = sb.ok("compose", "logs", cwd=top).stdout.splitlines()
    assert sorted(logs) == ["db-1  | db ready", "web-1 | web says hello"]
    assert sb.ok("compose", "logs", "--no-log-prefix", "web", cwd=top).stdout == \
        "web says hello\n"
    assert sb.ok("compose", "port", "web", "8080", cwd=top).stdout == "127.0.0.1:%d\n" % port
    assert "shop" in sb.ok("compose", "ls", cwd=top).stdout
    # down keeps the named volume (its data with it) unless -v.
    r = sb.ok("compose", "down", "-t", "1", cwd=top)
    assert " Network shop_default  Removed" in r.stderr
    assert names(sb) == []
    assert "shop_default" not in sb.ok("network", "ls").stdout
    sb.ok("compose", "up", "-d", "db", cwd=top)
    assert names(sb) == ["shop-db-1"]         # only what db needs
    assert sb.ok("compose", "exec", "-T", "db", "cat", "/data/f", cwd=top).stdout == "kept\n"
    r = sb.ok("compose", "down", "-v", "-t", "1", cwd=top)
    assert " Volume shop_data  Removed" in r.stderr
    assert "shop_data" not in sb.ok("volume", "ls", "-q").stdout.split()


def test_up_again_changes_only_what_changed(sb, shop):
    top, port = shop
    sb.ok("compose", "up", "-d", cwd=top)
    first = {n: sb.ok("inspect", "-f", "{{.Id}}", n).stdout for n in ("shop-web-1", "shop-db-1")}
    r = sb.ok("compose", "up", "-d", cwd=top)
    assert " Container shop-web-1  Running" in r.stderr
    assert {n: sb.ok("inspect", "-f", "{{.Id}}", n).stdout for n in first} == first
    # A changed variable changes web's service: web is made again, db kept.
    r = sb.ok("compose", "up", "-d", cwd=top, env={"GREETING": "bonjour"})
    assert " Container shop-web-1  Recreated" in r.stderr
    assert sb.ok("inspect", "-f", "{{.Id}}", "shop-web-1").stdout != first["shop-web-1"]
    assert sb.ok("inspect", "-f", "{{.Id}}", "shop-db-1").stdout == first["shop-db-1"]
    assert wait_http(port) == "page-1\n"
    assert sb.ok("compose", "logs", "web", cwd=top).stdout == "web-1 | web says bonjour\n"
    # A stopped container is started again as it was.
    sb.ok("compose", "stop", "-t", "1", "web", cwd=top)
    assert sb.ok("compose", "ps", "--services", cwd=top).stdout == "db\n"
    assert "Exited" in sb.ok("compose", "ps", "-a", cwd=top).stdout
    sb.ok("compose", "up", "-d", "--force-recreate", "--scale", "db=2", "db", cwd=top)
    assert names(sb) == ["shop-db-1", "shop-db-2", "shop-web-1"]
    assert sb.ok("inspect", "-f", "{{.Id}}", "shop-db-1").stdout != first["shop-db-1"]
    r = sb.ok("compose", "up", "-d", cwd=top, env={"GREETING": "bonjour"})
    assert " Container shop-db-2  Removed" in r.stderr         # scaled back to 1
    assert names(sb) == ["shop-db-1", "shop-web-1"]


NETWORKS = """\
services:
  web:
    image: busybox
    command: sleep 600
    init: true
    networks: [front, back]
    links: ["db:legacy-db"]
  db:
    image: busybox
    command: sleep 600
    init: true
    networks: [back]
  client:
    image: busybox
    command: sh -c 'trap "echo bye; exit 0" TERM; sleep 600 & wait'
    depends_on: [web]
    networks:
      front:
        ipv4_address: 10.77.1.50
networks:
  front:
    ipam:
      config:
        - subnet: 10.77.1.0/24
  back:
    internal: true
"""


def test_networks_keep_services_apart(sb, busybox):
    """web is on both networks (the second joined before it starts), db
    only on back, client only on front with a fixed address: client
    reaches web, not db; stop and down stop dependents first."""
    top = project(sb, "nets", {"compose.yaml": NETWORKS})
    try:
        sb.ok("compose", "up", "-d", cwd=top)
        r = sb.ok("compose", "exec", "-T", "client", "sh", "-c",
                  "ip -4 -o addr show eth0 | grep -o 'inet [0-9./]*'; "
                  "ping -c1 -W2 web >/dev/null && echo web; "
                  "ping -c1 -W1 db >/dev/null 2>&1 || echo no-db", cwd=top)
        assert r.stdout == "inet 10.77.1.50/24\nweb\nno-db\n"
        r = sb.ok("compose", "exec", "-T", "web", "sh", "-c",
                  "ping -c1 -W2 db >/dev/null && echo db; "
                  "ping -c1 -W2 legacy-db >/dev/null && echo linked", cwd=top)
        assert r.stdout == "db\nlinked\n"
        r = sb.ok("compose", "stop", "-t", "5", cwd=top)
        assert r.stderr.index("nets-client-1  Stopped") < r.stderr.index("nets-web-1  Stopped")
        assert sb.ok("compose", "logs", "client", cwd=top).stdout == "client-1 | bye\n"
    finally:
        r = sb("compose", "down", cwd=top)
    assert r.returncode == 0, describe(r)
    assert "nets_" not in sb.ok("network", "ls").stdout


BUILT = """\
services:
  app:
    build:
      context: ./app
      args:
        MSG: from-compose
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 1s
      retries: 30
    command: sh -c 'cat /msg; sleep 1; touch /tmp/ready; sleep 1; echo app done; exit 3'
  client:
    image: busybox
    depends_on:
      app:
        condition: service_healthy
    command: ["echo", "client ran"]
"""


def test_foreground_up_builds_waits_for_health_and_exits_with_a_code(sb, busybox):
    top = project(sb, "built", {"compose.yaml": BUILT, "app/Dockerfile":
                                "FROM busybox\nARG MSG\nRUN echo \"message $MSG\" > /msg\n"})
    try:
        r = sb("compose", "up", "--exit-code-from", "app", cwd=top, timeout=120)
        assert r.returncode == 3, describe(r)
        out = r.stdout.splitlines()
        assert "app-1    | message from-compose" in out
        assert "client-1 | client ran" in out
        assert "client-1 exited with code 0" in out
        assert "app-1 exited with code 3" in out
        # client started once app was healthy
        assert r.stderr.index("built-app-1  Healthy") < \
            r.stderr.index("built-client-1  Started"), r.stderr
        assert " Image built-app  Built" in r.stderr
        assert sb.ok("images", "-q", "built-app").stdout.strip()
        # --abort-on-container-exit: the client's end stopped them all.
        assert sb.ok("ps", "-q").stdout == ""
    finally:
        r = sb("compose", "down", "--rmi", "local", cwd=top)
    assert r.returncode == 0, describe(r)
    assert sb.ok("images", "-q", "built-app").stdout == ""


def test_ctrl_c_stops_a_foreground_up(sb, busybox):
    top = project(sb, "fg", {"compose.yaml": "services:\n  loop:\n    image: busybox\n"
                             "    command: sh -c 'echo looping; exec sleep 600'\n"
                             "    init: true\n"})
    proc = sb.popen("compose", "up", cwd=top)
    try:
        deadline = time.monotonic() + 30
        line = ""
        while "looping" not in line:
            assert time.monotonic() < deadline
            line = proc.stdout.readline()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Gracefully stopping..." in err
        assert " Container fg-loop-1  Stopped" in err
        status = sb.ok("ps", "-a", "--format", "{{.Names}} {{.State}}").stdout
        assert status == "fg-loop-1 exited\n"
    finally:
        if proc.poll() is None:
            proc.kill()
        sb("compose", "down", "-t", "1", cwd=top)


def test_run_a_one_off_command(sb, busybox):
    top = project(sb, "oneoff", {"compose.yaml": (
        "services:\n  tool:\n    image: busybox\n    environment: [MODE=test]\n"
        "    ports: ['127.0.0.1:%d:80']\n    entrypoint: [sh, -c]\n"
        "    command: ['echo default']\n" % free_port())})
    try:
        r = sb("compose", "run", "--rm", "-T", "tool", "echo mode=$MODE; exit 5", cwd=top)
        assert r.returncode == 5, describe(r)
        assert r.stdout == "mode=test\n"
        r = sb.ok("compose", "run", "--rm", "-T", "-e", "MODE=other", "tool", cwd=top)
        assert r.stdout == "default\n"
        r = sb.ok("compose", "run", "--rm", "-T", "--entrypoint", "echo", "tool", "plain",
                  cwd=top)
        assert r.stdout == "plain\n"
        assert names(sb) == []                         # --rm left nothing
    finally:
        sb("compose", "down", cwd=top)


def test_userns_mode_keep_id(sb, busybox):
    """A compose file's `userns_mode: keep-id` (podman compose files have
    it): the service runs as the user, whose bind-mounted files it owns."""
    top = project(sb, "keepid", {"compose.yaml": (
        "services:\n  dev:\n    image: busybox\n    userns_mode: keep-id\n"
        "    volumes: ['.:/src']\n    working_dir: /src\n"
        "    command: sh -c 'id -u; stat -c %u compose.yaml; echo built > out'\n")})
    try:
        r = sb.ok("compose", "run", "--rm", "-T", "dev", cwd=top)
        assert r.stdout.split() == [str(sb.uid)] * 2
        st = os.stat(os.path.join(top, "out"))
        assert (st.st_uid, st.st_gid) == (sb.uid, sb.gid)
    finally:
        sb("compose", "down", cwd=top)


def test_override_files_yaml_1_2_scalars_and_config(sb, busybox):
    top = project(sb, "conf", {
        "compose.yaml": "services:\n  a:\n    image: busybox\n    ports: [22:22]\n"
                        "    environment: {FLAG: yes, N: 010}\n    command: [top]\n",
        "compose.override.yaml": "services:\n  a:\n    ports: ['8080:80']\n"
                                 "    environment: {EXTRA: '1'}\n    command: [sleep, '9']\n"})
    model = json.loads(sb.ok("compose", "config", "--format", "json", cwd=top).stdout)
    a = model["services"]["a"]
    assert model["name"] == "conf"
    assert a["ports"] == ["22:22", "8080:80"]               # not 1342 (YAML 1.1's reading)
    assert a["environment"] == {"FLAG": "yes", "N": "10", "EXTRA": "1"}
    assert a["command"] == ["sleep", "9"]
    assert sb.ok("compose", "config", "--services", cwd=top).stdout == "a\n"
    assert sb.ok("compose", "-f", "compose.yaml", "config", "--format", "json",
                 cwd=top).stdout.count("8080") == 0


@pytest.mark.parametrize("files, message", [
    ({}, "no configuration file provided"),
    ({"compose.yaml": "services:\n  a:\n    image: busybox\n    volumes: [nope:/x]\n"},
     "service a refers to undefined volume nope"),
    ({"compose.yaml": "services:\n  a:\n    image: busybox\n    colour: red\n"},
     "service a: unknown key colour"),
    ({"compose.yaml": "services:\n  a:\n    image: ${IMG:?set IMG first}\n"},
     "required variable IMG is missing a value: set IMG first"),
    ({"compose.yaml": "services:\n  a:\n    image: busybox\n    depends_on: [b]\n"},
     "service a depends on undefined service b"),
    ({"compose.yaml": "services:\n  a: [\n"}, "compose.yaml is not valid YAML"),
])
def test_errors(sb, busybox, files, message):
    top = project(sb, "bad", files)
    r = sb("compose", "up", "-d", cwd=top)
    assert r.returncode == 1, describe(r)
    assert r.stderr.startswith("sandbox: ") and message in r.stderr, r.stderr
    assert names(sb) == []


EXTRAS = """\
services:
  app:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        RUN echo inline > /built
    env_file: [app.env]
    environment: [FROM_SHELL]
    secrets: [token, {source: note, target: /etc/note.txt}]
    configs: [settings]
    command: sh -c 'cat /built /run/secrets/token /etc/note.txt; echo; cat /settings; echo $$KEY $$FROM_SHELL; sleep 600'
    healthcheck:
      test: touch /tmp/ok
      interval: 1s
  extra:
    image: busybox
    profiles: [debug]
    command: sleep 600
secrets:
  token:
    file: ./token.txt
  note:
    environment: NOTE
configs:
  settings:
    content: |
      level=3
"""


def test_secrets_configs_env_files_profiles_and_wait(sb, busybox):
    top = project(sb, "extras", {"compose.yaml": EXTRAS, "app.env": "KEY=from-file\n",
                                 "token.txt": "t0ken\n"})
    env = {"FROM_SHELL": "shell", "NOTE": "noted"}
    try:
        r = sb("compose", "up", "-d", "--wait", cwd=top, env=env)
        assert r.returncode == 0, describe(r)
        assert " Container extras-app-1  Healthy" in r.stderr
        assert names(sb) == ["extras-app-1"]             # extra's profile is off
        assert sb.ok("compose", "logs", "--no-log-prefix", cwd=top).stdout == \
            "inline\nt0ken\nnoted\nlevel=3\nfrom-file shell\n"
        r = sb("compose", "exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/token",
               cwd=top)
        assert r.returncode != 0                          # read-only
        assert sb.ok("compose", "--profile", "debug", "config", "--services",
                     cwd=top).stdout == "app\nextra\n"
        sb.ok("compose", "--profile", "debug", "up", "-d", "extra", cwd=top, env=env)
        assert names(sb) == ["extras-app-1", "extras-extra-1"]
    finally:
        r = sb("compose", "--profile", "debug", "down", "-t", "0", "--rmi", "local",
               cwd=top, env=env)
    assert r.returncode == 0, describe(r)
    assert names(sb) == []


@pytest.fixture(scope="module")
def reg(tmp_path_factory, images_dir):
    r = Registry(str(tmp_path_factory.mktemp("registry")))
    skopeo_copy("docker-archive:" + os.path.join(images_dir, "busybox.tar"),
                "docker://%s/library/busybox:latest" % r.host)
    yield r
    r.stop()


def test_images_are_pulled_built_and_pushed(fresh_sb, reg):
    """A store without the images: up pulls the service's image (and
    builds the other's FROM it), push sends the built one, pull fetches
    again; the pull's progress stays off a pipe."""
    sb = fresh_sb
    top = project(sb, "reg", {
        "compose.yaml": "services:\n  base:\n    image: %(h)s/library/busybox\n"
                        "    command: echo pulled\n  made:\n    image: %(h)s/made:1\n"
                        "    build: {context: ., args: {BASE: '%(h)s/library/busybox'}}\n"
                        "    command: cat /made\n" % {"h": reg.host},
        "Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo made > /made\n"})
    try:
        r = sb("compose", "up", "-d", "base", cwd=top)
        assert r.returncode == 0, describe(r)
        assert " Image %s/library/busybox  Pulled" % reg.host in r.stderr
        r = sb("compose", "build", "made", cwd=top)
        assert r.returncode == 0, describe(r)
        sb.ok("compose", "push", "made", cwd=top)
        sb.ok("compose", "down", "--rmi", "all", cwd=top)
        assert sb.ok("images", "-q").stdout == ""
        r = sb("compose", "pull", cwd=top)
        assert r.returncode == 0, describe(r)
        assert " Image %s/made:1  Pulled" % reg.host in r.stderr
        r = sb.ok("compose", "up", "--abort-on-container-exit", cwd=top)
        assert "made-1 | made" in r.stdout.replace("  ", " ")
        assert "Building" not in r.stderr and "Step 1" not in r.stderr   # pulled, not built
    finally:
        sb("compose", "down", cwd=top)


@pytest.mark.terminal
def test_exec_and_run_on_a_terminal(sb, busybox):
    """On a terminal, exec and run give the command one (as Compose's);
    their exit status is the command's; -T takes it away."""
    import pexpect
    top = project(sb, "term", {"compose.yaml": "services:\n  box:\n    image: busybox\n"
                                               "    command: sleep 600\n"})
    try:
        sb.ok("compose", "up", "-d", cwd=top)
        for verb in (["exec", "box", "sh"], ["run", "--rm", "box", "sh"]):
            argv = sb.argv("compose", *verb)
            child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=30, cwd=top,
                                  dimensions=(30, 100))
            child.expect("# ")
            child.sendline("tty; stty size; exit 3")
            child.expect("/dev/pts/")
            child.expect("30 100")
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 3, verb
        argv = sb.argv("compose", "exec", "-T", "box", "sh", "-c", "tty || echo none")
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=30, cwd=top)
        child.expect("not a tty")
        child.expect(pexpect.EOF)
        assert names(sb) == ["term-box-1"]
    finally:
        sb("compose", "down", "-t", "0", cwd=top)


def test_logs_follow_takes_in_new_containers(sb, busybox):
    top = project(sb, "follow", {"compose.yaml": (
        "services:\n  tick:\n    image: busybox\n    init: true\n"
        "    command: sh -c 'echo hello from $$HOSTNAME; exec sleep 600'\n")})
    try:
        sb.ok("compose", "up", "-d", cwd=top)
        proc = sb.popen("compose", "logs", "-f", cwd=top)
        assert proc.stdout.readline().startswith("tick-1 | hello from ")
        sb.ok("compose", "up", "-d", "--scale", "tick=2", cwd=top)
        line = proc.stdout.readline()
        assert line.startswith("tick-2") and "hello from" in line, line
        sb.ok("compose", "stop", "-t", "5", cwd=top)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        sb("compose", "down", "-t", "0", cwd=top)


def test_wait_events_stats_and_attach(sb, busybox):
    """Docker Compose's wait (each container's end, the last one's code;
    --down-project), events (the project's container events as they
    happen, --json, without the Compose labels; --since/--until for the
    past), stats and attach."""
    top = project(sb, "watching", {"compose.yaml": (
        "services:\n"
        "  quick:\n    image: busybox\n    command: sh -c 'sleep 1; exit 3'\n"
        "  slow:\n    image: busybox\n    command: sh -c 'sleep 4; exit 4'\n"
        "  late:\n    image: busybox\n    profiles: [later]\n"
        "    command: sh -c 'sleep 3; echo late; exit 5'\n"
        "  idle:\n    image: busybox\n    profiles: [later]\n    init: true\n"
        "    command: sleep 600\n")})
    events = sb.popen("compose", "events", "--json", cwd=top)
    try:
        sb.ok("compose", "up", "-d", "quick", "slow", cwd=top)
        r = sb("compose", "wait", "quick", "slow", cwd=top)
        assert r.returncode == 4, describe(r)       # the last to end
        ids = {s: sb.ok("compose", "ps", "-a", "-q", "--no-trunc", s,
                        cwd=top).stdout.strip()
               for s in ("quick", "slow")}
        assert r.stdout.splitlines() == [
            'container "%s" exited with status code 3' % ids["quick"],
            'container "%s" exited with status code 4' % ids["slow"]]
        seen = []
        while ("slow", "die") not in seen:
            event = json.loads(events.stdout.readline())
            seen.append((event["service"], event["action"]))
            assert event["type"] == "container" and event["id"] == ids[event["service"]]
            assert not any(k.startswith("com.docker.compose.") for k in event["attributes"])
            assert event["attributes"]["name"] == "watching-%s-1" % event["service"]
        assert {("quick", "create"), ("quick", "start"), ("quick", "die"),
                ("slow", "start")} <= set(seen)
        past = sb.ok("compose", "events", "--since", "5m", "--until", "0s", "quick",
                     cwd=top).stdout.splitlines()
        assert [line.split()[3] for line in past] == ["create", "start", "die"]
        assert all(line.split()[4] == ids["quick"] for line in past)
        assert "exitCode=3" in past[2] and "name=watching-quick-1" in past[2]
        # stats: only the project's running containers.  (A service named
        # on the command line has its profile enabled, as in Compose.)
        sb.ok("compose", "up", "-d", "idle", cwd=top)
        r = sb.ok("compose", "stats", "--no-stream", "--format", "{{.Name}}", cwd=top)
        assert r.stdout == "watching-idle-1\n"
        # attach: the service's output and its exit code.
        sb.ok("compose", "up", "-d", "late", cwd=top)
        r = sb("compose", "attach", "--no-stdin", "late", cwd=top)
        assert r.returncode == 5 and r.stdout == "late\n", describe(r)
        r = sb("compose", "--profile", "later", "wait", "--down-project", "quick", cwd=top)
        assert r.returncode == 3, describe(r)
        assert names(sb) == []
        r = sb("compose", "wait", "quick", cwd=top)
        assert r.returncode == 1 and "no containers" in r.stderr
    finally:
        events.kill()
        events.communicate()
        sb("compose", "--profile", "later", "down", "-t", "0", cwd=top)


WATCHED = """\
services:
  web:
    build: .
    init: true
    develop:
      watch:
        - action: sync
          path: ./app
          target: /app
          ignore: ["*.tmp"]
        - action: rebuild
          path: Dockerfile
        - action: sync+exec
          path: ./conf
          target: /conf
          initial_sync: true
          exec:
            command: sh -c 'cat /conf/c > /tmp/seen'
"""


def read_until(proc, wanted):
    """The lines ``proc`` prints up to ``wanted`` (it must not end first)."""
    lines = []
    while wanted not in lines:
        line = proc.stdout.readline()
        assert line, "ended before %r: %s" % (wanted, "".join(lines))
        lines.append(line)
    return lines


def until(check, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_watch_syncs_execs_and_rebuilds(sb, busybox):
    """develop.watch as Docker Compose's `watch` carries it out: up, the
    initial sync, then a changed file copied in and a deleted one removed
    (an ignored one not), sync+exec's command run after its sync, and a
    changed Dockerfile rebuilt into a new container."""
    top = project(sb, "watched", {
        "compose.yaml": WATCHED, "app/old.txt": "old\n", "conf/c": "c1\n",
        "Dockerfile": 'FROM busybox\nCOPY app /app\nCMD ["sleep", "600"]\n'})
    proc = sb.popen("compose", "watch", cwd=top)
    try:
        lines = read_until(proc, "Watch enabled\n")
        assert 'Syncing service "web" after 1 changes were detected\n' in lines

        def run(script):
            return sb("compose", "exec", "-T", "web", "sh", "-c", script, cwd=top).stdout
        assert run("cat /conf/c; cat /tmp/seen 2>/dev/null || echo no-exec") == \
            "c1\nno-exec\n"                       # the initial sync runs no command
        first = sb.ok("compose", "ps", "-q", "--no-trunc", cwd=top).stdout.strip()

        def write(rel, text):
            path = os.path.join(top, rel)
            with open(path, "w") as f:
                f.write(text)
            os.chown(path, sb.uid, sb.gid)
        write("app/new.txt", "new\n")
        write("app/scratch.tmp", "x\n")
        os.unlink(os.path.join(top, "app/old.txt"))
        assert until(lambda: run("ls /app") == "new.txt\n"), run("ls /app")
        assert run("cat /app/new.txt") == "new\n"
        write("conf/c", "c2\n")
        assert until(lambda: run("cat /tmp/seen 2>/dev/null") == "c2\n")
        write("Dockerfile", 'FROM busybox\nCOPY app /app\nRUN echo 2 > /v\n'
                            'CMD ["sleep", "600"]\n')
        assert until(lambda: run("cat /v 2>/dev/null") == "2\n", 60)
        assert sb.ok("compose", "ps", "-q", "--no-trunc", cwd=top).stdout.strip() != first
        # (the rebuilt image's COPY took every file, the ignored one too)
        assert run("ls /app") == "new.txt\nscratch.tmp\n"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "Rebuilding service(s) [\"web\"] after changes were detected...\n" in out
        assert out.endswith("Watch disabled\n")
        assert names(sb) == ["watched-web-1"]       # the services stay up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        sb("compose", "down", "-t", "0", "--rmi", "local", cwd=top)


def test_up_watch_shows_output_syncs_restarts_and_ctrl_c_stops(sb, busybox):
    """`up --watch`: the services' output as `up` shows it, the watch's
    sync+restart (the restarted service prints the synced file), and
    Ctrl-C stops the services (exit 130)."""
    top = project(sb, "upwatch", {
        "compose.yaml": (
            "services:\n  web:\n    build: .\n    init: true\n"
            "    develop:\n      watch:\n        - action: sync+restart\n"
            "          path: ./app\n          target: /app\n"),
        "app/a.txt": "one\n",
        "Dockerfile": 'FROM busybox\nCOPY app /app\n'
                      'CMD ["sh", "-c", "cat /app/a.txt; exec sleep 600"]\n'})
    proc = sb.popen("compose", "up", "--watch", cwd=top)
    try:
        seen = read_until(proc, "web-1 | one\n")
        assert "Watch enabled\n" in seen
        path = os.path.join(top, "app", "a.txt")
        with open(path, "w") as f:
            f.write("two\n")
        seen += read_until(proc, "web-1 | two\n")
        assert 'service(s) ["web"] restarted\n' in seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Gracefully stopping" in err
        r = sb.ok("compose", "ps", "-a", "--format", "{{.State}}", cwd=top)
        assert r.stdout == "exited\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        sb("compose", "down", "-t", "0", "--rmi", "local", cwd=top)


def test_watch_errors(sb, busybox):
    top = project(sb, "unwatched", {"compose.yaml": (
        "services:\n  plain:\n    image: busybox\n"
        "  bad:\n    image: busybox\n    profiles: [bad]\n"
        "    develop:\n      watch:\n        - action: rebuild\n          path: .\n")})
    r = sb("compose", "watch", cwd=top)
    assert r.returncode == 1 and "none of the selected services" in r.stderr, describe(r)
    r = sb("compose", "--profile", "bad", "watch", "bad", cwd=top)
    assert r.returncode == 1 and "no build section" in r.stderr, describe(r)
    assert names(sb) == []


@pytest.mark.binary
def test_called_docker_compose_it_is_compose(sb, busybox):
    """A symbolic link named docker-compose (or sandbox-compose) to
    sandbox: the scripts that run docker-compose get `sandbox compose`."""
    top = project(sb, "linked", {"compose.yaml": "services:\n  one:\n    image: busybox\n"
                                                 "    command: echo linked\n"})
    for name in ("docker-compose", "sandbox-compose"):
        link = os.path.join(top, name)
        os.symlink(sb.cli, link)
        r = sb.run_raw([link, "config", "--services"], cwd=top)
        assert r.returncode == 0 and r.stdout == "one\n", describe(r)
    r = sb.run_raw([os.path.join(top, "docker-compose"), "up"], cwd=top)
    assert r.returncode == 0 and "one-1 | linked\n" in r.stdout, describe(r)
    sb("compose", "down", cwd=top)


def test_foreground_up_shows_replicas_made_meanwhile_and_ports_with_host_network(sb, busybox):
    top = project(sb, "fgscale", {"compose.yaml": (
        "services:\n  w:\n    image: busybox\n    init: true\n"
        "    command: sh -c 'echo up $$HOSTNAME; exec sleep 600'\n"
        "  h:\n    image: busybox\n    network_mode: host\n    ports: ['8080:80']\n"
        "    command: 'true'\n")})
    proc = sb.popen("compose", "up", "w", cwd=top)
    try:
        assert "w-1 | up " in proc.stdout.readline()
        sb.ok("compose", "up", "-d", "--scale", "w=2", "w", cwd=top)
        line = proc.stdout.readline()
        assert line.startswith("w-2") and "up " in line, line
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert sb.ok("compose", "ps", "-q", cwd=top).stdout == ""   # both stopped
        r = sb.ok("compose", "up", "h", cwd=top)
        assert "published ports are discarded with network_mode: host" in r.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
        sb("compose", "down", "-t", "0", cwd=top)
