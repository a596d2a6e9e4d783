"""helpers/cgroups.py against a real cgroup v2 host with a systemd user
manager: the qemu guest of scripts/vm-run, where this runs as the
unprivileged test user in its linger session (scripts/test's vm phase:
`scripts/vm-run -- /opt/sandbox/venv/bin/python -m pytest -m vm
tests/integration`).  Outside the guest these tests are skipped; the host's
side (hybrid layout: a warning, or exit 125 when required) is in
tests/unit/test_cgroups.py.

No sandbox container yet: a plain process stands in for sandbox's process
that forks the container's init (create() puts it in the reaper's leaf),
and then, moved into the container's leaf, for the container's init.
"""

import os
import subprocess
import sys
import time
import uuid

import pytest

from helpers import cgroups

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(os.environ.get("SANDBOX_IN_VM") != "1",
                       reason="runs inside the qemu guest (scripts/vm-run; scripts/test's vm phase)"),
]


def new_id():
    return uuid.uuid4().hex + uuid.uuid4().hex


@pytest.fixture
def spawn():
    """spawn(argv, **popen_kw) -> Popen; every process is killed at the end."""
    procs = []

    def start(argv, **kw):
        p = subprocess.Popen(argv, **kw)
        procs.append(p)
        return p
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.fixture
def cgroup_of():
    """cgroup_of(pid, limits) -> Cgroup with ``pid`` in the container's
    leaf (as the container's init moves itself there), removed at the end."""
    made = []

    def create(pid, limits=None):
        cg = cgroups.create(new_id(), pid, limits)
        made.append(cg)
        cg.add_process(pid)
        return cg
    yield create
    for cg in made:
        cg.remove()


def test_guest_has_delegation():
    info = cgroups.probe()
    assert info.version == "v2"
    assert info.manager == "systemd", info
    assert {"cpu", "cpuset", "io", "memory", "pids"} <= set(info.controllers)
    assert cgroups.availability(cgroups.parse_limits(memory="32m", cpuset_cpus="0")) == \
        (True, None, None)


def test_limits_land_in_a_delegated_scope(spawn, cgroup_of):
    sleeper = spawn(["sleep", "300"])
    limits = cgroups.parse_limits(memory="32m", cpus="0.5", pids_limit=20)
    cg = cgroup_of(sleeper.pid, limits)

    assert cg.read("memory.max").strip() == "33554432"
    assert cg.read("cpu.max").strip() == "50000 100000"
    assert cg.read("pids.max").strip() == "20"
    assert cg.pids() == [sleeper.pid]
    # The process sits in the container leaf of its own .scope under the
    # user's systemd manager; the scope's other leaf, for the reaper, is
    # empty now and has no limits.
    path = cgroups.own_cgroup(sleeper.pid)
    assert path.endswith("/%s/container" % cg.unit) and cg.unit.endswith(".scope")
    assert "/user@%d.service/" % os.getuid() in path
    assert cg.path == "/sys/fs/cgroup" + path
    assert cg.outer == os.path.dirname(cg.path)
    reaper = os.path.join(cg.outer, "reaper")
    assert open(os.path.join(reaper, "cgroup.procs")).read() == ""
    assert open(os.path.join(reaper, "memory.max")).read().strip() == "max"
    assert open(os.path.join(cg.outer, "memory.max")).read().strip() == "max"
    # Delegated: the container may make sub-cgroups and give them controllers
    # (once no process sits in the scope itself: cgroup v2's leaf rule).
    leaf = os.path.join(cg.path, "init")
    os.mkdir(leaf)
    with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
        f.write(str(sleeper.pid))
    with open(os.path.join(cg.path, "cgroup.subtree_control"), "w") as f:
        f.write("+memory +pids")
    with open(os.path.join(leaf, "pids.max"), "w") as f:
        f.write("5")
    assert cgroups.own_cgroup(sleeper.pid) == path + "/init"

    cg.remove()
    assert not os.path.exists(cg.outer)
    assert sleeper.wait(timeout=10) != 0     # systemd killed what was left


