"""Verbs that look at containers: ps, logs, inspect, top, container prune."""

import os
import sys
import time

from .. import jsonfast
from ..errors import NotFound, SandboxError, UsageError
from ..options import has_label
from ..formatting import (created_since, human_duration, parse_time, print_objects,
                          print_rows, tabulate)


def register(sub):
    p = sub.add_parser("ps", help="list containers")
    _ps_flags(p)
    p = sub.add_parser("logs", help="show a container's output")
    _logs_flags(p)
    p = sub.add_parser("inspect", help="low-level information as JSON")
    _inspect_flags(p)
    p = sub.add_parser("top", help="the processes of a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs="...", metavar="PS_OPTIONS")
    p.set_defaults(func=cmd_top)

    c = sub.add_parser("container", help="manage containers")
    csub = c.add_subparsers(dest="container_verb", metavar="COMMAND")
    _ps_flags(csub.add_parser("ls", aliases=["list", "ps"], help="list containers"))
    _logs_flags(csub.add_parser("logs", help="show a container's output"))
    _inspect_flags(csub.add_parser("inspect", help="low-level information"))
    p = csub.add_parser("prune", help="remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="do not ask")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="until=TIME, label=K[=V], label!=K[=V]")
    p.set_defaults(func=cmd_prune)


def _ps_flags(p):
    p.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate")
    p.add_argument("-n", "--last", type=int, default=-1, metavar="N",
                   help="the N last created containers (all states)")
    p.add_argument("-l", "--latest", action="store_true",
                   help="the last created container (all states)")
    p.add_argument("-f", "--filter", action="append", default=[],
                   metavar="KEY=VALUE", help="name=, id=, status=, label=, ancestor=, exited=, health=")
    p.add_argument("--format", help="a Go template, 'table TEMPLATE' or 'json'")
    p.add_argument("-s", "--size", action="store_true",
                   help="the SIZE column: what the container wrote (and, virtual, with its image)")
    p.set_defaults(func=cmd_ps)


def _logs_flags(p):
    p.add_argument("-f", "--follow", action="store_true", help="follow the output")
    p.add_argument("--tail", "-n", default="all", help="lines from the end")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--since", help="RFC 3339 time, Unix time, or a duration (10m)")
    p.add_argument("--until", help="RFC 3339 time, Unix time, or a duration (10m)")
    p.add_argument("--details", action="store_true",
                   help="each line after its attributes (--log-opt labels=, env=, ...)")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_logs)


def _inspect_flags(p):
    p.add_argument("-f", "--format", help="a Go template")
    p.add_argument("--type", choices=("container", "image", "volume", "network"))
    p.add_argument("-s", "--size", action="store_true",
                   help="a container's SizeRw and SizeRootFs")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=cmd_inspect)


# ---------------------------------------------------------------------------
# ps
# ---------------------------------------------------------------------------
def all_records(paths):
    from ..container import state
    out = []
    for cid in state.list_ids(paths):
        try:
            out.append(state.refresh(paths, cid, damaged_ok=True))
        except (SandboxError, ValueError):
            continue        # being removed right now
    out.sort(key=lambda st: st.get("Created") or "", reverse=True)
    return out


def status_text(st, now=None):
    """Docker's STATUS column."""
    now = now or time.time()
    status = st.get("Status")

    def ago(field):
        t = parse_time(st.get(field))
        return human_duration(max(0, now - t.timestamp())) if t else "?"
    if status == "running":
        return "Up " + ago("StartedAt")
    if status == "paused":
        return "Up %s (Paused)" % ago("StartedAt")
    if status == "restarting":
        return "Restarting (%d) %s ago" % (st.get("ExitCode", 0), ago("FinishedAt"))
    if status == "exited":
        return "Exited (%d) %s ago" % (st.get("ExitCode", 0), ago("FinishedAt"))
    return status.capitalize() if status else "Unknown"


def command_text(st, spec_args, trunc=True):
    text = '"%s"' % " ".join(spec_args)
    if trunc and len(text) > 22:
        text = text[:20] + '…"'
    return text


