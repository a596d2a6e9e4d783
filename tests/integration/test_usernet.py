"""User-defined networks: `network create|ls|inspect|rm|connect|disconnect|
prune`, `--network NAME`, `--network-alias`, `--ip`, name resolution between
peers, isolation between networks, published ports into them.

Every container's traffic stays inside namespaces the test user made (the
per-user network namespace with the bridges, the containers' own), or on
the host's loopback for published ports.  busybox wget -T crashes here, so
`timeout` bounds each fetch."""

import json
import os
import signal
import time

import pytest

from conftest import describe
from test_network import free_port, wait_http


def serve(sb, busybox, name, network, *flags):
    """A detached busybox httpd answering "hello from NAME" on port 80."""
    return sb.ok("run", "-d", "--name", name, "--network", network, *flags,
                 busybox, "sh", "-c",
                 "mkdir -p /www && echo hello from %s > /www/index.html && "
                 "exec httpd -f -v -p 80 -h /www" % name).stdout.strip()


def fetch(sb, container, host, timeout=3):
    return sb("exec", container, "timeout", str(timeout), "wget", "-q", "-O", "-",
              "http://%s/index.html" % host)


def fetch_until(sb, container, host, want, tries=40):
    for _ in range(tries):
        result = fetch(sb, container, host)
        if want in result.stdout:
            return result
        time.sleep(0.1)
    raise AssertionError("%s never got %r from %s: %s" % (container, want, host,
                                                          describe(result)))


def inspect(sb, ref, fmt="{{json .}}", kind=None):
    args = ["inspect"] + (["--type", kind] if kind else []) + ["-f", fmt, ref]
    return json.loads(sb.ok(*args).stdout)


@pytest.fixture
def nets(sb):
    """Names of networks a test creates; removed (with their users) after."""
    made = []
    yield made
    for cid in sb.ok("ps", "-aq").stdout.split():
        sb("rm", "-f", cid)
    for name in made:
        sb("network", "rm", "-f", name)


def keeper_links(sb):
    """Interface names in the user's network keeper (bridges, veth ends)."""
    with open(os.path.join(sb.runroot, "netns.json")) as f:
        pid = json.load(f)["pid"]
    result = sb.run_raw(["nsenter", "-t", str(pid), "-U", "-n",
                         "--preserve-credentials", "ip", "-o", "link"])
    assert result.returncode == 0, describe(result)
    return [line.split(":")[1].strip().partition("@")[0]
            for line in result.stdout.splitlines()]


def new_net(sb, nets, name, *flags):
    out = sb.ok("network", "create", *flags, name).stdout.strip()
    nets.append(name)
    assert len(out) == 64, out
    return out


def test_peers_by_name_and_alias_and_isolation(sb, busybox, nets):
    new_net(sb, nets, "front")
    new_net(sb, nets, "back")
    serve(sb, busybox, "web", "front", "--network-alias", "www")
    sb.ok("run", "-d", "--name", "client", "--network", "front", busybox,
          "sleep", "300")
    sb.ok("run", "-d", "--name", "other", "--network", "back", busybox,
          "sleep", "300")
    fetch_until(sb, "client", "web", "hello from web")
    result = fetch(sb, "client", "www")
    assert "hello from web" in result.stdout, describe(result)

    web_ip = inspect(sb, "web", "{{json .NetworkSettings.Networks.front.IPAddress}}")
    client_ip = inspect(sb, "client",
                        "{{json .NetworkSettings.Networks.front.IPAddress}}")
    # Another network's container: neither the name nor the address works.
    result = fetch(sb, "other", "web")
    assert result.returncode != 0 and "hello" not in result.stdout, describe(result)
    result = fetch(sb, "other", web_ip)
    assert "hello" not in result.stdout, describe(result)
    other_ip = inspect(sb, "other", "{{json .NetworkSettings.Networks.back.IPAddress}}")
    log = sb.ok("logs", "web").stderr + sb.ok("logs", "web").stdout
    assert client_ip in log, log           # the server sees its peer's address
    assert other_ip not in log, log

    hosts = sb.ok("exec", "client", "cat", "/etc/hosts").stdout
    assert "%s\tweb" % web_ip in hosts and "www" in hosts, hosts
    assert "other" not in hosts, hosts


