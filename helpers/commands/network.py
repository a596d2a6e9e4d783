"""Network verbs: `port`, and `network create|ls|inspect|rm|connect|
disconnect|prune` for user-defined networks (helpers/network/usernet.py
keeps their records; bridge.py plugs containers in)."""

import hashlib
import sys

from ..cli import report
from ..errors import SandboxError, UsageError
from ..formatting import print_objects
from ..options import has_label, labels


def register(sub):
    p = sub.add_parser("port", help="list a container's published ports",
                       description="List port mappings of a container, or "
                                   "the mapping of one of its ports.")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PORT[/PROTO]")
    p.set_defaults(func=cmd_port)

    n = sub.add_parser("network", help="manage user-defined networks")
    nsub = n.add_subparsers(dest="network_verb", metavar="COMMAND")
    p = nsub.add_parser("create", help="create a network")
    p.add_argument("--subnet", metavar="CIDR", help="IPv4 subnet (default: a "
                   "free /24 of 10.89.0.0/16)")
    p.add_argument("--gateway", metavar="IP", help="the bridge's address "
                   "(default: the subnet's first)")
    p.add_argument("--internal", action="store_true",
                   help="no way out: its containers reach only each other")
    p.add_argument("-d", "--driver", default="bridge", help="only 'bridge'")
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="K=V",
                   help="driver options (kept, shown by inspect)")
    p.add_argument("--ip-range", metavar="CIDR",
                   help="give containers addresses from this part of --subnet only")
    p.add_argument("--aux-address", action="append", default=[], metavar="NAME=IP",
                   help="an address of --subnet never given to a container")
    p.add_argument("--attachable", action="store_true",
                   help="accepted (any container may join a network)")
    p.unsupported["--ipv6"] = ("user-defined networks are IPv4 only", "leave it out")
    p.add_argument("name", metavar="NETWORK")
    p.set_defaults(func=cmd_create)

    p = nsub.add_parser("ls", aliases=["list"], help="list networks")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="full ids")
    p.add_argument("-f", "--filter", action="append", default=[],
                   metavar="KEY=VALUE", help="name=, id=, driver=, label=, "
                   "type=custom|builtin")
    p.add_argument("--format", help="a Go template, or json")
    p.set_defaults(func=cmd_ls)

    p = nsub.add_parser("inspect", help="show networks as JSON")
    p.add_argument("-f", "--format", help="a Go template")
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p.set_defaults(func=cmd_inspect)

    p = nsub.add_parser("rm", aliases=["remove"], help="remove networks")
    p.add_argument("-f", "--force", action="store_true",
                   help="no error for a network that does not exist")
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p.set_defaults(func=cmd_rm)

    p = nsub.add_parser("connect", help="connect a container to a network")
    p.add_argument("--alias", action="append", default=[], metavar="ALIAS")
    p.add_argument("--ip", metavar="IPV4")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_connect)

    p = nsub.add_parser("disconnect", help="disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_disconnect)

    p = nsub.add_parser("prune", help="remove networks no container uses")
    p.add_argument("-f", "--force", action="store_true", help="do not ask")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="until=TIME, label=K[=V], label!=K[=V]")
    p.set_defaults(func=cmd_prune)


def cmd_port(args, paths):
    from ..container import state
    from ..network import port_lines
    cid = state.resolve(paths, args.container)
    st = state.refresh(paths, cid)
    which = None
    if args.port:
        port, _, proto = args.port.partition("/")
        which = "%s/%s" % (port, proto or "tcp")
    lines = port_lines(st, which) if state.is_running(st) else []
    if which and not lines:
        raise SandboxError("No public port '%s' published for %s" % (
            which, args.container), exit_code=1)
    for line in lines:
        print(line)
    return 0


# ---------------------------------------------------------------------------
# network ...
# ---------------------------------------------------------------------------
def cmd_create(args, paths):
    from ..network import usernet
    rec = usernet.create(paths, args.name, subnet=args.subnet,
                         gateway=args.gateway, internal=args.internal,
                         labels=labels(args.label), driver=args.driver,
                         options=labels(args.opt, "--opt"), ip_range=args.ip_range,
                         aux=labels(args.aux_address, "--aux-address"))
    print(rec["Id"])
    return 0


def _predefined():
    from ..network import usernet
    out = []
    for name, driver in usernet.PREDEFINED.items():
        out.append({"Name": name, "Id": hashlib.sha256(
            b"sandbox predefined network " + name.encode()).hexdigest(),
            "Created": "0001-01-01T00:00:00Z", "Driver": driver, "Subnet": "",
            "Gateway": "", "Internal": False, "Labels": {}, "Options": {},
            "Predefined": True})
    return out


def _all(paths):
    from ..network import usernet
    return _predefined() + usernet.list_all(paths)


def _find(paths, ref):
    for rec in _predefined():
        if ref in (rec["Name"], rec["Id"]):
            return rec
    from ..network import usernet
    return usernet.get(paths, ref)


NETWORK_FILTERS = ("name", "id", "driver", "label", "type")


def _filters(filters):
    from ..filters import group

    def check(key, value):
        if key == "type" and value not in ("custom", "builtin"):
            raise UsageError("invalid filter type=%s" % value,
                             hint="type=custom or type=builtin")
        return value
    return group(filters, NETWORK_FILTERS, check)


def _matches(rec, groups):
    from ..filters import matches

    def one(key, value):
        if key == "name":
            return value in rec["Name"]
        if key == "id":
            return rec["Id"].startswith(value)
        if key == "driver":
            return rec["Driver"] == value
        if key == "label":
            return has_label(rec["Labels"], value)
        return bool(rec.get("Predefined")) == (value == "builtin")     # type
    return matches(groups, one)


