"""--userns keep-id, as the unprivileged test user: the container gets a
user namespace of its own inside the user's shared one, where the user's
uid is the same number (or keep-id:uid=N) and the default user, so what it
writes to a bind mount is the user's on the host; the image's files keep
their owners (fuse-overlayfs shows them through the container's map), and
exec, cp, commit and a restart see the same ids as the container."""

import json
import os
import subprocess

import pytest

from conftest import describe


def host_dir(sb, name, mode=0o755):
    """A directory of the test user's (with a file "mine" in it)."""
    path = os.path.join(os.path.dirname(sb.root), name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "mine"), "w") as f:
        f.write("mine\n")
    subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), path], check=True)
    os.chmod(path, mode)
    return path


def subordinate_start(name):
    with open("/etc/subuid") as f:
        for line in f:
            fields = line.strip().split(":")
            if fields[0] == name:
                return int(fields[1]), int(fields[2])
    pytest.skip("no /etc/subuid range for %s" % name)


def test_the_user_is_its_own_uid_inside_and_owns_what_it_writes(sb, busybox, test_user):
    work = host_dir(sb, "keepid-bind")
    _, count = subordinate_start(test_user)
    r = sb("run", "--rm", "--userns", "keep-id", "-v", work + ":/w", busybox, "sh", "-c",
           'id -u; id -g; id -un; echo "$HOME"; stat -c "%u %a" "$HOME"; '
           "stat -c %u:%g /w/mine /etc/passwd /bin/busybox; cat /proc/self/uid_map; "
           "echo new > /w/new; mkdir /w/dir")
    assert r.returncode == 0, describe(r)
    lines = r.stdout.splitlines()
    home = os.path.expanduser("~" + test_user)
    assert lines[:5] == [str(sb.uid), str(sb.gid), test_user, home, "%d 700" % sb.uid]
    # The user's file is its own number inside; the image's stay root's.
    assert lines[5:8] == ["%d:%d" % (sb.uid, sb.gid), "0:0", "0:0"]
    # podman's map: below the uid the subordinate ids, the uid the user's.
    assert [line.split() for line in lines[8:]] == [
        ["0", "1", str(sb.uid)], [str(sb.uid), "0", "1"],
        [str(sb.uid + 1), str(sb.uid + 1), str(count - sb.uid)]]
    for name in ("new", "dir"):
        st = os.stat(os.path.join(work, name))
        assert (st.st_uid, st.st_gid) == (sb.uid, sb.gid), name


def test_root_inside_is_a_subordinate_id(sb, busybox, test_user):
    """Only the user's uid is the user's: what root inside makes is the
    first subordinate id's (its capabilities still cover the user's files,
    whose ids are mapped, as under podman)."""
    start, _ = subordinate_start(test_user)
    work = host_dir(sb, "keepid-root")
    r = sb("run", "--rm", "--userns", "keep-id", "-u", "0", "-v", work + ":/w",
           busybox, "sh", "-c",
           "id -u; touch /w/byroot /w/moved; chown 1000:1000 /w/moved; "
           "stat -c %u /w/moved /w/mine")
    assert r.returncode == 0, describe(r)
    assert r.stdout.split() == ["0", "1000", str(sb.uid)]
    assert os.stat(os.path.join(work, "byroot")).st_uid == start
    # Container uid 1000 (below the user's) is subordinate id 1000.
    assert os.stat(os.path.join(work, "moved")).st_uid == start + 1000


def test_an_image_user_with_the_kept_uid(sb, busybox):
    """keep-id:uid=1000,gid=1000 on an image whose app user is 1000: that
    account (its name and home) is the default user, none is added."""
    r = sb("run", "--rm", "--userns", "keep-id:uid=1000,gid=1000", busybox, "sh", "-c",
           'id -un; id -u; echo "$HOME"; grep -c ":1000:" /etc/passwd; '
           "cat /proc/self/uid_map")
    assert r.returncode == 0, describe(r)
    lines = r.stdout.splitlines()
    assert lines[:4] == ["app", "1000", "/home/app", "1"]
    assert lines[5].split() == ["1000", "0", "1"]