def test_peers_resolve_by_dns_at_the_gateway(sb, busybox, nets):
    """As Docker's embedded DNS and podman's aardvark-dns: the gateway
    (the first name server; the host's follow) answers the names, aliases
    and short ids of the containers on the asker's networks, learns of a
    container started later or connected, forgets a removed one, and
    answers REFUSED to anything else, which sends a resolver on to the
    next server."""
    new_net(sb, nets, "dnsa")
    new_net(sb, nets, "dnsb")
    web = sb.ok("run", "-d", "--name", "dweb", "--network", "dnsa", "--network-alias",
                "dapi", busybox, "sleep", "300").stdout.strip()
    sb.ok("run", "-d", "--name", "dfar", "--network", "dnsb", busybox, "sleep", "300")
    sb.ok("run", "-d", "--name", "dclient", "--network", "dnsa", busybox, "sleep", "300")
    gateway = inspect(sb, "dclient", "{{json .NetworkSettings.Networks.dnsa.Gateway}}")
    resolv = sb.ok("exec", "dclient", "cat", "/etc/resolv.conf").stdout.splitlines()
    assert resolv[0] == "nameserver " + gateway and len(resolv) > 1, resolv

    def address(ctr, net):
        return inspect(sb, ctr, "{{json .NetworkSettings.Networks.%s.IPAddress}}" % net)

    def lookup(ctr, name):
        r = sb("exec", ctr, "nslookup", name)
        return r.returncode, r.stdout
    for name in ("dweb", "dapi", web[:12], "DWEB"):
        code, out = lookup("dclient", name)
        assert code == 0 and "Address: %s" % address("dweb", "dnsa") in out, out
    code, out = lookup("dclient", "dfar")                 # another network's
    assert code != 0 and "REFUSED" in out, out
    code, out = lookup("dclient", address("dweb", "dnsa"))   # the address's name
    assert code == 0 and "name = dweb" in out, out
    code, out = lookup("dclient", "nothing.example")
    assert code != 0 and "REFUSED" in out, out
    sb.ok("run", "-d", "--name", "dlate", "--network", "dnsa", busybox, "sleep", "300")
    code, out = lookup("dweb", "dlate")
    assert code == 0 and "Address: %s" % address("dlate", "dnsa") in out, out
    sb.ok("network", "connect", "dnsb", "dclient")         # now it sees dnsb's too
    code, out = lookup("dclient", "dfar")
    assert code == 0 and "Address: %s" % address("dfar", "dnsb") in out, out
    code, out = lookup("dweb", "dfar")                     # but dweb does not
    assert code != 0, out
    sb.ok("rm", "-f", "dlate")
    code, out = lookup("dweb", "dlate")
    assert code != 0 and "REFUSED" in out, out


DNS_PROBE = r"""
import socket, struct, sys
gw = sys.argv[1]
def q(labels, flags=0x0100, qd=1, tail=b"\0\0\1\0\1"):
    out = struct.pack(">HHHHHH", 7, flags, qd, 0, 0, 0)
    return out + b"".join(bytes([len(l)]) + l for l in labels) + tail
bad = [b"", b"\0" * 11, q([b"x"], flags=0x8100), q([b"x"], qd=2), q([b"x"], tail=b"\0\0"),
       q([b"x" * 64]), q([b"y" * 63] * 5), q([b"x"], tail=b"\xc0\x0c\0\1\0\1"),
       struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x3f" + b"z" * 10, b"\xff" * 600]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((gw, 0))                      # asks from the gateway's own address
for p in bad:
    s.sendto(p, (gw, 53))
s.settimeout(2)
s.sendto(q([b"nosuch"]), (gw, 53))
while True:
    r = s.recv(512)
    if r[:2] == b"\0\7" and len(r) >= 12:
        print(r[3] & 15)             # REFUSED (5): still answering
        break
"""


