"""Resource limits through cgroup v2 (DESIGN.md section 1, "cgroup"; issue 6).

A container's limits live in a cgroup v2 directory that the unprivileged user
owns: a transient systemd scope ``sandbox-<id>.scope`` with ``Delegate=yes``
under the user's systemd manager (``user@UID.service``), or, without
systemd, a sub-cgroup of a cgroup v2 subtree already delegated to the user.
Hosts with neither (cgroup v1, the hybrid layout of our CI machines, no user
session) run containers without limits: one warning, or an error with
``--cgroups=required``.

How the container start path uses this module, in order::

    # 1. flags -> Limits, before any side effect (UsageError, exit 125)
    limits = cgroups.limits_from_args(args)          # or parse_limits(memory="32m", ...)
    mode = cgroups.cgroups_mode(args.cgroups)        # CLI, else config.json "cgroups"
    # 2. decide, still before any side effect: True = make a cgroup;
    #    False = run without one (a warning was printed if limits were asked);
    #    raises CgroupsUnavailable (exit 125) when mode is "required"
    use = cgroups.decide(limits, mode)
    # 3. once sandbox's process that will fork the container's init exists
    #    (its pid as the host sees it):
    cg = cgroups.create(container_id, pid, limits) if use else None   # pid -> reaper leaf
    # the container's init moves itself into cg.path (runtime._child_g)
    record["cgroup"] = cg.to_dict()          # {"path", "unit", "manager", "outer"}
    # later, from any sandbox process of the same user:
    cg = cgroups.Cgroup.from_dict(record["cgroup"])
    cg.freeze(); cg.thaw(); cg.stats(); cg.oom_killed(); cg.update(limits); cg.remove()
    # OOMKilled for inspect: the scope vanishes once its last process exits,
    # so the monitor polls fd = cg.open_events() (POLLPRI) while the
    # container runs and calls cg.oom_killed(fd) when it fires.

Pure parts (unit tested): ``parse_limits`` (Docker's units, ranges and
messages), ``to_files`` (the cgroup v2 files and values: ``--memory 32m`` ->
``memory.max`` 33554432, ``--cpus 0.5`` -> ``cpu.max`` "50000 100000",
``--cpu-shares`` -> ``cpu.weight`` by runc's formula), ``Limits.host_config``
(Docker's HostConfig fields, for inspect).

Why busctl and not jeepney: the scope must adopt a process that already
exists (the one that forks the container's init), which ``systemd-run --scope`` cannot do; the
D-Bus call ``StartTransientUnit`` with the ``PIDs`` property can.  ``busctl``
ships in the systemd package, i.e. wherever a systemd user manager exists,
so calling it through ``proc.run_checked`` costs one short process and no
dependency.  When the caller's process sits outside the user's delegated
subtree (a login session's scope is root-owned), the user manager itself
asks PID 1 to move the process (AttachProcessesToUnit), so this works from
an ordinary login shell.

Inside the cgroup create() makes (the scope, or ``sandbox-<id>`` in a
delegated subtree) are two leaves, as crun makes a "container" leaf in a
delegated scope: ``container`` holds the container's processes and carries
the limits (so a Cgroup's ``path`` is that leaf: stats, the freezer, exec),
and ``reaper`` holds sandbox's own process that waits for the container's
init.  That process (a Python process of ~9 MB until it becomes the native
reaper, and for a foreground container all along) is then neither charged
to the container's memory, counted in its pids.max, frozen by `pause`, nor
a candidate of the container's OOM killer, whose victim it would otherwise
be when the container's own processes are smaller: killing it ended the
whole container, with no OOMKilled recorded.  It keeps the scope (which
systemd removes with its last process) alive after the container's
processes are gone, so the container's memory.events can still be read.
The limits are written to the leaf's files only; systemd does not touch the
cgroups below a scope with Delegate=yes, so they are not reset when it
re-applies the unit's settings.
"""

import os
import time

from .errors import HostError, UsageError
from .record import REQUIRED, Record

CGROUP_ROOT = "/sys/fs/cgroup"
MIN_MEMORY = 6 * 1024 * 1024          # Docker's linuxMinMemory
DEFAULT_CPU_PERIOD = 100000           # the kernel's (and Docker's) CFS period, µs

DELEGATE_HINT = ("delegate the controllers to user managers: mkdir -p "
                 "/etc/systemd/system/user@.service.d && printf '[Service]\\n"
                 "Delegate=cpu cpuset io memory pids\\n' > "
                 "/etc/systemd/system/user@.service.d/delegate.conf && "
                 "systemctl daemon-reload (then log in again)")
V2_HINT = ("boot the host with cgroup v2 (the kernel command line "
           "systemd.unified_cgroup_hierarchy=1; the default since Debian 11 "
           "and Ubuntu 21.10) and run sandbox in a systemd login session "
           "(or: loginctl enable-linger USER)")
SESSION_HINT = ("run sandbox in a systemd login session (ssh or a desktop "
                "login; for services: loginctl enable-linger USER and "
                "XDG_RUNTIME_DIR=/run/user/UID), or give it a delegated "
                "cgroup v2 subtree")


class CgroupsUnavailable(HostError):
    """Limits were required (``--cgroups=required``) but this host cannot
    give the user a cgroup (exit 125)."""


