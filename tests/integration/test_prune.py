"""`system prune [-a] [-f] [--volumes]` and the confirmation every prune
asks for without -f (Docker's PromptForConfirmation: only y or Y)."""

import os

from conftest import describe


def image_ids(runner):
    return set(runner.ok("images", "-q", "--no-trunc").stdout.split())


def test_system_prune(fresh_sb, images_dir):
    sb = fresh_sb
    bb = os.path.join(images_dir, "busybox.tar")
    sb.ok("load", "-i", bb)
    sb.ok("import", bb, "old")
    sb.ok("import", "-m", "newer", bb, "old")         # the first "old" dangles
    assert len(image_ids(sb)) == 3
    sb.ok("network", "create", "idle")
    sb.ok("network", "create", "busy")
    sb.ok("run", "--name", "done", "-v", "/data", "busybox", "true")
    sb.ok("rm", "done")                               # its anonymous volume stays
    sb.ok("run", "--name", "stopped", "busybox", "true")
    sb.ok("run", "-d", "--name", "up", "--network", "busy", "busybox", "sleep", "300")
    volumes = sb.ok("volume", "ls", "-q").stdout.split()
    assert len(volumes) == 1

    # No: nothing goes.
    r = sb.ok("system", "prune", input="n\n")
    assert r.stdout.startswith("WARNING! This will remove:\n  - all stopped containers\n"), r.stdout
    assert "all dangling images" in r.stdout and "volumes" not in r.stdout, r.stdout
    assert "stopped" in sb.ok("ps", "-a", "--format", "{{.Names}}").stdout

    r = sb.ok("system", "prune", input="y\n")
    out = r.stdout
    assert "Deleted Containers:" in out and "Deleted Networks:\nidle" in out, describe(r)
    assert "Deleted Images:" in out and "Total reclaimed space:" in out, describe(r)
    assert sb.ok("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["up"]
    nets = sb.ok("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "idle" not in nets and "busy" in nets, nets
    assert len(image_ids(sb)) == 2                    # busybox (in use) and the new old
    assert sb.ok("volume", "ls", "-q").stdout.split() == volumes   # no --volumes

    r = sb.ok("system", "prune", "-a", "-f", "--volumes")
    assert "Deleted Volumes:" in r.stdout, describe(r)
    assert sb.ok("volume", "ls", "-q").stdout.split() == []
    assert len(image_ids(sb)) == 1                    # busybox: "up" uses it
    sb.ok("rm", "-f", "up")
    sb.ok("network", "rm", "busy")


def test_prunes_ask_first(fresh_sb, images_dir):
    sb = fresh_sb
    sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    sb.ok("create", "--name", "c1", "busybox", "true")
    sb.ok("network", "create", "n1")
    for verb, gone in ((["container", "prune"], lambda: "c1" not in sb.ok(
            "ps", "-a", "--format", "{{.Names}}").stdout),
                       (["network", "prune"], lambda: "n1" not in sb.ok(
            "network", "ls", "--format", "{{.Name}}").stdout)):
        r = sb.ok(*verb)                               # stdin at EOF: a no
        assert "Are you sure you want to continue? [y/N]" in r.stdout, describe(r)
        assert not gone()
        r = sb.ok(*verb, input="Y\n")
        assert gone(), describe(r)
