"""`stats` and `update`: a running container's cgroup, read and changed."""

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


def _rows(paths, cids, interval):
    """Docker's stats fields, with CPU % measured over ``interval``."""
    from .. import cgroups
    from ..container import state
    from ..formatting import human_binary_size, human_size
    first = {}
    records = {}
    for cid in cids:
        st = state.refresh(paths, cid)
        records[cid] = st
        if st.get("Cgroup") and state.is_running(st):
            try:
                first[cid] = cgroups.Cgroup.from_dict(st["Cgroup"]).stats()
            except OSError:
                pass
    t0 = time.monotonic()
    time.sleep(interval)
    elapsed = time.monotonic() - t0
    ncpu = os.cpu_count() or 1
    rows = []
    for cid in cids:
        st = records[cid]
        row = {"Container": cid[:12], "ID": cid[:12], "Name": st.get("Name", ""),
               "CPUPerc": "--", "MemUsage": "-- / --", "MemPerc": "--",
               "NetIO": "-- / --", "BlockIO": "-- / --", "PIDs": "--"}
        if cid in first:
            try:
                now = cgroups.Cgroup.from_dict(st["Cgroup"]).stats()
            except OSError:
                now = None
            if now is not None:
                used = (now.cpu_usage_usec - first[cid].cpu_usage_usec) / 1e6
                row["CPUPerc"] = "%.2f%%" % _percent(used, elapsed)
                mem = (now.memory_current or 0) - (now.memory_inactive_file or 0)
                limit = now.memory_max or _host_memory()
                row["MemUsage"] = "%s / %s" % (human_binary_size(mem), human_binary_size(limit))
                row["MemPerc"] = "%.2f%%" % _percent(mem, limit)
                row["BlockIO"] = "%s / %s" % (human_size(now.io_read_bytes),
                                              human_size(now.io_write_bytes))
                row["PIDs"] = str(now.pids_current or 0)
        rows.append(row)
    del ncpu
    return rows


def _host_memory():
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def cmd_stats(args, paths):
    from ..container import state
    if args.containers:
        cids = [state.resolve(paths, c) for c in args.containers]
    else:
        records = {c: state.refresh(paths, c, damaged_ok=True) for c in state.list_ids(paths)}
        cids = [c for c, st in records.items()
                if not st.get("Damaged") and (args.all or state.is_running(st))]
    if cids and not any(state.read_state(paths, c).get("Cgroup") for c in cids):
        from .. import cgroups
        ok, reason, hint = cgroups.availability()
        sys.stderr.write("WARNING: no container here has a cgroup of its own%s: "
                         "CPU, memory and PIDs are not measured\n" % (
                             (" (" + reason + ")") if reason else ""))
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