# --- limits: parsing (Docker's semantics) -------------------------------------

# (argparse dest, Docker flag) for every limit flag, in Docker's order.
FLAGS = (
    ("memory", "--memory"), ("memory_swap", "--memory-swap"),
    ("memory_reservation", "--memory-reservation"), ("cpus", "--cpus"),
    ("cpu_shares", "--cpu-shares"), ("cpu_period", "--cpu-period"),
    ("cpu_quota", "--cpu-quota"), ("cpuset_cpus", "--cpuset-cpus"),
    ("pids_limit", "--pids-limit"), ("device_read_bps", "--device-read-bps"),
    ("device_write_bps", "--device-write-bps"),
    ("device_read_iops", "--device-read-iops"),
    ("device_write_iops", "--device-write-iops"), ("blkio_weight", "--blkio-weight"),
)
_IO_KEYS = {"device_read_bps": "rbps", "device_write_bps": "wbps",
            "device_read_iops": "riops", "device_write_iops": "wiops"}


class Throttle(Record):
    """One --device-{read,write}-{bps,iops} value."""
    FIELDS = (("path", REQUIRED),      # as given (HostConfig keeps it)
              ("device", REQUIRED),    # "MAJ:MIN" of the whole disk (io.max takes no partitions)
              ("rate", REQUIRED))      # int


class Limits(Record):
    """Validated limits; None (or ()) means "not set".  Sizes are bytes,
    times microseconds, as in Docker's HostConfig."""
    FIELDS = (("memory", None),
              ("memory_swap", None),             # memory + swap; -1 = unlimited
              ("memory_reservation", None),
              ("nano_cpus", None),               # --cpus * 1e9
              ("cpu_shares", None),
              ("cpu_period", None),
              ("cpu_quota", None),               # -1 = unlimited
              ("cpuset_cpus", None),             # str
              ("pids_limit", None),              # <= 0 = unlimited
              ("blkio_weight", None),
              ("device_read_bps", ()),           # tuples of Throttles
              ("device_write_bps", ()),
              ("device_read_iops", ()),
              ("device_write_iops", ()))

    def __bool__(self):
        return bool(self.flags())

    def flags(self):
        """The Docker flags that were set, e.g. ["--memory", "--cpus"]."""
        given = []
        for dest, flag in FLAGS:
            value = self.nano_cpus if dest == "cpus" else getattr(self, dest)
            if value not in (None, ()):
                given.append(flag)
        return given

    def controllers(self):
        """The cgroup v2 controllers these limits need."""
        need = set()
        for name in to_files(self):
            need.add(name.partition(".")[0])
        return need

    def host_config(self):
        """Docker's HostConfig resource fields (0 / "" / [] when not set)."""
        def throttles(items):
            return [{"Path": t.path, "Rate": t.rate} for t in items]
        return {
            "Memory": self.memory or 0,
            "MemorySwap": self.memory_swap or 0,
            "MemoryReservation": self.memory_reservation or 0,
            "NanoCpus": self.nano_cpus or 0,
            "CpuShares": self.cpu_shares or 0,
            "CpuPeriod": self.cpu_period or 0,
            "CpuQuota": self.cpu_quota or 0,
            "CpusetCpus": self.cpuset_cpus or "",
            "PidsLimit": self.pids_limit,
            "BlkioWeight": self.blkio_weight or 0,
            "BlkioDeviceReadBps": throttles(self.device_read_bps),
            "BlkioDeviceWriteBps": throttles(self.device_write_bps),
            "BlkioDeviceReadIOps": throttles(self.device_read_iops),
            "BlkioDeviceWriteIOps": throttles(self.device_write_iops),
        }

    @classmethod
    def from_host_config(cls, hc):
        """The inverse of host_config (device numbers are looked up again)."""
        def rates(key):
            return ["%s:%d" % (t["Path"], t["Rate"]) for t in hc.get(key) or ()]
        return parse_limits(
            memory=hc.get("Memory") or None, memory_swap=hc.get("MemorySwap") or None,
            memory_reservation=hc.get("MemoryReservation") or None,
            cpus=(hc["NanoCpus"] / 1e9) if hc.get("NanoCpus") else None,
            cpu_shares=hc.get("CpuShares") or None, cpu_period=hc.get("CpuPeriod") or None,
            cpu_quota=hc.get("CpuQuota") or None, cpuset_cpus=hc.get("CpusetCpus") or None,
            pids_limit=hc.get("PidsLimit"), blkio_weight=hc.get("BlkioWeight") or None,
            device_read_bps=rates("BlkioDeviceReadBps"),
            device_write_bps=rates("BlkioDeviceWriteBps"),
            device_read_iops=rates("BlkioDeviceReadIOps"),
            device_write_iops=rates("BlkioDeviceWriteIOps"), ncpu=10**6)


