"""The frozen binary's front (native/unpack.c) with folders packed by
scripts/pack_binary.py: it unpacks a version once into the user's cache and
runs it from there, never runs from a directory that is not the user's own,
never leaves or runs a half-written version, and cleans up after dead
unpackers and unused versions.  The front is compiled here with gcc (which
scripts/setup-host installs) and run for real; the packed "program" is a
shell script that shows how it was started."""

import os
import struct
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(HERE, "scripts"))
import pack_binary  # noqa: E402

PROGRAM = """#!/bin/sh
echo "$0|$*|$SANDBOX_BINARY|$(cat "$(dirname "$0")/_internal/lib/data")"
"""


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("front") / "unpack")
    subprocess.run(["gcc", "-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o", out,
                    os.path.join(HERE, "native", "unpack.c")], check=True)
    return out


def folder(path, data="v1"):
    os.makedirs(os.path.join(path, "_internal", "lib"))
    with open(os.path.join(path, "sandbox"), "w") as f:
        f.write(PROGRAM)
    os.chmod(os.path.join(path, "sandbox"), 0o755)
    with open(os.path.join(path, "_internal", "lib", "data"), "w") as f:
        f.write(data)
    os.symlink("lib/data", os.path.join(path, "_internal", "link"))
    return path


@pytest.fixture
def packed(tmp_path, front):
    binary = str(tmp_path / "sandbox-bin")
    version = pack_binary.pack(front, folder(str(tmp_path / "folder")), binary)
    return binary, version


def start(binary, tmp_path, *args, cache="cache", tmpdir="tmp", check=True):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "XDG_CACHE_HOME": str(tmp_path / cache), "TMPDIR": str(tmp_path / tmpdir)}
    result = subprocess.run([binary, *args], env=env, capture_output=True, text=True,
                            timeout=30)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_unpacks_once_then_runs_from_the_cache(tmp_path, packed):
    binary, version = packed
    out = start(binary, tmp_path, "run", "a b").stdout
    vdir = tmp_path / "cache" / "sandbox" / ("bin-" + version)
    assert out == "%s/sandbox|run a b|%s|v1\n" % (vdir, binary)
    assert os.stat(vdir).st_mode & 0o777 == 0o700
    assert os.readlink(vdir / "_internal" / "link") == "lib/data"
    inode = os.stat(vdir / "_internal" / "lib" / "data").st_ino
    assert start(binary, tmp_path, "again").stdout == "%s/sandbox|again|%s|v1\n" % (vdir, binary)
    assert os.stat(vdir / "_internal" / "lib" / "data").st_ino == inode    # not unpacked again
    assert sorted(os.listdir(tmp_path / "cache" / "sandbox")) == ["bin-" + version]


def test_the_same_folder_packs_to_the_same_version(tmp_path, front):
    src = folder(str(tmp_path / "f"))
    assert pack_binary.pack(front, src, str(tmp_path / "one")) == \
        pack_binary.pack(front, src, str(tmp_path / "two"))
    other = folder(str(tmp_path / "g"), data="v2")
    assert pack_binary.pack(front, other, str(tmp_path / "three")) != \
        pack_binary.pack(front, src, str(tmp_path / "one"))


