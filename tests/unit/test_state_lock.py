"""A container's record under its lock: a removed container stays removed."""

import os

import pytest

from helpers.container import state
from helpers.errors import ContainerNotFound
from helpers.paths import Paths


def test_update_of_a_removed_container_is_no_such_container(tmp_path):
    paths = Paths(str(tmp_path / "root"), str(tmp_path / "run"))
    cid = "a" * 64
    with pytest.raises(ContainerNotFound):
        state.update_state(paths, cid, Status="running")
    # The lock did not bring its directory back (ps would list a husk).
    assert not os.path.exists(paths.container(cid))
    with pytest.raises(ContainerNotFound):
        state.refresh(paths, cid, {"Status": "running", "MonitorPid": 1 << 30})


def test_update_changes_the_record(tmp_path):
    paths = Paths(str(tmp_path / "root"), str(tmp_path / "run"))
    cid = "b" * 64
    os.makedirs(paths.container(cid))
    state.write_state(paths, cid, {"Status": "created"})
    assert state.update_state(paths, cid, Status="running")["Status"] == "running"
    assert state.read_state(paths, cid)["Status"] == "running"
