"""helpers/cgroups.py, the pure parts: Docker's flag semantics and the
cgroup v2 files they become; and, on this host, that probing never crashes."""

import json

import pytest

from helpers import cgroups
from helpers.errors import UsageError


def fake_device(path):
    return {"/dev/vda": "254:0", "/dev/sdb": "8:16"}[path]


def parse(**kw):
    kw.setdefault("ncpu", 4)
    kw.setdefault("resolve_device", fake_device)
    return cgroups.parse_limits(**kw)


def files(**kw):
    return cgroups.to_files(parse(**kw))


# --- sizes ---------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("32m", 33554432), ("32M", 33554432), ("32mb", 33554432), ("32MiB", 33554432),
    ("1g", 1073741824), ("1.5g", 1610612736), ("512k", 524288), ("4096", 4096),
    ("100b", 100), (7000000, 7000000),
])
def test_ram_in_bytes(text, value):
    assert cgroups.ram_in_bytes(text) == value


@pytest.mark.parametrize("text", ["", "m", "32x", "-1", "1e6", "32 m b"])
def test_ram_in_bytes_rejects(text):
    with pytest.raises(ValueError):
        cgroups.ram_in_bytes(text)


# --- the examples ----------------------------------------------------------

def test_memory_32m():
    out = files(memory="32m")
    assert out["memory.max"] == "33554432"
    # No --memory-swap: Docker lets the container use as much swap as memory.
    assert out["memory.swap.max"] == "33554432"


def test_cpus_half():
    assert files(cpus="0.5") == {"cpu.max": "50000 100000"}
    assert files(cpus="1.5")["cpu.max"] == "150000 100000"
    assert files(cpus=2)["cpu.max"] == "200000 100000"


def test_pids_limit():
    assert files(pids_limit="20") == {"pids.max": "20"}
    assert files(pids_limit=-1) == {"pids.max": "max"}
    assert files(pids_limit=0) == {"pids.max": "max"}


# --- memory ------------------------------------------------------------------------

def test_memory_swap_is_memory_plus_swap():
    assert files(memory="32m", memory_swap="64m")["memory.swap.max"] == str(32 * 2**20)
    assert files(memory="32m", memory_swap="32m")["memory.swap.max"] == "0"
    assert files(memory="32m", memory_swap="-1")["memory.swap.max"] == "max"


def test_memory_swap_rules():
    with pytest.raises(UsageError, match="always set the Memory limit"):
        parse(memory_swap="64m")
    with pytest.raises(UsageError, match="larger than memory limit"):
        parse(memory="64m", memory_swap="32m")
    with pytest.raises(UsageError, match="Minimum memory limit allowed is 6MB"):
        parse(memory="1m")
    with pytest.raises(UsageError, match='invalid argument "lots" for "--memory"'):
        parse(memory="lots")


def test_memory_reservation():
    assert files(memory_reservation="16m") == {"memory.low": str(16 * 2**20)}
    assert files(memory="64m", memory_reservation="16m")["memory.low"] == str(16 * 2**20)
    with pytest.raises(UsageError, match="can not be less than memory reservation"):
        parse(memory="16m", memory_reservation="32m")


# --- cpu ---------------------------------------------------------------------------

def test_cpu_quota_and_period():
    assert files(cpu_quota=25000) == {"cpu.max": "25000 100000"}
    assert files(cpu_quota=25000, cpu_period=50000) == {"cpu.max": "25000 50000"}
    assert files(cpu_period=50000) == {"cpu.max": "max 50000"}
    assert files(cpu_quota=-1) == {"cpu.max": "max 100000"}


def test_cpu_conflicts_and_ranges():
    with pytest.raises(UsageError, match="Nano CPUs and CPU Period"):
        parse(cpus="0.5", cpu_period=50000)
    with pytest.raises(UsageError, match="Nano CPUs and CPU Quota"):
        parse(cpus="0.5", cpu_quota=50000)
    with pytest.raises(UsageError, match="Range of CPUs is from 0.01 to 4.00"):
        parse(cpus="5")
    with pytest.raises(UsageError, match="Range of CPUs"):
        parse(cpus="0.001")
    with pytest.raises(UsageError, match="cfs period"):
        parse(cpu_period=999)
    with pytest.raises(UsageError, match="cfs quota"):
        parse(cpu_quota=999)
    with pytest.raises(UsageError, match="rational number"):
        parse(cpus="half")


