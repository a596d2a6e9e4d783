"""Compose files read as Compose reads them: ${VAR} interpolation with its
operators, .env files, YAML 1.2's scalars, several files merged, the
project name, and a service said as the flags of `create`."""

import os

import pytest

from helpers.compose import plan, project
from helpers.compose.project import ComposeError, interpolate, parse_env_file, parse_yaml


def env_of(values):
    return values.get


@pytest.mark.parametrize("text, expected", [
    ("$A and ${A}", "a and a"),
    ("${UNSET:-dflt} ${EMPTY:-dflt} ${EMPTY-dflt} ${UNSET-dflt}", "dflt dflt  dflt"),
    ("${A:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}", "alt  alt "),
    ("${UNSET:-${A}-x}", "a-x"),
    ("$$A costs $$5", "$A costs $5"),
    ("no dollar", "no dollar"),
    ("50$", "50$"),
])
def test_interpolation(text, expected):
    assert interpolate(text, env_of({"A": "a", "EMPTY": ""}), "t") == expected


def test_interpolation_errors_and_warnings(capsys):
    with pytest.raises(ComposeError, match="required variable X is missing a value: say X"):
        interpolate("${X:?say X}", env_of({}), "t")
    with pytest.raises(ComposeError, match="required variable X"):
        interpolate("${X:?}", env_of({"X": ""}), "t")
    assert interpolate("${X?}", env_of({"X": ""}), "t") == ""
    with pytest.raises(ComposeError, match="invalid interpolation format"):
        interpolate("${A", env_of({}), "t")
    warned = set()
    assert interpolate("$U $U", env_of({}), "t", warned) == " "
    assert capsys.readouterr().err.count('"U" variable is not set') == 1


def test_env_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\nexport A=1\nB = two words # note\nC='${A} raw'\n"
                    'D="x${A}\\ny"\nE\nF=\n')
    got = parse_env_file(str(path), {"E": "from-env"}.get)
    assert got == {"A": "1", "B": "two words", "C": "${A} raw", "D": "x1\ny",
                   "E": "from-env", "F": ""}
    assert parse_env_file(str(tmp_path / "none"), required=False) == {}
    with pytest.raises(ComposeError, match="not found"):
        parse_env_file(str(tmp_path / "none"))


def test_yaml_1_2_scalars():
    data = parse_yaml("a: 22:22\nb: yes\nc: off\nd: 010\ne: 0o10\nf: 0x10\ng: true\n"
                      "h: 1.5\ni: ~\nj: 2001-01-01\nk: &x {p: 1}\nl: {<<: *x, q: 2}\n", "t")
    assert data == {"a": "22:22", "b": "yes", "c": "off", "d": 10, "e": 8, "f": 16,
                    "g": True, "h": 1.5, "i": None, "j": "2001-01-01",
                    "k": {"p": 1}, "l": {"p": 1, "q": 2}}
    with pytest.raises(ComposeError, match=r"not valid YAML \(line 2"):
        parse_yaml("a: 1\n b: [\n", "t")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_files_merge_and_the_project_name(tmp_path, monkeypatch):
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    monkeypatch.delenv("COMPOSE_FILE", raising=False)
    top = tmp_path / "My App!"
    top.mkdir()
    write(top, "docker-compose.yml",
          "services:\n  web:\n    image: busybox\n    environment: [A=1, B=2]\n"
          "    ports: ['80']\n    volumes: ['./a:/data', 'v:/other']\n    command: [x]\n"
          "volumes:\n  v:\n")
    write(top, "docker-compose.override.yml",
          "services:\n  web:\n    environment: {B: 3}\n    ports: ['81']\n"
          "    volumes: ['./b:/data']\n    command: y z\n")
    sub = top / "sub"
    sub.mkdir()
    p = project.load(workdir=str(sub))               # found in the parent
    assert p.name == "myapp"
    assert p.workdir == str(top)
    web = p.services["web"]
    assert web["environment"] == {"A": "1", "B": "3"}
    assert web["ports"] == ["80", "81"]
    assert web["volumes"] == ["./b:/data", "v:/other"]
    assert web["command"] == ["y", "z"]
    assert project.load(project_name="other", workdir=str(sub)).name == "other"
    with pytest.raises(ComposeError, match="unknown top-level key"):
        write(top, "x.yml", "servics: {}\n")
        project.load(["x.yml"], workdir=str(top))