def test_first_starts_at_once_leave_one_version(tmp_path, packed):
    binary, version = packed
    env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    procs = [subprocess.Popen([binary, str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out.split("|")[1] == str(i) and out.endswith("|v1\n"), out
    assert os.listdir(tmp_path / "cache" / "sandbox") == ["bin-" + version]


@pytest.mark.parametrize("how", ["other owner", "group-writable", "symlink"])
def test_a_cache_not_the_users_own_is_not_used(tmp_path, packed, how):
    """Someone else's directory (or one others may write, or a symlink to
    elsewhere) could hold a program of theirs: the front goes to its
    fallback, $TMPDIR/sandbox-cache-UID, instead."""
    binary, version = packed
    cache = tmp_path / "cache" / "sandbox"
    elsewhere = tmp_path / "elsewhere"
    os.makedirs(elsewhere)
    os.makedirs(cache.parent)
    if how == "symlink":
        os.symlink(elsewhere, cache)
    else:
        os.mkdir(cache, 0o700)
        if how == "other owner":
            os.chown(cache, 65534, 65534)
        else:
            os.chmod(cache, 0o770)
    os.makedirs(tmp_path / "tmp")
    out = start(binary, tmp_path).stdout
    fallback = tmp_path / "tmp" / ("sandbox-cache-%d" % os.geteuid())
    assert out.startswith("%s/bin-%s/sandbox|" % (fallback, version)), out
    assert os.listdir(elsewhere) == []
    if how != "symlink":
        assert os.listdir(cache) == []


def test_no_usable_place_is_a_clear_error(tmp_path, packed):
    binary, _ = packed
    with open(tmp_path / "file", "w"):
        pass
    result = start(binary, tmp_path, cache="file/x", tmpdir="file/y", check=False)
    assert result.returncode == 125
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0] == "sandbox: cannot unpack the frozen binary into %s: Not a directory" \
        % (tmp_path / "file" / "x" / "sandbox"), result.stderr
    assert lines[1].startswith("  hint: it unpacks once into $XDG_CACHE_HOME/sandbox")


def test_dead_unpackers_leftovers_and_unused_versions_go(tmp_path, packed):
    binary, version = packed
    cache = tmp_path / "cache" / "sandbox"
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = cache / (".tmp-%s-%d" % (version, dead.pid))
    live = cache / (".tmp-%s-%d" % (version, os.getpid()))     # an unpack going on
    old, recent = cache / ("bin-" + "a" * 32), cache / ("bin-" + "b" * 32)
    for d in (leftover / "_internal", live, old, recent):
        os.makedirs(d, mode=0o700)
    for d in (cache, cache.parent):
        os.chmod(d, 0o700)
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    start(binary, tmp_path)
    assert sorted(os.listdir(cache)) == sorted([live.name, recent.name, "bin-" + version])


def test_a_version_with_its_program_gone_is_unpacked_again(tmp_path, packed):
    binary, version = packed
    start(binary, tmp_path)
    vdir = tmp_path / "cache" / "sandbox" / ("bin-" + version)
    os.unlink(vdir / "sandbox")
    assert start(binary, tmp_path, "x").stdout.endswith("|x|%s|v1\n" % binary)


def test_a_damaged_binary_is_refused(tmp_path, packed):
    binary, _ = packed
    with open(binary, "rb") as f:
        data = f.read()
    cut = str(tmp_path / "cut")
    with open(cut, "wb") as f:
        f.write(data[:-10])
    os.chmod(cut, 0o755)
    result = start(cut, tmp_path, check=False)
    assert result.returncode == 125
    assert result.stderr.startswith("sandbox: cannot unpack the frozen binary %s (no payload" % cut)
    assert not os.path.exists(tmp_path / "cache" / "sandbox" / "bin-")


@pytest.mark.parametrize("path", ["../escaped", "/abs", "lib/../../escaped", "a//b"])
def test_a_payload_path_out_of_its_folder_is_refused(tmp_path, front, path):
    """Nothing is written outside the version's folder, and no version
    directory stays behind."""
    entry = path.encode()
    payload = (struct.pack("<BBHIQ", ord("f"), 0, len("sandbox"), 0o755, 3) + b"sandbox" + b"x\n\n"
               + struct.pack("<BBHIQ", ord("f"), 0, len(entry), 0o644, 2) + entry + b"hi")
    with open(front, "rb") as f:
        head = f.read()
    binary = str(tmp_path / "hostile")
    with open(binary, "wb") as f:
        f.write(head + payload + pack_binary.MAGIC
                + struct.pack("<QQ", len(head), len(payload)) + b"c" * 32)
    os.chmod(binary, 0o755)
    result = start(binary, tmp_path, check=False)
    assert result.returncode == 125, result.stderr
    assert "Bad message" in result.stderr
    assert not os.path.exists(tmp_path / "cache" / "escaped")
    assert not os.path.exists(tmp_path / "escaped")
    assert os.listdir(tmp_path / "cache" / "sandbox") == []


def test_a_set_user_id_front_refuses_to_run(tmp_path, packed):
    """Set-user-ID, it would run, as its owner, what the caller's HOME
    points at."""
    binary, _ = packed
    os.chmod(tmp_path, 0o755)
    os.chmod(binary, 0o4755)
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             binary], env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 125, result
    assert "set-user-ID or set-group-ID: refused" in result.stderr


def test_a_leftover_under_its_own_pid_is_replaced(tmp_path, packed):
    """A dead unpacker that had the pid this start has left its directory:
    it cannot be anyone's now, so it is removed rather than given up on."""
    binary, version = packed
    cache = tmp_path / "cache" / "sandbox"
    os.makedirs(cache, mode=0o700)
    os.chmod(cache.parent, 0o700)

    def plant():          # in the child, whose pid the front then has
        os.makedirs(cache / (".tmp-%s-%d" % (version, os.getpid())) / "junk")
    result = subprocess.run([binary], env={"PATH": "/usr/bin:/bin",
                                           "XDG_CACHE_HOME": str(tmp_path / "cache")},
                            preexec_fn=plant, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("%s/bin-%s/sandbox|" % (cache, version)), result.stdout
    assert os.listdir(cache) == ["bin-" + version]
