"""Layer extraction logic (no namespaces: owners are left alone)."""

import gzip
import hashlib
import io
import os
import stat
import tarfile

import pytest

from helpers.errors import StoreError, UnsafeArchive
from helpers.image import unpack
from helpers.userns import IdMap

IDMAP = IdMap([(0, os.getuid(), 1)], [(0, os.getgid(), 1)], single=True)


def make_tar(entries):
    """entries: (name, kind, extra) with kind file/dir/sym/link/fifo/chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1234567890
            data = None
            if kind == "file":
                data = extra.get("data", b"") if isinstance(extra, dict) else extra
                ti.size = len(data)
                ti.mode = extra.get("mode", 0o644) if isinstance(extra, dict) else 0o644
                if isinstance(extra, dict) and "xattrs" in extra:
                    ti.pax_headers = {"SCHILY.xattr." + k: v
                                      for k, v in extra["xattrs"].items()}
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, extra or 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            elif kind == "fifo":
                ti.type, ti.mode = tarfile.FIFOTYPE, 0o600
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def run(tmp_path, data, name="layer"):
    dest = tmp_path / name
    result = unpack.extract(io.BytesIO(data), str(dest), IDMAP, same_owner=False)
    return dest, result


def test_basic_tree_and_diff_id(tmp_path):
    data = make_tar([
        ("./", "dir", 0o755),
        ("./bin", "dir", 0o555),
        ("./bin/tool", "file", {"data": b"#!x\n", "mode": 0o4755}),
        ("./bin/alias", "sym", "tool"),
        ("./bin/hard", "link", "bin/tool"),
        ("./implicit/deep/file", "file", b"x"),
        ("./pipe", "fifo", None),
    ])
    dest, result = run(tmp_path, data)
    assert result["diff_id"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result["size"] == 5
    assert (dest / "bin/tool").read_bytes() == b"#!x\n"
    assert stat.S_IMODE(os.lstat(dest / "bin/tool").st_mode) == 0o4755
    assert os.readlink(dest / "bin/alias") == "tool"
    assert os.lstat(dest / "bin/hard").st_ino == os.lstat(dest / "bin/tool").st_ino
    assert stat.S_IMODE(os.lstat(dest / "bin").st_mode) == 0o555   # applied last
    assert os.lstat(dest / "bin").st_mtime == 1234567890
    assert stat.S_IMODE(os.lstat(dest / "implicit").st_mode) == 0o755
    assert stat.S_ISFIFO(os.lstat(dest / "pipe").st_mode)
    os.chmod(dest / "bin", 0o755)


def test_gzip_gives_the_same_diff_id(tmp_path):
    data = make_tar([("a", "file", b"hello")])
    _, plain = run(tmp_path, data, "plain")
    _, gz = run(tmp_path, gzip.compress(data), "gz")
    assert plain["diff_id"] == gz["diff_id"]


def test_whiteouts_become_overlay_whiteouts(tmp_path):
    data = make_tar([
        ("dir/.wh..wh..opq", "file", b""),
        ("dir/new", "file", b"n"),
        (".wh.gone", "file", b""),
        ("x/.wh..wh.plnk", "file", b""),
    ])
    dest, _ = run(tmp_path, data)
    st = os.lstat(dest / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "dir", "user.overlay.opaque") == b"y"
    assert sorted(os.listdir(dest)) == ["dir", "gone", "x"]
    assert os.listdir(dest / "x") == []


def test_later_entry_replaces_earlier(tmp_path):
    data = make_tar([
        ("a", "file", b"old"),
        ("a", "file", b"new"),
        ("d", "dir", 0o755),
        ("d/f", "file", b"f"),
        ("d", "sym", "a"),                  # a dir replaced by a symlink
        ("d2", "sym", "a"),
        ("d2", "dir", 0o700),               # and the other way round
        ("d2/f", "file", b"ok"),
    ])
    dest, _ = run(tmp_path, data)
    assert (dest / "a").read_bytes() == b"new"
    assert os.readlink(dest / "d") == "a"
    assert (dest / "d2/f").read_bytes() == b"ok"


def test_overlay_xattrs_from_the_tar_are_dropped(tmp_path):
    data = make_tar([("f", "file", {"data": b"", "xattrs": {
        "user.overlay.redirect": "/etc", "user.note": "kept"}})])
    dest, result = run(tmp_path, data)
    assert "user.overlay.redirect" in result["xattrs_dropped"]
    assert os.getxattr(dest / "f", "user.note") == b"kept"
    with pytest.raises(OSError):
        os.getxattr(dest / "f", "user.overlay.redirect")


def test_devices_are_skipped(tmp_path):
    dest, result = run(tmp_path, make_tar([("dev/null", "chr", None), ("k", "file", b"")]))
    assert result["devices"] == ["dev/null"]
    assert not os.path.lexists(dest / "dev/null")


@pytest.mark.parametrize("entries", [
    [("../evil", "file", b"x")],
    [("a/../../evil", "file", b"x")],
    [("/abs", "file", b"x")],
    [("lnk", "sym", "TARGET"), ("lnk/evil", "file", b"x")],
    [("d", "dir", 0o755), ("d/l", "sym", "../.."), ("d/l/evil", "file", b"x")],
    [("lnk", "sym", "TARGET"), (".wh.lnk", "file", b""), ("lnk", "sym", "TARGET"),
     ("lnk/.wh.evil", "file", b"")],
    [("pw", "link", "/etc/passwd")],
    [("pw", "link", "../evil")],
    [("etc", "sym", "/etc"), ("pw", "link", "etc/passwd")],
    [("sub/.wh...", "file", b"")],
], ids=["dotdot", "dotdot-inner", "absolute", "symlink-parent", "relative-symlink-parent",
        "whiteout-through-symlink", "hardlink-absolute", "hardlink-dotdot",
        "hardlink-via-symlink", "whiteout-dotdot"])
def test_hostile_entries_are_refused(tmp_path, entries):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "evil").write_bytes(b"")
    os.unlink(tmp_path / "evil")
    entries = [(n, k, e.replace("TARGET", str(outside)) if isinstance(e, str) else e)
               for n, k, e in entries]
    with pytest.raises(UnsafeArchive) as exc:
        run(tmp_path, make_tar(entries))
    assert "refusing" in exc.value.message and exc.value.hint
    assert os.listdir(outside) == []
    assert not os.path.lexists(tmp_path / "evil")


def test_clean_name():
    assert unpack._clean_name("./a/b/") == "a/b"
    assert unpack._clean_name("a/./b/../c") == "a/c"
    assert unpack._clean_name("./") == ""
    for bad in ("..", "../x", "a/../../x", "/x"):
        with pytest.raises(UnsafeArchive):
            unpack._clean_name(bad)


def test_truncated_and_unsupported(tmp_path):
    data = make_tar([("a", "file", b"x" * 5000)])
    with pytest.raises(StoreError, match="cannot extract layer"):
        run(tmp_path, data[:2000], "trunc")
    with pytest.raises(StoreError, match="bzip2/xz"):
        run(tmp_path, b"BZh91AY&SY" + b"\0" * 100, "bz")
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(StoreError, match="zstd") as exc:
            run(tmp_path, b"\x28\xb5\x2f\xfd" + b"\0" * 100, "zst")
        assert exc.value.hint
