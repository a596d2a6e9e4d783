"""Volumes: named, anonymous (-v /path and the image's VOLUME list),
--mount, --volumes-from, filled from the image, and their verbs."""

import json
import os
import subprocess



def test_named_volume_persists_and_starts_filled_from_the_image(sb, busybox):
    assert sb.ok("volume", "create", "homes").stdout.strip() == "homes"
    # /home in the image holds app/ owned by 1000: a new volume gets it.
    first = sb.ok("run", "--rm", "-v", "homes:/home", busybox, "sh", "-c",
                  "stat -c '%n %u:%g' /home/app; echo kept > /home/note")
    assert first.stdout == "/home/app 1000:1000\n"
    second = sb.ok("run", "--rm", "-v", "homes:/elsewhere", busybox, "cat", "/elsewhere/note")
    assert second.stdout == "kept\n"
    ro = sb("run", "--rm", "-v", "homes:/h:ro", busybox, "touch", "/h/x")
    assert ro.returncode != 0
    info = json.loads(sb.ok("volume", "inspect", "homes").stdout)[0]
    assert info["Name"] == "homes" and info["Driver"] == "local"
    assert info["Mountpoint"].endswith("/volumes/homes/_data")
    assert "homes" in sb.ok("volume", "ls", "-q").stdout.split()


def test_volume_in_use_cannot_be_removed(sb, busybox):
    sb.ok("run", "--name", "user1", "-v", "busyvol:/data", busybox, "true")
    refused = sb("volume", "rm", "busyvol")
    assert refused.returncode == 1 and "in use" in refused.stderr
    mounts = json.loads(sb.ok("inspect", "-f", "{{json .Mounts}}", "user1").stdout)
    assert mounts[0]["Type"] == "volume" and mounts[0]["Name"] == "busyvol"
    assert mounts[0]["Destination"] == "/data"
    sb.ok("rm", "user1")
    sb.ok("volume", "rm", "busyvol")
    assert "busyvol" not in sb.ok("volume", "ls", "-q").stdout.split()


def test_anonymous_volumes_and_rm_v(sb, busybox):
    sb.ok("run", "--name", "anon1", "-v", "/scratch", busybox, "sh", "-c",
          "echo x > /scratch/f")
    name = json.loads(sb.ok("inspect", "-f", "{{json .Mounts}}", "anon1").stdout)[0]["Name"]
    assert len(name) == 64
    path = os.path.join(sb.root, "volumes", name, "_data", "f")
    assert open(path).read() == "x\n"
    sb.ok("rm", "-v", "anon1")
    assert not os.path.exists(os.path.join(sb.root, "volumes", name))
    sb.ok("run", "--rm", "-v", "/gone-too", busybox, "true")
    assert all(not json.load(open(os.path.join(sb.root, "volumes", n, "meta.json")))["Anonymous"]
               for n in os.listdir(os.path.join(sb.root, "volumes"))
               if os.path.isdir(os.path.join(sb.root, "volumes", n)))


def test_mount_flag_and_volumes_from(sb, busybox):
    host = os.path.join(os.path.dirname(sb.root), "mnt-src")
    os.makedirs(host, exist_ok=True)
    os.chown(host, sb.uid, sb.gid)
    sb.ok("run", "--name", "provider",
          "--mount", "type=volume,source=shared,target=/shared",
          "--mount", "type=bind,source=%s,target=/hostdir" % host,
          "--mount", "type=tmpfs,target=/fast", busybox, "sh", "-c",
          "echo v > /shared/v; echo h > /hostdir/h; grep -c ' /fast tmpfs' /proc/mounts")
    assert open(os.path.join(host, "h")).read() == "h\n"
    out = sb.ok("run", "--rm", "--volumes-from", "provider:ro", busybox, "sh", "-c",
                "cat /shared/v /hostdir/h; touch /shared/no 2>/dev/null || echo ro")
    assert out.stdout == "v\nh\nro\n"
    bad = sb("run", "--rm", "--mount", "type=nfs,target=/x", busybox, "true")
    assert bad.returncode == 125 and "unsupported --mount type" in bad.stderr
    sb.ok("rm", "provider")


def test_volume_prune(fresh_sb, images_dir):
    fresh_sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    fresh_sb.ok("volume", "create", "named-unused")
    fresh_sb.ok("run", "--name", "keeper", "-v", "/anon-a", "busybox", "true")
    fresh_sb.ok("rm", "keeper")                     # leaves its anonymous volume
    pruned = fresh_sb.ok("volume", "prune", "-f").stdout
    assert "Deleted Volumes:" in pruned
    assert fresh_sb.ok("volume", "ls", "-q").stdout.split() == ["named-unused"]
    fresh_sb.ok("volume", "prune", "-a", "-f")
    assert fresh_sb.ok("volume", "ls", "-q").stdout.split() == []