def _spec_args(paths, cid):
    try:
        with open(os.path.join(paths.container(cid), "config.json"), "rb") as f:
            return jsonfast.loads(f.read())["process"]["args"]
    except (OSError, ValueError, KeyError):
        return []


PS_FILTERS = ("name", "id", "status", "label", "ancestor", "exited", "health", "before",
              "since", "volume", "network", "publish", "expose", "is-task", "isolation")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def ps_filters(paths, filters):
    """`ps --filter K=V`... -> {key: [values]} (filters.group); before= and
    since= become the creation time of the container they name, publish=
    and expose= the ports they mean."""
    from ..filters import group

    def check(key, value):
        if key == "status" and value not in STATUSES:
            raise UsageError("invalid filter 'status=%s'" % value,
                             hint="status=" + "|".join(STATUSES))
        if key == "health" and value not in ("starting", "healthy", "unhealthy", "none"):
            raise UsageError("invalid filter 'health=%s'" % value,
                             hint="health=starting|healthy|unhealthy|none")
        if key in ("is-task", "isolation") and value not in (
                ("true", "false") if key == "is-task" else ("default",)):
            raise UsageError("invalid filter '%s=%s'" % (key, value))
        if key in ("before", "since"):
            from ..container import state
            return parse_time(state.read_state(paths, state.resolve(paths, value))
                              .get("Created"))
        if key in ("publish", "expose"):
            return _port_set(key, value)
        return value
    return group(filters, PS_FILTERS, check)


def _port_set(key, text):
    """"80", "80/udp", "8000-8010/tcp" -> {"80/tcp", ...}."""
    ports, _, proto = text.partition("/")
    first, dash, last = ports.partition("-")
    if not first.isdigit() or (dash and not last.isdigit()) or \
            proto not in ("", "tcp", "udp", "sctp"):
        raise UsageError("invalid filter '%s=%s'" % (key, text),
                         hint="%s=PORT[/PROTO] or START-END[/PROTO]" % key)
    return {"%d/%s" % (p, proto or "tcp")
            for p in range(int(first), int(last if dash else first) + 1)}


def matches(st, groups, image_ids=None, paths=None):
    from ..filters import matches as all_keys
    return all_keys(groups, lambda key, value: _matches(st, key, value, image_ids, paths))


def _matches(st, key, value, image_ids, paths):
    if key == "name":
        import re
        return bool(re.search(value, st.get("Name", "")))
    if key == "id":
        return st["Id"].startswith(value)
    if key == "status":
        return st.get("Status") == value
    if key == "label":
        return has_label(st.get("Labels") or {}, value)
    if key == "ancestor":
        return _ancestor_matches(st, value, image_ids)
    if key == "exited":
        return st.get("Status") == "exited" and str(st.get("ExitCode")) == value
    if key == "health":
        from ..container import health
        return health.status_of(paths, st) == value
    if key in ("before", "since"):
        created = parse_time(st.get("Created"))
        return created is not None and value is not None and (
            created < value if key == "before" else created > value)
    if key == "volume":
        return value in (st.get("Volumes") or []) or os.path.normpath(value) in [
            m.get("destination") for m in st.get("UserMounts") or []]
    if key == "network":
        return st.get("NetworkMode") == value or value in (st.get("Networks") or {})
    if key == "publish":
        return bool(value & set(st.get("PortBindings") or {}))
    if key == "expose":
        return bool(value & set(st.get("ExposedPorts") or []))
    return key == "isolation" or value == "false"        # is-task: never a task


def _ancestor_matches(st, value, image_ids):
    if st.get("ImageName") == value or st.get("Image", "").startswith(value) or \
            st.get("Image", "")[7:].startswith(value):
        return True
    return image_ids is not None and st.get("Image") in image_ids


def ports_text(st):
    """Docker's PORTS column: "0.0.0.0:8080->80/tcp, ..." while running."""
    if st.get("Status") not in ("running", "paused"):
        return ""
    out = []
    for key, items in sorted((st.get("Ports") or {}).items()):
        for item in items or []:
            host = item.get("HostIp") or "0.0.0.0"
            if ":" in host:
                host = "[%s]" % host
            out.append("%s:%s->%s" % (host, item.get("HostPort"), key))
    return ", ".join(out)


