"""User-defined networks: their records, addresses and the peers each
container finds in its /etc/hosts.

  $ROOT/networks/<name>.json      the network (Docker's `network inspect`
                                  shape, less what is computed)
  $RUNROOT/networks/<id>.json     leases: address -> container id (they
                                  vanish on reboot with the containers)

A container on user networks keeps, in its record, "Networks": {name:
{"Aliases": [...], "IPAMConfig": {"IPv4Address": "..."}}} (what was asked),
and, while it runs, in its state "NetEndpoints": {name: {IPAddress,
MacAddress, Gateway, IPPrefixLen, NetworkID, IfName}}.

Nothing here talks netlink (bridge.py does) or imports anything heavy."""

import ipaddress
import os

from .. import fsutil
from ..container.state import valid_name
from ..errors import SandboxError, UsageError
from ..image.reference import is_hex

# Docker's predefined networks: `network ls` shows them, `network rm`
# refuses them, `--network` takes them (bridge is the user-mode default).
PREDEFINED = {"bridge": "bridge", "host": "host", "none": "null"}
# Where `network create` without --subnet takes /24s from (as podman).
POOL = ipaddress.ip_network("10.89.0.0/16")
HOSTS_MARK = "# sandbox: peers on user-defined networks\n"


def _path(paths, name):
    return os.path.join(paths.networks, name + ".json")


def _lock(paths):
    return fsutil.locked(os.path.join(paths.networks, ".lock"))


def list_all(paths):
    """The user-defined networks, by name."""
    out = []
    try:
        names = sorted(n[:-5] for n in os.listdir(paths.networks)
                       if n.endswith(".json"))
    except FileNotFoundError:
        return out
    for name in names:
        rec = fsutil.read_json(_path(paths, name), default={})
        if rec:
            out.append(rec)
    return out


def find(paths, ref):
    """A network by name, full id or unique id prefix; None if none."""
    if valid_name(ref):
        rec = fsutil.read_json(_path(paths, ref), default={})
        if rec:
            return rec
    hits = [n for n in list_all(paths) if n["Id"].startswith(ref)] \
        if is_hex(ref) and len(ref) <= 64 else []
    if len(hits) > 1:
        raise UsageError("network %s is ambiguous (%d matches)" % (ref, len(hits)),
                         hint="give more of the id, or the name")
    return hits[0] if hits else None


def get(paths, ref):
    rec = find(paths, ref)
    if rec is None:
        raise SandboxError("network %s not found" % ref,
                           hint="see `sandbox network ls`; create it with "
                                "`sandbox network create %s`" % ref)
    return rec


def _host_networks():
    """The host's own routes and addresses: a subnet on top of them would
    make the host (and pasta's copy of its routes) unreachable."""
    from .files import host_routes
    return [ipaddress.ip_network("%s/%s" % (dest, mask), strict=False)
            for dest, _, mask in host_routes() if mask != "0.0.0.0"]


def _clash(paths, subnet):
    """What ``subnet`` overlaps: a network's name, "the host", or None."""
    for rec in list_all(paths):
        if ipaddress.ip_network(rec["Subnet"]).overlaps(subnet):
            return "network %s (%s)" % (rec["Name"], rec["Subnet"])
    for net in _host_networks():
        if net.overlaps(subnet):
            return "the host's network %s" % net
    return None


def _pick_subnet(paths):
    for subnet in POOL.subnets(new_prefix=24):
        if subnet.network_address.packed[2] == 0:
            continue            # 10.89.0.0/24: kept for podman's default
        if not _clash(paths, subnet):
            return subnet
    raise SandboxError("no free /24 left in %s for a new network" % POOL,
                       hint="give one with --subnet, or remove unused "
                            "networks (sandbox network prune)")