def test_volume_prune_filters_and_reclaimed_space(fresh_sb, images_dir):
    """Docker's volume prune filters (label=, label!=, all=true) and the
    space it reclaimed, measured before the volumes go (their files are
    the container's users', summed in the user namespace)."""
    sb = fresh_sb
    sb.ok("load", "-i", os.path.join(images_dir, "busybox.tar"))
    for name, label in (("keep-me", "keep=yes"), ("drop-me", "tier=tmp"),
                        ("drop-too", "tier=tmp")):
        sb.ok("volume", "create", "-l", label, name)
    sb.ok("run", "--rm", "-v", "drop-me:/v", "busybox", "sh", "-c",
          "mkdir /v/d && head -c 300000 /dev/zero > /v/d/blob && chown -R 1000 /v/d "
          "&& chmod 700 /v/d")
    r = sb.ok("volume", "prune", "-f", "--filter", "all=true", "--filter", "label=tier=tmp")
    assert r.stdout.splitlines()[:3] == ["Deleted Volumes:", "drop-me", "drop-too"]
    assert r.stdout.strip().endswith("Total reclaimed space: 300kB"), r.stdout
    assert sb.ok("volume", "ls", "-q").stdout.split() == ["keep-me"]
    r = sb.ok("volume", "prune", "-a", "-f", "--filter", "label!=keep")
    assert "keep-me" not in r.stdout and r.stdout.strip().endswith("0B")
    for bad in ("until=24h", "all=maybe", "colour=red"):
        r = sb("volume", "prune", "-f", "--filter", bad)
        assert r.returncode == 125 and "invalid filter" in r.stderr, (bad, r.stderr)
    assert sb.ok("volume", "ls", "-q").stdout.split() == ["keep-me"]


def test_volume_labels_and_the_label_filter(sb, busybox):
    sb.ok("volume", "create", "-l", "team=core", "--label", "empty", "labelled")
    info = json.loads(sb.ok("volume", "inspect", "labelled").stdout)[0]
    assert info["Labels"] == {"team": "core", "empty": ""}
    listed = sb.ok("volume", "ls", "--filter", "name=labelled", "--format",
                   '{{.Name}} {{.Label "team"}} [{{.Label "nosuch"}}] {{.Labels}}').stdout
    assert listed.splitlines() == ["labelled core [] empty=,team=core"]
    assert sb.ok("volume", "ls", "-q", "--filter", "label=team=core").stdout.split() == \
        ["labelled"]
    sb.ok("volume", "create", "-l", "team=edge", "--name", "labelled2")     # Docker's older form
    both = sb.ok("volume", "ls", "-q", "--filter", "label=team=core", "--filter",
                 "label=team=edge", "--filter", "driver=local").stdout.split()
    assert both == ["labelled", "labelled2"]
    assert sb.ok("volume", "ls", "-q", "--filter", "driver=nfs").stdout == ""
    r = sb("volume", "ls", "--filter", "colour=red")
    assert r.returncode == 125 and "invalid filter 'colour'" in r.stderr
    sb.ok("volume", "rm", "labelled2")
    r = sb("volume", "create", "-l", "=nokey", "badlabel")
    assert r.returncode == 125 and "invalid --label '=nokey'" in r.stderr
    assert "badlabel" not in sb.ok("volume", "ls", "-q").stdout.split()
    sb.ok("volume", "rm", "labelled")


def test_volume_options_tmpfs_and_bind(sb, busybox):
    """The local driver's --opt as compose files use them: a tmpfs volume
    (o= its mount options), a bind volume (o=bind, device=DIR)."""
    sb.ok("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
          "--opt", "o=size=1m,mode=0700", "scratchvol")
    info = json.loads(sb.ok("volume", "inspect", "scratchvol").stdout)[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700"}
    out = sb.ok("run", "--rm", "-v", "scratchvol:/data", busybox, "sh", "-c",
                "grep ' /data ' /proc/mounts; stat -c %a /data").stdout
    assert out.startswith("tmpfs /data tmpfs") and "size=1024k" in out, out
    assert out.split()[-1] == "700"
    host = os.path.join(os.path.dirname(sb.root), "bound-volume")
    os.makedirs(host, exist_ok=True)
    os.chown(host, sb.uid, sb.gid)
    sb.ok("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=" + host,
          "bindvol")
    sb.ok("run", "--rm", "-v", "bindvol:/data", busybox, "sh", "-c", "echo kept > /data/f")
    with open(os.path.join(host, "f")) as f:
        assert f.read() == "kept\n"
    for opts, message in ((["type=nfs", "o=addr=10.0.0.1", "device=:/x"], "need root"),
                          (["type=none", "o=bind", "device=/nonexistent"], "not a directory"),
                          (["colour=blue"], "invalid volume option 'colour=blue'")):
        r = sb("volume", "create", *[a for o in opts for a in ("--opt", o)], "badvol")
        assert r.returncode == 125 and message in r.stderr, (opts, r.stderr)
    assert "badvol" not in sb.ok("volume", "ls", "-q").stdout.split()
    r = sb("volume", "create", "--opt", "type=tmpfs", "bindvol")
    assert r.returncode == 125 and "exists with other options" in r.stderr
    sb.ok("volume", "rm", "scratchvol", "bindvol")


def test_relative_bind_sources_start_from_the_current_directory(sb, busybox):
    """As Docker's CLI (23.0 for -v, 26.0 for --mount type=bind): a host
    path that starts with "." is the current directory's (-v .:/w,
    -v ./sub:/s, -v ../x:/p); HostConfig.Binds shows it absolute; a name
    without the dot stays a named volume."""
    top = os.path.join(os.path.dirname(sb.root), "relbind")
    work = os.path.join(top, "work")
    os.makedirs(os.path.join(work, "sub"), exist_ok=True)
    with open(os.path.join(work, "sub", "f"), "w") as f:
        f.write("in-sub\n")
    with open(os.path.join(top, "up"), "w") as f:
        f.write("one-up\n")
    subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), top], check=True)
    cid = sb.ok("create", "-v", ".:/w", "-v", "./sub:/s:ro", "-v", "../up:/up",
                "--mount", "type=bind,src=./sub,dst=/m", busybox, "sh", "-c",
                "cat /s/f /up /m/f; echo new > /w/made; ls /w", cwd=work).stdout.strip()
    r = sb.ok("start", "-a", cid)
    assert r.stdout.split() == ["in-sub", "one-up", "in-sub", "made", "sub"]
    with open(os.path.join(work, "made")) as f:
        assert f.read() == "new\n"
    binds = json.loads(sb.ok("inspect", cid).stdout)[0]["HostConfig"]["Binds"]
    assert binds == [work + ":/w", work + "/sub:/s:ro", top + "/up:/up"]
    sb.ok("rm", cid)
    r = sb("run", "--rm", "-v", "./nonexistent:/x", busybox, "true", cwd=work)
    assert r.returncode == 125 and work + "/nonexistent" in r.stderr, r.stderr


