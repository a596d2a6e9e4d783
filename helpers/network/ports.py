"""Published ports: `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`, ranges,
`-P`, and Docker's two views of them: HostConfig.PortBindings (what was
asked, recorded at create) and NetworkSettings.Ports (what the running
container got: free ports chosen for "-p 80" and -P at start).

A binding here is a tuple (host_ip, host_port, container_port, proto),
host_ip "" for every address, host_port 0 for "pick a free one", (first, last) for "the first free one
of that range"."""

import os

from ..errors import Conflict, UsageError

PROTOS = ("tcp", "udp")


def _port(text, what):
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError("invalid %s %r" % (what, text),
                         hint="a port is a number from 1 to 65535")
    return int(text)


def _range(text, what):
    lo, sep, hi = text.partition("-")
    first = _port(lo, what)
    last = _port(hi, what) if sep else first
    if last < first:
        raise UsageError("invalid %s range %r" % (what, text),
                         hint="write LOW-HIGH")
    return first, last


def parse(spec):
    """One -p value -> list of bindings."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOS:
        raise UsageError("invalid protocol %r in -p %s" % (proto, spec),
                         hint="tcp or udp")
    ip = ""
    if body.startswith("["):
        ip, sep, body = body[1:].partition("]")
        if not sep or not body.startswith(":"):
            raise UsageError("invalid -p %s" % spec,
                             hint="[IPv6]:HOSTPORT:CONTAINERPORT")
        body = body[1:]
        parts = body.split(":")
        if len(parts) == 1:
            parts = [""] + parts
    else:
        parts = body.split(":")
        if len(parts) == 3:
            ip = parts.pop(0)
        elif len(parts) == 1:
            parts = [""] + parts
        elif len(parts) != 2:
            raise UsageError("invalid -p %s" % spec,
                             hint="-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]")
    if ip:
        _check_ip(ip, spec)
    host, ctr = parts
    c_first, c_last = _range(ctr, "container port")
    count = c_last - c_first + 1
    if not host:
        return [(ip, 0, c_first + i, proto) for i in range(count)]
    h_first, h_last = _range(host, "host port")
    if h_last - h_first + 1 == count:
        return [(ip, h_first + i, c_first + i, proto) for i in range(count)]
    if count == 1:
        # Docker: a host range for one container port means "the first
        # free port of that range".
        return [(ip, (h_first, h_last), c_first, proto)]
    raise UsageError("invalid -p %s: the host and container ranges differ "
                     "in size" % spec, hint="give ranges of equal length")


def _check_ip(ip, spec):
    import ipaddress
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise UsageError("invalid IP address %r in -p %s" % (ip, spec),
                         hint="a literal IPv4 or IPv6 address, e.g. 127.0.0.1") from None


def parse_all(specs):
    out = []
    seen = set()
    for spec in specs:
        for b in parse(spec):
            key = (b[0], b[1], b[3])
            if isinstance(b[1], int) and b[1] and key in seen:
                raise UsageError("host port %d/%s is published twice" % (b[1], b[3]),
                                 hint="each host port can carry one container port")
            seen.add(key)
            out.append(b)
    return out


def parse_expose(specs):
    out = []
    for spec in specs:
        body, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if proto not in PROTOS:
            raise UsageError("invalid protocol %r in --expose %s" % (proto, spec))
        first, last = _range(body, "port")
        out.extend("%d/%s" % (p, proto) for p in range(first, last + 1))
    return out


def unprivileged_start():
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def check_bindable(bindings):
    """Refuse, before anything happens, a host port that is privileged or
    already in use (bind-tested as this user, on the address asked)."""
    low = unprivileged_start()
    for ip, host, _ctr, proto in bindings:
        if not isinstance(host, int) or not host:
            continue
        if host < low and os.geteuid() != 0:
            raise UsageError(
                "host port %d is privileged: ports below %d need root "
                "(net.ipv4.ip_unprivileged_port_start)" % (host, low),
                hint="publish on a port >= %d (-p %d:...), or as root: sysctl "
                     "net.ipv4.ip_unprivileged_port_start=%d" % (low, low, host))
        if not _free(ip, host, proto):
            raise Conflict(
                "host port %s%d/%s is already in use" % (
                    ip + ":" if ip else "", host, proto),
                hint="stop what listens there, or publish on another host port")


def _family(ip):
    import socket
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _bind(ip, port, proto):
    """A bound socket on (ip, port, proto), or None when it is taken."""
    import socket
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(_family(ip), kind)
    try:
        if proto == "tcp":
            # What a listener would do: a port in TIME_WAIT is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip or "0.0.0.0", port))
    except OSError:
        s.close()
        return None
    return s


def _free(ip, port, proto):
    s = _bind(ip, port, proto)
    if s is None:
        return False
    s.close()
    return True


def _pick(ip, proto, first=0, last=0):
    """A free host port: the kernel's choice, or the first free in a range."""
    if not first:
        s = _bind(ip, 0, proto)
        if s is None:
            raise Conflict("no free %s port on %s" % (proto, ip or "0.0.0.0"))
        port = s.getsockname()[1]
        s.close()
        return port
    for port in range(first, last + 1):
        if _free(ip, port, proto):
            return port
    raise Conflict("every host port of %d-%d/%s is in use" % (first, last, proto),
                   hint="publish on another range")


# ---------------------------------------------------------------------------
# The record: PortBindings at create, Ports at start
# ---------------------------------------------------------------------------
def to_port_bindings(bindings):
    """Docker's HostConfig.PortBindings."""
    out = {}
    for ip, host, ctr, proto in bindings:
        if isinstance(host, tuple):
            host_port = "%d-%d" % host
        else:
            host_port = str(host) if host else ""
        out.setdefault("%d/%s" % (ctr, proto), []).append(
            {"HostIp": ip, "HostPort": host_port})
    return out


def wanted(st):
    """The bindings the record asks for, host ports as given (0: any)."""
    return [(ip, first, ctr, proto) for ip, first, _, ctr, proto in _wanted(st)]


def _wanted(st):
    wanted = []
    for key, items in (st.get("PortBindings") or {}).items():
        ctr, _, proto = key.partition("/")
        for item in items:
            hp = item.get("HostPort") or ""
            first, _, last = hp.partition("-")
            wanted.append((item.get("HostIp") or "", int(first or 0),
                           int(last or 0), int(ctr), proto))
    if st.get("PublishAllPorts"):
        bound = set(st.get("PortBindings") or {})
        for key in st.get("ExposedPorts") or []:
            if key not in bound:
                ctr, _, proto = key.partition("/")
                wanted.append(("", 0, 0, int(ctr), proto or "tcp"))
    return wanted


def allocate(st):
    """At start: the bindings to set up, free ports chosen for the
    unspecified ones (and -P), explicit ones bind-tested again."""
    wanted = _wanted(st)
    out = []
    explicit = []
    for ip, first, last, ctr, proto in wanted:
        if first and not last:
            explicit.append((ip, first, ctr, proto))
            out.append((ip, first, ctr, proto))
        else:
            out.append((ip, _pick(ip, proto, first, last), ctr, proto))
    check_bindable(explicit)
    return out


def to_ports(published):
    """Docker's NetworkSettings.Ports (the running container's)."""
    out = {}
    for ip, host, ctr, proto in published:
        out.setdefault("%d/%s" % (ctr, proto), []).append(
            {"HostIp": ip or "0.0.0.0", "HostPort": str(host)})
    return out