def ps_row(paths, st, no_trunc=False):
    """The fields Docker's ps templates know, as strings."""
    from ..formatting import Row
    args = _spec_args(paths, st["Id"])
    return Row({
        "ID": st["Id"] if no_trunc else st["Id"][:12],
        "Image": st.get("ImageName") or st.get("Image", "")[7:19],
        "Command": command_text(st, args, trunc=not no_trunc),
        "CreatedAt": st.get("Created", ""),
        "RunningFor": created_since(parse_time(st.get("Created"))).replace(" ago", "")
        if parse_time(st.get("Created")) else "",
        "Status": status_text(st) + _health_text(paths, st),
        "State": st.get("Status", ""),
        "Ports": ports_text(st),
        "Names": st.get("Name", ""),
        "Mounts": ",".join(st.get("Binds") or []),
        "Networks": ",".join(st.get("Networks") or {}) or st.get("NetworkMode", ""),
        "Size": "",
    }, st.get("Labels"))


def container_sizes(paths, records):
    """{id: (bytes the container wrote: its upper layer, the same plus its
    image's)}, as Docker's SizeRw and SizeRootFs; read as root of the user
    namespace (the upper layer holds files of subordinate ids)."""
    from ..image.store import Store
    written = _upper_sizes(paths, records)
    store = Store(paths)
    image_size = {}
    out = {}
    for st in records:
        image = st.get("Image")
        if image not in image_size:
            try:
                image_size[image] = store.size(image)
            except (SandboxError, ValueError):
                image_size[image] = 0
        rw = written[st["Id"]]
        out[st["Id"]] = (rw, rw + image_size[image])
    return out


def _upper_sizes(paths, records):
    """{id: bytes of its upper layer} (what each container wrote)."""
    from .system import sizes_by_name
    return sizes_by_name({st["Id"]: os.path.join(paths.container(st["Id"]), "upper")
                          for st in records})


def _health_text(paths, st):
    if not st.get("Healthcheck") or st.get("Status") != "running":
        return ""
    from ..container import health
    return health.ps_suffix(paths, st)


def _configured_format(args, key):
    """--format, else Docker's config.json setting ``key`` (not with -q,
    which wins, as in Docker)."""
    if args.format or getattr(args, "quiet", False):
        return args.format
    from ..paths import cli_setting
    return cli_setting(key)


def cmd_ps(args, paths):
    args.format = _configured_format(args, "psFormat")
    groups = ps_filters(paths, args.filter)     # bad filters refused, even with no container
    records = all_records(paths)
    image_ids = None
    if any(f.startswith("ancestor=") for f in args.filter):
        image_ids = _ancestor_ids(paths, [f[9:] for f in args.filter
                                          if f.startswith("ancestor=")])
    limit = 1 if args.latest else args.last
    if limit < 0 and not args.all:
        records = [st for st in records if st.get("Status") in
                   ("running", "paused", "restarting")]
    records = [st for st in records if matches(st, groups, image_ids, paths)]
    if limit >= 0:
        records = records[:limit]
    if args.quiet:
        for st in records:
            print(st["Id"] if args.no_trunc else st["Id"][:12])
        return 0
    rows = [ps_row(paths, st, args.no_trunc) for st in records]
    columns = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
               ("CREATED", "CreatedHuman"), ("STATUS", "Status"), ("PORTS", "Ports"),
               ("NAMES", "Names")]
    if args.size:
        from ..formatting import human_size
        sizes = container_sizes(paths, records)
        for row, st in zip(rows, records):
            rw, virtual = sizes[st["Id"]]
            row["Size"] = "%s (virtual %s)" % (human_size(rw), human_size(virtual))
        columns.append(("SIZE", "Size"))
    if print_rows(args.format, rows):
        return 0
    lines = [[c for c, _ in columns]]
    for r in rows:
        r["CreatedHuman"] = (r["RunningFor"] + " ago") if r["RunningFor"] else ""
        lines.append([r[k] for _, k in columns])
    print(tabulate(lines))
    return 0