def create(paths, name, subnet=None, gateway=None, internal=False,
           labels=None, driver="bridge", options=None, ip_range=None, aux=None):
    """A user-defined network's record; ``ip_range``: the part of the
    subnet containers get addresses from; ``aux``: {name: address} never
    given to a container (Docker's --ip-range and --aux-address, which
    need --subnet as there)."""
    if name in PREDEFINED:
        raise UsageError("%s is a pre-defined network and cannot be created" % name,
                         hint="choose another name")
    if not valid_name(name):
        raise UsageError("invalid network name %r" % name,
                         hint="letters, digits, '_', '.' and '-', starting "
                              "with a letter or digit")
    if driver != "bridge":
        raise UsageError("network driver %r is not supported" % driver,
                         hint="rootless networks use the bridge driver")
    if subnet:
        net = _parsed(ipaddress.ip_network, subnet, "subnet",
                      "use CIDR notation, e.g. 10.90.1.0/24")
        if net.version != 4 or net.prefixlen > 30:
            raise UsageError("subnet %s: need an IPv4 subnet of /30 or larger" % net,
                             hint="e.g. --subnet 10.90.1.0/24")
    if gateway:
        gw = _parsed(ipaddress.ip_address, gateway, "gateway",
                     "an IPv4 address inside the subnet")
        if not subnet:
            raise UsageError("--gateway needs --subnet",
                             hint="give the subnet the gateway belongs to")
    if (ip_range or aux) and not subnet:
        raise UsageError("--%s needs --subnet" % ("ip-range" if ip_range else "aux-address"),
                         hint="give the subnet it belongs to")
    if ip_range:
        pool = _parsed(ipaddress.ip_network, ip_range, "--ip-range",
                       "CIDR notation, e.g. 10.90.1.128/25")
        if pool.version != 4 or not pool.subnet_of(net):
            raise UsageError("--ip-range %s is not inside the subnet %s" % (pool, net))
        ip_range = str(pool)
    for key, value in (aux or {}).items():
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise UsageError("invalid --aux-address %s=%s" % (key, value),
                             hint="NAME=IP, the IP inside the subnet") from None
        if address not in net:
            raise UsageError("--aux-address %s=%s is not inside the subnet %s"
                             % (key, value, net))
    os.makedirs(paths.networks, mode=0o700, exist_ok=True)
    with _lock(paths):
        if os.path.exists(_path(paths, name)):
            raise SandboxError("network with name %s already exists" % name,
                               hint="choose another name, or remove it first")
        if subnet:
            where = _clash(paths, net)
            if where:
                raise SandboxError(
                    "subnet %s overlaps with %s" % (net, where),
                    hint="choose another --subnet")
        else:
            net = _pick_subnet(paths)
        hosts = list(net.hosts())
        gw = ipaddress.ip_address(gateway) if gateway else hosts[0]
        if gw not in hosts:
            raise UsageError("gateway %s is not a host address of %s" % (gw, net),
                             hint="choose an address inside the subnet")
        from ..container.state import new_id, now_iso
        rec = {"Name": name, "Id": new_id(), "Created": now_iso(),
               "Driver": "bridge", "Subnet": str(net), "Gateway": str(gw),
               "Internal": bool(internal), "Labels": dict(labels or {}),
               "Options": dict(options or {})}
        if ip_range:
            rec["IPRange"] = ip_range
        if aux:
            rec["AuxAddresses"] = dict(aux)
        fsutil.write_json(_path(paths, name), rec, mode=0o600)
    event(paths, "create", rec)
    return rec


def event(paths, action, rec, container=None):
    """A network event (events.py); ``container``: the id connected or
    disconnected."""
    from .. import events
    attributes = {"name": rec["Name"], "type": "bridge"}
    if container:
        attributes["container"] = container
    events.emit(paths, "network", action, rec["Id"], attributes)


def _parsed(parse, text, what, hint):
    """An address or network (not strict: host bits may be set), or a
    usage error that names the flag."""
    try:
        return parse(text, strict=False) if parse is ipaddress.ip_network else parse(text)
    except ValueError:
        raise UsageError("invalid %s %r" % (what, text), hint=hint) from None