def ram_in_bytes(value):
    """Docker's RAMInBytes (go-units): "32m", "1.5g", "512", "10MiB";
    binary multiples; truncates to whole bytes."""
    if isinstance(value, int):
        return value
    # Imported here: only flag values are text (records hold ints), and re
    # would cost milliseconds to every run of a cgroup v2 host.
    import re
    m = re.match(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$", str(value).strip())
    if not m:
        raise ValueError("invalid size: '%s'" % value)
    power = " kmgtp".index(m.group(2).lower()) if m.group(2) else 0
    return int(float(m.group(1)) * 1024 ** power)


def _size(flag, value, allow_unlimited=False):
    if allow_unlimited and str(value).strip() == "-1":
        return -1
    try:
        return ram_in_bytes(value)
    except ValueError:
        raise UsageError("invalid argument \"%s\" for \"%s\" flag: invalid size: '%s'"
                         % (value, flag, value)) from None


def _int(flag, value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError("invalid argument \"%s\" for \"%s\" flag: strconv.ParseInt: "
                         "parsing \"%s\": invalid syntax" % (value, flag, value)) from None


def parse_cpuset(value, ncpu=None):
    """"0-2,4" -> [0, 1, 2, 4]; Docker's messages for bad or absent CPUs."""
    cpus = set()
    try:
        for part in str(value).split(","):
            lo, sep, hi = part.partition("-")
            lo = int(lo)
            hi = int(hi) if sep else lo
            if lo < 0 or hi < lo:
                raise ValueError
            cpus.update(range(lo, hi + 1))
    except ValueError:
        raise UsageError("Invalid value %s for cpuset cpus" % value) from None
    if ncpu is not None and max(cpus) >= ncpu:
        raise UsageError("Requested CPUs are not available - requested %s, available: 0-%d"
                         % (value, ncpu - 1))
    return sorted(cpus)


def block_device_number(path):
    """"/dev/vda1" -> "254:0": the whole disk of a block device (io.max
    refuses partitions)."""
    import stat as stat_mod
    try:
        st = os.stat(path)
    except OSError as e:
        raise UsageError("%s: %s" % (path, e.strerror)) from None
    if not stat_mod.S_ISBLK(st.st_mode):
        raise UsageError("%s is not a block device" % path)
    number = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    sysdir = "/sys/dev/block/" + number
    if os.path.exists(os.path.join(sysdir, "partition")):
        with open(os.path.join(sysdir, "..", "dev")) as f:
            number = f.read().strip()
    return number


def _throttles(flag, values, iops, resolve):
    out = []
    for item in values or ():
        path, sep, rate = str(item).rpartition(":")
        if not sep or not path:
            raise UsageError("bad format: %s" % item)
        if not path.startswith("/dev/"):
            raise UsageError("bad format for device path: %s" % path)
        try:
            number = int(rate) if iops else ram_in_bytes(rate)
            if number < 0:
                raise ValueError
        except ValueError:
            raise UsageError(
                "invalid rate for device: %s. The correct format is <device-path>:<number>%s. "
                "Number must be a positive integer.%s" % (
                    item, "" if iops else "[<unit>]",
                    "" if iops else " Unit is optional and can be kb, mb, or gb")) from None
        out.append(Throttle(path, resolve(path), number))
    return tuple(out)


def parse_limits(memory=None, memory_swap=None, memory_reservation=None, cpus=None,
                 cpu_shares=None, cpu_period=None, cpu_quota=None, cpuset_cpus=None,
                 pids_limit=None, device_read_bps=(), device_write_bps=(),
                 device_read_iops=(), device_write_iops=(), blkio_weight=None,
                 ncpu=None, resolve_device=block_device_number):
    """Flag values (strings as typed, or numbers) -> Limits, with Docker's
    checks and messages (UsageError, exit 125).  ``ncpu`` (default: this
    host's) bounds --cpus and --cpuset-cpus; ``resolve_device`` maps a
    device path to "MAJ:MIN"."""
    if ncpu is None:
        ncpu = os.cpu_count() or 1
    mem = _size("--memory", memory) if memory not in (None, "") else None
    swap = _size("--memory-swap", memory_swap, True) if memory_swap not in (None, "") else None
    reservation = (_size("--memory-reservation", memory_reservation)
                   if memory_reservation not in (None, "") else None)
    mem = mem or None
    if mem is not None and mem < MIN_MEMORY:
        raise UsageError("Minimum memory limit allowed is 6MB")
    if swap is not None and swap != 0:
        if mem is None:
            raise UsageError("You should always set the Memory limit when using "
                             "Memoryswap limit, see usage")
        if swap != -1 and swap < mem:
            raise UsageError("Minimum memoryswap limit should be larger than memory "
                             "limit, see usage")
    swap = swap or None
    reservation = reservation or None
    if reservation is not None:
        if reservation < MIN_MEMORY:
            raise UsageError("Minimum memory reservation allowed is 6MB")
        if mem is not None and mem < reservation:
            raise UsageError("Minimum memory limit can not be less than memory "
                             "reservation limit, see usage")

    nano = None
    if cpus not in (None, ""):
        try:
            nano = int(round(float(cpus) * 1e9))
        except ValueError:
            raise UsageError("invalid argument \"%s\" for \"--cpus\" flag: failed to parse "
                             "%s as a rational number" % (cpus, cpus)) from None
        nano = nano or None
    period = _int("--cpu-period", cpu_period) if cpu_period not in (None, "") else None
    quota = _int("--cpu-quota", cpu_quota) if cpu_quota not in (None, "") else None
    period = period or None
    quota = quota or None
    if nano is not None:
        if period is not None:
            raise UsageError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        if quota is not None:
            raise UsageError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        if nano < 10**7 or nano > ncpu * 10**9:
            raise UsageError("Range of CPUs is from 0.01 to %d.00, as there are only %d "
                             "CPUs available" % (ncpu, ncpu))
    if period is not None and not 1000 <= period <= 1000000:
        raise UsageError("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                         "than 1s (i.e. 1000000)")
    if quota is not None and quota != -1 and quota < 1000:
        raise UsageError("CPU cfs quota can not be less than 1ms (i.e. 1000)")

    shares = _int("--cpu-shares", cpu_shares) if cpu_shares not in (None, "") else None
    if shares:
        # Docker clamps to the kernel's range (with a warning on the daemon).
        shares = min(max(shares, 2), 262144)
    shares = shares or None

    cpuset = None
    if cpuset_cpus not in (None, ""):
        cpuset = ",".join(_ranges(parse_cpuset(cpuset_cpus, ncpu)))

    pids = _int("--pids-limit", pids_limit) if pids_limit not in (None, "") else None

    weight = _int("--blkio-weight", blkio_weight) if blkio_weight not in (None, "") else None
    if weight and not 10 <= weight <= 1000:
        raise UsageError("Range of blkio weight is from 10 to 1000")
    weight = weight or None

    io = {dest: _throttles("--" + dest.replace("_", "-"), values, dest.endswith("iops"),
                           resolve_device)
          for dest, values in (("device_read_bps", device_read_bps),
                               ("device_write_bps", device_write_bps),
                               ("device_read_iops", device_read_iops),
                               ("device_write_iops", device_write_iops))}
    return Limits(memory=mem, memory_swap=swap, memory_reservation=reservation,
                  nano_cpus=nano, cpu_shares=shares, cpu_period=period, cpu_quota=quota,
                  cpuset_cpus=cpuset, pids_limit=pids, blkio_weight=weight, **io)


def limits_from_args(args, **kw):
    """parse_limits from an argparse namespace whose dests are Docker's flag
    names (memory, memory_swap, cpus, ..., blkio_weight); missing ones are
    unset."""
    values = {dest: getattr(args, dest, None) for dest, _ in FLAGS}
    for dest in _IO_KEYS:
        values[dest] = values[dest] or ()
    return parse_limits(**values, **kw)


def _ranges(cpus):
    """[0, 1, 2, 4] -> ["0-2", "4"]."""
    out, start, prev = [], None, None
    for c in cpus + [None]:
        if start is not None and c == prev + 1:
            prev = c
            continue
        if start is not None:
            out.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = c
    return out


# --- limits -> cgroup v2 files (pure) ------------------------------------------

def cpu_shares_to_weight(shares):
    """runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] -> [1, 10000]."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight):
    """runc's ConvertBlkIOToIOWeightValue: [10, 1000] -> [1, 10000]."""
    return 1 + ((weight - 10) * 9999) // 990


def to_files(limits, defaults=True):
    """Limits -> {cgroup v2 file: value}, only for what is set.  io.max may
    hold several lines, one per device: write them one at a time.

    ``defaults``: Docker's implicit values for what was not given (with
    --memory and no --memory-swap, as much swap as memory); update() turns
    them off, so that updating one limit leaves the others alone."""
    files = {}
    if limits.memory is not None:
        files["memory.max"] = str(limits.memory)
        # --memory-swap is memory + swap (Docker); the kernel wants swap alone.
        if limits.memory_swap == -1:
            files["memory.swap.max"] = "max"
        elif limits.memory_swap is not None:
            files["memory.swap.max"] = str(limits.memory_swap - limits.memory)
        elif defaults:
            files["memory.swap.max"] = str(limits.memory)
    if limits.memory_reservation is not None:
        files["memory.low"] = str(limits.memory_reservation)
    if limits.nano_cpus is not None:
        files["cpu.max"] = "%d %d" % (limits.nano_cpus * DEFAULT_CPU_PERIOD // 10**9,
                                      DEFAULT_CPU_PERIOD)
    elif limits.cpu_quota is not None or limits.cpu_period is not None:
        quota = limits.cpu_quota
        files["cpu.max"] = "%s %d" % ("max" if quota in (None, -1) else quota,
                                      limits.cpu_period or DEFAULT_CPU_PERIOD)
    if limits.cpu_shares is not None:
        files["cpu.weight"] = str(cpu_shares_to_weight(limits.cpu_shares))
    if limits.cpuset_cpus is not None:
        files["cpuset.cpus"] = limits.cpuset_cpus
    if limits.pids_limit is not None:
        files["pids.max"] = str(limits.pids_limit) if limits.pids_limit > 0 else "max"
    if limits.blkio_weight is not None:
        files["io.weight"] = "default %d" % blkio_weight_to_io_weight(limits.blkio_weight)
    devices = {}
    for dest, key in _IO_KEYS.items():
        for t in getattr(limits, dest):
            devices.setdefault(t.device, {})[key] = t.rate
    if devices:
        files["io.max"] = "\n".join(
            dev + "".join(" %s=%d" % (k, v) for k, v in sorted(rates.items()))
            for dev, rates in devices.items())
    return files


# --- what this host offers ----------------------------------------------------

class CgroupInfo(Record):
    FIELDS = (("version", REQUIRED),       # "v2", "hybrid", "v1" or "none"
              ("manager", REQUIRED),       # "systemd", "delegated" or None
              ("controllers", ()),         # controllers a new cgroup can get
              ("parent", None),            # user@UID.service (systemd) or the delegated cgroup
              ("reason_unavailable", None),
              ("hint", None))


def _mounts():
    from .fsutil import read_text
    for line in read_text("/proc/self/mountinfo", "replace").splitlines():
        fields = line.split()
        sep = fields.index("-")
        yield fields[4], fields[sep + 1]          # mount point, fs type


def _read(path, default=None):
    from .fsutil import read_text
    try:
        return read_text(path)
    except OSError:
        if default is None:
            raise
        return default


def layout():
    """"v2" (unified), "hybrid" (v1 controllers + a v2 hierarchy), "v1" or
    "none", from /proc/self/mountinfo."""
    mounts = dict(_mounts())
    if mounts.get(CGROUP_ROOT) == "cgroup2":
        return "v2"
    if any(fstype == "cgroup" for fstype in mounts.values()):
        return "hybrid" if "cgroup2" in mounts.values() else "v1"
    return "none"


def own_cgroup(pid="self"):
    """The v2 cgroup of a process: "/user.slice/..." (the "0::" line)."""
    for line in _read("/proc/%s/cgroup" % pid).splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def probe():
    """What this host offers the current user: cheap (a few small reads, no
    process, no D-Bus call)."""
    version = layout()
    if version != "v2":
        if version == "hybrid":
            unified = [mp for mp, fs in _mounts() if fs == "cgroup2"]
            ctl = _read(os.path.join(unified[0], "cgroup.controllers"), "").split()
            reason = ("the cgroup layout is hybrid (resource controllers on cgroup v1; the "
                      "v2 hierarchy at %s has %s)" % (
                          unified[0], "only " + ", ".join(ctl) if ctl else "no controllers"))
        elif version == "v1":
            reason = "the host uses cgroup v1"
        else:
            reason = "no cgroup file system is mounted"
        return CgroupInfo(version, None, reason_unavailable=reason, hint=V2_HINT)

    uid = os.getuid()
    if uid == 0 and os.path.isdir("/run/systemd/system"):
        ctl = tuple(_read(os.path.join(CGROUP_ROOT, "cgroup.subtree_control"), "").split())
        return CgroupInfo(version, "systemd", ctl, CGROUP_ROOT)
    runtime = os.environ.get("XDG_RUNTIME_DIR") or "/run/user/%d" % uid
    user_service = os.path.join(CGROUP_ROOT, "user.slice", "user-%d.slice" % uid,
                                "user@%d.service" % uid)
    has_bus = os.path.exists(os.path.join(runtime, "bus"))
    if has_bus and os.path.isdir(user_service) and _busctl():
        ctl = tuple(_read(os.path.join(user_service, "cgroup.controllers"), "").split())
        return CgroupInfo(version, "systemd", ctl, user_service)

    own = own_cgroup()
    path = os.path.join(CGROUP_ROOT, (own or "/").lstrip("/"))
    if own not in (None, "/") and os.access(path, os.W_OK) and \
            os.access(os.path.join(path, "cgroup.procs"), os.W_OK) and \
            os.access(os.path.join(path, "cgroup.subtree_control"), os.W_OK):
        ctl = tuple(_read(os.path.join(path, "cgroup.controllers"), "").split())
        return CgroupInfo(version, "delegated", ctl, path)

    if not has_bus:
        why = "no systemd user session (no %s/bus)" % runtime
    elif not os.path.isdir(user_service):
        why = "no systemd user manager (%s is missing)" % user_service
    else:
        why = "busctl is missing"
    reason = "%s, and your cgroup %s is not delegated to you" % (why, own)
    return CgroupInfo(version, None, reason_unavailable=reason, hint=SESSION_HINT)


def _busctl():
    for d in ("/usr/bin", "/bin"):
        if os.access(os.path.join(d, "busctl"), os.X_OK):
            return os.path.join(d, "busctl")
    return None


def availability(limits=None, info=None):
    """(ok, reason, hint): can containers of this user get a cgroup with
    these limits?  reason and hint are None when ok."""
    info = info or probe()
    if info.manager is None:
        return False, info.reason_unavailable, info.hint
    missing = sorted((limits.controllers() if limits else set()) - set(info.controllers))
    if missing:
        return (False, "the %s controller%s %s not delegated to you (you have: %s)" % (
            ", ".join(missing), "s" if len(missing) > 1 else "",
            "are" if len(missing) > 1 else "is", ", ".join(info.controllers) or "none"),
            DELEGATE_HINT)
    return True, None, None


MODES = ("enabled", "disabled", "required")


def cgroups_mode(cli_value=None, config_path=None):
    """--cgroups=enabled|disabled|required, else "cgroups" in
    ~/.config/sandbox/config.json, else "enabled"."""
    value = cli_value
    if value is None:
        from .paths import user_config
        value = user_config(config_path).get("cgroups")
    value = value or "enabled"
    if value not in MODES:
        raise UsageError("invalid --cgroups value %r: one of %s" % (value, ", ".join(MODES)))
    return value


def decide(limits, mode="enabled", info=None):
    """Before any side effect: should the container get a cgroup?

    - "disabled": never (asking for limits too is a UsageError);
    - "required": yes, or CgroupsUnavailable (exit 125) with reason and fix;
    - "enabled": yes when available; otherwise no, with one warning when
      limits were asked ("--memory is ignored"), silently when not.
    """
    if mode == "disabled":
        if limits:
            raise UsageError("--cgroups=disabled conflicts with %s" % ", ".join(limits.flags()))
        return False
    ok, reason, hint = availability(limits, info)
    if ok:
        return True
    if mode == "required":
        raise CgroupsUnavailable("resource limits are required (--cgroups=required) but not "
                                 "available here: %s" % reason, hint=hint)
    if limits:
        from .errors import warn
        flags = limits.flags()
        warn("resource limits are not available here: %s; %s %s ignored" % (
            reason, ", ".join(flags), "is" if len(flags) == 1 else "are"),
            hint=hint, once_key="cgroups-unavailable")
    return False


# podman's default (containers.conf's pids_limit): a fork bomb in one
# container stops at its own pids.max, not at the user's whole session.
DEFAULT_PIDS_LIMIT = 2048


def with_default_pids_limit(limits, info=None, config_path=None):
    """``limits`` with the default process limit when --pids-limit was not
    given and the pids controller is there to hold it: ``"pids_limit"`` in
    ~/.config/sandbox/config.json (0 or less: none), else
    DEFAULT_PIDS_LIMIT.  For a container that gets a cgroup (decide())."""
    if limits.pids_limit is not None:
        return limits
    from .paths import user_config
    default = user_config(config_path).get("pids_limit", DEFAULT_PIDS_LIMIT)
    if isinstance(default, bool) or not isinstance(default, int):
        raise UsageError("config.json: \"pids_limit\" must be a whole number, not %r"
                         % (default,), hint="0 for no default limit")
    if default <= 0 or "pids" not in (info or probe()).controllers:
        return limits
    values = {name: getattr(limits, name) for name, _ in Limits.FIELDS}
    values["pids_limit"] = default
    return Limits(**values)


# --- one container's cgroup ----------------------------------------------------

class Stats(Record):
    FIELDS = (("cpu_usage_usec", REQUIRED),
              ("cpu_user_usec", REQUIRED),
              ("cpu_system_usec", REQUIRED),
              ("memory_current", REQUIRED),        # bytes, None without the memory controller
              ("memory_max", REQUIRED),            # None = no limit
              ("memory_inactive_file", REQUIRED),  # Docker subtracts it from usage
              ("pids_current", REQUIRED),
              ("pids_max", REQUIRED),
              ("io_read_bytes", REQUIRED),
              ("io_write_bytes", REQUIRED),
              ("oom_kill", REQUIRED))


class Cgroup:
    """A container's cgroup: ``path`` (under /sys/fs/cgroup; the leaf that
    holds the container's processes and its limits), ``unit`` (the systemd
    scope, or None), ``manager`` ("systemd" or "delegated") and ``outer``
    (what create() made: the scope or sandbox-<id>, holding ``path`` and the
    reaper's leaf; the same as ``path`` in records of older versions)."""

    def __init__(self, path, unit=None, manager="delegated", outer=None):
        self.path = path
        self.unit = unit
        self.manager = manager
        self.outer = outer or path

    def __repr__(self):
        return "Cgroup(%r, unit=%r, manager=%r, outer=%r)" % (
            self.path, self.unit, self.manager, self.outer)

    def to_dict(self):
        return {"path": self.path, "unit": self.unit, "manager": self.manager,
                "outer": self.outer}

    @classmethod
    def from_dict(cls, d):
        return cls(d["path"], d.get("unit"), d.get("manager", "delegated"), d.get("outer"))

    def exists(self):
        return os.path.isdir(self.path)

    def _file(self, name):
        return os.path.join(self.path, name)

    def read(self, name):
        with open(self._file(name)) as f:
            return f.read()

    def write(self, name, value):
        _write(self._file(name), value)

    def add_process(self, pid, timeout=10.0):
        """Move ``pid`` in (a process exec'd into the running container):
        directly when the user may write cgroup.procs of both ends' common
        ancestor, else by asking systemd (AttachProcessesToUnit), as
        create() does for a login session's process."""
        try:
            with open(self._file("cgroup.procs"), "w") as f:
                f.write(str(pid))
            return
        except OSError:
            if not self.unit:
                raise
        sub = self.path[len(self.outer):]             # "/container"
        _busctl_call("AttachProcessesToUnit", "ssau", self.unit, sub, "1", str(pid))
        deadline = time.monotonic() + timeout
        while not (own_cgroup(pid) or "").endswith("/" + self.unit + sub):
            if time.monotonic() > deadline:
                raise HostError("systemd did not move process %d into %s" % (pid, self.unit))
            time.sleep(0.002)

    def write_files(self, files):
        for name, value in files.items():
            # The kernel parses one device per write of io.max.
            for line in value.split("\n") if name == "io.max" else [value]:
                self.write(name, line)

    def pids(self):
        return [int(p) for p in self.read("cgroup.procs").split()]

    def _events(self, name):
        out = {}
        for line in _read(self._file(name), "").splitlines():
            key, _, value = line.partition(" ")
            out[key] = int(value)
        return out

    def _wait_frozen(self, want, timeout):
        deadline = time.monotonic() + timeout
        while self._events("cgroup.events").get("frozen") != want:
            if time.monotonic() > deadline:
                raise HostError("%s did not %s within %gs" % (
                    self.path, "freeze" if want else "thaw", timeout))
            time.sleep(0.005)

    def freeze(self, timeout=10.0):
        """Stop every process (cgroup.freeze), and wait until they are."""
        self.write("cgroup.freeze", "1")
        self._wait_frozen(1, timeout)

    def thaw(self, timeout=10.0):
        self.write("cgroup.freeze", "0")
        self._wait_frozen(0, timeout)

    def frozen(self):
        return self._events("cgroup.events").get("frozen") == 1

    def open_events(self):
        """An fd on memory.events, for a monitor's poll set: the kernel
        signals POLLPRI when it changes.  Needed because a systemd scope and
        its files vanish as soon as its last process has exited: read the
        OOM count when the fd fires, not after the container is reaped."""
        return os.open(self._file("memory.events"), os.O_RDONLY | os.O_CLOEXEC)

    def oom_killed(self, fd=None):
        """Did the kernel's OOM killer kill a process in here?  From
        memory.events (hierarchical: sub-cgroups count), or from ``fd``
        (open_events()) if given."""
        if fd is None:
            return self._events("memory.events").get("oom_kill", 0) > 0
        text = os.pread(fd, 4096, 0).decode()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value) > 0
        return False

    def stats(self):
        cpu = self._events("cpu.stat")
        mem = _read(self._file("memory.current"), "").strip()
        mem_max = _read(self._file("memory.max"), "").strip()
        memstat = self._events("memory.stat")
        pids = _read(self._file("pids.current"), "").strip()
        pids_max = _read(self._file("pids.max"), "").strip()
        rbytes = wbytes = 0
        for line in _read(self._file("io.stat"), "").splitlines():
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            rbytes += int(fields.get("rbytes", 0))
            wbytes += int(fields.get("wbytes", 0))

        def num(text):
            return int(text) if text and text != "max" else None
        return Stats(
            cpu_usage_usec=cpu.get("usage_usec", 0), cpu_user_usec=cpu.get("user_usec", 0),
            cpu_system_usec=cpu.get("system_usec", 0), memory_current=num(mem),
            memory_max=num(mem_max), memory_inactive_file=memstat.get("inactive_file"),
            pids_current=num(pids), pids_max=num(pids_max), io_read_bytes=rbytes,
            io_write_bytes=wbytes, oom_kill=self._events("memory.events").get("oom_kill", 0))

    def update(self, limits):
        """Change the limits that ``limits`` sets; leave the others."""
        self.write_files(to_files(limits, defaults=False))

    def remove(self):
        """Stop the scope (systemd kills what is left) or kill and remove the
        subtree; a cgroup already gone is fine."""
        if self.unit:
            try:
                _busctl_call("StopUnit", "ss", self.unit, "fail")
            except HostError as e:
                if "not loaded" not in str(e) and "NoSuchUnit" not in str(e):
                    raise
            _wait_gone(self.outer, 5.0)
        if os.path.isdir(self.outer):
            kill = os.path.join(self.outer, "cgroup.kill")
            if os.path.exists(kill):
                _write(kill, "1")
            _rmdir_tree(self.outer)


def _write(path, value):
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise HostError("cannot write %r to %s: %s" % (value, path, e.strerror),
                        hint=DELEGATE_HINT if e.errno in (2, 13) else None) from None


def _rmdir_tree(path, timeout=5.0):
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _rmdir_tree(entry.path, timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            # EBUSY while killed processes are still exiting.
            if e.errno != 16 or time.monotonic() > deadline:
                raise HostError("cannot remove cgroup %s: %s" % (path, e.strerror)) from None
            time.sleep(0.01)


def _wait_gone(path, timeout):
    deadline = time.monotonic() + timeout
    while os.path.isdir(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def _props_args(props):
    args = [str(len(props))]
    for name, sig, *values in props:
        args += [name, sig] + [str(v) for v in values]
    return args


def _bus_env():
    runtime = os.environ.get("XDG_RUNTIME_DIR") or "/run/user/%d" % os.getuid()
    env = {"XDG_RUNTIME_DIR": runtime}
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        env["DBUS_SESSION_BUS_ADDRESS"] = os.environ["DBUS_SESSION_BUS_ADDRESS"]
    return env


def _busctl_call(method, signature, *args):
    from .proc import run_checked
    scope = "--system" if os.getuid() == 0 else "--user"
    argv = [_busctl() or "busctl", scope, "call", "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
            method, signature, *args]
    return run_checked(argv, env=_bus_env(), timeout=30,
                       hint="is the systemd user manager running? (systemctl --user status)")


def create(container_id, pid, limits=None, info=None, timeout=10.0):
    """Make the container's cgroup with ``limits`` and put process ``pid``
    (sandbox's process that forks the container's init, as the host sees
    it) in its reaper leaf; the init then moves itself into the returned
    Cgroup's ``path`` (module docstring).  Raises CgroupsUnavailable when
    this host has no usable delegation (check decide() first), HostError
    when systemd or the kernel refuse."""
    limits = limits or Limits()
    info = info or probe()
    ok, reason, hint = availability(limits, info)
    if not ok:
        raise CgroupsUnavailable("resource limits are not available here: %s" % reason, hint=hint)
    if info.manager == "systemd":
        cg = _create_scope(container_id, pid, timeout)
    else:
        cg = _create_subtree(container_id, pid, info.parent)
    try:
        _split(cg, pid)
        cg.write_files(to_files(limits))
    except BaseException:
        cg.remove()
        raise
    return cg


def _create_scope(container_id, pid, timeout):
    unit = "sandbox-%s.scope" % container_id
    props = [("Description", "s", "sandbox container %s" % container_id),
             ("PIDs", "au", 1, pid),
             ("Delegate", "b", "true"),
             # Like Docker: the kernel kills one process, the container goes
             # on unless that was its init (systemd's default stops the unit).
             ("OOMPolicy", "s", "continue"),
             ("CollectMode", "s", "inactive-or-failed")]
    _busctl_call("StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "fail",
                 *_props_args(props), "0")
    # The job runs after the call returns: wait until the process is moved.
    deadline = time.monotonic() + timeout
    while True:
        try:
            path = own_cgroup(pid)
        except OSError:
            raise HostError("process %d ended before it was put in %s" % (pid, unit)) from None
        if path and path.endswith("/" + unit):
            return Cgroup(os.path.join(CGROUP_ROOT, path.lstrip("/")), unit, "systemd")
        if time.monotonic() > deadline:
            raise HostError("systemd did not move process %d into %s within %gs"
                            % (pid, unit, timeout),
                            hint="journalctl --user -u %s" % unit)
        time.sleep(0.002)


def _create_subtree(container_id, pid, parent):
    path = os.path.join(parent, "sandbox-%s" % container_id)
    try:
        os.mkdir(path)
    except OSError as e:
        raise HostError("cannot create cgroup %s: %s" % (path, e.strerror)) from None
    cg = Cgroup(path, None, "delegated")
    try:
        # Controllers for the new child; refused (EBUSY) while the parent
        # itself holds processes: cgroup v2's "no internal processes" rule.
        want = _missing_controllers(parent)
        if want:
            try:
                _enable_controllers(parent, want)
            except OSError as e:
                raise HostError(
                    "cannot enable controllers in %s: %s" % (parent, e.strerror),
                    hint="cgroup v2 gives controllers only to cgroups without processes "
                         "of their own: start sandbox from a leaf of the delegated subtree")
        cg.write("cgroup.procs", str(pid))
    except BaseException:
        cg.remove()
        raise
    return cg


CONTAINER_LEAF = "container"
REAPER_LEAF = "reaper"


def _split(cg, pid):
    """``cg`` (just made, holding ``pid`` alone) -> its two leaves: ``pid``
    into reaper/, the controllers handed down, container/ made; ``cg.path``
    becomes container/."""
    outer = cg.outer
    reaper = os.path.join(outer, REAPER_LEAF)
    container = os.path.join(outer, CONTAINER_LEAF)
    try:
        os.mkdir(reaper)
        _write(os.path.join(reaper, "cgroup.procs"), str(pid))
        want = _missing_controllers(outer)
        if want:
            _enable_controllers(outer, want)
        os.mkdir(container)
    except OSError as e:
        raise HostError("cannot make the leaves of cgroup %s: %s" % (outer, e.strerror),
                        hint=DELEGATE_HINT) from None
    cg.path = container


def _missing_controllers(path):
    """"+memory +pids ...": what ``path`` has and does not yet give its
    children."""
    given = _read(os.path.join(path, "cgroup.subtree_control"), "").split()
    return " ".join("+" + c for c in _read(os.path.join(path, "cgroup.controllers"), "").split()
                    if c not in given)


def _enable_controllers(parent, want):
    """Write ``want`` to parent's cgroup.subtree_control.  cgroup v2's "no
    internal processes" rule refuses it (EBUSY) while the parent holds
    processes itself, typically this very process, started in the root of a
    delegated scope: then its processes (ours) move to a leaf, "sandbox-leaf",
    as crun and podman do, and the write is tried again."""
    control = os.path.join(parent, "cgroup.subtree_control")
    try:
        with open(control, "w") as f:
            f.write(want)
        return
    except OSError as e:
        if e.errno != 16:                       # EBUSY
            raise
    leaf = os.path.join(parent, "sandbox-leaf")
    os.makedirs(leaf, exist_ok=True)
    for pid in _read(os.path.join(parent, "cgroup.procs"), "").split():
        try:
            with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
                f.write(pid)
        except ProcessLookupError:
            continue
    with open(control, "w") as f:
        f.write(want)


def open_cgroup(d):
    """Cgroup.from_dict, or None for a container that has no cgroup."""
    return Cgroup.from_dict(d) if d else None


__all__ = ["CgroupInfo", "Cgroup", "CgroupsUnavailable", "Limits", "Stats", "Throttle",
           "availability", "cgroups_mode", "create", "decide", "layout", "limits_from_args",
           "with_default_pids_limit",
           "open_cgroup", "parse_limits", "probe", "to_files"]
