"""Networking: the default user-mode network (pasta, slirp4netns), --network
none/host/container:NAME, published ports, /etc files, and the errors.

Every connection stays on the host's loopback: the host side talks to
127.0.0.1, a container reaches the host only through its helper's gateway
mapped to the host's 127.0.0.1 (allow_host_loopback) or the host's own address
(host-gateway), which stays on the host too.  Nothing here sends a
packet to any other address."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import describe, host_http_server

HELPERS = ["pasta", "slirp4netns"]


def free_port(proto="tcp"):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, timeout=10.0, path="/index.html"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                        timeout=2) as r:
                return r.read().decode()
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError("nothing answered on 127.0.0.1:%d: %s" % (port, last))


def httpd(sb, busybox, *flags, name=None):
    """A detached busybox httpd serving "hello" on port 80; returns its id."""
    args = ["run", "-d"] + (["--name", name] if name else []) + list(flags) + [
        busybox, "sh", "-c",
        "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -v -p 80 -h /www"]
    return sb.ok(*args).stdout.strip()


def record(sb, cid):
    with open(os.path.join(sb.root, "containers", cid, "state.json")) as f:
        return json.load(f)


def port_is_free(port):
    """Free for a new listener (which sets SO_REUSEADDR: our own client
    connections may leave the port in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# --- modes ---------------------------------------------------------------

def test_default_network_is_pasta_with_a_route(sb, busybox):
    result = sb.ok("run", "--rm", busybox, "sh", "-c", "ip -o link; ip route")
    assert "default via" in result.stdout, describe(result)
    cid = sb.ok("create", busybox, "true").stdout.strip()
    assert record(sb, cid)["NetworkMode"] == "pasta"
    sb.ok("rm", cid)


@pytest.mark.parametrize("helper", HELPERS)
def test_helper_gives_an_interface_and_resolv_conf(sb, busybox, helper):
    result = sb.ok("run", "--rm", "--network", helper, busybox, "sh", "-c",
                   "ip -o addr; cat /etc/resolv.conf /etc/hosts")
    if helper == "slirp4netns":
        assert "tap0" in result.stdout and "10.0.2.100/24" in result.stdout
        assert "nameserver 10.0.2.3" in result.stdout
    else:
        assert "eth0" in result.stdout
    assert "127.0.0.1\tlocalhost" in result.stdout


def test_none_shows_only_lo(sb, busybox):
    result = sb.ok("run", "--rm", "--network", "none", busybox, "ip", "-o", "link")
    links = [line.split(":")[1].strip() for line in result.stdout.splitlines()]
    assert links == ["lo"], describe(result)


def test_pasta_is_ipv4_only_unless_asked(sb, busybox):
    """Docker's networks and slirp4netns have no IPv6 by default; pasta
    neither (it is also lighter so), unless enable_ipv6=true (where the
    host has an IPv6 default route to copy)."""
    show = "ip -o -6 addr show scope global; ip -6 route show default"
    assert sb.ok("run", "--rm", busybox, "sh", "-c", show).stdout.strip() == ""
    with open("/proc/net/ipv6_route") as f:
        routed = any(line.split()[0] == "0" * 32 and line.split()[1] == "00"
                     and line.split()[9] != "lo" for line in f)
    if not routed:
        pytest.skip("this host has no IPv6 default route for pasta to copy")
    out = sb.ok("run", "--rm", "--network", "pasta:enable_ipv6=true", busybox,
                "sh", "-c", show).stdout
    assert " inet6 " in out and "default via" in out, out
    bad = sb("run", "--rm", "--network", "pasta:enable_ipv6=maybe", busybox, "true")
    assert bad.returncode == 125 and "enable_ipv6" in bad.stderr


def test_dns_and_hosts_flags(sb, busybox):
    result = sb.ok("run", "--rm", "--name", "dnsbox", "--dns", "192.0.2.53",
                   "--dns-search", "example.test", "--dns-option", "ndots:2",
                   "--add-host", "db.test:10.1.2.3", "--add-host",
                   "host.test:host-gateway", "--network", "slirp4netns", busybox,
                   "cat", "/etc/resolv.conf", "/etc/hosts")
    out = result.stdout
    assert "nameserver 192.0.2.53" in out and "nameserver 10.0.2.3" not in out
    assert "search example.test" in out and "options ndots:2" in out
    assert "10.1.2.3\tdb.test" in out
    # host-gateway: the host's own address (10.0.2.2 would need
    # allow_host_loopback)
    assert "%s\thost.test" % _host_address() in out
    assert "dnsbox" in out           # its own name in /etc/hosts


def test_containers_conf_chooses_the_default_helper(sb, busybox):
    """podman's `[network] default_rootless_network_cmd` (containers.conf:
    the user's file under $XDG_CONFIG_HOME, or $CONTAINERS_CONF alone)."""
    from conftest import TESTS_TMP
    config = tempfile.mkdtemp(dir=TESTS_TMP)
    try:
        os.makedirs(os.path.join(config, "containers"))
        conf = os.path.join(config, "containers", "containers.conf")
        other = os.path.join(config, "other.conf")

        def write(path, text):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
        for d in (config, os.path.join(config, "containers")):
            os.chmod(d, 0o755)

        def addresses(env):
            out = sb.ok("run", "--rm", busybox, "ip", "-o", "-4", "addr", env=env).stdout
            return [line.split()[3] for line in out.splitlines() if " lo " not in line]
        env = {"XDG_CONFIG_HOME": config}
        write(conf, '# ours\n[network]\ndefault_rootless_network_cmd = "slirp4netns"\n')
        assert addresses(env) == ["10.0.2.100/24"]           # slirp4netns' address
        info = sb.ok("info", env=env).stdout
        assert "Default network: slirp4netns (default_rootless_network_cmd in %s)" % conf in info
        # $CONTAINERS_CONF is read instead of every other file.
        write(other, '[network]\ndefault_rootless_network_cmd = "pasta"\n')
        assert addresses(dict(env, CONTAINERS_CONF=other)) != ["10.0.2.100/24"]
        write(conf, '[network]\ndefault_rootless_network_cmd = "vpnkit"\n')
        bad = sb("run", "--rm", busybox, "true", env=env)
        assert bad.returncode == 125 and "'vpnkit': not a network helper" in bad.stderr, \
            describe(bad)
        assert conf in bad.stderr
        write(conf, '[network\ndefault_rootless_network_cmd = "slirp4netns"\n')
        broken = sb("run", "--rm", busybox, "true", env=env)
        assert broken.returncode == 125 and conf in broken.stderr, describe(broken)
        write(conf, "[engine]\n")                   # silent on it: pasta, as without
        assert addresses(env) != ["10.0.2.100/24"]
    finally:
        import shutil
        shutil.rmtree(config)


def test_container_network_joins_the_other_namespace(sb, busybox):
    cid = httpd(sb, busybox, "--network", "none", name="netowner")
    try:
        # (busybox wget -T crashes here: retry instead)
        result = sb.ok("run", "--rm", "--network", "container:netowner", busybox,
                       "sh", "-c", "for i in $(seq 100); do wget -q -O - "
                       "http://127.0.0.1/index.html && exit; sleep 0.1; done; exit 1")
        assert result.stdout.strip() == "hello"
    finally:
        sb.ok("rm", "-f", cid)
    result = sb("run", "--rm", "--network", "container:netowner", busybox, "true")
    assert result.returncode == 1 and "No such container" in result.stderr


# --- published ports -------------------------------------------------------

@pytest.mark.parametrize("helper", HELPERS)
def test_httpd_answers_through_published_port(sb, busybox, helper):
    port = free_port()
    cid = httpd(sb, busybox, "--network", helper, "-p", "127.0.0.1:%d:80" % port)
    try:
        assert wait_http(port).strip() == "hello"
        # The server logs the client's address: 127.0.0.1 through pasta
        # (loopback clients are spliced), the gateway through slirp4netns.
        logs = sb.ok("logs", cid).stderr
        expected = "127.0.0.1" if helper == "pasta" else "10.0.2.2"
        assert expected in logs, logs
        assert sb.ok("port", cid, "80").stdout.strip() == "127.0.0.1:%d" % port
        info = json.loads(sb.ok("inspect", cid).stdout)[0]
        assert info["HostConfig"]["PortBindings"] == {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        assert info["NetworkSettings"]["Ports"]["80/tcp"] == [
            {"HostIp": "127.0.0.1", "HostPort": str(port)}]
    finally:
        sb.ok("rm", "-f", cid)
    assert port_is_free(port), "host port %d still taken after rm" % port


def listeners_of(pid):
    """The host's listening TCP ports whose socket is one of pid's fds."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):      # the host's namespace
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:     # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


DIRECT = "pasta:direct_ports=true"


def test_published_port_goes_direct_to_the_server(sb, busybox):
    """Detached, with --network pasta:direct_ports=true: the server's
    listening socket for a published TCP port is the host's own (swapped in
    when it binds), so clients reach it with no relay and it sees their
    real address; the container's own connections to the port still work
    (pasta's -T), and the port is free again once the container is gone."""
    port = free_port()
    cid = httpd(sb, busybox, "--network", DIRECT, "-p", "127.0.0.1:%d:80" % port)
    try:
        assert wait_http(port).strip() == "hello"
        st = record(sb, cid)
        assert port in listeners_of(st["Pid"])        # httpd holds the host's socket
        with open("/proc/%d/cmdline" % st["NetworkHelper"]["Pid"], "rb") as f:
            argv = f.read().split(b"\0")
        assert b"-T" in argv and argv[argv.index(b"-T") + 1] == b"80:%d" % port
        assert argv[argv.index(b"-t") + 1] == b"none"
        # A client from 127.0.0.2: the server logs that address (pasta's
        # relay would show 127.0.0.1).
        with socket.socket() as c:
            c.bind(("127.0.0.2", 0))
            c.settimeout(5)
            c.connect(("127.0.0.1", port))
            c.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            while c.recv(4096):
                pass
        deadline = time.monotonic() + 5
        while "127.0.0.2" not in sb.ok("logs", cid).stderr and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "127.0.0.2" in sb.ok("logs", cid).stderr
        inside = sb("exec", cid, "wget", "-qO-", "http://127.0.0.1:80/index.html")
        assert inside.returncode == 0 and inside.stdout.strip() == "hello", describe(inside)
        assert sb.ok("port", cid, "80").stdout.strip() == "127.0.0.1:%d" % port
    finally:
        sb.ok("rm", "-f", cid)
    assert port_is_free(port)


def test_pod_sidecar_serves_the_owners_direct_port(sb, busybox):
    """A container on another's network (--network container:NAME, as in
    a pod) that serves the owner's published port gets the host socket
    too (and does not collide with pasta's -T in the shared namespace)."""
    port = free_port()
    owner = sb.ok("run", "-d", "--name", "pod", "--network", DIRECT,
                  "-p", "127.0.0.1:%d:80" % port, busybox, "sleep", "600").stdout.strip()
    side = None
    try:
        side = httpd(sb, busybox, "--network", "container:pod")
        assert wait_http(port).strip() == "hello"
        assert port in listeners_of(record(sb, side)["Pid"])
    finally:
        sb.ok("rm", "-f", *([side] if side else []), owner)
    assert port_is_free(port)


def test_direct_port_taken_meanwhile_fails_the_bind(sb, busybox):
    """The host port is checked free at start, but the server binds it
    later: if something took it in between, the server's bind fails with
    EADDRINUSE, as it would on the host (nothing is left half-set-up)."""
    port = free_port()
    cid = sb.ok("run", "-d", "--network", DIRECT, "-p", "127.0.0.1:%d:80" % port, busybox,
                "sh", "-c",
                "sleep 1; mkdir -p /www; httpd -f -p 80 -h /www; echo status=$?").stdout.strip()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        code = sb.ok("wait", cid, timeout=30).stdout.strip()
    logs = sb.ok("logs", cid)
    sb.ok("rm", cid)
    assert code == "0" and "status=1" in logs.stdout, describe(logs)
    assert "in use" in logs.stderr, describe(logs)


@pytest.fixture(scope="module")
def client_from_listener(sb):
    """native/client_from_listener.c, built static (the image has no libc)
    next to the module's store, where the test user reads it: for
    -v DIR:/probe:ro."""
    out = tempfile.mkdtemp(dir=os.path.dirname(sb.root))
    os.chmod(out, 0o755)
    src = os.path.join(os.path.dirname(__file__), "native", "client_from_listener.c")
    subprocess.run(["gcc", "-O2", "-static", "-o",
                    os.path.join(out, "client_from_listener"), src], check=True)
    return out


@pytest.fixture
def host_listener():
    """A TCP service on the host's 127.0.0.1 (the kind a container must not
    reach), and a port there with nothing on it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1], free_port()


@pytest.mark.parametrize("direct", [False, True])
def test_a_server_cannot_reach_the_hosts_loopback_unless_direct(
        sb, busybox, client_from_listener, host_listener, direct):
    """A hostile server binds its published port and tries to turn that
    socket into a client of a service on the host's loopback.  By default
    its socket is the container's own: it reaches only the container's
    loopback (refused, both ports).  With direct_ports=true it is the
    host's, and it gets through: what README says that option gives away."""
    open_port, closed_port = host_listener
    port = free_port()
    flags = ["--network", DIRECT] if direct else []
    cid = sb.ok("run", "-d", *flags, "-v", "%s:/probe:ro" % client_from_listener,
                "-p", "127.0.0.1:%d:80" % port, busybox, "/probe/client_from_listener",
                "80", str(open_port), str(closed_port)).stdout.strip()
    try:
        assert sb.ok("wait", cid, timeout=60).stdout.strip() == "0"
        lines = sb.ok("logs", cid).stdout.splitlines()
    finally:
        sb.ok("rm", "-f", cid)
    if direct:
        assert lines == ["bound %d" % port, "%d connected 0" % open_port,
                         "%d refused 111" % closed_port], lines
    else:
        assert lines == ["bound 80", "%d refused 111" % open_port,
                         "%d refused 111" % closed_port], lines


def test_foreground_run_publishes_and_releases(sb, busybox):
    port = free_port()
    proc = sb.popen("run", "--rm", "--init", "-p", "%d:80" % port, busybox, "sh", "-c",
                    "mkdir /www && echo fg > /www/index.html && exec httpd -f -p 80 -h /www")
    try:
        assert wait_http(port).strip() == "fg"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    assert port_is_free(port)


def test_publish_all_uses_free_ports(sb, busybox):
    cid = httpd(sb, busybox, "-P", "--expose", "80")
    try:
        line = sb.ok("port", cid).stdout.strip()
        assert line.startswith("80/tcp -> 0.0.0.0:"), line
        assert wait_http(int(line.rpartition(":")[2])).strip() == "hello"
    finally:
        sb.ok("rm", "-f", cid)


def test_two_thousand_requests_without_a_failure(sb, busybox):
    port = free_port()
    cid = httpd(sb, busybox, "-p", "127.0.0.1:%d:80" % port)
    try:
        wait_http(port)
        failures = []
        for i in range(2000):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                if not data.startswith(b"HTTP/1.") or b" 200 " not in data[:16] \
                        or not data.endswith(b"hello\n"):
                    failures.append((i, data[:80]))
            except OSError as exc:
                failures.append((i, exc))
        assert not failures, "%d failures, first: %r" % (len(failures), failures[:3])
    finally:
        sb.ok("rm", "-f", cid)


def test_udp_echo_through_published_port(sb, images_dir):
    """slirp4netns answers UDP clients on the host's loopback only with
    allow_host_loopback (its --disable-host-loopback drops the replies);
    Debian 12's pasta (passt 2023-03) loses UDP replies to loopback clients."""
    sb.ok("load", "-i", os.path.join(images_dir, "debian.tar"))
    port = free_port("udp")
    server = ('$|=1; $s=IO::Socket::INET->new(LocalPort=>9999,Proto=>"udp") or die;'
              'while($p=$s->recv($m,2048)){print "from ",$s->peerhost,"\\n";'
              '$s->send("echo:$m",0,$p)}')
    cid = sb.ok("run", "-d", "--network", "slirp4netns:allow_host_loopback=true",
                "-p", "127.0.0.1:%d:9999/udp" % port, "localhost/debian:bookworm",
                "perl", "-MIO::Socket::INET", "-e", server).stdout.strip()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            reply = None
            for _ in range(20):
                s.sendto(b"ping", ("127.0.0.1", port))
                try:
                    reply = s.recvfrom(100)[0]
                    break
                except socket.timeout:
                    continue
        assert reply == b"echo:ping"
        assert "from 10.0.2.2" in sb.ok("logs", cid).stdout
    finally:
        sb.ok("rm", "-f", cid)


def test_port_in_use_is_refused_before_start(sb, busybox):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = sb("run", "--rm", "-p", "127.0.0.1:%d:80" % port, busybox, "true")
        assert result.returncode == 125
        assert "already in use" in result.stderr, describe(result)
    names = sb.ok("ps", "-a", "-q").stdout.split()
    assert not names


def test_privileged_port_is_refused(sb, busybox):
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        start = int(f.read())
    if start == 0:
        pytest.skip("every port is unprivileged on this host")
    result = sb("run", "--rm", "-p", "%d:80" % (start - 1), busybox, "true")
    assert result.returncode == 125
    assert "privileged" in result.stderr and "ip_unprivileged_port_start" in result.stderr


def test_bad_publish_and_network_values(sb, busybox):
    for flags, text in ((["-p", "80:80:80:80"], "invalid -p"),
                        (["-p", "1000-1001:80-82"], "ranges"),
                        (["--network", "nosuchnet"], "network nosuchnet not found"),
                        (["--network", "none", "-p", "8080:80"], "conflicting options"),
                        (["--network", "slirp4netns:bogus=1"], "invalid slirp4netns option")):
        result = sb("run", "--rm", *flags, busybox, "true")
        assert result.returncode == 125 and text in result.stderr, describe(result)


# --- the host through the gateway ------------------------------------------

def _serve_from_host(address):
    return host_http_server(address, b"from-host\n")


@pytest.fixture
def host_service():
    """An HTTP server on the host's 127.0.0.1 (only loopback)."""
    server = _serve_from_host("127.0.0.1")
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _host_address():
    """The host's address towards its default gateway (files.host_address),
    or None."""
    with open("/proc/net/route") as f:
        gws = [line.split()[2] for line in f if line.split()[1:2] == ["00000000"]]
    if not gws:
        return None
    gw = socket.inet_ntoa(int(gws[0], 16).to_bytes(4, "little"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((gw, 9))
        return s.getsockname()[0]


@pytest.mark.parametrize("network", HELPERS + ["user"])
def test_host_gateway_reaches_the_hosts_services(sb, busybox, network):
    """--add-host NAME:host-gateway (Docker's host.docker.internal) is the
    host's own address: its services on all addresses answer, its
    loopback-only ones do not (as with Docker's bridge; Debian 12's pasta
    answers that connection with silence, not a reset, hence the timeout);
    pasta then gives the container an address of its own (the host's would
    lead back into the container).  The connection never leaves the host."""
    address = _host_address()
    if not address:
        pytest.skip("this host has no default route")
    everywhere = _serve_from_host("0.0.0.0")
    loopback = _serve_from_host("127.0.0.1")
    net = network
    if network == "user":
        net = "hgw%d" % os.getpid()
        sb.ok("network", "create", net)
    try:
        result = sb.ok(
            "run", "--rm", "--network", net,
            "--add-host", "host.docker.internal:host-gateway", busybox, "sh", "-c",
            "grep host.docker.internal /etc/hosts; "
            "wget -q -O - http://host.docker.internal:%d/; "
            "timeout 3 wget -q -O - http://host.docker.internal:%d/ || echo closed"
            % (everywhere.server_address[1], loopback.server_address[1]))
        assert result.stdout.split() == [address, "host.docker.internal",
                                         "from-host", "closed"], describe(result)
    finally:
        for server in (everywhere, loopback):
            server.shutdown()
            server.server_close()
        if network == "user":
            sb("network", "rm", net)


def test_host_gateway_with_pasta_keeps_the_hosts_address_otherwise(sb, busybox):
    """Only a container that asks for host-gateway gets pasta's own
    address; with allow_host_loopback it is the gateway (mapped to the
    host's 127.0.0.1) and the container keeps the host's address."""
    address = _host_address()
    if not address:
        pytest.skip("this host has no default route")
    show = ("ip -4 -o addr show scope global | awk '{print $4}'; "
            "grep -w hg /etc/hosts || true")
    plain = sb.ok("run", "--rm", busybox, "sh", "-c", show).stdout.split()
    assert plain == [address + "/" + plain[0].split("/")[1]]
    own = sb.ok("run", "--rm", "--add-host", "hg:host-gateway", busybox,
                "sh", "-c", show).stdout.split()
    assert own == ["10.0.2.100/24", address, "hg"]
    loop = sb.ok("run", "--rm", "--network", "pasta:allow_host_loopback=true",
                 "--add-host", "hg:host-gateway", busybox, "sh", "-c",
                 show + "; ip route | sed -n 's/^default via \\([^ ]*\\).*/\\1/p'"
                 ).stdout.split()
    assert loop[0] == plain[0] and loop[1] == loop[3] and loop[2] == "hg", loop


def _gateway(out):
    return out.split("default via ")[1].split()[0]


@pytest.mark.parametrize("helper", HELPERS)
def test_host_loopback_through_the_gateway(sb, busybox, host_service, helper):
    result = sb.ok("run", "--rm", "--network", helper + ":allow_host_loopback=true",
                   busybox, "sh", "-c",
                   'gw=$(ip route | sed -n "s/^default via \\([^ ]*\\).*/\\1/p"); '
                   'wget -q -O - http://$gw:%d/' % host_service)
    assert result.stdout.strip() == "from-host"


def test_host_loopback_is_closed_by_default(sb, busybox, host_service):
    # slirp4netns refuses the gateway -> host loopback itself (nothing
    # leaves the host); pasta's would be the real gateway, so not tried.
    result = sb("run", "--rm", "--network", "slirp4netns", busybox,
                "wget", "-q", "-O", "-", "http://10.0.2.2:%d/" % host_service)
    assert result.returncode != 0 and "from-host" not in result.stdout


# --- failures ----------------------------------------------------------------

@pytest.mark.parametrize("helper", HELPERS)
def test_killed_helper_fails_visibly_and_stop_rm_work(sb, busybox, helper):
    port = free_port()
    cid = httpd(sb, busybox, "--network", helper, "-p", "127.0.0.1:%d:80" % port)
    wait_http(port)
    pid = record(sb, cid)["NetworkHelper"]["Pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    links = sb("exec", cid, "ls", "/sys/class/net")
    assert links.returncode == 0 and links.stdout.split() == ["lo"], describe(links)
    started = time.monotonic()
    sb.ok("stop", "-t", "2", cid, timeout=30)
    sb.ok("rm", cid, timeout=30)
    assert time.monotonic() - started < 15
    assert port_is_free(port)


def test_helper_dies_with_a_killed_supervisor(sb, busybox):
    port = free_port()
    cid = httpd(sb, busybox, "-p", "127.0.0.1:%d:80" % port)
    wait_http(port)
    st = record(sb, cid)
    helper = st["NetworkHelper"]["Pid"]
    os.kill(st["MonitorPid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d" % helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists("/proc/%d/status" % helper) or \
        "zombie" in open("/proc/%d/status" % helper).read()
    sb.ok("rm", "-f", cid)
    assert port_is_free(port)


def helper_processes(uid):
    """Live pasta/slirp4netns processes of ``uid``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/status" % pid) as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Name", "").strip() in ("pasta", "passt.avx2", "slirp4netns") \
                and fields.get("Uid", "").split()[0] == str(uid) \
                and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(pid))
    return sorted(found)


@pytest.mark.parametrize("helper", HELPERS)
def test_failed_start_stops_the_early_helper(sb, busybox, helper):
    """The helper starts while the container is still being set up; when
    the command cannot run (127), it is stopped and its port is free again,
    in the foreground and with -d."""
    before = helper_processes(sb.uid)
    for detach in ([], ["-d"]):
        port = free_port()
        result = sb("run", "--rm", *detach, "--network", helper,
                    "-p", "127.0.0.1:%d:80" % port, busybox, "no-such-command")
        assert result.returncode == 127, describe(result)
        assert port_is_free(port)
        assert helper_processes(sb.uid) == before

def test_rm_of_a_missing_command_waits_for_the_record(sb, busybox):
    """G finds the command missing before P has written the record and the
    helper's state; C must not take an --rm container's directory away
    under P (it did, about one run in eight: a traceback and exit 1)."""
    for _ in range(16):
        port = free_port()
        result = sb("run", "--rm", "--network", "slirp4netns",
                    "-p", "127.0.0.1:%d:80" % port, busybox, "no-such-command")
        assert result.returncode == 127, describe(result)
        assert "Traceback" not in result.stderr, describe(result)
    assert sb.ok("ps", "-a", "-q").stdout.strip() == ""



def test_unusable_tun_is_reported(sb, busybox):
    st = os.stat("/dev/net/tun")
    os.chmod("/dev/net/tun", 0o600)
    try:
        result = sb("run", "--rm", busybox, "true")
    finally:
        os.chmod("/dev/net/tun", st.st_mode & 0o7777)
    assert result.returncode == 125
    assert "/dev/net/tun" in result.stderr and "chmod 0666" in result.stderr, describe(result)
    sb.ok("run", "--rm", "--network", "none", busybox, "true")


def test_what_a_container_sends_first_is_not_lost(sb, images_dir, host_udp):
    """Without published ports the container starts once pasta has given
    its namespace routes, while pasta still sets itself up: a datagram sent
    at once (no retransmission would hide a loss, unlike TCP) waits in the
    tap device's queue and arrives."""
    sb.ok("load", "-i", os.path.join(images_dir, "debian.tar"))
    sock, port = host_udp
    send = ('open R, "/proc/net/route"; while (<R>) { @f = split; $gw = join ".",'
            ' reverse map { hex } unpack "(A2)4", $f[2] if $f[1] eq "00000000" }'
            ' IO::Socket::INET->new(PeerAddr => $gw, PeerPort => %d, Proto => "udp")'
            '->send("first %%d") or die "send: $!"' % port)
    for i in range(5):
        sb.ok("run", "--rm", "--network", "pasta:allow_host_loopback=true",
              "localhost/debian:bookworm", "perl", "-MIO::Socket::INET", "-e", send % i)
        assert sock.recv(100) == b"first %d" % i


@pytest.fixture
def host_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(10)
        yield s, s.getsockname()[1]
