"""`diff`, as the unprivileged test user: what a container changed, as
Docker lists it, for every storage driver; a fresh container lists nothing
(sandbox's own mount points are not changes)."""

import os

import pytest

SCRIPT = ("echo new > /new && rm /data/nobody && echo more >> /data/owned1000 && "
          "mkdir -p /var/made/deep && touch /var/made/deep/f && "
          "rm -r /data/dir && mkdir /data/dir && touch /data/dir/z && "
          "chmod 700 /data/suid")


@pytest.mark.parametrize("driver", ["overlay", "fuse-overlayfs", "vfs"])
def test_diff_lists_the_containers_changes(fresh_sb, images_dir, driver):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "layers.tar"))
    fresh_sb.ok("--storage-driver", driver, "run", "--name", "fresh", "localhost/layers", "true")
    assert fresh_sb.ok("diff", "fresh").stdout == ""
    fresh_sb.ok("--storage-driver", driver, "run", "--name", "changed", "localhost/layers",
                "sh", "-c", SCRIPT)
    lines = fresh_sb.ok("diff", "changed").stdout.splitlines()
    assert lines == sorted(lines, key=lambda line: line[2:])
    got = set(lines)
    expected = {"A /new", "C /data", "D /data/nobody", "C /data/owned1000",
                "C /data/dir", "A /data/dir/z", "D /data/dir/c", "C /data/suid",
                "A /var/made", "A /var/made/deep", "A /var/made/deep/f"}
    assert expected <= got, sorted(got)
    # What the image's own layers deleted, and whatever was not touched,
    # is not listed; nor are sandbox's own files.
    for path in ("/data/gone", "/etc/hosts", "/etc/hostname",
                 "/etc/resolv.conf", "/etc", "/proc", "/dev", "/sys", "/bin"):
        assert not any(line[2:] == path for line in lines), path
    extra = got - expected - {"C /var", "A /var"}
    assert not extra, extra


def test_diff_of_a_running_container_and_errors(sb, busybox):
    sb("rm", "-f", "diff-live")
    sb.ok("run", "-d", "--name", "diff-live", busybox, "sh", "-c",
          "echo x > /tmp/live && sleep 600")
    try:
        sb.ok("exec", "diff-live", "sh", "-c", "test -e /tmp/live || sleep 1")
        assert "A /tmp/live" in sb.ok("diff", "diff-live").stdout.splitlines()
    finally:
        sb.ok("rm", "-f", "diff-live")
    r = sb("diff", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
