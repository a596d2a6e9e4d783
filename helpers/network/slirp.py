"""slirp4netns: a tap device in the container's namespace, 10.0.2.100/24
behind a NAT (gateway .2, DNS forwarder .3), started with --ready-fd (it
writes "1" once the tap is configured) and --exit-fd (it leaves when that
pipe closes: when the supervisor stops it or dies).  Published ports go
through its API socket (add_hostfwd); the server in the container sees
every client as the gateway, 10.0.2.2."""

import os

from ..errors import HostError, UsageError
from . import files
from .helper import Helper


def check_cidr(value):
    import ipaddress
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        net = None
    if net is None or net.version != 4 or net.prefixlen > 25:
        raise UsageError("invalid slirp4netns cidr %r" % value,
                         hint="an IPv4 network of /25 or larger, e.g. 10.0.3.0/24")
    return str(net)


def spawn(rundir, cid, pid, st, published):
    """Start slirp4netns for the network namespace of ``pid``; the
    returned helper's finish() waits until it is ready and adds the
    published ports."""
    settings = st.get("HelperSettings") or {}
    cidr = settings.get("cidr", files.SLIRP_CIDR)
    # sun_path holds 108 bytes: the short id, as the attach socket.
    api = os.path.join(rundir, cid[:12] + ".sock")
    try:
        os.unlink(api)
    except FileNotFoundError:
        pass
    exit_r, exit_w = os.pipe2(os.O_CLOEXEC)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    # A deep run root makes a path too long for sun_path: slirp4netns then
    # binds through its fd 5, the socket's directory (as attach.py does).
    dir_fd = None
    api_arg = api
    if len(api.encode()) >= 100:
        dir_fd = os.open(rundir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        api_arg = "/proc/self/fd/5/" + os.path.basename(api)
    argv = ["slirp4netns", "--configure", "--mtu=%d" % settings.get("mtu", 65520),
            "--cidr=" + cidr, "--exit-fd=3", "--ready-fd=4",
            "--enable-seccomp", "--api-socket", api_arg]
    if not st.get("AllowHostLoopback"):
        argv.append("--disable-host-loopback")
    if settings.get("enable_ipv6"):
        argv.append("--enable-ipv6")
    argv += [str(pid), "tap0"]
    fds = {3: exit_r, 4: ready_w}
    if dir_fd is not None:
        fds[5] = dir_fd
    try:
        helper = Helper("slirp4netns", argv, os.path.join(rundir, cid + ".log"),
                        fds=fds, keep=(exit_w,))
    except BaseException:
        os.close(ready_r)
        os.close(exit_w)
        raise
    helper.files.append(api)

    def finish():
        helper.wait_ready(ready_r, lambda data: b"1" in data)
        guest, gw, _dns, prefix = files.slirp_addresses(cidr)
        helper.address = {"IPAddress": guest, "Gateway": gw, "IPPrefixLen": prefix}
        try:
            for ip, host, ctr, proto in published:
                add_hostfwd(api, proto, ip or "0.0.0.0", host, guest, ctr)
        except BaseException:
            helper.stop()
            raise
    helper.finish = finish
    return helper


def add_hostfwd(api, proto, host_ip, host_port, guest_ip, guest_port):
    import socket
    from .. import jsonfast
    request = {"execute": "add_hostfwd",
               "arguments": {"proto": proto, "host_addr": host_ip,
                             "host_port": host_port, "guest_addr": guest_ip,
                             "guest_port": guest_port}}
    from ..container.attach import connect
    with connect(api, timeout=5) as s:
        s.sendall(jsonfast.dumps(request).encode())
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    try:
        answer = jsonfast.loads(reply or b"{}")
    except ValueError:
        answer = {"error": {"desc": reply.decode(errors="replace")}}
    if "error" in answer:
        raise HostError("slirp4netns could not publish %s:%d/%s: %s" % (
            host_ip, host_port, proto, answer["error"].get("desc", answer["error"])),
            hint="the host port may be taken: choose another one")
