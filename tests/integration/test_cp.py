"""`cp` between containers and the host, as the unprivileged test user:
both directions for running and stopped containers, Docker's placement
rules, modes and owners, tar streams on stdin/stdout, and symlinks in the
container that must never make cp read or write a host file
(CVE-2018-15664, CVE-2019-14271)."""

import io
import os
import stat
import subprocess
import tarfile

import pytest


# --- helpers -----------------------------------------------------------------

def host_dir(sb, name):
    """A fresh directory the test user owns (the CLI runs as that user)."""
    path = os.path.join(os.path.dirname(sb.root), name)
    subprocess.run(["rm", "-rf", path], check=True)
    os.makedirs(path)
    os.chown(path, sb.uid, sb.gid)
    return path


def user_files(sb, name, files):
    """A fresh directory of the test user's holding ``files`` ({relative
    path: text}), all of them the user's."""
    top = host_dir(sb, name)
    for rel, text in files.items():
        path = os.path.join(top, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    give(sb, top)
    return top


def give(sb, top):
    for d, dirs, files in os.walk(top):
        for name in [d] + [os.path.join(d, n) for n in dirs + files]:
            os.lchown(name, sb.uid, sb.gid)


def make_tree(sb, parent, name="tree"):
    """tree/{run.sh 0755, secret 0600, sub/deep.txt 0644, link -> sub/deep.txt}"""
    top = os.path.join(parent, name)
    os.makedirs(os.path.join(top, "sub"))
    for rel, data, mode in (("run.sh", b"#!/bin/sh\necho ran\n", 0o755),
                            ("secret", b"s3cret\n", 0o600),
                            ("sub/deep.txt", b"deep\n", 0o644)):
        with open(os.path.join(top, rel), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(top, rel), mode)
    os.chmod(os.path.join(top, "sub"), 0o750)
    os.symlink("sub/deep.txt", os.path.join(top, "link"))
    give(sb, top)
    return top


def tar_bytes(entries):
    """entries: (kind, name, data/linkname, uid, mode); kind f|d|l|h."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, extra, uid, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.uid = ti.gid = uid
            ti.mode = mode
            ti.mtime = 1_600_000_000
            if kind == "f":
                ti.size = len(extra)
                tf.addfile(ti, io.BytesIO(extra))
                continue
            ti.type = {"d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE,
                       "h": tarfile.LNKTYPE}[kind]
            if kind in "lh":
                ti.linkname = extra
            tf.addfile(ti)
    return buf.getvalue()


def sb_bytes(sb, *args, input=None):
    """`sandbox ARGS` with binary stdin/stdout (tar streams)."""
    return subprocess.run(sb.argv(*args), input=input, capture_output=True,
                          cwd=os.path.dirname(sb.root), timeout=120)


def tar_of(sb, ref):
    """`cp REF -` read back with tarfile: {normalized name: (TarInfo, data)}."""
    res = sb_bytes(sb, "cp", ref, "-")
    assert res.returncode == 0, res.stderr.decode()
    out = {}
    with tarfile.open(fileobj=io.BytesIO(res.stdout), mode="r:") as tf:
        for ti in tf:
            data = tf.extractfile(ti).read() if ti.isreg() else None
            out[os.path.normpath(ti.name)] = (ti, data)
    return out


def container(sb, busybox, name, kind):
    """A container that is running, created (never started) or exited."""
    sb("rm", "-f", name)
    if kind == "running":
        sb.ok("run", "-d", "--name", name, busybox, "sleep", "600")
    elif kind == "created":
        sb.ok("create", "--name", name, busybox, "true")
    else:
        sb.ok("run", "--name", name, busybox, "true")
    return name


KINDS = ("running", "created", "exited")


# --- both directions ----------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_tree_round_trip_keeps_modes_and_symlinks(sb, busybox, kind):
    ctr = container(sb, busybox, "rt-" + kind, kind)
    work = host_dir(sb, "rt-" + kind)
    make_tree(sb, work)
    sb.ok("cp", os.path.join(work, "tree"), ctr + ":/tmp")
    inside = tar_of(sb, ctr + ":/tmp/tree")
    assert sorted(inside) == ["tree", "tree/link", "tree/run.sh", "tree/secret",
                              "tree/sub", "tree/sub/deep.txt"]
    modes = {n: stat.S_IMODE(ti.mode) for n, (ti, _) in inside.items()}
    assert modes["tree/run.sh"] == 0o755 and modes["tree/secret"] == 0o600
    assert modes["tree/sub"] == 0o750
    assert inside["tree/link"][0].issym() and inside["tree/link"][0].linkname == "sub/deep.txt"
    assert inside["tree/secret"][1] == b"s3cret\n"
    # Without -a, what lands in the container belongs to its root.
    assert {(ti.uid, ti.gid) for ti, _ in inside.values()} == {(0, 0)}
    if kind == "running":
        assert sb.ok("exec", ctr, "/tmp/tree/run.sh").stdout == "ran\n"

    # ... and back to the host, as the invoking user.
    back = os.path.join(work, "back")
    sb.ok("cp", ctr + ":/tmp/tree", back)
    assert sorted(os.listdir(back)) == ["link", "run.sh", "secret", "sub"]
    assert stat.S_IMODE(os.stat(os.path.join(back, "run.sh")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(back, "secret")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(back, "sub")).st_mode) == 0o750
    assert os.readlink(os.path.join(back, "link")) == "sub/deep.txt"
    with open(os.path.join(back, "sub", "deep.txt"), "rb") as f:
        assert f.read() == b"deep\n"
    for d, dirs, files in os.walk(back):
        for name in [d] + [os.path.join(d, n) for n in dirs + files]:
            st = os.lstat(name)
            assert (st.st_uid, st.st_gid) == (sb.uid, sb.gid), name
    sb.ok("rm", "-f", ctr)


@pytest.mark.parametrize("kind", ("running", "exited"))
def test_image_files_and_single_files_out(sb, busybox, kind):
    ctr = container(sb, busybox, "out-" + kind, kind)
    work = host_dir(sb, "out-" + kind)
    sb.ok("cp", ctr + ":/etc/passwd", os.path.join(work, "pw"))
    with open(os.path.join(work, "pw")) as f:
        assert f.read().startswith("root:x:0:0:")
    sb.ok("cp", ctr + ":/bin/busybox", work)          # into an existing dir
    assert os.access(os.path.join(work, "busybox"), os.X_OK)
    sb.ok("rm", "-f", ctr)


def test_docker_placement_rules(sb, busybox):
    ctr = container(sb, busybox, "rules", "running")
    work = host_dir(sb, "rules")
    make_tree(sb, work)
    src = os.path.join(work, "tree")
    # A directory to a missing destination: it becomes that directory.
    sb.ok("cp", src, ctr + ":/new")
    assert sb.ok("exec", ctr, "ls", "/new").stdout.split() == ["link", "run.sh", "secret", "sub"]
    # ... to an existing directory: it goes inside.
    sb.ok("cp", src, ctr + ":/new")
    assert "tree" in sb.ok("exec", ctr, "ls", "/new").stdout.split()
    # "src/." copies the contents into an existing directory.
    sb.ok("exec", ctr, "mkdir", "/flat")
    sb.ok("cp", src + "/.", ctr + ":/flat")
    assert sb.ok("exec", ctr, "ls", "/flat").stdout.split() == ["link", "run.sh", "secret", "sub"]
    # A file to a new name, then over an existing file, then into a directory.
    sb.ok("cp", os.path.join(src, "secret"), ctr + ":/tmp/renamed")
    sb.ok("cp", os.path.join(src, "sub", "deep.txt"), ctr + ":/tmp/renamed")
    assert sb.ok("exec", ctr, "cat", "/tmp/renamed").stdout == "deep\n"
    sb.ok("cp", os.path.join(src, "secret"), ctr + ":/tmp")
    assert sb.ok("exec", ctr, "cat", "/tmp/secret").stdout == "s3cret\n"
    # Errors: a directory onto a file, a file to "missing/", a file as a dir.
    res = sb("cp", src, ctr + ":/tmp/renamed")
    assert res.returncode == 1 and "cannot copy a directory to a file" in res.stderr
    res = sb("cp", os.path.join(src, "secret"), ctr + ":/nonexistent/")
    assert res.returncode == 1 and "no such directory" in res.stderr
    res = sb("cp", ctr + ":/etc/passwd/", work)
    assert res.returncode == 1 and "not a directory" in res.stderr
    # The same rules on the host side.
    sb.ok("cp", ctr + ":/flat", os.path.join(work, "fresh"))
    assert sorted(os.listdir(os.path.join(work, "fresh"))) == ["link", "run.sh", "secret", "sub"]
    sb.ok("cp", ctr + ":/flat", os.path.join(work, "fresh"))
    assert os.path.isdir(os.path.join(work, "fresh", "flat"))
    contents = host_dir(sb, "rules-contents")
    sb.ok("cp", ctr + ":/flat/.", contents)
    assert sorted(os.listdir(contents)) == ["link", "run.sh", "secret", "sub"]
    sb.ok("rm", "-f", ctr)


# --- owners and tar streams ---------------------------------------------------

@pytest.mark.parametrize("kind", ("running", "created"))
def test_archive_flag_keeps_owner_from_stdin_tar(sb, busybox, kind):
    ctr = container(sb, busybox, "own-" + kind, kind)
    stream = tar_bytes([("d", "pkg", None, 1000, 0o755),
                        ("f", "pkg/owned", b"abc", 1000, 0o640)])
    res = sb_bytes(sb, "cp", "-a", "-", ctr + ":/tmp", input=stream)
    assert res.returncode == 0, res.stderr.decode()
    res = sb_bytes(sb, "cp", "-", ctr + ":/", input=stream)
    assert res.returncode == 0, res.stderr.decode()
    kept = tar_of(sb, ctr + ":/tmp/pkg")
    assert (kept["pkg/owned"][0].uid, kept["pkg/owned"][0].gid) == (1000, 1000)
    assert (kept["pkg"][0].uid, stat.S_IMODE(kept["pkg/owned"][0].mode)) == (1000, 0o640)
    assert kept["pkg/owned"][1] == b"abc"
    rooted = tar_of(sb, ctr + ":/pkg")
    assert {(ti.uid, ti.gid) for ti, _ in rooted.values()} == {(0, 0)}
    if kind == "running":
        assert sb.ok("exec", ctr, "stat", "-c", "%u:%g", "/tmp/pkg/owned").stdout == "1000:1000\n"
    # -a from a host path: the host file's uid, as the container sees it.
    work = host_dir(sb, "own-" + kind)
    make_tree(sb, work)
    sb.ok("cp", "-a", os.path.join(work, "tree", "secret"), ctr + ":/tmp/mine")
    ti = tar_of(sb, ctr + ":/tmp/mine")["mine"][0]
    assert (ti.uid, ti.gid) == (sb.uid, sb.gid)
    sb.ok("rm", "-f", ctr)


def test_tar_stream_to_stdout(sb, busybox):
    ctr = container(sb, busybox, "tarout", "created")
    entries = tar_of(sb, ctr + ":/etc")
    assert "etc" in entries and entries["etc"][0].isdir()
    assert entries["etc/passwd"][1].startswith(b"root:x:0:0:")
    assert all(n == "etc" or n.startswith("etc/") for n in entries)
    # Names are never looked up (NSS in the container: CVE-2019-14271).
    assert {ti.uname for ti, _ in entries.values()} == {""}
    contents = tar_of(sb, ctr + ":/etc/.")
    assert "passwd" in contents and "etc/passwd" not in contents
    sb.ok("rm", "-f", ctr)


def test_tar_stream_from_stdin_needs_a_directory(sb, busybox):
    ctr = container(sb, busybox, "tarin", "running")
    stream = tar_bytes([("f", "a/b/c.txt", b"c", 0, 0o644)])
    res = sb_bytes(sb, "cp", "-", ctr + ":/tmp", input=stream)
    assert res.returncode == 0, res.stderr.decode()
    assert sb.ok("exec", ctr, "cat", "/tmp/a/b/c.txt").stdout == "c"
    res = sb_bytes(sb, "cp", "-", ctr + ":/etc/passwd", input=stream)
    assert res.returncode == 1 and b"must be a directory" in res.stderr
    res = sb_bytes(sb, "cp", "-", ctr + ":/nowhere", input=stream)
    assert res.returncode == 1
    assert b"Could not find the file /nowhere in container tarin" in res.stderr
    sb.ok("rm", "-f", ctr)


# --- symlinks in the container never reach the host ---------------------------

def plant_links(sb, ctr, victim, canary):
    """Symlinks a hostile container could hold, pointing at host paths."""
    stream = tar_bytes([("l", "escape", "/", 0, 0o777),
                        ("l", "etclink", "/etc", 0, 0o777),
                        ("l", "victim", victim, 0, 0o777),
                        ("l", "canary", canary, 0, 0o777),
                        ("l", "relup", "../../../../../../" + victim.lstrip("/"), 0, 0o777)])
    res = sb_bytes(sb, "cp", "-", ctr + ":/", input=stream)
    assert res.returncode == 0, res.stderr.decode()


@pytest.mark.parametrize("kind", ("running", "exited"))
def test_symlink_destination_never_writes_the_host(sb, busybox, kind):
    ctr = container(sb, busybox, "esc-" + kind, kind)
    work = host_dir(sb, "esc-" + kind)
    victim = host_dir(sb, "esc-victim-" + kind)       # writable by the user
    canary = os.path.join(work, "canary")
    with open(canary, "w") as f:
        f.write("untouched\n")
    os.chown(canary, sb.uid, sb.gid)
    payload = os.path.join(work, "payload")
    with open(payload, "w") as f:
        f.write("payload\n")
    os.chown(payload, sb.uid, sb.gid)
    tree = make_tree(sb, work)
    plant_links(sb, ctr, victim, canary)

    attempts = [
        (payload, ctr + ":/escape" + victim + "/"),
        (payload, ctr + ":/escape" + victim + "/p"),
        (payload, ctr + ":/victim/"),
        (payload, ctr + ":/victim/p"),
        (payload, ctr + ":/relup/p"),
        (tree, ctr + ":/victim/"),
        (tree, ctr + ":/escape" + victim),
        (payload, ctr + ":/canary"),               # replaces the link itself
        (payload, ctr + ":/escape" + canary),
    ]
    for src, dest in attempts:
        sb("cp", src, dest)
        assert os.listdir(victim) == [], (src, dest)
        with open(canary) as f:
            assert f.read() == "untouched\n", (src, dest)
    stream = tar_bytes([("f", "escape" + victim + "/t", b"x", 0, 0o644)])
    sb_bytes(sb, "cp", "-", ctr + ":/", input=stream)
    sb_bytes(sb, "cp", "-", ctr + ":/escape" + victim, input=stream)
    assert os.listdir(victim) == []
    # Within the container, the links resolve in its own root.
    sb.ok("cp", payload, ctr + ":/etclink/")
    assert tar_of(sb, ctr + ":/etc/payload")["payload"][1] == b"payload\n"
    assert not os.path.exists("/etc/payload")
    sb.ok("rm", "-f", ctr)


@pytest.mark.parametrize("kind", ("running", "created"))
def test_symlink_source_never_reads_the_host(sb, busybox, kind):
    ctr = container(sb, busybox, "leak-" + kind, kind)
    work = host_dir(sb, "leak-" + kind)
    victim = host_dir(sb, "leak-victim-" + kind)
    with open(os.path.join(victim, "hostonly"), "w") as f:
        f.write("host secret\n")
    canary = os.path.join(work, "canary")
    with open(canary, "w") as f:
        f.write("host secret\n")
    plant_links(sb, ctr, victim, canary)
    for ref in ("/canary", "/escape" + canary, "/victim/hostonly",
                "/victim/.", "/escape" + victim, "/relup/hostonly"):
        for flags in ((), ("-L",)):
            out = os.path.join(work, "out")
            subprocess.run(["rm", "-rf", out], check=True)
            res = sb("cp", *flags, ctr + ":" + ref, out)
            if res.returncode == 0:
                # Only a symlink itself (no -L) may come out, never content.
                assert os.path.islink(out) and not flags, (ref, flags)
            else:
                assert "Could not find the file" in res.stderr, res.stderr
    res = sb_bytes(sb, "cp", "-L", ctr + ":/canary", "-")
    assert res.returncode == 1 and b"host secret" not in res.stdout
    sb.ok("rm", "-f", ctr)


def test_host_side_never_writes_through_symlinks(sb, busybox):
    """The host side treats the stream as hostile: a symlink already in the
    destination is not followed (nor one the archive itself makes)."""
    ctr = container(sb, busybox, "hostside", "running")
    sb.ok("exec", ctr, "sh", "-c", "mkdir -p /d && echo x > /d/file")
    dest = host_dir(sb, "hostside")
    victim = host_dir(sb, "hostside-victim")
    os.symlink(victim, os.path.join(dest, "d"))
    res = sb("cp", ctr + ":/d", dest)
    assert res.returncode == 1 and "cannot overwrite non-directory" in res.stderr
    assert os.listdir(victim) == []
    sb.ok("rm", "-f", ctr)


def test_hostile_stdin_archives_are_refused(sb, busybox):
    ctr = container(sb, busybox, "hostile", "created")
    victim = host_dir(sb, "hostile-victim")
    for entries in (
            [("l", "esc", "/", 0, 0o777), ("f", "esc" + victim + "/pwn", b"x", 0, 0o644)],
            [("l", "esc", victim, 0, 0o777), ("f", "esc/pwn", b"x", 0, 0o644)],
            [("f", "../../../pwn", b"x", 0, 0o644)],
            [("f", "/abs", b"x", 0, 0o644)],
            [("h", "hl", "../../etc/passwd", 0, 0o644)]):
        res = sb_bytes(sb, "cp", "-", ctr + ":/tmp", input=tar_bytes(entries))
        assert res.returncode == 1, entries
        assert b"refusing" in res.stderr, res.stderr
    assert os.listdir(victim) == []
    sb.ok("rm", "-f", ctr)


# --- errors --------------------------------------------------------------------

def test_errors(sb, busybox):
    ctr = container(sb, busybox, "errs", "created")
    work = host_dir(sb, "errs")
    res = sb("cp", "nosuchctr:/etc", work)
    assert res.returncode == 1 and "No such container: nosuchctr" in res.stderr
    res = sb("cp", ctr + ":/nonexistent", work)
    assert res.returncode == 1
    assert "Could not find the file /nonexistent in container errs" in res.stderr
    res = sb("cp", os.path.join(work, "missing"), ctr + ":/tmp")
    assert res.returncode == 1 and "no such file or directory" in res.stderr
    res = sb("cp", ctr + ":/etc", ctr + ":/tmp")
    assert res.returncode == 125 and "copying between containers is not supported" in res.stderr
    res = sb("cp", work, os.path.join(work, "x"))
    assert res.returncode == 125
    sb.ok("rm", "-f", ctr)