@pytest.mark.parametrize("shares,weight", [
    (2, 1), (1024, 39), (512, 20), (262144, 10000), (1, 1), (10**6, 10000)])
def test_cpu_shares_to_weight(shares, weight):
    # runc: 1 + ((shares - 2) * 9999) / 262142, shares clamped to [2, 262144]
    assert files(cpu_shares=shares) == {"cpu.weight": str(weight)}


def test_cpuset():
    assert files(cpuset_cpus="0-2,3") == {"cpuset.cpus": "0-3"}
    assert files(cpuset_cpus="1,3") == {"cpuset.cpus": "1,3"}
    with pytest.raises(UsageError, match="Invalid value 1-x for cpuset cpus"):
        parse(cpuset_cpus="1-x")
    with pytest.raises(UsageError, match="Requested CPUs are not available"):
        parse(cpuset_cpus="0-7")


# --- io ------------------------------------------------------------------------------

def test_io_max_one_line_per_device():
    out = files(device_read_bps=["/dev/vda:1mb"], device_write_bps=["/dev/vda:2m"],
                device_read_iops=["/dev/sdb:100"])
    assert out == {"io.max": "254:0 rbps=1048576 wbps=2097152\n8:16 riops=100"}


def test_io_errors():
    with pytest.raises(UsageError, match="bad format"):
        parse(device_read_bps=["1mb"])
    with pytest.raises(UsageError, match="bad format for device path"):
        parse(device_read_bps=["vda:1mb"])
    with pytest.raises(UsageError, match="invalid rate for device"):
        parse(device_read_iops=["/dev/vda:1mb"])


def test_blkio_weight():
    assert files(blkio_weight=10) == {"io.weight": "default 1"}
    assert files(blkio_weight=1000) == {"io.weight": "default 10000"}
    assert files(blkio_weight=500) == {"io.weight": "default 4950"}
    with pytest.raises(UsageError, match="Range of blkio weight"):
        parse(blkio_weight=5)


def test_real_block_device_numbers():
    import os
    import stat
    disks = [os.path.join("/dev", d) for d in sorted(os.listdir("/dev"))
             if d.startswith(("vd", "sd", "nvme", "xvd"))]
    disks = [d for d in disks if stat.S_ISBLK(os.stat(d).st_mode)]
    if not disks:
        pytest.skip("no disk device in /dev")
    number = cgroups.block_device_number(disks[-1])
    major, minor = number.split(":")
    assert major.isdigit() and minor.isdigit()
    # A partition resolves to its whole disk (io.max refuses partitions).
    assert not os.path.exists("/sys/dev/block/%s/partition" % number)
    with pytest.raises(UsageError, match="not a block device"):
        cgroups.block_device_number("/dev/null")


# --- the Limits object --------------------------------------------------------------

def test_empty_limits():
    limits = parse()
    assert not limits
    assert limits.flags() == []
    assert cgroups.to_files(limits) == {}
    assert limits.controllers() == set()


def test_flags_and_controllers():
    limits = parse(memory="32m", cpus="0.5", pids_limit=20, device_read_bps=["/dev/vda:1m"])
    assert limits.flags() == ["--memory", "--cpus", "--pids-limit", "--device-read-bps"]
    assert limits.controllers() == {"memory", "cpu", "pids", "io"}


def test_limits_from_args():
    import argparse
    args = argparse.Namespace(memory="32m", cpus=None, pids_limit="20", device_read_bps=None)
    limits = cgroups.limits_from_args(args, ncpu=2)
    assert cgroups.to_files(limits)["memory.max"] == "33554432"
    assert limits.pids_limit == 20


def test_host_config_round_trip():
    limits = parse(memory="32m", memory_swap="-1", cpus="0.5", cpu_shares=512,
                   cpuset_cpus="0-1", pids_limit=20, blkio_weight=300)
    hc = limits.host_config()
    assert hc["Memory"] == 33554432 and hc["MemorySwap"] == -1
    assert hc["NanoCpus"] == 500000000 and hc["PidsLimit"] == 20
    json.dumps(hc)
    assert cgroups.Limits.from_host_config(hc) == limits


def test_update_leaves_swap_alone():
    limits = parse(memory="64m")
    assert "memory.swap.max" not in cgroups.to_files(limits, defaults=False)


