"""How the container knows pasta has configured its namespace: the default
routes that netlink messages add (rtnl.default_routes), and which address
families pasta configures (pasta.routed_families: those of the host's
default routes)."""

import socket

from helpers.network import pasta, rtnl

NLM_F_REQUEST, NLM_F_DUMP, RTM_GETROUTE = 1, 0x300, 26


def route_message(family, dst_len, table=254, kind=rtnl.RTM_NEWROUTE):
    rtmsg = bytes((family, dst_len, 0, 0, table, 4, 0, 1)) + bytes(4)
    attr = (8).to_bytes(2, "little") + (15).to_bytes(2, "little") + bytes(4)  # RTA_TABLE
    body = rtmsg + attr
    return (16 + len(body)).to_bytes(4, "little") + kind.to_bytes(2, "little") + \
        bytes(10) + body


def test_only_default_routes_of_the_main_table_count():
    data = b"".join([
        route_message(2, 24),                     # 192.0.2.0/24: the subnet's
        route_message(10, 64),                    # fd00::/64
        route_message(2, 0, table=255),           # another table
        route_message(2, 0, kind=25),             # RTM_DELROUTE
        route_message(10, 0),                     # the IPv6 default
    ])
    assert list(rtnl.default_routes(data)) == [10]
    assert list(rtnl.default_routes(route_message(2, 0) + b"\0" * 7)) == [2]
    assert list(rtnl.default_routes(b"")) == []


def test_a_real_dump_of_this_hosts_routes_agrees_with_proc():
    """The kernel's own messages (a dump of the routes: RTM_NEWROUTE, as the
    events are) against /proc/net/route and /proc/net/ipv6_route."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        request = (28).to_bytes(4, "little") + RTM_GETROUTE.to_bytes(2, "little") + \
            (NLM_F_REQUEST | NLM_F_DUMP).to_bytes(2, "little") + bytes(8) + bytes(12)
        s.send(request)
        found, done = set(), False
        while not done:
            data = s.recv(1 << 16)
            found |= set(rtnl.default_routes(data))
            done = not data or any(kind == rtnl.NLMSG_DONE
                                   for kind, _, _ in rtnl.messages(data))
    assert found == pasta.routed_families()
    assert found, "this host has a default route"


CHILD = r"""
import fcntl, os, socket, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from helpers.network import rtnl
def ip(*args):
    subprocess.run(("ip",) + args, check=True)
for conf in ("all", "default"):     # no IPv6 chatter (DAD, RS) on the devices
    with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % conf, "w") as f:
        f.write("1")
# A tap device with us as its reader, as pasta is (TUNSETIFF: IFF_TAP | IFF_NO_PI).
tap = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
fcntl.ioctl(tap, 0x400454CA, b"sbt0".ljust(16, b"\0") + (0x1002).to_bytes(2, "little") + bytes(22))
ip("link", "set", "sbt0", "up")
ip("addr", "add", "192.0.2.9/24", "dev", "sbt0")
subprocess.run(["tc", "qdisc", "replace", "dev", "sbt0", "root", "pfifo"], check=True)
watch = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
watch.bind((0, 0x40 | 0x400))
before = rtnl.tap_frames(watch.fileno())
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.sendto(b"x", ("192.0.2.77", 9))     # an ARP request leaves first
time.sleep(0.05)
queued = rtnl.tap_frames(watch.fileno())
os.read(tap, 2048)
print(*before, *queued, *rtnl.tap_frames(watch.fileno()))
"""


def test_tap_frames_counts_what_left_and_what_the_reader_took():
    """In a network namespace of its own (root only): a tap device, as
    pasta's, that has passed nothing on; then one frame out of it (the ARP
    request before a datagram), queued for its reader; then read."""
    import os
    import shutil
    import subprocess
    import sys
    import pytest
    if os.geteuid() != 0 or not shutil.which("tc"):
        pytest.skip("needs root (a network namespace) and tc")
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(["unshare", "--net", sys.executable, "-c", CHILD, here],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0", "1", "0", "1", "1"]


def test_pasta_runs_as_its_avx2_build_where_the_cpu_has_avx2():
    """pasta.program(): what pasta itself would execute first (passt's
    arch_avx2_exec), so that it does not start twice."""
    import os
    import shutil
    with open("/proc/cpuinfo") as f:
        flags = [l.split(":", 1)[1].split() for l in f if l.startswith("flags")]
    has_avx2 = bool(flags) and all("avx2" in f for f in flags)
    assert pasta._cpu_has_avx2() == has_avx2
    real = shutil.which("pasta")
    if real is None:
        return
    build = os.path.realpath(real) + ".avx2"
    if has_avx2 and os.access(build, os.X_OK):
        assert pasta.program() == build
    else:
        assert os.path.basename(pasta.program()) == "pasta"