def remove(paths, rec):
    """Delete a network's record (callers check it is unused)."""
    with _lock(paths):
        try:
            os.unlink(_path(paths, rec["Name"]))
        except FileNotFoundError:
            pass
    try:
        os.unlink(_lease_path(paths, rec))
    except FileNotFoundError:
        pass
    event(paths, "destroy", rec)


def users(paths, rec, running_only=False):
    """Container ids whose record names this network (or only those that
    run and are plugged into it)."""
    from ..container import state
    out = []
    for cid in state.list_ids(paths):
        try:
            st = state.refresh(paths, cid)
        except SandboxError:
            continue
        if running_only:
            if state.is_running(st) and rec["Name"] in (st.get("NetEndpoints") or {}):
                out.append(cid)
        elif rec["Name"] in (st.get("Networks") or {}):
            out.append(cid)
    return out


# ---------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------
def _lease_path(paths, rec):
    return os.path.join(paths.runroot, "networks", rec["Id"] + ".json")


def _live(paths, cid):
    from ..container import state
    try:
        return state.is_running(state.refresh(paths, cid))
    except SandboxError:
        return False


def check_ip(rec, requested):
    """A --ip for network ``rec``: an address of its subnet, not its own."""
    net = ipaddress.ip_network(rec["Subnet"])
    try:
        want = ipaddress.ip_address(requested)
    except ValueError:
        raise UsageError("invalid --ip %r" % requested,
                         hint="an IPv4 address in %s" % net) from None
    if want not in net or want in (net.network_address, net.broadcast_address,
                                   ipaddress.ip_address(rec["Gateway"])):
        raise UsageError("--ip %s is not a host address of network %s (%s)"
                         % (want, rec["Name"], net),
                         hint="choose an address inside the subnet, not its "
                              "gateway")
    reserved = {v: k for k, v in (rec.get("AuxAddresses") or {}).items()}
    if str(want) in reserved:
        raise UsageError("--ip %s is reserved on network %s (--aux-address %s)"
                         % (want, rec["Name"], reserved[str(want)]),
                         hint="choose another address")
    return want


def allocate(paths, rec, cid, requested=None, prefer=None):
    """An address of ``rec`` for container ``cid``: ``requested`` (--ip)
    or an error; else ``prefer`` (its address of the last run) when free,
    so a restarted container keeps its address; else the first free one.
    Leases of containers that no longer run are taken back."""
    want = check_ip(rec, requested) if requested else None
    path = _lease_path(paths, rec)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with fsutil.locked(path + ".lock"):
        leases = fsutil.read_json(path, default={})
        leases = {ip: owner for ip, owner in leases.items()
                  if owner == cid or _live(paths, owner)}
        mine = [ip for ip, owner in leases.items() if owner == cid]
        for ip in mine:
            del leases[ip]
        if requested:
            if str(want) in leases:
                raise SandboxError("address %s is already in use on network %s"
                                   % (want, rec["Name"]),
                                   hint="choose another --ip, or leave it out")
            ip = str(want)
        else:
            net = ipaddress.ip_network(rec["Subnet"])
            taken = set(leases) | {rec["Gateway"]} | set((rec.get("AuxAddresses") or {})
                                                         .values())
            hosts = (str(h) for h in net.hosts())
            if rec.get("IPRange"):
                # (the range's own first and last addresses are hosts of the
                # subnet: given out too, as Docker's IPAM does)
                hosts = (str(h) for h in ipaddress.ip_network(rec["IPRange"])
                         if h not in (net.network_address, net.broadcast_address))
            if prefer and prefer not in taken and \
                    ipaddress.ip_address(prefer) in net:
                hosts = iter([prefer])
            ip = next((h for h in hosts if h not in taken), None)
            if ip is None:
                raise SandboxError("network %s has no free address left" % rec["Name"],
                                   hint="remove containers from it, or use a "
                                        "network with a larger subnet")
        leases[ip] = cid
        fsutil.write_json(path, leases, mode=0o600, durable=False)
    return ip