def test_the_gateways_dns_survives_malformed_questions(sb, busybox, nets):
    """The keeper answers DNS from native code that reads what containers
    send: malformed questions are dropped, and it answers on."""
    new_net(sb, nets, "dnsbad")
    sb.ok("run", "-d", "--name", "dnsbad1", "--network", "dnsbad", busybox, "sleep", "300")
    gateway = inspect(sb, "dnsbad1", "{{json .NetworkSettings.Networks.dnsbad.Gateway}}")
    with open(os.path.join(sb.runroot, "netns.json")) as f:
        pid = json.load(f)["pid"]
    result = sb.run_raw(["nsenter", "-t", str(pid), "-U", "-n", "--preserve-credentials",
                         "/usr/bin/python3", "-c", DNS_PROBE, gateway])
    assert result.returncode == 0 and result.stdout == "5\n", describe(result)
    os.kill(pid, 0)                                       # still there
    r = sb("exec", "dnsbad1", "nslookup", "dnsbad1")
    assert r.returncode == 0, describe(r)


def test_inspect_shapes(sb, busybox, nets):
    net_id = new_net(sb, nets, "shape", "--subnet", "10.123.4.0/24",
                     "--gateway", "10.123.4.254", "--label", "team=a")
    cid = sb.ok("run", "-d", "--name", "shaped", "--network", "shape",
                "--ip", "10.123.4.9", "--network-alias", "db", busybox,
                "sleep", "300").stdout.strip()
    ep = inspect(sb, cid, "{{json .NetworkSettings.Networks.shape}}")
    assert ep["IPAddress"] == "10.123.4.9" and ep["IPPrefixLen"] == 24
    assert ep["Gateway"] == "10.123.4.254" and ep["NetworkID"] == net_id
    assert ep["MacAddress"] == "02:42:0a:7b:04:09"
    assert ep["Aliases"] == ["db"]
    assert ep["IPAMConfig"] == {"IPv4Address": "10.123.4.9"}
    assert inspect(sb, cid, "{{json .HostConfig.NetworkMode}}") == "shape"

    net = json.loads(sb.ok("network", "inspect", "shape").stdout)[0]
    assert net["Id"] == net_id and net["Driver"] == "bridge"
    assert net["IPAM"]["Config"] == [{"Subnet": "10.123.4.0/24",
                                      "Gateway": "10.123.4.254"}]
    assert net["Labels"] == {"team": "a"} and net["Internal"] is False
    assert net["Containers"][cid]["IPv4Address"] == "10.123.4.9/24"
    assert net["Containers"][cid]["Name"] == "shaped"
    out = sb.ok("inspect", "--type", "network", "-f", "{{.Id}}", "shape").stdout
    assert out.strip() == net_id

    # Inside: eth0 with that address, the gateway on the bridge answers.
    result = sb.ok("exec", cid, "sh", "-c", "ip -o -4 addr show eth0; "
                   "ping -c1 -W2 10.123.4.254 >/dev/null && echo gw-ok")
    assert "10.123.4.9/24" in result.stdout and "gw-ok" in result.stdout, \
        describe(result)

    ls = sb.ok("network", "ls").stdout.splitlines()
    assert ls[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    names = [line.split()[1] for line in ls[1:]]
    assert names[:3] == ["bridge", "host", "none"] and "shape" in names
    assert sb.ok("network", "ls", "-q", "--filter", "name=shape").stdout.strip() \
        == net_id[:12]
    assert sb.ok("network", "ls", "--filter", "type=custom", "--format",
                 "{{.Name}} {{.Driver}}").stdout.split("\n")[0] == "shape bridge"


def test_published_port_reaches_container_on_user_network(sb, busybox, nets):
    new_net(sb, nets, "pub")
    port = free_port()
    serve(sb, busybox, "pubweb", "pub", "-p", "127.0.0.1:%d:80" % port)
    assert "hello from pubweb" in wait_http(port)
    assert sb.ok("port", "pubweb", "80").stdout.strip() == "127.0.0.1:%d" % port


def test_internal_network_has_no_way_out(sb, busybox, nets):
    new_net(sb, nets, "inside", "--internal")
    result = sb.ok("run", "--rm", "--network", "inside", busybox, "sh", "-c",
                   "ip -o link | cut -d: -f2; echo routes; ip route")
    links = result.stdout.split("routes")[0].split()
    assert sorted(l.partition("@")[0] for l in links) == ["eth0", "lo"], describe(result)
    assert "default" not in result.stdout.split("routes")[1], describe(result)
    result = sb("run", "--rm", "--network", "inside", "-p", "8080:80", busybox, "true")
    assert result.returncode == 125 and "internal" in result.stderr, describe(result)


def test_connect_and_disconnect_a_running_container(sb, busybox, nets):
    new_net(sb, nets, "red")
    new_net(sb, nets, "blue")
    serve(sb, busybox, "redweb", "red")
    sb.ok("run", "-d", "--name", "hopper", "--network", "blue", busybox,
          "sleep", "300")
    assert fetch(sb, "hopper", "redweb").returncode != 0
    sb.ok("network", "connect", "--alias", "hop", "red", "hopper")
    fetch_until(sb, "hopper", "redweb", "hello from redweb")
    links = sb.ok("exec", "hopper", "ip", "-o", "link").stdout
    assert "eth1" in links, links
    # The server's side sees the newcomer by its alias.
    hosts = sb.ok("exec", "redweb", "cat", "/etc/hosts").stdout
    assert "hop" in hosts and "hopper" in hosts, hosts
    net = json.loads(sb.ok("network", "inspect", "red").stdout)[0]
    assert sorted(c["Name"] for c in net["Containers"].values()) == ["hopper", "redweb"]

    result = sb("network", "connect", "red", "hopper")
    assert result.returncode == 1 and "already connected" in result.stderr

    sb.ok("network", "disconnect", "red", "hopper")
    links = sb.ok("exec", "hopper", "ip", "-o", "link").stdout
    assert "eth1" not in links, links
    assert fetch(sb, "hopper", "redweb").returncode != 0
    hosts = sb.ok("exec", "redweb", "cat", "/etc/hosts").stdout
    assert "hopper" not in hosts, hosts
    result = sb("network", "disconnect", "red", "hopper")
    assert result.returncode == 1 and "not connected" in result.stderr


def test_connect_default_network_container_and_stopped_one(sb, busybox, nets):
    new_net(sb, nets, "late")
    serve(sb, busybox, "lateweb", "late")
    # A container on the default network keeps its way out and gains eth.
    sb.ok("run", "-d", "--name", "plain", busybox, "sleep", "300")
    sb.ok("network", "connect", "late", "plain")
    fetch_until(sb, "plain", "lateweb", "hello from lateweb")
    # A stopped container is on the network from its next start.
    sb.ok("create", "--name", "sleeper", busybox, "sleep", "300")
    sb.ok("network", "connect", "late", "sleeper")
    sb.ok("start", "sleeper")
    fetch_until(sb, "sleeper", "lateweb", "hello from lateweb")
    for mode in ("none", "host"):
        sb.ok("create", "--name", "m-" + mode, "--network", mode, busybox, "true")
        result = sb("network", "connect", "late", "m-" + mode)
        assert result.returncode == 1 and mode in result.stderr, describe(result)


def test_addresses_are_released_and_reused(sb, busybox, nets):
    new_net(sb, nets, "tiny", "--subnet", "10.124.0.0/30")   # one address
    sb.ok("run", "-d", "--name", "first", "--network", "tiny", busybox, "sleep", "300")
    assert inspect(sb, "first", "{{json .NetworkSettings.Networks.tiny.IPAddress}}") \
        == "10.124.0.2"
    result = sb("run", "--rm", "--network", "tiny", busybox, "true")
    assert result.returncode != 0 and "no free address" in result.stderr, describe(result)
    sb.ok("stop", "-t", "1", "first")
    sb.ok("run", "--rm", "--network", "tiny", busybox, "true")
    # A supervisor killed outright: its lease is taken back too.
    sb.ok("start", "first")
    cid = sb.ok("inspect", "-f", "{{.Id}}", "first").stdout.strip()
    with open("%s/containers/%s/state.json" % (sb.root, cid)) as f:
        monitor = json.load(f)["MonitorPid"]
    os.kill(monitor, signal.SIGKILL)
    time.sleep(0.3)
    sb.ok("run", "--rm", "--network", "tiny", busybox, "true")


def test_static_ip_clash_and_bad_values(sb, busybox, nets):
    new_net(sb, nets, "fixed", "--subnet", "10.125.0.0/24")
    sb.ok("run", "-d", "--name", "holder", "--network", "fixed", "--ip",
          "10.125.0.50", busybox, "sleep", "300")
    result = sb("run", "--rm", "--network", "fixed", "--ip", "10.125.0.50",
                busybox, "true")
    assert result.returncode != 0 and "already in use" in result.stderr, describe(result)
    for bad, word in (("10.126.0.5", "not a host address"), ("10.125.0.0", "not a host"),
                      ("nonsense", "invalid --ip")):
        result = sb("run", "--rm", "--network", "fixed", "--ip", bad, busybox, "true")
        assert result.returncode == 125 and word in result.stderr, describe(result)
    result = sb("run", "--rm", "--ip", "10.125.0.9", busybox, "true")
    assert result.returncode == 125 and "user-defined" in result.stderr


def test_network_verbs_errors_and_prune(sb, busybox, nets):
    new_net(sb, nets, "keep", "--subnet", "10.127.0.0/24")
    for args, code, word in (
            (["network", "create", "keep"], 125, "already exists"),
            (["network", "create", "--subnet", "10.127.0.128/25", "x1"], 125, "overlaps"),
            (["network", "create", "--subnet", "nope", "x2"], 125, "invalid subnet"),
            (["network", "create", "bridge"], 125, "pre-defined"),
            (["network", "create", "-d", "overlay", "x3"], 125, "not supported"),
            (["network", "rm", "host"], 1, "pre-defined"),
            (["network", "rm", "ghost"], 1, "not found"),
            (["network", "inspect", "ghost"], 1, "not found"),
            (["run", "--rm", "--network", "ghost", busybox, "true"], 125, "not found")):
        result = sb(*args)
        assert result.returncode == code and word in result.stderr, describe(result)
    # The host's own subnet is refused.
    host_net = sb.run_raw(["ip", "-4", "-o", "route", "show", "scope", "link"]).stdout.split()
    if host_net:
        result = sb("network", "create", "--subnet", host_net[0], "x4")
        assert result.returncode == 125 and "host" in result.stderr, describe(result)

    sb.ok("run", "-d", "--name", "user", "--network", "keep", busybox, "sleep", "300")
    result = sb("network", "rm", "keep")
    assert result.returncode == 1 and "active endpoints" in result.stderr
    new_net(sb, nets, "unused")
    out = sb.ok("network", "prune", "-f").stdout
    assert "unused" in out and "keep" not in out, out
    names = sb.ok("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "unused" not in names and "keep" in names
    keep_id = sb.ok("network", "inspect", "-f", "{{.Id}}", "keep").stdout.strip()
    assert "sb-" + keep_id[:12] in keeper_links(sb)
    sb.ok("rm", "-f", "user")
    sb.ok("network", "rm", "keep")
    assert "keep" not in sb.ok("network", "ls").stdout
    assert "sb-" + keep_id[:12] not in keeper_links(sb)      # its bridge went too
    sb.ok("network", "rm", "-f", "keep")           # -f: gone already is fine


def test_containers_starting_at_once_on_a_new_network(sb, busybox, nets):
    """The first users of a network race to make its bridge and to lease
    addresses: every one of them must start, each with its own address."""
    new_net(sb, nets, "rush")
    procs = [sb.popen("run", "-d", "--name", "rush%d" % i, "--network", "rush",
                      busybox, "sleep", "300") for i in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    addrs = {inspect(sb, "rush%d" % i,
                     "{{json .NetworkSettings.Networks.rush.IPAddress}}")
             for i in range(4)}
    assert len(addrs) == 4 and "" not in addrs, addrs
    fetch_result = sb("exec", "rush0", "ping", "-c1", "-W2", "rush3")
    assert fetch_result.returncode == 0, describe(fetch_result)


def test_a_restarted_container_keeps_its_address(sb, busybox, nets):
    new_net(sb, nets, "sticky")
    ip = "{{json .NetworkSettings.Networks.sticky.IPAddress}}"
    for name in ("first", "second"):
        sb.ok("run", "-d", "--name", name, "--network", "sticky", busybox, "sleep", "300")
    before = inspect(sb, "second", ip)
    sb.ok("stop", "-t", "0", "first", "second")
    sb.ok("start", "second")          # the first address is free: not taken
    assert inspect(sb, "second", ip) == before
    sb.ok("restart", "-t", "0", "second")
    assert inspect(sb, "second", ip) == before


def test_ip_range_and_aux_addresses(sb, busybox, nets):
    """--ip-range: containers get addresses from that part of the subnet;
    --aux-address: never given out (nor taken with --ip); both need
    --subnet; inspect shows them in IPAM.Config; --attachable accepted,
    --ipv6 refused with the reason."""
    new_net(sb, nets, "ranged", "--subnet", "10.127.0.0/24", "--ip-range",
            "10.127.0.128/25", "--aux-address", "router=10.127.0.128", "--attachable")
    sb.ok("run", "-d", "--name", "ranged-1", "--network", "ranged", busybox, "sleep", "300")
    assert inspect(sb, "ranged-1", "{{json .NetworkSettings.Networks.ranged.IPAddress}}") \
        == "10.127.0.129"
    config = json.loads(sb.ok("network", "inspect", "-f", "{{json .IPAM.Config}}",
                              "ranged").stdout)
    assert config == [{"Subnet": "10.127.0.0/24", "Gateway": "10.127.0.1",
                       "IPRange": "10.127.0.128/25",
                       "AuxiliaryAddresses": {"router": "10.127.0.128"}}]
    sb.ok("run", "--rm", "--network", "ranged", "--ip", "10.127.0.20", busybox, "true")
    r = sb("run", "--rm", "--network", "ranged", "--ip", "10.127.0.128", busybox, "true")
    assert r.returncode == 125 and "reserved" in r.stderr, describe(r)
    for flags, message in ((["--ip-range", "10.1.0.0/24"], "needs --subnet"),
                           (["--subnet", "10.128.0.0/24", "--ip-range", "10.129.0.0/25"],
                            "not inside the subnet"),
                           (["--subnet", "10.128.0.0/24", "--aux-address", "x=10.9.9.9"],
                            "not inside the subnet"),
                           (["--ipv6"], "--ipv6 is not supported")):
        r = sb("network", "create", *flags, "bad-net")
        assert r.returncode == 125 and message in r.stderr, (flags, r.stderr)


def test_a_missing_command_on_a_user_network(sb, busybox, nets):
    """PID 1's exec fails before its network is plugged: the command's own
    error, as without a network (it was a FileNotFoundError of its
    /proc/PID/ns/net): `start` exits 1, `run -d` 127, the record says 127."""
    new_net(sb, nets, "missing-cmd-net")
    sb.ok("create", "--name", "missing-cmd", "--network", "missing-cmd-net", busybox,
          "no-such-command")
    r = sb("start", "missing-cmd")
    assert r.returncode == 1 and "executable file not found" in r.stderr, describe(r)
    assert sb.ok("inspect", "-f", "{{.State.ExitCode}}", "missing-cmd").stdout == "127\n"
    r = sb("run", "-d", "--network", "missing-cmd-net", busybox, "no-such-command")
    assert r.returncode == 127 and "executable file not found" in r.stderr, describe(r)