def _ancestor_ids(paths, names):
    from ..image.store import Store
    store = Store(paths)
    ids = set()
    for n in names:
        try:
            ids.add(store.lookup(n))
        except SandboxError:
            continue
    return ids


# ---------------------------------------------------------------------------
# logs
# ---------------------------------------------------------------------------
def parse_when(value, now=None):
    """--since/--until: RFC 3339, Unix seconds, or a duration before now."""
    if value is None:
        return None
    now = now or time.time()
    v = value.strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if v and v[-1] in units and v[:-1].replace(".", "", 1).isdigit():
        return now - float(v[:-1]) * units[v[-1]]
    try:
        return float(v)
    except ValueError:
        pass
    t = parse_time(v if ("Z" in v or "+" in v[10:]) else v + "Z")
    if t is None:
        raise UsageError("invalid time %r" % value,
                         hint="RFC 3339 (2024-01-02T15:04:05Z), Unix seconds or 10m")
    return t.timestamp()


# ---------------------------------------------------------------------------
# prune --filter (container, image, network and system prune)
# ---------------------------------------------------------------------------
def prune_filters(filters):
    """Docker's prune filters, checked before anything goes: until=T
    (created before T: RFC 3339, Unix seconds or a duration such as 24h),
    label=K[=V] and label!=K[=V].  Returns a function (created, labels) ->
    whether to prune."""
    until, wanted, unwanted = [], [], []
    for f in filters or []:
        key, sep, value = f.partition("=")
        if key == "until" and sep:
            until.append(parse_when(value))
        elif key == "label" and sep:
            wanted.append(value)
        elif key == "label!" and sep:
            unwanted.append(value)
        else:
            raise UsageError("invalid filter %r" % f,
                             hint="prune filters: until=TIME, label=KEY[=VALUE], "
                                  "label!=KEY[=VALUE]")

    def keep_or_prune(created, labels):
        labels = labels or {}
        t = parse_time(created) if isinstance(created, str) else created
        if until and (t is None or any(t.timestamp() >= u for u in until)):
            return False
        return all(has_label(labels, w) for w in wanted) and \
            not any(has_label(labels, u) for u in unwanted)
    return keep_or_prune


def cmd_logs(args, paths):
    from ..container import state
    cid = state.resolve(paths, args.container)
    tail = None
    if args.tail != "all":
        try:
            tail = int(args.tail)
        except ValueError:
            raise UsageError("invalid --tail %r" % args.tail) from None
    return follow_logs(paths, cid, tail=tail, since=parse_when(args.since),
                       until=parse_when(args.until), timestamps=args.timestamps,
                       follow=args.follow, details=args.details)


def _entry(line):
    """One line of the json-file log.  Our writers never leave half a
    record, but a log written by an older version on a full disk (or
    damaged otherwise) may hold one that runs into the next record: the
    whole record that follows it is kept, what cannot be read is skipped."""
    try:
        return jsonfast.loads(line)
    except ValueError:
        pass
    at = line.find(b'{"log":', 1)
    while at > 0:
        try:
            return jsonfast.loads(line[at:])
        except ValueError:
            at = line.find(b'{"log":', at + 1)
    return None


def _details(entry):
    """Docker's --details prefix: the line's attrs as k=v,k=v (query-
    escaped, sorted by key) and a space; the space alone without any."""
    from urllib.parse import quote_plus
    attrs = entry.get("attrs") or {}
    return ",".join("%s=%s" % (quote_plus(k), quote_plus(str(v)))
                    for k, v in sorted(attrs.items())) + " "


def _emit(entry, timestamps, since, until, details=False):
    if entry is None:
        return
    t = None
    if since is not None or until is not None:
        parsed = parse_time(entry.get("time"))
        t = parsed.timestamp() if parsed else None
        if t is not None and ((since is not None and t < since) or
                              (until is not None and t > until)):
            return
    text = entry.get("log", "")
    if details:
        text = _details(entry) + text
    if timestamps:
        text = entry.get("time", "") + " " + text
    out = sys.stderr if entry.get("stream") == "stderr" else sys.stdout
    out.write(text)
    out.flush()


