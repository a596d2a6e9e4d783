"""The layer tar writer of `save` (whiteouts back to OCI form, determinism,
a round trip through unpack), which images `save` picks, and the listing
helpers (format_rows, filters, history rows) on layer-less stores."""

import io
import json
import os
import stat
import tarfile

import pytest

from helpers.commands.image_admin import history_rows
from helpers.commands.images import parse_filters
from helpers.errors import ImageNotFound, UsageError
from helpers.formatting import Row, format_rows
from helpers.image import reference, save, unpack
from helpers.image.store import Store
from helpers.paths import Paths
from helpers.userns import IdMap

IDMAP = IdMap([(0, os.getuid(), 1)], [(0, os.getgid(), 1)], single=True)


def layer_dir(base):
    """A layer directory as unpack leaves it, with both overlay whiteout
    forms (mknod 0/0 needs root or a user namespace)."""
    root = base / "diff"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    os.link(root / "etc" / "hosts", root / "etc" / "hosts2")
    os.symlink("hosts", root / "etc" / "alias")
    os.mkfifo(root / "etc" / "fifo", 0o600)
    (root / "bin").mkdir(mode=0o755)
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!x\n")
    os.chmod(tool, 0o4755)
    os.setxattr(tool, "user.note", b"kept")
    try:
        os.mknod(root / "etc" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))
        os.setxattr(root / "bin", unpack.OPAQUE_XATTR, b"y")
    except PermissionError:
        pytest.skip("needs root (mknod of a whiteout)")
    except OSError as exc:
        pytest.skip("no user xattrs here: %s" % exc)
    for p in sorted(root.rglob("*"), reverse=True):
        os.utime(p, (1000000000, 1000000000), follow_symlinks=False)
    return root


def tar_of(root):
    buf = io.BytesIO()
    save.write_layer_tar(str(root), buf)
    return buf.getvalue()


def test_layer_tar_reverses_whiteouts_and_keeps_metadata(tmp_path):
    data = tar_of(layer_dir(tmp_path))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        entries = {ti.name: ti for ti in tf}
    names = list(entries)
    for i, name in enumerate(names):                               # parents first
        if "/" in name:
            assert name.rpartition("/")[0] in names[:i]
    assert entries["etc/.wh.gone"].isreg() and entries["etc/.wh.gone"].size == 0
    assert "etc/gone" not in entries
    assert entries["bin/.wh..wh..opq"].isreg()
    assert not any(k.startswith("SCHILY.xattr.user.overlay") for ti in entries.values()
                   for k in ti.pax_headers)
    assert entries["bin/tool"].pax_headers["SCHILY.xattr.user.note"] == "kept"
    assert entries["bin/tool"].mode == 0o4755
    assert entries["etc/hosts2"].islnk() and entries["etc/hosts2"].linkname == "etc/hosts"
    assert entries["etc/alias"].issym() and entries["etc/alias"].linkname == "hosts"
    assert entries["etc/fifo"].isfifo()
    assert entries["etc/hosts"].mtime == 1000000000
    assert all(ti.uname == "" and ti.gname == "" for ti in entries.values())


def test_layer_tar_is_deterministic_and_survives_unpack(tmp_path):
    root = layer_dir(tmp_path)
    first = tar_of(root)
    assert tar_of(root) == first
    result = unpack.extract(io.BytesIO(first), str(tmp_path / "again"), IDMAP,
                            same_owner=False)
    again = tmp_path / "again"
    assert stat.S_ISCHR(os.lstat(again / "etc" / "gone").st_mode)
    assert os.getxattr(again / "bin", unpack.OPAQUE_XATTR) == b"y"
    # Unpacked and written again: the same bytes, so the same diff_id.
    assert tar_of(again) == first
    assert result["diff_id"] == "sha256:" + __import__("hashlib").sha256(first).hexdigest()


# -- which images save picks ---------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    return Store(Paths(str(tmp_path / "root"), str(tmp_path / "run")))


def add(store, n, *tags, history=None):
    cfg = {"architecture": "amd64", "os": "linux", "n": n,
           "created": "2024-01-01T00:00:00Z", "rootfs": {"type": "layers", "diff_ids": []}}
    if history is not None:
        cfg["history"] = history
    image_id, _ = store.add_image(json.dumps(cfg).encode(), [], None,
                                  [reference.parse(t) for t in tags])
    return image_id


def test_resolve_follows_docker_save_naming(store):
    a = add(store, 1, "app:1", "app:2", "other")
    b = add(store, 2, "app:3")
    got = dict(save.resolve(store, ["app"]))
    assert got == {a: ["docker.io/library/app:1", "docker.io/library/app:2"],
                   b: ["docker.io/library/app:3"]}
    assert save.resolve(store, ["other:latest"]) == [(a, ["docker.io/library/other:latest"])]
    assert save.resolve(store, [a[7:19]]) == [(a, [])]
    assert save.resolve(store, [a, "app:2"]) == [(a, ["docker.io/library/app:2"])]
    with pytest.raises(ImageNotFound):
        save.resolve(store, ["nosuch"])


# -- listing helpers -----------------------------------------------------------------------
def test_format_rows():
    rows = [{"ID": "abc", "Name": "x"}, {"ID": "defgh", "Name": "y"}]
    assert format_rows(None, rows) is None
    assert format_rows("table", rows) is None
    assert format_rows("{{.ID}}-{{.Name}}", rows) == "abc-x\ndefgh-y"
    assert format_rows("json", rows).splitlines()[0] == '{"ID":"abc","Name":"x"}'
    table = format_rows("table {{.ID}}\t{{.Name}}", rows, {"ID": "IMAGE ID"})
    assert table.splitlines() == ["IMAGE ID   NAME", "abc        x",
                                  "defgh      y"]
    assert format_rows("json", []) == ""
    labelled = [Row({"Name": "x"}, {"b": "2", "a": "1"})]
    assert format_rows('{{.Label "a"}}|{{.Label "c"}}|{{.Labels}}', labelled) == "1||a=1,b=2"
    assert format_rows("json", labelled) == '{"Name":"x","Labels":"a=1,b=2"}'


def test_parse_filters():
    assert parse_filters(["dangling=true", "label=a", "label=b=c"],
                         ("dangling", "label")) == {"dangling": ["true"],
                                                    "label": ["a", "b=c"]}
    with pytest.raises(UsageError, match="invalid filter"):
        parse_filters(["colour=red"], ("dangling",))
    with pytest.raises(UsageError):
        parse_filters(["dangling=maybe"], ("dangling",))


def test_history_rows(store):
    long = "/bin/sh -c #(nop) " + "x" * 60
    image_id = add(store, 1, "h", history=[
        {"created": "2024-01-01T00:00:00Z", "created_by": "first", "empty_layer": True},
        {"created": "2024-01-02T00:00:00Z", "created_by": long, "comment": "c"}])
    rows = history_rows(store, image_id)
    assert [r["ID"] for r in rows] == [image_id[7:19], "<missing>"]
    assert rows[0]["CreatedBy"] == long[:44] + "\u2026" and rows[0]["Comment"] == "c"
    assert rows[1]["CreatedBy"] == "first" and rows[1]["Size"] == "0B"
    full = history_rows(store, image_id, no_trunc=True, human=False)
    assert full[0]["ID"] == image_id and full[0]["CreatedBy"] == long
    assert full[0]["CreatedSince"] == "2024-01-02T00:00:00Z"
