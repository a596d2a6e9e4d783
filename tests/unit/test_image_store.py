"""Store bookkeeping (ids, tags, lookup, gc) and Docker's output formats,
with layer-less images so that no namespace is needed."""

import datetime
import hashlib
import json
import os

import pytest

from helpers import formatting as cmd
from helpers.errors import ImageNotFound, StoreError, UsageError
from helpers.image import archive, reference
from helpers.image.store import Store, chain_ids
from helpers.paths import Paths


def sha(s):
    return "sha256:" + hashlib.sha256(s.encode()).hexdigest()


def test_chain_ids_follow_the_oci_spec():
    a, b, c = sha("a"), sha("b"), sha("c")
    ids = chain_ids([a, b, c])
    assert ids[0] == a
    assert ids[1] == sha(a + " " + b)
    assert ids[2] == sha(ids[1] + " " + c)
    assert chain_ids([]) == []


@pytest.fixture
def store(tmp_path):
    return Store(Paths(str(tmp_path / "root"), str(tmp_path / "run")))


def add(store, n, *tags):
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "n": n,
                      "created": "2024-01-01T00:00:00Z",
                      "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    image_id, moved = store.add_image(cfg, [], None, [reference.parse(t) for t in tags])
    assert image_id == "sha256:" + hashlib.sha256(cfg).hexdigest()
    with open(store.paths.image_config(image_id), "rb") as f:
        assert f.read() == cfg          # stored byte for byte
    return image_id


def test_lookup_by_name_id_and_prefix(store):
    i1 = add(store, 1, "busybox", "localhost:5000/x:1")
    assert store.lookup("busybox") == i1
    assert store.lookup("busybox:latest") == i1
    assert store.lookup("docker.io/library/busybox") == i1
    assert store.lookup("localhost:5000/x:1") == i1
    assert store.lookup(i1) == i1 and store.lookup(i1[7:]) == i1
    assert store.lookup(i1[7:19]) == i1 and store.lookup("sha256:" + i1[7:10]) == i1
    with pytest.raises(ImageNotFound, match="No such image: nosuch"):
        store.lookup("nosuch")
    with pytest.raises(ImageNotFound):
        store.lookup("localhost:5000/x")        # :latest is not tagged
    assert store.names(i1) == ["busybox:latest", "localhost:5000/x:1"]
    assert store.names(i1, full=True) == ["docker.io/library/busybox:latest",
                                          "localhost:5000/x:1"]
    assert store.layer_dirs(i1) == [] and store.size(i1) == 0


def test_ambiguous_prefix(store):
    ids = [add(store, n) for n in range(40)]
    first = {}
    for i in ids:
        first.setdefault(i[7], []).append(i)
    digit, group = next((d, g) for d, g in first.items() if len(g) > 1)
    with pytest.raises(ImageNotFound, match="ambiguous"):
        store.lookup(digit)


def test_a_tag_wins_over_an_id_prefix(store):
    i1 = add(store, 1)
    i2 = add(store, 2, i1[7:11])        # a repository named like i1's prefix
    assert store.lookup(i1[7:11]) == i2


def test_retag_reports_the_moved_tag_and_untag_delete(store):
    i1 = add(store, 1, "app")
    cfg = json.dumps({"n": 2, "rootfs": {"diff_ids": []}}).encode()
    i2, moved = store.add_image(cfg, [], None, [reference.parse("app")])
    assert moved == [("docker.io/library/app:latest", i1)]
    assert store.names(i1) == [] and store.lookup("app") == i2
    store.tag(i1, reference.parse("old:1"))
    assert store.untag(reference.parse("old:1")) == i1
    with pytest.raises(ImageNotFound):
        store.untag(reference.parse("old:1"))
    assert store.delete_image(i2) == ["docker.io/library/app:latest"]
    assert not store.exists(i2) and store.repositories() == {}