def _rotated_away(f, path):
    """Has the writer rotated the log we follow?  "moved" (a new file took
    its name: max-file 2 and more), "emptied" (max-file 1), or None."""
    try:
        live = os.stat(path)
    except FileNotFoundError:
        return None            # between the rename and the new file
    mine = os.fstat(f.fileno())
    if (live.st_ino, live.st_dev) != (mine.st_ino, mine.st_dev):
        return "moved"
    if mine.st_size < f.tell():
        return "emptied"
    return None


def follow_logs(paths, cid, tail, since, until, timestamps, follow,
                return_exit_code=False, details=False):
    """Print the log (its rotated files first, oldest first); with
    ``follow``, keep printing until the container has stopped and the log
    is drained, across rotations; ``details``: each line after its
    attributes (_details)."""
    from ..container import logconfig, monitor, state
    record = state.read_state(paths, cid)
    if logconfig.of(record)["Type"] == "none":
        raise SandboxError("configured logging driver does not support reading",
                           hint="the container runs with --log-driver none: "
                                "its output is not kept", exit_code=1)
    path = monitor.log_path(paths, cid)
    lines = []
    pending = b""
    for name in logconfig.files(path)[:-1]:
        try:
            with open(name, "rb") as old:
                lines += old.read().splitlines(keepends=True)
        except FileNotFoundError:
            continue
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        f = None
    try:
        if f is not None:
            lines += f.read().splitlines(keepends=True)
            if lines and not lines[-1].endswith(b"\n"):
                pending = lines.pop()
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        for line in lines:
            _emit(_entry(line), timestamps, since, until, details)
        if not follow:
            return 0
        delay = 0.02
        while True:
            if f is None:
                try:
                    f = open(path, "rb")
                    pending = b""
                except FileNotFoundError:
                    pass
            chunk = f.read() if f is not None else b""
            if chunk:
                data = pending + chunk
                lines = data.splitlines(keepends=True)
                pending = lines.pop() if not lines[-1].endswith(b"\n") else b""
                for line in lines:
                    _emit(_entry(line), timestamps, since, until, details)
                delay = 0.02
                continue
            rotated = _rotated_away(f, path) if f is not None else None
            if rotated == "moved":
                # Drained above (the writer writes only the live file):
                # on with the file that came after ours.
                following = logconfig.next_file(path, os.fstat(f.fileno()))
                f.close()
                f = None
                try:
                    f = open(following, "rb")
                    pending = b""
                except FileNotFoundError:
                    pass
                continue
            if rotated == "emptied":
                f.seek(0)
                pending = b""
                continue
            try:
                st = state.refresh(paths, cid)
            except NotFound:
                return 0
            if not state.is_running(st) and st.get("Status") != "created":
                # One more read: the supervisor closes the log before it
                # records the exit.
                chunk = f.read() if f is not None else b""
                for line in (pending + chunk).splitlines(keepends=True):
                    if line.endswith(b"\n"):
                        _emit(_entry(line), timestamps, since, until, details)
                return st.get("ExitCode", 0) if return_exit_code else 0
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
    finally:
        if f is not None:
            f.close()