def test_a_service_as_create_flags(tmp_path):
    write(tmp_path, "compose.yaml", """\
name: p
services:
  app:
    image: img
    entrypoint: [sh, -c]
    command: [echo hi]
    environment: {K: v}
    ports: [{target: 80, published: 8080, host_ip: 127.0.0.1, protocol: udp}]
    volumes:
      - data:/data:ro
      - {type: bind, source: ./src, target: /src, read_only: true}
      - /anon
    networks:
      front: {aliases: [a1]}
      back:
    healthcheck: {test: [CMD, curl, -f, "http://x/a b"], interval: 5s, retries: 2}
    stop_grace_period: 1m30s
    ulimits: {nofile: {soft: 10, hard: 20}}
    deploy: {resources: {limits: {memory: 64m}}}
volumes:
  data:
networks:
  front:
  back:
""")
    p = project.load(workdir=str(tmp_path))
    argv, connect, dirs = plan.create_args(p, "app", 1, "p-app-1", str(tmp_path / "s"))
    assert argv[0] == "--name=p-app-1"
    assert "--label=com.docker.compose.service=app" in argv
    assert "--env=K=v" in argv
    assert "--publish=127.0.0.1:8080:80/udp" in argv
    assert "--volume=p_data:/data:ro" in argv
    assert "--mount=type=bind,target=/src,source=%s,readonly" % (tmp_path / "src") in argv
    assert "--volume=/anon" in argv
    assert dirs == [str(tmp_path / "src")]
    assert "--network=p_front" in argv and "--network-alias=a1" in argv
    assert connect == [("p_back", ["--alias=app"])]
    assert "--health-cmd=curl -f 'http://x/a b'" in argv
    assert "--stop-timeout=90" in argv
    assert "--ulimit=nofile=10:20" in argv
    assert "--memory=64m" in argv
    assert argv[-4:] == ["--entrypoint=sh", "img", "-c", "echo hi"]
    assert os.path.basename(p.files[0]) == "compose.yaml"


def test_extends_in_the_file_and_from_another(tmp_path):
    common = tmp_path / "common"
    common.mkdir()
    write(common, "base.yaml",
          "services:\n  root:\n    image: busybox\n    environment: {A: '1'}\n"
          "  base:\n    extends: root\n    build: ./ctx\n    volumes: ['./data:/data']\n"
          "    env_file: [base.env]\n")
    write(common, "base.env", "FROM_FILE=yes\n")
    write(tmp_path, "compose.yaml",
          "services:\n  app:\n    extends: {file: common/base.yaml, service: base}\n"
          "    environment: {B: '2'}\n  other:\n    extends: app\n    command: [x]\n")
    p = project.load(workdir=str(tmp_path))
    app = p.services["app"]
    assert app["image"] == "busybox"
    assert app["environment"] == {"FROM_FILE": "yes", "A": "1", "B": "2"}
    assert app["build"]["context"] == str(common / "ctx")
    assert app["volumes"] == ["%s:/data" % (common / "data")]
    assert "extends" not in app
    assert p.services["other"]["command"] == ["x"]
    assert p.services["other"]["environment"] == app["environment"]
    write(tmp_path, "loop.yaml", "services:\n  a: {extends: b}\n  b: {extends: a}\n")
    with pytest.raises(ComposeError, match="cycle"):
        project.load(["loop.yaml"], workdir=str(tmp_path))


def test_include_brings_another_applications_resources(tmp_path):
    sub = tmp_path / "db"
    sub.mkdir()
    write(sub, "compose.yaml",
          "services:\n  db:\n    image: busybox\n    volumes: ['./data:/data', 'dbvol:/v']\n"
          "    build: ./ctx\n    secrets: [pw]\nvolumes:\n  dbvol:\nsecrets:\n"
          "  pw:\n    file: ./pw.txt\n")
    write(tmp_path, "compose.yaml",
          "include:\n  - db/compose.yaml\nservices:\n  app:\n    image: busybox\n"
          "    links: ['db:database']\n")
    p = project.load(workdir=str(tmp_path))
    db = p.services["db"]
    assert db["volumes"] == ["%s:/data" % (sub / "data"), "dbvol:/v"]
    assert db["build"]["context"] == str(sub / "ctx")
    assert p.secrets["pw"]["file"] == str(sub / "pw.txt")
    assert "dbvol" in p.volumes
    assert p.with_dependencies(["app"]) == ["db", "app"]          # links: a dependency
    write(tmp_path, "clash.yaml",
          "include: [db/compose.yaml]\nservices:\n  db:\n    image: busybox\n")
    with pytest.raises(ComposeError, match="service db conflicts with an included one"):
        project.load(["clash.yaml"], workdir=str(tmp_path))


def test_a_targeted_service_enables_its_profiles(tmp_path):
    """The Compose Specification: a service named on the command line is
    started even when its profile is not active (and so are the services
    of that profile it needs)."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: a\n"
        "  tool:\n    image: t\n    profiles: [debug]\n    depends_on: [helper]\n"
        "  helper:\n    image: h\n    profiles: [debug]\n"
        "  other:\n    image: o\n    profiles: [other]\n")
    assert sorted(project.load(workdir=str(tmp_path)).services) == ["app"]
    p = project.load(workdir=str(tmp_path), targets=["tool"])
    assert sorted(p.services) == ["app", "helper", "tool"]
    assert p.with_dependencies(["tool"]) == ["helper", "tool"]
