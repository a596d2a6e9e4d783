"""`stats` and `update`: a running container's cgroup (or, without one,
its processes in /proc) read, and its cgroup changed."""

import json
import os
import sys
import time

from ..errors import SandboxError, UsageError


def register(sub):
    p = sub.add_parser("stats", help="live resource usage of containers")
    p.add_argument("--no-stream", action="store_true", help="print once")
    p.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    p.add_argument("--format", help="a Go template, 'table TEMPLATE' or json")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("update", help="change the resource limits of containers")
    from .run import add_limit_flags
    add_limit_flags(p)
    p.add_argument("--restart", metavar="POLICY", help="a new restart policy")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_update)


def _percent(part, whole):
    return 100.0 * part / whole if whole else 0.0


class _ProcSample:
    """What `stats` shows, summed over a container's processes from /proc,
    for a container without a cgroup of its own (a host without cgroup v2
    delegation): CPU time, memory (PSS, so shared pages count once), bytes
    read from and written to storage, tasks (threads, as pids.current
    counts them)."""

    def __init__(self, pid):
        from ..pids import stat_fields
        from .containers import container_pids
        ticks = os.sysconf("SC_CLK_TCK")
        self.cpu = 0.0
        self.memory = self.read = self.written = self.tasks = 0
        for p in container_pids(pid):
            fields = stat_fields(p)
            if not fields or len(fields) < 18:
                continue
            self.cpu += (int(fields[11]) + int(fields[12])) / ticks   # utime, stime
            self.tasks += int(fields[17])                              # num_threads
            self.memory += _fields("/proc/%d/smaps_rollup" % p).get(b"Pss:", 0) * 1024
            io = _fields("/proc/%d/io" % p)
            self.read += io.get(b"read_bytes:", 0)
            self.written += io.get(b"write_bytes:", 0)


def _fields(path):
    """"name: number" lines (/proc/PID/io, smaps_rollup) as a dict; empty
    when the file cannot be read (the process is gone)."""
    out = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    out[parts[0]] = int(parts[1])
    except OSError:
        pass
    return out


def _net_io(pid):
    """(received, sent) bytes of the container's interfaces but lo, from
    its network namespace; (0, 0) for --network host, whose traffic is the
    host's (Docker shows none either)."""
    try:
        if os.stat("/proc/%d/ns/net" % pid).st_ino == os.stat("/proc/self/ns/net").st_ino:
            return 0, 0
        with open("/proc/%d/net/dev" % pid, "rb") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return 0, 0
    rx = tx = 0
    for line in lines:
        name, _, counters = line.partition(b":")
        values = counters.split()
        if name.strip() != b"lo" and len(values) >= 9:
            rx += int(values[0])
            tx += int(values[8])
    return rx, tx


