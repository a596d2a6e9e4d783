"""The per-user network namespace that holds the bridges of user-defined
networks, and the veth pairs that plug containers into them (pyroute2).

One `sandbox-netns` process per user (the native monitor's dns mode,
which answers the containers' DNS questions for their peers' names at each
gateway; else an exec'd `sleep infinity`, like the user namespace's keeper
in userns.py) holds a network namespace owned by the user's shared user
namespace; its record is $RUNROOT/netns.json (pid, start time).  A bridge
per network (`sb-<id>`, the gateway address on it) is made there on first
use; nothing forwards between bridges (ip_forward is 0 in a new
namespace), so networks cannot reach each other.  A
container is plugged with a veth pair: one end on the bridge, the other
made directly in the container's namespace as ethN.  When the container's
namespace goes, the kernel deletes the pair.

Everything that talks netlink runs in a child forked into the user
namespace (userns.run_in_userns): CAP_NET_ADMIN over both namespaces is
what its root has there."""

import errno
import os

from .. import fsutil, linux, userns
from ..errors import HostError
from ..pids import alive, proc_start_time

KEEPER_NAME = "sandbox-netns"
_IP_PKTINFO = 8                 # (Python's socket module has it from 3.12)


def _record_path(paths):
    return os.path.join(paths.runroot, "netns.json")


def _same_userns(pid, userns_fd):
    try:
        return os.stat("/proc/%d/ns/user" % pid).st_ino == os.fstat(userns_fd).st_ino
    except OSError:
        return False


def _valid(record, userns_fd):
    pid = record.get("pid")
    if not alive(pid, record.get("start")):
        return None
    return pid if _same_userns(pid, userns_fd) else None


def keeper_pid(paths):
    """The pid of the user's network keeper, started if needed."""
    path = _record_path(paths)
    nsfd = userns.shared_userns_fd()
    try:
        pid = _valid(fsutil.read_json(path, default={}), nsfd)
        if pid:
            return pid
        os.makedirs(paths.runroot, mode=0o700, exist_ok=True)
        with fsutil.locked(path + ".lock"):
            old = fsutil.read_json(path, default={})
            pid = _valid(old, nsfd)
            if pid:
                return pid
            if alive(old.get("pid"), old.get("start")):
                # A keeper of a user namespace that was made again: its
                # bridges are out of our reach now.
                try:
                    os.kill(old["pid"], 9)
                except OSError:
                    pass
            dns = dns_command(paths)
            pid = _start_keeper(nsfd, dns)
            fsutil.write_json(path, {"pid": pid, "start": proc_start_time(pid)},
                              mode=0o600)
            return pid
    finally:
        os.close(nsfd)


def dns_table_path(paths):
    """The names the keeper's DNS answers (usernet.sync_hosts writes it)."""
    return os.path.join(paths.runroot, "networks", "dns-names")


def dns_command(paths):
    """The keeper's command that answers DNS (None without the native
    monitor: the keeper is `sleep`)."""
    from ..container.monitor import native_path
    native = native_path()
    return None if native is None else [native, "dns", dns_table_path(paths)]


def _start_keeper(nsfd, dns=None):
    def enter():
        userns.join_userns(os.dup(nsfd))
        linux.unshare(linux.CLONE_NEWNET)
        linux.interface_up("lo")
        if dns is None:
            return None
        # Port 53 of every address here, each network's gateway among them
        # (root of the user namespace may bind it in its own namespace).
        # Without it the keeper sleeps: the names are in /etc/hosts still.
        import socket
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
            sock.bind(("0.0.0.0", 53))
        except OSError:
            return None
        return sock.detach()
    return userns.spawn_keeper(KEEPER_NAME, enter, what="cannot create the "
                               "network namespace of user-defined networks",
                               command=dns)


# ---------------------------------------------------------------------------
# netlink (in a child inside the user namespace)
# ---------------------------------------------------------------------------
def preload():
    """For a supervisor (monitor.preload): what plug() will import."""
    _iproute_class()
    import importlib.util  # noqa: F401
    import pickle  # noqa: F401


def _iproute():
    return _iproute_class()()


def _iproute_class():
    """pyroute2's IPRoute without the package's __init__, which imports
    every netlink family pyroute2 knows (~35 ms more)."""
    import importlib.util
    import sys
    from ..deps import enable_site
    enable_site()
    if "pyroute2" not in sys.modules:
        spec = importlib.util.find_spec("pyroute2")
        if spec is None:
            raise HostError("pyroute2 is not installed",
                            hint="run scripts/setup-host (it installs the "
                                 "Python dependencies)")
        sys.modules["pyroute2"] = importlib.util.module_from_spec(spec)
    from pyroute2.iproute.linux import IPRoute
    return IPRoute


def bridge_name(net_id):
    return "sb-" + net_id[:12]


def host_end(cid, net_id):
    return "v" + cid[:7] + net_id[:6]


