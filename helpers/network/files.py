"""/etc/hosts, /etc/hostname and /etc/resolv.conf of a container: written
in its directory at create, bind-mounted by the runtime (their paths are
HostsPath, HostnamePath and ResolvConfPath in inspect)."""

import os

from .. import fsutil
from ..errors import UsageError

# slirp4netns' defaults (--cidr 10.0.2.0/24): the guest, the gateway (the
# host, when allow_host_loopback), the DNS forwarder.
SLIRP_CIDR = "10.0.2.0/24"


def parse_add_hosts(items):
    out = []
    for item in items:
        # Docker's HOST:IP; the IP may be IPv6 (more colons) or host-gateway.
        host, sep, ip = item.partition(":")
        if not sep or not host or not ip:
            raise UsageError("invalid --add-host %r" % item,
                             hint="use --add-host NAME:IP (IP may be host-gateway)")
        if ip != "host-gateway":
            import ipaddress
            try:
                ipaddress.ip_address(ip.strip("[]"))
            except ValueError:
                raise UsageError("invalid IP address in --add-host %r" % item,
                                 hint="a literal address, or host-gateway") from None
        out.append((host, ip.strip("[]")))
    return out


def slirp_addresses(cidr=SLIRP_CIDR):
    """(guest, gateway, dns, prefix length) of a slirp4netns network."""
    import ipaddress
    net = ipaddress.ip_network(cidr, strict=False)
    base = net.network_address
    return str(base + 100), str(base + 2), str(base + 3), net.prefixlen


def gateway(net):
    """The address by which the container reaches the host (host-gateway),
    if any.  As with Docker's bridge, that is the host's own address: the
    helper connects to it as to any other, so it reaches the host's
    services on all addresses but not those on 127.0.0.1 only (pasta then
    gives the container an address of its own, pasta_addresses).  With
    allow_host_loopback, the gateway address, which the helper maps to the
    host's 127.0.0.1."""
    mode = _helper(net)
    if mode not in ("pasta", "slirp4netns"):
        return None
    if not net.get("AllowHostLoopback"):
        return host_address()
    if mode == "slirp4netns":
        return slirp_addresses(net.get("HelperSettings", {}).get("cidr", SLIRP_CIDR))[1]
    return host_gateway()


# pasta's addresses for a container that asks for host-gateway without
# allow_host_loopback: pasta otherwise gives it the host's own address,
# and the host's address would then lead back into the container.
PASTA_OWN = ("10.0.2.100", "24", "10.0.2.2")


def pasta_addresses(net):
    """pasta's (address, prefix length, gateway) for the container when it
    is not to have the host's (see PASTA_OWN), else None."""
    if net.get("AllowHostLoopback") or not any(
            ip == "host-gateway" for _, ip in parse_add_hosts(net.get("ExtraHosts") or [])):
        return None
    address, prefix, gw = PASTA_OWN
    if host_address() == address:
        address = "10.0.2.101"
    return address, prefix, gw


def _helper(net):
    """pasta or slirp4netns when the container has one (its mode, or the
    way out of a container on user-defined networks)."""
    return net.get("OutboundHelper") or net["NetworkMode"]


def host_routes():
    """The host's IPv4 routes from /proc/net/route: (destination, gateway,
    mask), each a dotted address."""
    def dotted(hex_le):
        v = int(hex_le, 16)
        return ".".join(str((v >> s) & 255) for s in (0, 8, 16, 24))
    routes = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 7:
                    routes.append((dotted(fields[1]), dotted(fields[2]),
                                   dotted(fields[7])))
    except (OSError, StopIteration, ValueError):
        pass
    return routes


def host_gateway():
    """The host's IPv4 default gateway (pasta gives it to the container)."""
    return next((gw for dest, gw, _ in host_routes() if dest == "0.0.0.0"), None)


def host_address():
    """The host's IPv4 address on the way to its default gateway (what a
    connection from the host to the outside would come from), or None."""
    gw = host_gateway()
    if not gw:
        return None
    import socket
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((gw, 9))        # no packet: a UDP connect only routes
            return s.getsockname()[0]
    except OSError:
        return None


def write(cdir, hostname, name, net):
    mode = net["NetworkMode"]
    if mode == "host":
        hosts = _read("/etc/hosts")
    else:
        names = hostname if name == hostname else "%s %s" % (hostname, name)
        hosts = ("127.0.0.1\tlocalhost\n"
                 "::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "127.0.1.1\t%s\n" % names)
    extra = parse_add_hosts(net.get("ExtraHosts") or [])
    if extra:
        gw = gateway(net)
        for host, ip in extra:
            if ip == "host-gateway":
                if not gw:
                    raise UsageError("--add-host %s:host-gateway: this network "
                                     "has no way to the host" % host,
                                     hint="use pasta or slirp4netns (the default "
                                          "network; not --internal), on a host "
                                          "with a default route")
                ip = gw
            hosts += "%s\t%s\n" % (ip, host)
    fsutil.write_new(os.path.join(cdir, "hosts"), hosts)
    fsutil.write_new(os.path.join(cdir, "hostname"), hostname + "\n")
    fsutil.write_new(os.path.join(cdir, "resolv.conf"), resolv_conf(net))


def resolv_conf(net):
    """The helper's DNS forwarder (slirp4netns) or the host's name servers
    that a private namespace can reach (not loopback ones); --dns,
    --dns-search and --dns-option replace their part."""
    mode = _helper(net) or net["NetworkMode"]
    servers, search, options, other = [], [], [], []
    for line in _read("/etc/resolv.conf").splitlines():
        fields = line.split()
        if fields[:1] == ["nameserver"] and len(fields) > 1:
            if mode != "host" and (fields[1].startswith("127.") or fields[1] == "::1"):
                continue
            servers.append(fields[1])
        elif fields[:1] in (["search"], ["domain"]):
            search = fields[1:]
        elif fields[:1] == ["options"]:
            options.extend(fields[1:])
        elif line.strip():
            other.append(line)
    if mode == "slirp4netns":
        cidr = net.get("HelperSettings", {}).get("cidr", SLIRP_CIDR)
        servers = [slirp_addresses(cidr)[2]]
    elif mode == "pasta":
        from .pasta import ipv6
        if not ipv6(net):
            # (none left: the host's as they are, for the error to name them)
            servers = [s for s in servers if ":" not in s] or servers
    if net.get("Dns"):
        servers = list(net["Dns"])
    if net.get("DnsGateway"):
        # The peers' names first (REFUSED for any other, which sends the
        # resolver on to the next server).
        servers = [net["DnsGateway"]] + [s for s in servers if s != net["DnsGateway"]]
    if net.get("DnsSearch"):
        search = [s for s in net["DnsSearch"] if s != "."]
    if net.get("DnsOptions"):
        options = list(net["DnsOptions"])
    out = other
    out += ["nameserver " + s for s in servers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def copy_from(src_dir, cdir):
    """--network container:NAME: the other container's files."""
    for name in ("hosts", "hostname", "resolv.conf"):
        fsutil.write_new(os.path.join(cdir, name),
                         _read(os.path.join(src_dir, name)))


def _read(path):
    try:
        return fsutil.read_text(path, "replace")
    except OSError:
        return ""