def test_gc_removes_unreferenced_blobs_and_dead_tmp(store):
    i1 = add(store, 1)
    kept = store.write_blob(b"config")
    dropped = store.write_blob(b"orphan")
    manifest = json.dumps({"config": {"digest": kept}, "layers": []})
    with open(store.paths.image_manifest(i1), "w") as f:
        f.write(manifest)
    stale = os.path.join(store.paths.tmp, "layer-999999999-x")
    os.makedirs(os.path.join(stale, "diff"))
    assert store.gc() == []
    assert os.path.exists(store.paths.blob(kept))
    assert not os.path.exists(store.paths.blob(dropped))
    assert not os.path.exists(stale)


def test_layer_count_must_match_config(store):
    cfg = json.dumps({"rootfs": {"diff_ids": [sha("x")]}}).encode()
    with pytest.raises(StoreError, match="lists 1 layers"):
        store.add_image(cfg, [], None, [])


# -- formats -------------------------------------------------------------------
@pytest.mark.parametrize("size, text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1240, "1.24kB"), (4261550, "4.26MB"),
    (77800000, "77.8MB"), (123456789, "123MB"), (1_500_000_000, "1.5GB")])
def test_human_size(size, text):
    assert cmd.human_size(size) == text


@pytest.mark.parametrize("seconds, text", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"),
    (60, "About a minute"), (150, "2 minutes"), (3600, "About an hour"),
    (3 * 3600, "3 hours"), (50 * 3600, "2 days"), (15 * 86400, "2 weeks"),
    (90 * 86400, "3 months"), (800 * 86400, "2 years")])
def test_human_duration(seconds, text):
    assert cmd.human_duration(seconds) == text


def test_created_since_and_time_parsing():
    now = datetime.datetime(2024, 1, 1, 0, 2, 0, tzinfo=datetime.timezone.utc)
    t = cmd.parse_time("2024-01-01T00:00:00.123456789Z")
    assert cmd.created_since(t, now) == "About a minute ago"
    assert cmd.parse_time("2024-01-01T01:00:00+01:00") == \
        datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    assert cmd.parse_time("2024-01-01T00:00:00-02:00").hour == 0
    assert cmd.created_since(cmd.parse_time("0001-01-01T00:00:00Z"), now) == "N/A"
    assert cmd.created_since(None, now) == "N/A"


def test_tabulate_like_docker():
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"),
            ("busybox", "latest", "a416a98b71e2", "2 weeks ago", "4.26MB")]
    assert cmd.tabulate(rows).splitlines() == [
        "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE",
        "busybox      latest    a416a98b71e2   2 weeks ago   4.26MB"]


def test_import_changes():
    cfg = archive.apply_changes({"Env": None, "Cmd": None}, [
        'CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/init", "ENV A=1 B=two",
        "ENV A 3", "EXPOSE 80 53/udp", "LABEL a=b 'c d'=e", "USER 1000:1000",
        "WORKDIR /srv", "WORKDIR app", "VOLUME /data", "STOPSIGNAL SIGINT"])
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/init"]
    assert cfg["Env"] == ["B=two", "A=3"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"a": "b", "c d": "e"}
    assert cfg["User"] == "1000:1000" and cfg["WorkingDir"] == "/srv/app"
    assert cfg["Volumes"] == {"/data": {}} and cfg["StopSignal"] == "SIGINT"
    with pytest.raises(UsageError, match="not a valid change"):
        archive.apply_changes({}, ["RUN true"])


@pytest.mark.parametrize("annotations, name", [
    ({"io.containerd.image.name": "docker.io/library/bb:1",
      "org.opencontainers.image.ref.name": "1"}, "docker.io/library/bb:1"),
    ({"org.opencontainers.image.ref.name": "localhost:5000/a:v1"}, "localhost:5000/a:v1"),
    ({"org.opencontainers.image.ref.name": "busybox"}, "docker.io/library/busybox:latest"),
    ({"org.opencontainers.image.ref.name": "latest"}, None),
    ({}, None)])
def test_oci_names(annotations, name):
    ref = archive._oci_name(annotations)
    assert (str(ref) if ref else None) == name