def _rows(paths, cids, interval):
    """Docker's stats fields, with CPU % measured over ``interval``: from
    the container's cgroup, else from /proc (_ProcSample)."""
    from .. import cgroups
    from ..container import state
    from ..formatting import human_binary_size, human_size
    first = {}
    records = {}
    for cid in cids:
        st = state.refresh(paths, cid)
        records[cid] = st
        if not state.is_running(st) or not st.get("Pid"):
            continue
        try:
            first[cid] = (cgroups.Cgroup.from_dict(st["Cgroup"]).stats()
                          if st.get("Cgroup") else _ProcSample(st["Pid"]))
        except OSError:
            pass
    t0 = time.monotonic()
    time.sleep(interval)
    elapsed = time.monotonic() - t0
    rows = []
    for cid in cids:
        st = records[cid]
        row = {"Container": cid[:12], "ID": cid[:12], "Name": st.get("Name", ""),
               "CPUPerc": "--", "MemUsage": "-- / --", "MemPerc": "--",
               "NetIO": "-- / --", "BlockIO": "-- / --", "PIDs": "--"}
        rows.append(row)
        if cid not in first:
            continue
        try:
            if isinstance(first[cid], _ProcSample):
                now = _ProcSample(st["Pid"])
                used = now.cpu - first[cid].cpu
                mem, limit = now.memory, host_memory()
                io, tasks = (now.read, now.written), now.tasks
            else:
                now = cgroups.Cgroup.from_dict(st["Cgroup"]).stats()
                used = (now.cpu_usage_usec - first[cid].cpu_usage_usec) / 1e6
                mem = (now.memory_current or 0) - (now.memory_inactive_file or 0)
                limit = now.memory_max or host_memory()
                io, tasks = (now.io_read_bytes, now.io_write_bytes), now.pids_current
        except OSError:
            continue
        row["CPUPerc"] = "%.2f%%" % _percent(max(used, 0.0), elapsed)
        row["MemUsage"] = "%s / %s" % (human_binary_size(mem), human_binary_size(limit))
        row["MemPerc"] = "%.2f%%" % _percent(mem, limit)
        row["NetIO"] = "%s / %s" % tuple(human_size(n) for n in _net_io(st["Pid"]))
        row["BlockIO"] = "%s / %s" % (human_size(io[0]), human_size(io[1]))
        row["PIDs"] = str(tasks or 0)
    return rows


def host_memory():
    """The host's MemTotal in bytes (the first line of /proc/meminfo), or 0."""
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def cmd_stats(args, paths):
    from ..container import state
    from .containers import _configured_format
    args.format = _configured_format(args, "statsFormat")
    if args.containers:
        cids = [state.resolve(paths, c) for c in args.containers]
    else:
        records = {c: state.refresh(paths, c, damaged_ok=True) for c in state.list_ids(paths)}
        cids = [c for c, st in records.items()
                if not st.get("Damaged") and (args.all or state.is_running(st))]
    from ..formatting import tabulate
    columns = [("CONTAINER ID", "Container"), ("NAME", "Name"), ("CPU %", "CPUPerc"),
               ("MEM USAGE / LIMIT", "MemUsage"), ("MEM %", "MemPerc"),
               ("NET I/O", "NetIO"), ("BLOCK I/O", "BlockIO"), ("PIDS", "PIDs")]
    while True:
        rows = _rows(paths, cids, 0.5)
        if args.no_trunc:
            for r, cid in zip(rows, cids):
                r["Container"] = r["ID"] = cid
        if args.format == "json":
            out = "\n".join(json.dumps(r) for r in rows)
        elif args.format and not args.format.startswith("table"):
            from ..gotemplate import render
            out = "\n".join(render(args.format, r) for r in rows)
        else:
            out = tabulate([[c for c, _ in columns]] + [[r[k] for _, k in columns]
                                                         for r in rows])
        if args.no_stream:
            print(out)
            return 0
        sys.stdout.write("\x1b[2J\x1b[H" + out + "\n")
        sys.stdout.flush()


def cmd_update(args, paths):
    from .. import cgroups
    from ..container import state
    from .lifecycle import container_cgroup, each
    from .run import parse_restart
    limits = cgroups.limits_from_args(args)
    restart = parse_restart(args.restart) if args.restart else None
    if not limits and restart is None:
        raise UsageError("you must provide one or more flags when using this command")

    def action(ref):
        cid = state.resolve(paths, ref)
        st = state.refresh(paths, cid)
        changes = {}
        if limits:
            hc = dict(st.get("HostConfigLimits") or {})
            hc.update({k: v for k, v in limits.host_config().items() if v})
            if state.is_running(st):
                container_cgroup(paths, cid, st, "update").update(limits)
            changes["HostConfigLimits"] = hc
        if restart is not None:
            if st.get("AutoRemove") and restart["Name"] != "no":
                raise SandboxError("cannot update the restart policy of a container "
                                   "made with --rm", exit_code=1)
            changes["RestartPolicy"] = restart
        state.update_state(paths, cid, **changes)
        return ref
    return each(args, action)