def test_volume_modes_nocopy_and_consistency(sb, busybox):
    """-v NAME:/p:nocopy leaves a new volume empty (not filled from the
    image); Docker Desktop's consistency modes (cached, delegated,
    consistent) are accepted for binds and volumes; other modes are refused
    before anything is made."""
    for name in ("vol-nocopy", "vol-copy"):
        sb("volume", "rm", "-f", name)
    out = sb.ok("run", "--rm", "-v", "vol-nocopy:/etc:nocopy", busybox, "ls", "/etc").stdout
    assert "passwd" not in out.split()     # (hosts, hostname, resolv.conf: mount points)
    out = sb.ok("run", "--rm", "-v", "vol-copy:/etc:ro,delegated", busybox, "ls", "/etc").stdout
    assert "passwd" in out.split()
    host = os.path.dirname(sb.data_dir()[0])
    out = sb.ok("run", "--rm", "-v", host + ":/h:cached", busybox, "ls", "/h").stdout
    assert out
    before = sb.ok("volume", "ls", "-q").stdout
    for spec in (host + ":/h:bogus", "vol-bad:/x:bogus"):
        r = sb("run", "--rm", "-v", spec, busybox, "true")
        assert r.returncode == 125 and "invalid mode 'bogus'" in r.stderr, r.stderr
    assert sb.ok("volume", "ls", "-q").stdout == before
    for name in ("vol-nocopy", "vol-copy"):
        sb("volume", "rm", "-f", name)


def test_a_new_volume_over_image_files_starts_with_them(sb, busybox):
    """Filling copies from the container's overlay to the volume's file
    system: copy_file_range refuses that (EXDEV, Linux >= 5.19), sendfile
    does it (every image directory with files failed the start before)."""
    sb("volume", "rm", "-f", "vol-files")
    out = sb.ok("run", "--rm", "-v", "vol-files:/bin", busybox, "/bin/ls", "/bin").stdout
    assert {"sh", "ls", "busybox"} <= set(out.split())
    sb("volume", "rm", "-f", "vol-files")


def test_mount_volume_opt_makes_the_volume_as_docker(sb, busybox):
    """--mount type=volume with volume-opt= and volume-label= makes a new
    volume with those driver options and labels (here a tmpfs volume of
    2m); a field in double quotes may hold commas, as Docker's CSV."""
    sb("volume", "rm", "-f", "optvol")
    spec = ('type=volume,src=optvol,dst=/v,volume-opt=type=tmpfs,volume-opt=device=tmpfs,'
            '"volume-opt=o=size=2m,mode=0700",volume-label=team=x')
    out = sb.ok("run", "--rm", "--mount", spec, busybox, "sh", "-c",
                "stat -c %a /v; df -k /v | tail -1 | awk '{print $1, $2}'").stdout.split("\n")
    assert out[:2] == ["700", "tmpfs 2048"], out
    info = json.loads(sb.ok("volume", "inspect", "optvol").stdout)[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=2m,mode=0700"}
    assert info["Labels"] == {"team": "x"}
    sb.ok("volume", "rm", "optvol")
    for bad, message in (("type=bind,src=/tmp,dst=/b,volume-opt=type=tmpfs", "type=volume"),
                         ("type=volume,dst=/v,volume-opt=type=nfs", "not supported"),
                         ('type=volume,dst=/v,"unclosed', "invalid --mount")):
        r = sb("run", "--rm", "--mount", bad, busybox, "true")
        assert r.returncode == 125 and message in r.stderr, (bad, r.stderr)