def test_detached_exec_cp_ports_restart_and_commit(sb, busybox, test_user):
    port = 18000 + os.getpid() % 1000
    cid = sb.ok("run", "-d", "--userns", "keep-id", "-p", "%d:80" % port, busybox,
                "sh", "-c", "echo served > /tmp/index.html; exec httpd -f -p 80 -h /tmp"
                ).stdout.strip()
    try:
        info = json.loads(sb.ok("inspect", cid).stdout)[0]
        assert info["HostConfig"]["UsernsMode"] == "keep-id"
        assert info["Driver"] == "fuse-overlayfs"
        assert info["Config"]["User"] == "%d:%d" % (sb.uid, sb.gid)
        # Port 80 in the container's network namespace, by the user.
        r = sb.ok("run", "--rm", "--network", "host", busybox, "sh", "-c",
                  "for i in $(seq 50); do wget -qO- http://127.0.0.1:%d/index.html "
                  "&& break; sleep 0.1; done" % port)
        assert r.stdout == "served\n"
        assert sb.ok("exec", cid, "id", "-un").stdout == test_user + "\n"
        assert sb.ok("exec", "-u", "0", cid, "stat", "-c", "%u",
                     "/tmp/index.html").stdout == "%d\n" % sb.uid
        # cp in: root's inside, as `docker cp` makes it; cp out: the file.
        src = os.path.join(host_dir(sb, "keepid-cp"), "mine")
        sb.ok("cp", src, cid + ":/tmp/copied")
        assert sb.ok("exec", cid, "stat", "-c", "%u:%g %n", "/tmp/copied",
                     "/etc/passwd").stdout == "0:0 /tmp/copied\n0:0 /etc/passwd\n"
        out = os.path.join(os.path.dirname(sb.root), "keepid-out")
        sb.ok("cp", cid + ":/tmp/index.html", out)
        with open(out) as f:
            assert f.read() == "served\n"
        sb.ok("stop", "-t", "1", cid)
        # Stopped: cp mounts the root itself (without the container's map).
        os.unlink(out)
        sb.ok("cp", cid + ":/tmp/index.html", out)
        with open(out) as f:
            assert f.read() == "served\n"
        sb.ok("start", cid)
        assert sb.ok("exec", cid, "id", "-u").stdout == "%d\n" % sb.uid
        # commit: the image keeps the container's ids (the user's file is
        # uid N, root's 0), for any container to run.
        sb.ok("commit", cid, "keepid-committed:1")
        r = sb.ok("run", "--rm", "keepid-committed:1", "stat", "-c", "%u %n",
                  "/tmp/index.html", "/tmp/copied", "/bin/busybox")
        assert r.stdout.splitlines() == ["%d /tmp/index.html" % sb.uid,
                                         "0 /tmp/copied", "0 /bin/busybox"]
    finally:
        sb("rm", "-f", cid)
        sb("rmi", "keepid-committed:1")
    assert cid not in sb.ok("ps", "-a", "-q", "--no-trunc").stdout
    assert cid not in os.listdir(os.path.join(sb.root, "containers"))


def test_user_network_and_rm(sb, busybox):
    sb.ok("network", "create", "keepnet")
    try:
        sb.ok("run", "-d", "--name", "keep-web", "--network", "keepnet", "--userns",
              "keep-id", busybox, "httpd", "-f", "-p", "8080", "-h", "/etc")
        r = sb.ok("run", "--rm", "--network", "keepnet", busybox, "sh", "-c",
                  "for i in $(seq 50); do wget -qO- http://keep-web:8080/group "
                  "&& break; sleep 0.1; done")
        assert r.stdout.splitlines()[-1].split(":")[2] == str(sb.gid)
    finally:
        sb("rm", "-f", "keep-web")
        sb("network", "rm", "keepnet")


def test_the_default_from_the_environment_or_config_json(sb, busybox):
    """As podman's $PODMAN_USERNS and containers.conf: $SANDBOX_USERNS,
    else "userns" in ~/.config/sandbox/config.json; --userns host wins."""
    def uid(*flags, env=None):
        return sb.ok("run", "--rm", *flags, busybox, "id", "-u", env=env).stdout
    assert uid(env={"SANDBOX_USERNS": "keep-id"}) == "%d\n" % sb.uid
    assert uid("--userns", "host", env={"SANDBOX_USERNS": "keep-id"}) == "0\n"
    config = os.path.join(os.path.dirname(sb.root), "config-userns")
    os.makedirs(os.path.join(config, "sandbox"), exist_ok=True)
    with open(os.path.join(config, "sandbox", "config.json"), "w") as f:
        json.dump({"userns": "keep-id:uid=1000,gid=1000"}, f)
    subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), config], check=True)
    assert uid(env={"XDG_CONFIG_HOME": config}) == "1000\n"
    assert uid(env={"XDG_CONFIG_HOME": config, "SANDBOX_USERNS": "host"}) == "0\n"
    with open(os.path.join(config, "sandbox", "config.json"), "w") as f:
        json.dump({"userns": 5}, f)
    r = sb("run", "--rm", busybox, "true", env={"XDG_CONFIG_HOME": config})
    assert r.returncode == 125 and '"userns" must be a string' in r.stderr


@pytest.mark.parametrize("argv, words", [
    (["--userns", "bogus"], ["--userns bogus is not supported", "keep-id"]),
    (["--userns", "keep-id:uid=x"], ["invalid --userns", "uid=UID"]),
    (["--userns", "keep-id:size=3"], ["invalid --userns"]),
    (["--userns", "keep-id", "--network", "container:other"],
     ["cannot share the network namespace"]),
    (["--userns", "keep-id", "--pid", "container:other"],
     ["cannot share the pid namespace"]),
])
def test_errors(sb, busybox, argv, words):
    r = sb("run", "--rm", *argv, busybox, "true")
    assert r.returncode == 125, describe(r)
    for word in words:
        assert word in r.stderr, r.stderr
    assert "hint:" in r.stderr


def test_a_user_without_subordinate_ids_is_told(sb, images_dir, nosub_user):
    sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"), user=nosub_user)
    r = sb("run", "--rm", "--userns", "keep-id", "busybox", "true", user=nosub_user)
    assert r.returncode == 125, describe(r)
    assert "needs a subordinate id range" in r.stderr and "usermod" in r.stderr
    # info says which modes work, and why not keep-id.
    line = [x for x in sb.ok("info", user=nosub_user).stdout.splitlines()
            if x.startswith("User namespaces:")]
    assert line == ["User namespaces: host (not keep-id: --userns keep-id needs a "
                    "subordinate id range for this user)"]
    assert "User namespaces: host, keep-id\n" in sb.ok("info").stdout