def release(paths, rec, cid):
    path = _lease_path(paths, rec)
    if not os.path.exists(path):
        return
    with fsutil.locked(path + ".lock"):
        leases = fsutil.read_json(path, default={})
        kept = {ip: owner for ip, owner in leases.items() if owner != cid}
        if kept != leases:
            fsutil.write_json(path, kept, mode=0o600, durable=False)


def mac_for(ip):
    """Docker's MAC for an address: 02:42 and the address's four bytes."""
    return "02:42:" + ":".join("%02x" % b for b in ipaddress.ip_address(ip).packed)


def endpoint(rec, ip):
    net = ipaddress.ip_network(rec["Subnet"])
    return {"Id": rec["Id"], "Gateway": rec["Gateway"], "PrefixLen": net.prefixlen,
            "IPAddress": ip, "MacAddress": mac_for(ip)}


# ---------------------------------------------------------------------------
# /etc/hosts of the containers on a network
# ---------------------------------------------------------------------------
def _names(st, netname):
    """What a container is called on network ``netname``: its name, its
    hostname, its aliases there."""
    names = [st.get("Name", "")]
    if st.get("Hostname") and st["Hostname"] not in names:
        names.append(st["Hostname"])
    names += [a for a in ((st.get("Networks") or {}).get(netname) or {})
              .get("Aliases") or [] if a not in names]
    return [n for n in names if n]


def _peer_lines(paths, cid, st, everyone):
    """Lines for container ``cid``: its own address and its peers', with
    names and aliases, on each of its networks."""
    mine = st.get("NetEndpoints") or {}
    lines = []
    for other_id, other in everyone.items():
        for netname, ep in sorted((other.get("NetEndpoints") or {}).items()):
            if netname not in mine:
                continue
            lines.append("%s\t%s\n" % (ep["IPAddress"], " ".join(_names(other, netname))))
    return lines


def dns_lines(everyone):
    """The keeper's DNS table (native/monitor.c, dns mode): per running
    container and network, "GATEWAY ADDRESS ID NAME...", its names there
    and its short id (ID, 12 hex digits, tells the asker's networks)."""
    lines = []
    for cid, st in sorted(everyone.items()):
        for netname, ep in sorted((st.get("NetEndpoints") or {}).items()):
            if ep.get("Gateway") and ep.get("IPAddress"):
                names = _names(st, netname)
                names += [cid[:12]] if cid[:12] not in names else []
                lines.append("%s %s %s %s\n" % (ep["Gateway"], ep["IPAddress"], cid[:12],
                                                 " ".join(names)))
    return lines


def sync_hosts(paths):
    """Rewrite the peers part of /etc/hosts of every running container on a
    user network.  The file is bind-mounted, so it is written in place
    (same inode), not replaced."""
    from ..container import state
    everyone = {}
    for cid in state.list_ids(paths):
        try:
            st = state.refresh(paths, cid)
        except SandboxError:
            continue
        if state.is_running(st) and st.get("NetEndpoints"):
            everyone[cid] = st
    with _lock(paths):
        from .bridge import dns_table_path
        table = dns_table_path(paths)
        os.makedirs(os.path.dirname(table), mode=0o700, exist_ok=True)
        fsutil.atomic_write(table, "".join(dns_lines(everyone)).encode(), mode=0o600,
                            durable=False)
        for cid, st in everyone.items():
            hosts = os.path.join(paths.container(cid), "hosts")
            try:
                with open(hosts, "r+") as f:
                    text = f.read()
                    base = text.partition(HOSTS_MARK)[0]
                    new = base + HOSTS_MARK + "".join(_peer_lines(paths, cid, st,
                                                                  everyone))
                    if new != text:
                        f.seek(0)
                        f.write(new)
                        f.truncate()
            except OSError:
                continue


def drop_from_hosts(paths, cid):
    """A container that left every network: its hosts file loses the
    peers part."""
    hosts = os.path.join(paths.container(cid), "hosts")
    try:
        with open(hosts, "r+") as f:
            text = f.read()
            if HOSTS_MARK in text:
                f.seek(0)
                f.write(text.partition(HOSTS_MARK)[0])
                f.truncate()
    except OSError:
        pass
