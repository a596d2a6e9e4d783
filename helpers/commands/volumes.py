"""`volume create|ls|inspect|rm|prune`."""

import sys

from ..cli import report
from ..errors import NotFound, SandboxError, UsageError
from ..formatting import print_objects
from ..options import has_label


def register(sub):
    v = sub.add_parser("volume", help="manage volumes")
    vsub = v.add_subparsers(dest="volume_verb", metavar="COMMAND")
    p = vsub.add_parser("create", help="create a volume")
    p.add_argument("name", nargs="?", metavar="VOLUME")
    p.add_argument("--name", dest="name_flag", metavar="VOLUME",
                   help="the volume's name (Docker's older form of the argument)")
    p.add_argument("-l", "--label", action="append", default=[], metavar="K=V")
    p.add_argument("-d", "--driver", default="local", help="only 'local'")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="K=V",
                   help="type=tmpfs,device=tmpfs,o=size=64m (a tmpfs at each mount) or "
                        "type=none,o=bind,device=DIR (a host directory)")
    p.set_defaults(func=cmd_create)
    p = vsub.add_parser("ls", aliases=["list"], help="list volumes")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[],
                   metavar="KEY=VALUE", help="dangling=true|false, name=, label=, "
                   "driver=local (a key twice: either value)")
    p.add_argument("--format", help="a Go template or json")
    p.set_defaults(func=cmd_ls)
    p = vsub.add_parser("inspect", help="show volumes as JSON")
    p.add_argument("-f", "--format", help="a Go template")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.set_defaults(func=cmd_inspect)
    p = vsub.add_parser("rm", aliases=["remove"], help="remove volumes")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.set_defaults(func=cmd_rm)
    p = vsub.add_parser("prune", help="remove unused anonymous volumes (-a: all unused)")
    p.add_argument("-a", "--all", action="store_true",
                   help="named volumes too, not only anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="label=K[=V], label!=K[=V], all=true|false (Docker's)")
    p.set_defaults(func=cmd_prune)


def cmd_create(args, paths):
    from ..container import volumes
    if args.name_flag:
        if args.name and args.name != args.name_flag:
            raise UsageError("conflicting options: either specify --name or provide "
                             "positional arg, not both")
        args.name = args.name_flag
    if args.driver != "local":
        raise UsageError("volume driver %r is not supported" % args.driver, hint="local")
    from ..options import labels as parse_labels
    labels = parse_labels(args.label)
    options = volumes.check_options(args.opt)
    if args.name and volumes.exists(paths, args.name) and \
            (volumes.inspect(paths, args.name).get("Options") or {}) != options:
        raise UsageError("volume %s exists with other options" % args.name,
                         hint="remove it first (sandbox volume rm %s)" % args.name)
    print(volumes.create(paths, args.name, labels=labels, options=options))
    return 0


VOLUME_FILTERS = ("dangling", "name", "label", "driver")


def _filters(filters):
    from ..filters import group

    def check(key, value):
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise UsageError("invalid filter 'dangling=%s'" % value,
                             hint="dangling=true or dangling=false")
        return value
    return group(filters, VOLUME_FILTERS, check)


def _matches(paths, name, groups):
    from ..container import volumes

    def one(key, value):
        if key == "dangling":
            return (not volumes.users(paths, name)) == (value.lower() in ("true", "1"))
        if key == "name":
            return value in name
        if key == "label":
            return has_label(volumes.inspect(paths, name).get("Labels") or {}, value)
        return value == "local"                  # driver: the only one
    from ..filters import matches
    return matches(groups, one)


def cmd_ls(args, paths):
    from ..container import volumes
    from .containers import _configured_format
    args.format = _configured_format(args, "volumesFormat")
    groups = _filters(args.filter)
    names = [n for n in volumes.names(paths) if _matches(paths, n, groups)]
    if args.quiet:
        for n in names:
            print(n)
        return 0
    from ..formatting import Row, print_rows, tabulate
    rows = []
    for n in names if args.format else ():
        try:
            labels = volumes.inspect(paths, n).get("Labels")
        except NotFound:                                  # removed meanwhile
            continue
        rows.append(Row({"Name": n, "Driver": "local", "Scope": "local",
                         "Mountpoint": volumes.data_dir(paths, n)}, labels))
    if print_rows(args.format, rows, {"Name": "VOLUME NAME"}):
        return 0
    print(tabulate([["DRIVER", "VOLUME NAME"]] + [["local", n] for n in names]))
    return 0


def cmd_inspect(args, paths):
    from ..container import volumes
    out, failed = [], False
    for n in args.names:
        try:
            out.append(volumes.inspect(paths, n))
        except SandboxError as exc:
            sys.stderr.write("Error: %s\n" % exc.message)
            failed = True
    print_objects(args.format, out)
    return 1 if failed else 0


def cmd_rm(args, paths):
    from ..container import volumes
    failed = False
    for n in args.names:
        try:
            volumes.remove(paths, n, force=args.force)
            print(n)
        except SandboxError as exc:
            report(exc)         # this one failed; the others go on
            failed = True
    return 1 if failed else 0


def prune_volumes(paths, all_volumes=False, keep=None, sizes=None):
    """Remove the anonymous volumes no container uses (every unused one
    with ``all_volumes``) and that ``keep(labels)`` does not keep; returns
    their names.  ``sizes``: a dict that gets each one's size (measured
    as root of the user namespace, before it goes)."""
    from ..container import volumes
    chosen = []
    for n in volumes.names(paths):
        if volumes.users(paths, n):
            continue
        if not all_volumes and not volumes.is_anonymous(paths, n):
            continue
        if keep is not None and keep(volumes.inspect(paths, n).get("Labels") or {}):
            continue
        chosen.append(n)
    if sizes is not None and chosen:
        from .system import sizes_by_name
        sizes.update(sizes_by_name({n: volumes.volume_dir(paths, n) for n in chosen}))
    for n in chosen:
        volumes.remove(paths, n)
    return chosen


def _prune_filters(values):
    """Docker's volume prune filters: (all, keep(labels) -> bool)."""
    from .containers import prune_filters
    every, rest = None, []
    for f in values:
        key, _, value = f.partition("=")
        if key == "all":
            if value.lower() not in ("true", "false", "1", "0"):
                raise UsageError("invalid filter %r" % f, hint="all=true|false")
            every = value.lower() in ("true", "1")
        elif key == "until":
            raise UsageError("invalid filter 'until' for volume prune",
                             hint="label=K[=V], label!=K[=V], all=true|false")
        else:
            rest.append(f)
    prune = prune_filters(rest)
    return every, (lambda labels: not prune(None, labels)) if rest else None


def cmd_prune(args, paths):
    from .image_admin import confirm
    from ..formatting import human_size
    every, keep = _prune_filters(args.filter)
    every = args.all or bool(every)
    if not args.force and not confirm(
            "WARNING! This will remove %s local volumes not used by at least "
            "one container." % ("all" if every else "anonymous")):
        return 0
    sizes = {}
    removed = prune_volumes(paths, every, keep, sizes)
    if removed:
        print("Deleted Volumes:\n" + "\n".join(removed) + "\n")
    print("Total reclaimed space: " + human_size(sum(sizes.values())))
    return 0