def _link_index(ipr, name):
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _ensure_bridge(ipr, net):
    """The network's bridge, made on first use.  Two containers may start
    at once on a new network: whoever comes second finds the bridge (or
    its address) there already, which is fine.  Its MAC address is fixed
    (the gateway's, Docker's way: usernet.mac_for): a bridge left to
    itself takes the lowest of its ports', so it changed as containers
    came and went, and their packets to the gateway (DNS) went to the
    old one until their neighbour entry expired."""
    from pyroute2.netlink.exceptions import NetlinkError
    from .usernet import mac_for
    name = bridge_name(net["Id"])
    mac = mac_for(net["Gateway"])
    idx = _link_index(ipr, name)
    if idx is not None:
        link = ipr.get_links(idx)[0]
        if link.get_attr("IFLA_ADDRESS") != mac:           # (an older keeper's)
            ipr.link("set", index=idx, address=mac)
    else:
        try:
            ipr.link("add", ifname=name, kind="bridge", address=mac)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        idx = _link_index(ipr, name)
        try:
            ipr.addr("add", index=idx, address=net["Gateway"],
                     prefixlen=net["PrefixLen"])
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        ipr.link("set", index=idx, state="up")
    return idx


def _free_ifnames(ipr, count):
    """The first ``count`` ethN names not taken in the current namespace."""
    taken = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    out, n = [], 0
    while len(out) < count:
        if "eth%d" % n not in taken:
            out.append("eth%d" % n)
        n += 1
    return out


def _plug(keeper, ctr_pid, cid, endpoints):
    """In the user namespace: for each endpoint (a dict with the network's
    Id, Gateway, PrefixLen and the container's IPAddress, MacAddress),
    a veth pair from the network's bridge into the container's namespace.
    Returns {network id: interface name in the container}."""
    keeper_fd = os.open("/proc/%d/ns/net" % keeper, os.O_RDONLY | os.O_CLOEXEC)
    ctr_fd = os.open("/proc/%d/ns/net" % ctr_pid, os.O_RDONLY | os.O_CLOEXEC)
    linux.setns(ctr_fd, linux.CLONE_NEWNET)
    with _iproute() as ipr:
        names = dict(zip((ep["Id"] for ep in endpoints),
                         _free_ifnames(ipr, len(endpoints))))
    linux.setns(keeper_fd, linux.CLONE_NEWNET)
    with _iproute() as ipr:
        for ep in endpoints:
            br = _ensure_bridge(ipr, ep)
            host = host_end(cid, ep["Id"])
            old = _link_index(ipr, host)
            if old is not None:
                ipr.link("del", index=old)
            ipr.link("add", ifname=host, kind="veth",
                     peer={"ifname": names[ep["Id"]], "net_ns_fd": ctr_fd,
                           "address": ep["MacAddress"]})
            idx = _link_index(ipr, host)
            ipr.link("set", index=idx, master=br, state="up")
    linux.setns(ctr_fd, linux.CLONE_NEWNET)
    with _iproute() as ipr:
        for ep in endpoints:
            idx = _link_index(ipr, names[ep["Id"]])
            ipr.addr("add", index=idx, address=ep["IPAddress"],
                     prefixlen=ep["PrefixLen"])
            ipr.link("set", index=idx, state="up")
    return names


def plug(paths, ctr_pid, cid, endpoints):
    """Plug the container whose network namespace is that of host pid
    ``ctr_pid`` into the networks of ``endpoints``."""
    if not endpoints:
        return {}
    keeper = keeper_pid(paths)
    return userns.run_in_userns(_plug, keeper, ctr_pid, cid, endpoints)


def _unplug(keeper, cid, net_ids):
    linux.setns(os.open("/proc/%d/ns/net" % keeper, os.O_RDONLY | os.O_CLOEXEC),
                linux.CLONE_NEWNET)
    with _iproute() as ipr:
        for net_id in net_ids:
            idx = _link_index(ipr, host_end(cid, net_id))
            if idx is not None:
                ipr.link("del", index=idx)      # its peer goes with it


def unplug(paths, cid, net_ids):
    """Take the container off these networks (it keeps running)."""
    keeper = keeper_pid(paths)
    userns.run_in_userns(_unplug, keeper, cid, list(net_ids))


def _drop_bridge(keeper, net_id):
    linux.setns(os.open("/proc/%d/ns/net" % keeper, os.O_RDONLY | os.O_CLOEXEC),
                linux.CLONE_NEWNET)
    with _iproute() as ipr:
        idx = _link_index(ipr, bridge_name(net_id))
        if idx is not None:
            ipr.link("del", index=idx)


def drop_bridge(paths, net_id):
    """`network rm`: its bridge goes too (if the keeper runs at all; no
    keeper, no bridge, and no user namespace is made just to find out)."""
    try:
        record = fsutil.read_json(_record_path(paths), default={})
    except ValueError:
        return
    if not alive(record.get("pid"), record.get("start")):
        return
    try:
        nsfd = userns.shared_userns_fd()
    except (OSError, ValueError):
        return
    try:
        pid = _valid(record, nsfd)
    finally:
        os.close(nsfd)
    if pid:
        userns.run_in_userns(_drop_bridge, pid, net_id)
