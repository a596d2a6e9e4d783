"""--userns keep-id's maps (userns.py): podman's layout, relative to the
shared user namespace, and the same ids seen from the host."""

import os

import pytest

from helpers.errors import UsageError
from helpers.userns import IdMap, container_id_map, keep_id_maps, parse_userns

SHARED = IdMap([(0, 1001, 1), (1, 100000, 65536)], [(0, 1002, 1), (1, 200000, 65536)],
               single=False)


def test_parse():
    assert parse_userns(None) is None and parse_userns("") is None
    assert parse_userns("host") is None
    assert parse_userns("keep-id") == {"uid": os.getuid(), "gid": os.getgid()}
    assert parse_userns("keep-id:uid=11,gid=12") == {"uid": 11, "gid": 12}
    assert parse_userns("keep-id:gid=5")["gid"] == 5
    for bad in ("auto", "nomap", "keep-id:uid=", "keep-id:uid=-1", "keep-id:size=9",
                "keep-id:uid=4294967295"):
        with pytest.raises(UsageError):
            parse_userns(bad)


def test_podmans_layout():
    """podman run --userns=keep-id:uid=11 ... cat /proc/self/uid_map (its
    commit message): 0 1 11 / 11 0 1 / 12 12 65525."""
    uids, gids = keep_id_maps(SHARED, {"uid": 11, "gid": 1002})
    assert uids == [(0, 1, 11), (11, 0, 1), (12, 12, 65525)]
    assert gids == [(0, 1, 1002), (1002, 0, 1), (1003, 1003, 64534)]


def test_uid_beyond_the_range_and_zero():
    uids, _ = keep_id_maps(SHARED, {"uid": 70000, "gid": 0})
    assert uids == [(0, 1, 65536), (70000, 0, 1)]
    # keep-id:uid=0 is the shared namespace's own map.
    assert keep_id_maps(SHARED, {"uid": 0, "gid": 0}) == ([(0, 0, 65537)], [(0, 0, 65537)])


def test_container_ids_seen_from_the_host():
    m = container_id_map(SHARED, keep_id_maps(SHARED, {"uid": 1001, "gid": 1002}))
    assert m.to_host_uid(1001) == 1001          # the user, same number
    assert m.to_host_uid(0) == 100000           # root: the first subordinate id
    assert m.to_host_uid(1000) == 101000         # (S 1001)
    assert m.to_host_uid(1002) == 101001
    assert m.to_host_uid(65536) == 165535
    assert not m.has_uid(65537)
    assert m.to_host_gid(1002) == 1002 and m.to_host_gid(0) == 200000
    assert not m.single
