"""The events log (helpers/events.py): one line per event, rotated at
ROTATE_AT with one older file kept, and read across a rotation."""

from helpers import events
from helpers.commands.events import _Follower, parse_filters
from helpers.paths import Paths


def test_rotation_keeps_one_older_file_and_the_follower_reads_across(tmp_path, monkeypatch):
    paths = Paths(str(tmp_path / "root"), str(tmp_path / "run"))
    monkeypatch.setattr(events, "ROTATE_AT", 500)     # 4 lines (137 bytes each)
    events.emit(paths, "volume", "create", "v0")
    follower = _Follower(events.log_path(paths))
    assert len(follower.backlog()) == 1
    for i in range(1, 6):
        events.emit(paths, "volume", "create", "v%d" % i)
    log = events.log_path(paths)
    assert (tmp_path / "run" / "events.jsonl.1").exists()
    seen = []
    for _ in range(3):
        seen += follower.read()
    names = [line.split(b'"ID":"')[1].split(b'"')[0].decode() for line in seen]
    assert names == ["v1", "v2", "v3", "v4", "v5"], names
    with open(log, "rb") as f:
        assert all(line.endswith(b"}") for line in f.read().splitlines())


def test_filters():
    msg = {"Type": "container", "Action": "health_status: healthy",
           "Actor": {"ID": "abc123" * 10, "Attributes": {"name": "web", "image": "nginx",
                                                        "tier": "front"}}}
    assert parse_filters(["event=health_status"])(msg)
    assert parse_filters(["container=web", "image=nginx", "label=tier=front"])(msg)
    assert parse_filters(["container=abc123"])(msg)
    assert not parse_filters(["label=tier=back"])(msg)
    assert not parse_filters(["type=image"])(msg)
    assert parse_filters(["type=image", "type=container"])(msg)