# ---------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------
def cmd_inspect(args, paths):
    from ..container import state
    from ..container.inspect import container_json
    results = []
    failed = False
    for name in args.names:
        obj = None
        if args.type in (None, "container"):
            try:
                cid = state.resolve(paths, name)
                obj = container_json(paths, cid)
                if args.size:
                    rw, rootfs = container_sizes(paths, [obj])[cid]     # (its Id, Image)
                    obj.update(SizeRw=rw, SizeRootFs=rootfs)
            except NotFound:
                obj = None
        if obj is None and args.type in (None, "image"):
            try:
                from ..image.store import Store
                from .images import inspect_image
                store = Store(paths)
                obj = inspect_image(store, store.lookup(name))
            except NotFound:
                obj = None
        if obj is None and args.type in (None, "volume"):
            from ..container import volumes
            if volumes.exists(paths, name):
                obj = volumes.inspect(paths, name)
        if obj is None and args.type in (None, "network"):
            from ..network import usernet
            from .network import _find, network_json
            if name in usernet.PREDEFINED or usernet.find(paths, name):
                obj = network_json(paths, _find(paths, name))
        if obj is None:
            failed = True
            sys.stderr.write("Error: No such object: %s\n" % name)
            continue
        results.append(obj)
    print_objects(args.format, results)
    return 1 if failed else 0


# ---------------------------------------------------------------------------
# top and prune
# ---------------------------------------------------------------------------
def container_pids(pid):
    """Host pids of every process in the PID namespace of ``pid``; in the
    mount namespace of ``pid`` when its PID namespace is ours (--pid host:
    every container has a mount namespace of its own)."""
    kind = "pid"
    try:
        target = os.stat("/proc/%d/ns/pid" % pid).st_ino
        if target == os.stat("/proc/self/ns/pid").st_ino:
            kind = "mnt"
            target = os.stat("/proc/%d/ns/mnt" % pid).st_ino
    except OSError:
        return []
    from ..pids import in_namespace
    return in_namespace(kind, target)


def cmd_top(args, paths):
    from ..container import state
    cid = state.resolve(paths, args.container)
    st = state.refresh(paths, cid)
    if not state.is_running(st):
        raise SandboxError("container %s is not running" % args.container, exit_code=1)
    pids = container_pids(st["Pid"])
    from ..errors import HostError
    from ..proc import run_checked
    ps_args = args.ps_args or ["-o", "uid,pid,ppid,c,stime,tty,time,cmd"]
    try:
        res = run_checked(["ps"] + ps_args + ["-q", ",".join(map(str, pids))])
    except HostError:
        # Options that select processes themselves (-e, -A, ax) do not
        # go with -q: all of them, and the rows are picked below.
        res = run_checked(["ps"] + ps_args)
    sys.stdout.write(ps_rows(res.stdout.decode(errors="replace"), pids))
    return 0


def ps_rows(output, pids):
    """Docker's rule for `top`: ps's header and the rows whose PID column
    is one of the container's (whatever else the options selected)."""
    lines = output.splitlines()
    header = lines[0].split() if lines else []
    if "PID" not in header:
        raise SandboxError("couldn't find PID field in ps output",
                           hint="keep pid among the -o columns")
    column = header.index("PID")
    wanted = {str(p) for p in pids}
    rows = [line for line in lines[1:]
            if len(line.split()) > column and line.split()[column] in wanted]
    return "\n".join([lines[0]] + rows) + "\n"


def prune_containers(paths, filters=(), sizes=None):
    """Remove every container that does not run (and matches ``filters``);
    returns their ids.  ``sizes``: a dict that gets what each one wrote
    (its upper layer, measured before it goes)."""
    from ..container import state
    from .lifecycle import remove
    wanted = prune_filters(filters)
    removed = state.sweep_unfinished(paths)    # what killed creates left
    chosen = [st for st in all_records(paths)
              if not state.is_running(st) and wanted(st.get("Created"), st.get("Labels"))]
    if sizes is not None and chosen:
        sizes.update(_upper_sizes(paths, chosen))
    for st in chosen:
        try:
            remove(paths, st["Id"], st)
            removed.append(st["Id"])
        except SandboxError:
            continue
    return removed


def cmd_prune(args, paths):
    from .image_admin import confirm
    prune_filters(args.filter)
    if not args.force and not confirm(
            "WARNING! This will remove all stopped containers."):
        return 0
    from ..formatting import human_size
    sizes = {}
    removed = prune_containers(paths, args.filter, sizes)
    if removed:
        print("Deleted Containers:\n" + "\n".join(removed) + "\n")
    print("Total reclaimed space: " + human_size(sum(sizes.get(c, 0) for c in removed)))
    return 0