# --- mode and decisions ----------------------------------------------------------

def test_cgroups_mode(tmp_path):
    assert cgroups.cgroups_mode("required", config_path=str(tmp_path / "none.json")) == "required"
    assert cgroups.cgroups_mode(None, config_path=str(tmp_path / "none.json")) == "enabled"
    config = tmp_path / "config.json"
    config.write_text('{"cgroups": "required"}')
    assert cgroups.cgroups_mode(None, config_path=str(config)) == "required"
    assert cgroups.cgroups_mode("enabled", config_path=str(config)) == "enabled"
    with pytest.raises(UsageError, match="invalid --cgroups value"):
        cgroups.cgroups_mode("sometimes")


UNAVAILABLE = cgroups.CgroupInfo("hybrid", None, reason_unavailable="the cgroup layout is hybrid",
                                 hint="boot with cgroup v2")
DELEGATED = cgroups.CgroupInfo("v2", "systemd", ("cpu", "memory", "pids"), "/x")


def test_decide_without_cgroups(capsys):
    limits = parse(memory="32m")
    assert cgroups.decide(parse(), "enabled", UNAVAILABLE) is False
    assert capsys.readouterr().err == ""
    assert cgroups.decide(limits, "enabled", UNAVAILABLE) is False
    err = capsys.readouterr().err
    assert "WARNING: resource limits are not available here: the cgroup layout is hybrid; " \
           "--memory is ignored" in err
    assert "hint: boot with cgroup v2" in err
    with pytest.raises(cgroups.CgroupsUnavailable) as e:
        cgroups.decide(parse(), "required", UNAVAILABLE)
    assert e.value.exit_code == 125 and "hybrid" in e.value.message
    with pytest.raises(UsageError, match="--cgroups=disabled conflicts with --memory"):
        cgroups.decide(limits, "disabled", UNAVAILABLE)


def test_decide_with_delegation():
    assert cgroups.decide(parse(memory="32m", cpus="1"), "required", DELEGATED) is True
    ok, reason, hint = cgroups.availability(parse(cpuset_cpus="0"), DELEGATED)
    assert not ok and "cpuset controller is not delegated" in reason
    assert "Delegate=cpu cpuset io memory pids" in hint


def test_probe_and_availability_on_this_host():
    """Whatever the host (hybrid and no systemd on CI), probing answers
    without raising, and an unavailable answer says why and how to fix it."""
    info = cgroups.probe()
    assert info.version in ("v2", "hybrid", "v1", "none")
    ok, reason, hint = cgroups.availability(parse(memory="32m"))
    if info.manager is None:
        assert not ok and reason and hint
    if info.version == "hybrid":
        assert reason.startswith("the cgroup layout is hybrid")
        assert "systemd.unified_cgroup_hierarchy=1" in hint


def test_create_without_delegation_raises_clearly():
    with pytest.raises(cgroups.CgroupsUnavailable) as e:
        cgroups.create("0" * 64, 1, parse(memory="32m"), info=UNAVAILABLE)
    assert e.value.exit_code == 125 and e.value.hint


def test_default_pids_limit(tmp_path):
    with_pids = cgroups.CgroupInfo("v2", "systemd", ("cpu", "memory", "pids"))
    without = cgroups.CgroupInfo("v2", "systemd", ("cpu", "memory"))
    none = tmp_path / "none.json"
    asked = cgroups.parse_limits(memory="32m")
    got = cgroups.with_default_pids_limit(asked, with_pids, none)
    assert got.pids_limit == 2048 and got.memory == 32 << 20
    assert got.host_config()["PidsLimit"] == 2048
    # the flag wins; no pids controller, no default
    given = cgroups.parse_limits(pids_limit="30")
    assert cgroups.with_default_pids_limit(given, with_pids, none) is given
    assert cgroups.with_default_pids_limit(asked, without, none) is asked
    config = tmp_path / "config.json"
    config.write_text('{"pids_limit": 0}')
    assert cgroups.with_default_pids_limit(asked, with_pids, config) is asked
    config.write_text('{"pids_limit": 100}')
    assert cgroups.with_default_pids_limit(asked, with_pids, config).pids_limit == 100
    config.write_text('{"pids_limit": true}')
    with pytest.raises(UsageError, match="pids_limit"):
        cgroups.with_default_pids_limit(asked, with_pids, config)