def network_json(paths, rec):
    """Docker's `network inspect` shape."""
    containers = {}
    if not rec.get("Predefined"):
        from ..container import state
        from ..network import usernet
        for cid in usernet.users(paths, rec, running_only=True):
            st = state.read_state(paths, cid)
            ep = st["NetEndpoints"][rec["Name"]]
            containers[cid] = {
                "Name": st.get("Name", ""),
                "EndpointID": rec["Id"][:32] + cid[:32],
                "MacAddress": ep["MacAddress"],
                "IPv4Address": "%s/%d" % (ep["IPAddress"], ep["IPPrefixLen"]),
                "IPv6Address": ""}
    config = [dict({"Subnet": rec["Subnet"], "Gateway": rec["Gateway"]},
                   **({"IPRange": rec["IPRange"]} if rec.get("IPRange") else {}),
                   **({"AuxiliaryAddresses": rec["AuxAddresses"]}
                      if rec.get("AuxAddresses") else {}))] if rec["Subnet"] else []
    return {"Name": rec["Name"], "Id": rec["Id"], "Created": rec["Created"],
            "Scope": "local", "Driver": rec["Driver"], "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {}, "Config": config},
            "Internal": rec["Internal"], "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Containers": containers, "Options": rec["Options"],
            "Labels": rec["Labels"]}


def cmd_ls(args, paths):
    from .containers import _configured_format
    args.format = _configured_format(args, "networksFormat")
    groups = _filters(args.filter)
    recs = [r for r in _all(paths) if _matches(r, groups)]
    short = (lambda i: i) if args.no_trunc else (lambda i: i[:12])
    if args.quiet:
        for rec in recs:
            print(short(rec["Id"]))
        return 0
    from ..formatting import Row, print_rows, tabulate
    rows = [Row({"ID": short(rec["Id"]), "Name": rec["Name"], "Driver": rec["Driver"],
                 "Scope": "local", "Internal": str(rec["Internal"]).lower(),
                 "CreatedAt": rec["Created"]}, rec["Labels"])
            for rec in recs]
    if print_rows(args.format, rows, {"ID": "NETWORK ID"}):
        return 0
    print(tabulate([["NETWORK ID", "NAME", "DRIVER", "SCOPE"]] +
                   [[short(r["Id"]), r["Name"], r["Driver"], "local"] for r in recs]))
    return 0


def cmd_inspect(args, paths):
    out, failed = [], False
    for name in args.names:
        try:
            out.append(network_json(paths, _find(paths, name)))
        except SandboxError as exc:
            sys.stderr.write("Error: %s\n" % exc.message)
            failed = True
    print_objects(args.format, out)
    return 1 if failed else 0


def _remove(paths, rec):
    from ..network import bridge, usernet
    if rec.get("Predefined"):
        raise SandboxError("%s is a pre-defined network and cannot be removed"
                           % rec["Name"], exit_code=1)
    running = usernet.users(paths, rec, running_only=True)
    if running:
        raise SandboxError(
            "network %s has active endpoints (%d running container%s)"
            % (rec["Name"], len(running), "" if len(running) == 1 else "s"),
            exit_code=1,
            hint="stop them, or `sandbox network disconnect %s CONTAINER`"
                 % rec["Name"])
    bridge.drop_bridge(paths, rec["Id"])
    usernet.remove(paths, rec)


def cmd_rm(args, paths):
    from ..network import usernet
    failed = False
    for name in args.names:
        try:
            rec = _find(paths, name) if not args.force else \
                (usernet.find(paths, name) or None)
            if rec is not None:
                _remove(paths, rec)
            print(name)
        except SandboxError as exc:
            report(exc)         # this one failed; the others go on
            failed = True
    return 1 if failed else 0


def cmd_connect(args, paths):
    from .. import network
    from ..container import state
    cid = state.resolve(paths, args.container)
    if args.ip:
        import ipaddress
        try:
            ipaddress.IPv4Address(args.ip)
        except ValueError:
            raise UsageError("invalid --ip %r" % args.ip,
                             hint="an IPv4 address in the network's subnet") from None
    network.connect(paths, cid, args.network, {
        "Aliases": list(args.alias),
        "IPAMConfig": {"IPv4Address": args.ip} if args.ip else None})
    return 0


def cmd_disconnect(args, paths):
    from .. import network
    from ..container import state
    cid = state.resolve(paths, args.container)
    network.disconnect(paths, cid, args.network)
    return 0


def prune_networks(paths, filters=()):
    """Remove the user-defined networks no container names (that match
    ``filters``, containers.prune_filters); their names."""
    from ..network import usernet
    from .containers import prune_filters
    wanted = prune_filters(filters)
    removed = []
    for rec in usernet.list_all(paths):
        if not wanted(rec.get("Created"), rec.get("Labels")) or usernet.users(paths, rec):
            continue
        try:
            _remove(paths, rec)
            removed.append(rec["Name"])
        except SandboxError:
            continue
    return removed


def cmd_prune(args, paths):
    from .containers import prune_filters
    from .image_admin import confirm
    prune_filters(args.filter)
    if not args.force and not confirm("WARNING! This will remove all custom "
                                      "networks not used by at least one container."):
        return 0
    removed = prune_networks(paths, args.filter)
    if removed:
        print("Deleted Networks:\n" + "\n".join(removed))
    return 0