def test_all_limits_and_update(spawn, cgroup_of):
    sleeper = spawn(["sleep", "300"])
    disk = "/dev/vda"
    limits = cgroups.parse_limits(memory="64m", memory_swap="96m", memory_reservation="16m",
                                  cpu_shares=512, cpuset_cpus="0", pids_limit=-1,
                                  blkio_weight=500,
                                  device_read_bps=[disk + ":1mb"],
                                  device_write_iops=[disk + ":100"])
    cg = cgroup_of(sleeper.pid, limits)
    for name, value in cgroups.to_files(limits).items():
        if name == "io.weight" and not os.path.exists(os.path.join(cg.path, name)):
            continue       # needs the io cost controller / BFQ
        if name != "io.max":
            assert cg.read(name).strip() == value, name
    # The kernel lists every key of a device it limits.
    assert cg.read("io.max").strip() == "254:0 rbps=1048576 wbps=max riops=max wiops=100"

    cg.update(cgroups.parse_limits(memory="48m", pids_limit=7))
    assert cg.read("memory.max").strip() == str(48 * 2**20)
    assert cg.read("pids.max").strip() == "7"
    assert cg.read("memory.swap.max").strip() == str(32 * 2**20)     # untouched


def test_pids_limit_stops_a_fork_bomb(spawn, cgroup_of):
    shell = spawn(["sh", "-c", "read go; for i in $(seq 40); do sleep 30 & done; wait"],
                  stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cg = cgroup_of(shell.pid, cgroups.parse_limits(pids_limit=10))
    shell.stdin.write("go\n")
    shell.stdin.close()
    deadline = time.monotonic() + 30
    while "fork" not in (err := shell.stderr.readline()) and time.monotonic() < deadline:
        assert err, "the shell ended without a fork failure"
    assert int(cg.read("pids.current")) <= 10
    assert cgroups.Cgroup.stats(cg).pids_max == 10


def test_freeze_stops_a_counter(tmp_path, spawn, cgroup_of):
    counter = tmp_path / "counter"
    code = ("import time, sys\ni = 0\nwhile True:\n    i += 1\n"
            "    open(sys.argv[1], 'w').write(str(i))\n    time.sleep(0.02)\n")
    p = spawn([sys.executable, "-c", code, str(counter)])
    cg = cgroup_of(p.pid)

    def value():
        return int(counter.read_text() or 0)
    deadline = time.monotonic() + 30
    while not counter.exists() or value() < 3:
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    cg.freeze()
    assert cg.frozen()
    frozen_at = value()
    time.sleep(1)
    assert value() == frozen_at
    cg.thaw()
    assert not cg.frozen()
    deadline = time.monotonic() + 30
    while value() <= frozen_at + 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_memory_hog_is_oom_killed(spawn, cgroup_of):
    # The shell outlives its hog, so the scope (and memory.events) stays.
    hog = "b = b'x' * (256 << 20)"
    shell = spawn(["sh", "-c", 'read go; %s -c "%s"; echo "hog: $?"; sleep 300'
                   % (sys.executable, hog)],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    cg = cgroup_of(shell.pid, cgroups.parse_limits(memory="32m", memory_swap="32m"))
    fd = cg.open_events()
    try:
        assert not cg.oom_killed() and not cg.oom_killed(fd)
        shell.stdin.write("go\n")
        shell.stdin.flush()
        assert shell.stdout.readline().strip() == "hog: 137"    # SIGKILL
        assert cg.oom_killed()
        assert cg.oom_killed(fd)
        assert cg.stats().oom_kill >= 1
    finally:
        os.close(fd)


def test_stats(spawn, cgroup_of):
    # Memory is charged where it is allocated (moving a process moves no
    # charge): the process allocates and spins once it is in the scope.
    code = ("import sys, time\nsys.stdin.readline()\nb = b'x' * (8 << 20)\n"
            "t = time.time() + 1\nwhile time.time() < t: pass\nprint('done', flush=True)\n"
            "time.sleep(300)\n")
    busy = spawn([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 text=True)
    cg = cgroup_of(busy.pid, cgroups.parse_limits(memory="64m", pids_limit=20))
    busy.stdin.write("go\n")
    busy.stdin.flush()
    assert busy.stdout.readline() == "done\n"
    st = cg.stats()
    assert st.cpu_usage_usec > 100000
    assert 8 * 2**20 < st.memory_current < 64 * 2**20
    assert st.memory_max == 64 * 2**20
    assert st.pids_current == 1 and st.pids_max == 20
    assert st.oom_kill == 0


def test_half_a_cpu_holds_a_busy_loop(spawn, cgroup_of):
    busy = spawn([sys.executable, "-c", "while True: pass"])
    cg = cgroup_of(busy.pid, cgroups.parse_limits(cpus="0.5"))
    start = cg.stats().cpu_usage_usec
    t0 = time.monotonic()
    time.sleep(3)
    used = (cg.stats().cpu_usage_usec - start) / 1e6 / (time.monotonic() - t0)
    assert 0.3 < used < 0.6, used
