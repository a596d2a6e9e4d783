"""`commit`, as the unprivileged test user: an image of a container's
changes (its deletions included) that runs with them, for every storage
driver, with the container's config, `-c`, `-m` and `-a`; a running
container; and an image that `save` writes and `load` reads back in
another store."""

import json
import os

import pytest

from test_cp import host_dir

SCRIPT = ("echo new > /new && chown 1000:1000 /new && rm /data/nobody && "
          "rm -r /data/dir && mkdir /data/dir && echo z > /data/dir/z && "
          "ln -s /new /link && chmod 700 /data/suid")
CHECK = ("cat /new; stat -c '%u:%g' /new; ls /data/dir; test -e /data/nobody && echo nobody; "
         "readlink /link; stat -c '%a' /data/suid; cat /data/owned1000 >/dev/null && echo kept")


@pytest.mark.parametrize("driver", ["overlay", "fuse-overlayfs", "vfs"])
def test_commit_keeps_the_changes_and_deletions(fresh_sb, images_dir, driver):
    sb = fresh_sb
    sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    sb.ok("--storage-driver", driver, "run", "--name", "src", "localhost/layers",
          "sh", "-c", SCRIPT)
    image_id = sb.ok("commit", "src", "localhost/committed:" + driver).stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    out = sb.ok("--storage-driver", driver, "run", "--name", "check",
                "localhost/committed:" + driver, "sh", "-c", CHECK).stdout.splitlines()
    assert out == ["new", "1000:1000", "z", "/new", "700", "kept"]
    # A container of the new image starts with nothing to diff.
    assert sb.ok("diff", "check").stdout == ""
    layers = json.loads(sb.ok("image", "inspect", "localhost/committed:" + driver).stdout)[0]
    parent = json.loads(sb.ok("image", "inspect", "localhost/layers").stdout)[0]
    assert layers["RootFS"]["Layers"][:-1] == parent["RootFS"]["Layers"]
    assert len(layers["RootFS"]["Layers"]) == len(parent["RootFS"]["Layers"]) + 1


def test_commit_takes_the_containers_config_and_changes(sb, busybox):
    sb("rm", "-f", "cfg-src")
    sb("rmi", "localhost/cfg:1")
    sb.ok("run", "--name", "cfg-src", "-e", "FOO=bar", "-w", "/srv", "-l", "team=a",
          busybox, "sh", "-c", "echo hi > /srv/hello")
    try:
        sb.ok("commit", "-m", "a message", "-a", "Jane <jane@example.com>",
              "-c", "EXPOSE 8080", "-c", 'CMD ["cat", "hello"]', "cfg-src", "localhost/cfg:1")
        img = json.loads(sb.ok("image", "inspect", "localhost/cfg:1").stdout)[0]
        assert img["Comment"] == "a message"
        assert img["Author"] == "Jane <jane@example.com>"
        cfg = img["Config"]
        assert "FOO=bar" in cfg["Env"] and not any(e.startswith(("HOSTNAME=", "HOME="))
                                                   for e in cfg["Env"])
        assert cfg["WorkingDir"] == "/srv"
        assert cfg["Labels"] == {"team": "a"}
        assert cfg["Cmd"] == ["cat", "hello"]
        assert "8080/tcp" in cfg["ExposedPorts"]
        assert sb.ok("run", "--rm", "localhost/cfg:1").stdout == "hi\n"
        history = sb.ok("history", "--no-trunc", "localhost/cfg:1").stdout.splitlines()
        assert "a message" in history[1]
    finally:
        sb("rm", "-f", "cfg-src")
        sb("rmi", "localhost/cfg:1")


def test_commit_of_a_running_container_and_the_round_trip_through_save(sb, busybox, fresh_sb):
    sb("rm", "-f", "live-src")
    sb.ok("run", "-d", "--name", "live-src", busybox, "sh", "-c",
          "echo live > /live; sleep 600")
    work = host_dir(sb, "commit-save")
    archive = os.path.join(work, "img.tar")
    try:
        sb.ok("exec", "live-src", "sh", "-c", "test -e /live || sleep 1")
        image_id = sb.ok("commit", "live-src", "localhost/live:1").stdout.strip()
        assert sb.ok("inspect", "-f", "{{.State.Status}}", "live-src").stdout.strip() == "running"
        sb.ok("save", "-o", archive, "localhost/live:1")
        fresh_sb.ok("load", "-i", archive)
        got = fresh_sb.ok("image", "inspect", "-f", "{{.Id}}", "localhost/live:1").stdout.strip()
        assert got == image_id
        assert fresh_sb.ok("run", "--rm", "localhost/live:1", "cat", "/live").stdout == "live\n"
    finally:
        sb("rm", "-f", "live-src")
        sb("rmi", "localhost/live:1")


def test_commit_errors(sb, busybox):
    r = sb("commit", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    sb("rm", "-f", "err-src")
    sb.ok("create", "--name", "err-src", busybox, "true")
    try:
        r = sb("commit", "err-src", "Bad/Name")
        assert r.returncode == 125, r.stderr
        r = sb("commit", "--pause", "maybe", "err-src")
        assert r.returncode == 125 and "--pause" in r.stderr
        r = sb("commit", "-c", "FROM x", "err-src")
        assert r.returncode == 125 and "not a valid change command" in r.stderr
        # Nothing was stored by the failures: no dangling image appeared.
        assert "<none>" not in sb.ok("images").stdout
    finally:
        sb("rm", "-f", "err-src")
