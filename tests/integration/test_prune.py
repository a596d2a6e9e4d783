"""`system prune [-a] [-f] [--volumes]`, the confirmation every prune
asks for without -f (Docker's PromptForConfirmation: only y or Y), and the
prunes' --filter until=/label=/label!=."""

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
    sb.ok("run", "--name", "stopped", "busybox", "sh", "-c", "head -c 400000 /dev/zero > /f")
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
    assert reclaimed(out) >= 400000, out           # what "stopped" wrote, at least
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


def reclaimed(out):
    """Bytes of the last "Total reclaimed space: 1.2MB" line (decimal units)."""
    text = out.strip().splitlines()[-1].rpartition(": ")[2]
    units = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * units[unit]
    raise AssertionError(text)


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


def test_prune_filters_until_and_label(fresh_sb, images_dir):
    """until= (created before: a time or a duration ago) and label=/label!=,
    for container, image, network and system prune; a bad filter is
    refused before anything goes."""
    import json
    import time
    sb = fresh_sb
    bb = os.path.join(images_dir, "busybox.tar")
    sb.ok("load", "-i", bb)
    sb.ok("create", "--name", "keep", "-l", "keep=yes", "busybox", "true")
    sb.ok("create", "--name", "old", "busybox", "true")
    sb.ok("network", "create", "--label", "keep=yes", "kept-net")
    sb.ok("network", "create", "gone-net")
    sb.ok("import", "-c", "LABEL keep=yes", bb, "labelled:2")
    sb.ok("import", bb, "plain:2")
    time.sleep(1.1)
    sb.ok("create", "--name", "new", "busybox", "true")

    def names():
        return set(sb.ok("ps", "-a", "--format", "{{.Names}}").stdout.split())
    # Only what was created more than a second ago, and not labelled keep.
    r = sb.ok("container", "prune", "-f", "--filter", "until=1s", "--filter", "label!=keep")
    assert names() == {"keep", "new"}, r.stdout
    r = sb.ok("network", "prune", "-f", "--filter", "label!=keep=yes")
    nets = sb.ok("network", "ls", "--format", '{{.Name}}={{.Label "keep"}}').stdout.split()
    assert "kept-net=yes" in nets and not any(n.startswith("gone-net") for n in nets)
    r = sb.ok("image", "prune", "-a", "-f", "--filter", "label=keep=yes")
    repos = sb.ok("images", "--format", "{{.Repository}}").stdout.split()
    assert "labelled" not in repos and "plain" in repos, r.stdout
    # An RFC 3339 time far back: nothing is that old.
    sb.ok("system", "prune", "-a", "-f", "--filter", "until=2001-01-01T00:00:00Z")
    assert names() == {"keep", "new"}
    assert "plain" in sb.ok("images", "--format", "{{.Repository}}").stdout
    for verb in (["container", "prune"], ["image", "prune"], ["network", "prune"],
                 ["system", "prune"]):
        r = sb(*verb, "-f", "--filter", "colour=blue")
        assert r.returncode == 125 and "invalid filter" in r.stderr, r.stderr
    r = sb("container", "prune", "-f", "--filter", "until=yesterday")
    assert r.returncode == 125 and "invalid time" in r.stderr
    assert names() == {"keep", "new"}
    json.loads(sb.ok("inspect", "keep").stdout)
    sb.ok("rm", "keep", "new")
    sb.ok("network", "rm", "kept-net")
