"""pasta (from passt): the container's namespace gets a tap interface with
the host's own addresses and routes, and pasta translates its traffic to
ordinary sockets of the host.  Published ports are pasta's -t/-u; loopback
clients are spliced (the server sees 127.0.0.1), other clients keep their
address.

Readiness: pasta writes its pid file (-P) once it is all set up; the pid
file is a FIFO here, so that write is our ready signal.  It comes some 20 ms
after pasta has configured the namespace (its socket pools take the rest),
so when nothing on the host waits for pasta (no published port), the
container starts once the namespace has its default routes: what it sends
meanwhile waits in the tap device's queue until pasta reads it."""

import os

from .. import fsutil
from . import files, which
from .helper import Helper


def argv_for(pid, st, published, pidfile, direct=(), own=None):
    """``direct``: bindings whose host socket the container's server gets
    (network.direct_bindings): not pasta's to forward; pasta's -T takes the
    container's own connections to those ports to the host port instead.
    ``own``: the container's own addresses (files.pasta_addresses), if any."""
    argv = ["pasta", "--foreground", "--quiet", "--config-net",
            "--pid", pidfile]
    # Nothing else from the container to the host's own ports (pasta's
    # default "auto" would expose the host's loopback).
    for spec in ["%d:%d" % (ctr, host) for _, host, ctr, _ in direct] or ["none"]:
        argv += ["-T", spec]
    argv += ["-U", "none"]
    for proto, flag in (("tcp", "-t"), ("udp", "-u")):
        specs = ["%s%d:%d" % (ip + "/" if ip else "", host, ctr)
                 for ip, host, ctr, p in published
                 if p == proto and (ip, host, ctr, p) not in direct]
        for spec in specs or ["none"]:
            argv += [flag, spec]
    if not st.get("AllowHostLoopback"):
        # Connections to the gateway address would reach the host's
        # loopback; Docker and slirp4netns refuse that by default.
        argv.append("--no-map-gw")
    if not ipv6(st) and not _family_flags(st):
        argv.append("--ipv4-only")
    if own:
        argv += ["--address", own[0], "--netmask", own[1], "--gateway", own[2]]
    if st.get("Networks"):
        # eth0 is the container's first user-defined network (as Docker
        # names it); pasta's interface would take the host's name.
        argv += ["--ns-ifname", "tap0"]
    argv += st.get("HelperArgs") or []
    argv.append(str(pid))
    return argv


# How long the container waits for its routes before it waits for pasta's
# own ready signal instead (pasta configures them within ~10 ms).
ROUTES_TIMEOUT = 0.25


def spawn(rundir, cid, pid, st, published, direct=(), route_watch=None):
    """Start pasta for the network namespace of ``pid``; the returned
    helper's finish() waits until it is ready, or, with ``route_watch``
    (runtime._route_watch) and when only the container waits for it, until
    the namespace is configured."""
    fifo = os.path.join(rundir, cid + ".pasta.pid")
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass
    os.mkfifo(fifo, 0o600)
    # Ours is open before pasta's open for writing, so neither blocks.
    ready = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        own = files.pasta_addresses(st)
        helper = Helper("pasta", argv_for(pid, st, published, fifo, direct, own),
                        os.path.join(rundir, cid + ".log"), program=program())
    except BaseException:
        os.close(ready)
        os.unlink(fifo)
        raise

    def finish():
        families = None
        if route_watch is not None and not published and not st.get("HelperArgs"):
            families = routed_families(st)
        if families and helper.wait_routes(route_watch, families, ROUTES_TIMEOUT):
            # pasta writes into the FIFO later: our end stays open (with no
            # reader, its open would block) until it is ready or stopped.
            helper.pending = (ready, fifo, _is_ready, os.dup(route_watch))
            helper.files.append(fifo)
        else:
            try:
                helper.wait_ready(ready, _is_ready)
            finally:
                os.unlink(fifo)
        helper.address = ({"Gateway": own[2], "IPAddress": own[0],
                           "IPPrefixLen": int(own[1])} if own else
                          {"Gateway": files.host_gateway() or ""})
    helper.finish = finish
    return helper


def program():
    """The file to run as pasta.  Where the CPU has AVX2, pasta's first act
    is to execute its AVX2 build (passt.avx2, beside the file that the
    pasta symlink names) instead: running that build at once spares a whole
    program start (~3 ms) on the way to a configured namespace."""
    path = which("pasta")
    if path is None:
        return "pasta"
    avx2 = os.path.realpath(path) + ".avx2"
    if os.access(avx2, os.X_OK) and _cpu_has_avx2():
        return avx2
    return path


def _cpu_has_avx2():
    # The first CPU's entry is enough (and reading no further keeps this
    # cheap on machines with hundreds of CPUs); the kernel leaves the flag
    # out when it has not enabled the AVX state.
    try:
        with open("/proc/cpuinfo", "rb") as f:
            head = f.read(16384).partition(b"\n\n")[0]
    except OSError:
        return False
    for line in head.splitlines():
        if line.startswith(b"flags"):
            return b"avx2" in line.partition(b":")[2].split()
    return False


def _is_ready(data):
    return data.endswith(b"\n")


def ipv6(st):
    """Whether the container gets IPv6 from pasta: only when asked
    (enable_ipv6=true), as with Docker's networks and slirp4netns.  Off,
    pasta is also some 10 MB lighter (29 -> 20 MB of an idle container's
    memory here: its IPv6 buffers).  pasta's own -4/-6 flags, passed
    through, decide alone."""
    flags = _family_flags(st)
    if flags:
        return not set(flags) & {"-4", "--ipv4-only"}
    return bool((st.get("HelperSettings") or {}).get("enable_ipv6"))


def _family_flags(st):
    return [a for a in st.get("HelperArgs") or []
            if a in ("-4", "--ipv4-only", "-6", "--ipv6-only")]


def routed_families(st=None):
    """The address families pasta configures in the namespace: those of
    the host's default routes (pasta copies them, and leaves a family out
    when the host has none), IPv6 only when the container has it (ipv6)."""
    families = set()
    for path, family, is_default in (
            ("/proc/net/route", 2,
             lambda f: len(f) > 7 and f[1] == "00000000" and f[7] == "00000000"),
            ("/proc/net/ipv6_route", 10,
             lambda f: len(f) > 9 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo")):
        try:
            table = fsutil.read_text(path, "replace").splitlines()
        except OSError:
            continue
        if any(is_default(line.split()) for line in table):
            families.add(family)
    if st is not None and not ipv6(st):
        families.discard(10)
    return families
