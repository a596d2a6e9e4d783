"""A container's network: which mode, its flags, and the user-mode helper
that gives a private network namespace its way out.

Modes (`--network`):
  pasta[:OPTS]        the default where passt is installed: pasta copies the
                      host's addresses and routes into the namespace and
                      forwards published ports itself (-t/-u)
  slirp4netns[:OPTS]  the default otherwise: 10.0.2.0/24 behind a NAT,
                      published ports through its API socket (add_hostfwd)
  none                only `lo`
  host                the host's network namespace
  container:NAME      the network namespace of another running container
  NAME                a user-defined network (`network create`): the
                      container is plugged into the network's bridge in the
                      user's network keeper (bridge.py, usernet.py), and
                      still gets its own pasta/slirp4netns for the way out
                      and for published ports (none on --internal networks)

The flow, for `run`, `run -d` and `start` alike:
  validate()  flags parsed and checked, no side effect (house style 6)
  resolve()   at create: container:NAME found, -P's ports, the record fields
  prepare()   before the container's first process is forked: container:NAME
              becomes the path of that container's namespace in the spec
  spawn_early() as soon as the container's first process has its network
              namespace (before the root filesystem and mounts): the helper
              starts, and gets ready while the container is set up (pasta
              needs ~20 ms)
  attach()    while PID 1 waits before its exec: the helper (started now if
              spawn_early did not) is ready before the command runs
  release()   when the container ended: the helper is stopped (it also dies
              with the process that started it: PR_SET_PDEATHSIG)

Nothing heavy is imported here: this is on the start path of every `run`.
"""

import os

from ..errors import HostError, SandboxError, UsageError

HELPERS = ("pasta", "slirp4netns")
DEFAULT_NAMES = ("private", "bridge", "default")
TUN = "/dev/net/tun"

# Helpers started by this process (the foreground CLI or a supervisor),
# by container id: release() stops them.
_running = {}


def add_flags(p):
    """The network flags of `run` and `create`."""
    p.add_argument("--network", "--net", default="private", metavar="MODE",
                   help="pasta[:OPTS] (the default where installed), "
                        "slirp4netns[:OPTS], none, host, container:NAME or "
                        "the name of a user-defined network")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[],
                   metavar="ALIAS", help="another name of the container on "
                   "its user-defined network")
    p.add_argument("--ip", metavar="IPV4",
                   help="the container's address on its user-defined network")
    p.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[IP:][HOSTPORT:]PORT[/PROTO]",
                   help="publish a container's port (or range) on the host")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish every exposed port on a free host port")
    p.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]",
                   help="expose a port (or range) without publishing it")
    p.add_argument("--dns", action="append", default=[], metavar="IP",
                   help="name server for /etc/resolv.conf")
    p.add_argument("--dns-search", action="append", default=[], metavar="DOMAIN",
                   help="search domain for /etc/resolv.conf")
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[],
                   metavar="OPT", help="option for /etc/resolv.conf")
    p.add_argument("--add-host", action="append", default=[],
                   metavar="HOST:IP", help="add a line to /etc/hosts "
                   "(IP may be host-gateway)")


def which(name):
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
              "/sbin", "/bin"):
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    return None


def default_helper():
    return default_helper_and_source()[0]


def default_helper_and_source():
    """The default helper, and the containers.conf that chose it (None:
    the first one installed)."""
    name, source = configured_helper()
    if name is not None:
        if name not in HELPERS:
            raise HostError("%s: default_rootless_network_cmd = %r: not a network "
                            "helper sandbox knows" % (source, name),
                            hint="pasta or slirp4netns")
        if not which(name):
            raise HostError("%s is not installed (default_rootless_network_cmd in %s)"
                            % (name, source),
                            hint="install it (apt install %s), or change the setting"
                                 % ("passt" if name == "pasta" else name))
        return name, source
    for name in HELPERS:
        if which(name):
            return name, None
    raise HostError(
        "no user-mode network helper is installed (pasta or slirp4netns)",
        hint="install one (Debian/Ubuntu: apt install passt, or apt install "
             "slirp4netns; scripts/setup-host does), or run with "
             "--network none or --network host")


def configured_helper():
    """podman's setting of the default network helper, `[network]
    default_rootless_network_cmd` in containers.conf ("pasta" or
    "slirp4netns"; podman's precedence: $CONTAINERS_CONF alone, else
    /usr/share, /etc, then the user's file): (name, file), or (None, None)
    when no file sets it.  A file without the key costs one read, not a
    TOML parser (tomllib: ~25 ms of imports)."""
    if os.environ.get("CONTAINERS_CONF"):
        paths = [os.environ["CONTAINERS_CONF"]]
    else:
        from ..paths import xdg_config_home
        config = xdg_config_home()
        paths = ["/usr/share/containers/containers.conf",
                 "/etc/containers/containers.conf",
                 os.path.join(config, "containers", "containers.conf")]
    found = None, None
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if b"default_rootless_network_cmd" not in data:
            continue
        import tomllib
        try:
            conf = tomllib.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise HostError("%s: %s" % (path, exc),
                            hint="fix the file (TOML), or remove it") from None
        network = conf.get("network")
        value = network.get("default_rootless_network_cmd") if isinstance(network, dict) else None
        if value is not None:
            found = value, path
    return found


def parse_mode(value):
    """``--network`` -> (mode, options): mode is pasta, slirp4netns, none,
    host or container; options a list (the container's name for
    container)."""
    name, sep, rest = value.partition(":")
    if name in DEFAULT_NAMES and not sep:
        return default_helper(), []
    if name in HELPERS:
        if not which(name):
            pkg = "passt" if name == "pasta" else name
            raise HostError("--network %s: %s is not installed" % (name, name),
                            hint="install it (apt install %s), or choose "
                                 "another --network" % pkg)
        return name, [o for o in rest.split(",") if o] if sep else []
    if name in ("none", "host") and not sep:
        return name, []
    if name == "container" and rest:
        return "container", [rest]
    from ..container.state import valid_name
    if not sep and valid_name(name):
        return "user", [name]
    raise UsageError(
        "network %s not found" % value,
        hint="use pasta[:OPTS], slirp4netns[:OPTS], none, host, "
             "container:NAME or a network from `sandbox network ls`")


def helper_of(st):
    """The user-mode helper a container's record asks for, if any: its
    mode, or the way out of a container on user-defined networks."""
    mode = st.get("NetworkMode")
    return mode if mode in HELPERS else st.get("OutboundHelper") or None


def helper_options(mode, options):
    """Check a helper's OPTS: (allow_host_loopback, settings, raw args)."""
    allow = False
    settings = {}
    raw = []
    for opt in options:
        key, sep, val = opt.partition("=")
        if key == "allow_host_loopback" and val in ("true", "false"):
            allow = val == "true"
        elif mode == "pasta" and key == "direct_ports" and val in ("true", "false"):
            settings[key] = val == "true"
        elif mode == "pasta" and opt.startswith("-"):
            raw.append(opt)          # pasta's own flags, as podman passes them
        elif key == "enable_ipv6" and val in ("true", "false"):
            settings[key] = val == "true"
        elif mode == "slirp4netns" and key == "mtu" and val.isdigit():
            settings[key] = int(val)
        elif mode == "slirp4netns" and key == "cidr" and sep:
            from .slirp import check_cidr
            settings[key] = check_cidr(val)
        elif mode == "slirp4netns" and key == "port_handler" and val == "slirp4netns":
            continue
        else:
            known = ("allow_host_loopback=true|false, direct_ports=true|false, "
                     "enable_ipv6=true|false and pasta's own flags (e.g. "
                     "pasta:--mtu,1500)"
                     if mode == "pasta" else
                     "allow_host_loopback, enable_ipv6, mtu, cidr, "
                     "port_handler=slirp4netns")
            raise UsageError("invalid %s option %r" % (mode, opt),
                             hint="supported: " + known)
    return allow, settings, raw


def check_tun():
    """pasta and slirp4netns open /dev/net/tun as the user."""
    if not os.access(TUN, os.R_OK | os.W_OK):
        try:
            mode = "mode %o" % (os.stat(TUN).st_mode & 0o777)
        except OSError:
            mode = "missing"
        raise HostError(
            "%s is not usable by this user (%s): the network helper needs it"
            % (TUN, mode),
            hint="as root: chmod 0666 %s (scripts/setup-host does it, with a "
                 "udev rule), or run with --network none or --network host" % TUN)


def validate(args):
    """Every network flag checked, before any side effect.  Returns the
    network part of the container's record (without -P's ports: the
    image's exposed ports are known at create)."""
    from . import ports
    mode, options = parse_mode(args.network)
    allow, settings, raw = (helper_options(mode, options) if mode in HELPERS
                            else (False, {}, []))
    bindings = ports.parse_all(args.publish)
    exposed = ports.parse_expose(args.expose)
    if (args.network_alias or args.ip) and mode != "user":
        raise UsageError(
            "--network-alias and --ip are only for user-defined networks",
            hint="create one (sandbox network create NAME) and run with "
                 "--network NAME")
    if (bindings or args.publish_all) and mode not in HELPERS + ("user",):
        raise UsageError(
            "conflicting options: port publishing and --network %s" % args.network,
            hint="published ports need pasta or slirp4netns (the default "
                 "network); with --network host the container's ports are "
                 "the host's")
    if mode in HELPERS:
        check_tun()
    if mode == "container" and (args.dns or args.dns_search or args.dns_option
                                or args.add_host or args.hostname):
        raise UsageError(
            "conflicting options: --network container:NAME and the "
            "container's own DNS, hosts or hostname settings",
            hint="the container shares the other one's network and files")
    from .files import parse_add_hosts
    parse_add_hosts(args.add_host)
    ports.check_bindable(bindings)
    name = {"container": "container:%s", "user": "%s"}.get(mode)
    net = {"NetworkMode": name % options[0] if name else mode,
           "NetworkOptions": options if mode in HELPERS else [],
           "AllowHostLoopback": allow, "HelperSettings": settings,
           "HelperArgs": raw,
           "PortBindings": ports.to_port_bindings(bindings),
           "PublishAllPorts": bool(args.publish_all),
           "ExposedPorts": exposed,
           "Dns": list(args.dns), "DnsSearch": list(args.dns_search),
           "DnsOptions": list(args.dns_option),
           "ExtraHosts": list(args.add_host)}
    if mode == "user":
        net["Networks"] = {options[0]: {
            "Aliases": list(args.network_alias),
            "IPAMConfig": {"IPv4Address": args.ip} if args.ip else None}}
    return net


def resolve(paths, net, image_config):
    """At create: the record fields, with container:NAME found and the
    image's exposed ports added.  Raises when NAME names nothing."""
    net = dict(net)
    if net.get("Networks"):
        from . import usernet
        name = net["NetworkMode"]
        rec = usernet.get(paths, name)
        net["NetworkMode"] = rec["Name"]
        from .bridge import dns_command
        if dns_command(paths):
            # The keeper answers the names of its peers at the gateway
            # (native/monitor.c, dns mode): the first name server.
            net["DnsGateway"] = rec["Gateway"]
        ipam = net["Networks"][name]["IPAMConfig"]
        if ipam:
            usernet.check_ip(rec, ipam["IPv4Address"])
        if rec["Internal"]:
            if net["PortBindings"] or net["PublishAllPorts"]:
                raise UsageError(
                    "network %s is internal: no port can be published" % name,
                    hint="leave out -p/-P, or use a network created "
                         "without --internal")
            net["OutboundHelper"] = ""
        else:
            net["OutboundHelper"] = default_helper()
            check_tun()
    if net["NetworkMode"].startswith("container:"):
        from ..container import state
        target = state.resolve(paths, net["NetworkMode"].partition(":")[2])
        net["NetworkMode"] = "container:" + target
    exposed = dict.fromkeys(((image_config.get("config") or {}).get("ExposedPorts")
                             or {}))
    exposed.update(dict.fromkeys(net["ExposedPorts"]))
    for key in net["PortBindings"]:
        exposed.setdefault(key)
    net["ExposedPorts"] = list(exposed)
    return net


def spec_mode(net):
    """The spec's idea of the mode: host (no network namespace) or not."""
    return "host" if net["NetworkMode"] == "host" else "private"


def write_files(paths, cdir, hostname, name, net):
    from . import files
    mode = net["NetworkMode"]
    if mode.startswith("container:"):
        files.copy_from(paths.container(mode.partition(":")[2]), cdir)
        return
    files.write(cdir, hostname, name, net)


# ---------------------------------------------------------------------------
# Start and end of a container
# ---------------------------------------------------------------------------
def prepare(paths, launch):
    """Before the container's first process: --network, --pid, --ipc or
    --uts container:NAME become the path of NAME's namespace of that kind
    (OCI: a namespace entry with a "path" is joined, not made)."""
    annotations = launch.spec.get("annotations", {})
    for ns in launch.spec["linux"]["namespaces"]:
        kind = ns["type"]
        target = annotations.get("io.sandbox.%s.container" % kind)
        if not target:
            continue
        from ..container import state
        try:
            st = state.refresh(paths, target)
        except SandboxError:
            st = {}
        what = {"network": "network", "pid": "processes", "ipc": "IPC",
                "uts": "host name"}.get(kind, kind)
        if not state.is_running(st) or not st.get("Pid"):
            raise SandboxError(
                "cannot join the %s of container %s: it is not running"
                % (what, st.get("Name") or target[:12]),
                hint="start it first (sandbox start %s)" % (st.get("Name") or target[:12]))
        ns["path"] = "/proc/%d/ns/%s" % (st["Pid"], "net" if kind == "network" else kind)
        if kind == "network":
            launch.net_path = ns["path"]


def early_netns(net):
    """Whether the container's first process may make its network
    namespace at once (Starter's early_net): every mode but host and
    container:NAME, which join an existing one.  ``net``: the record."""
    mode = net.get("NetworkMode") or ""
    return mode != "host" and not mode.startswith("container:")


def spawn_early(paths, cid, cpid, route_watch=None):
    """Start the helper for C's (host pid ``cpid``) new network namespace
    now, without waiting for it: attach() does (``route_watch``: a netlink
    socket on the namespace's routes, runtime._route_watch, lent until
    then).  Only for the plain
    pasta/slirp4netns modes; a user-defined network plugs its veths first
    (attach).  Best effort: on any error nothing is started here, and
    attach() starts the helper or reports what is wrong; C may have failed
    meanwhile (and, with --rm, removed the container), and then its own
    error is the one to report."""
    from ..container import state
    try:
        st = state.read_state(paths, cid)
        mode = helper_of(st)
        if mode is None or st.get("Networks"):
            return
        _spawn(paths, cid, cpid, st, mode, route_watch)
    except SandboxError:
        pass


def _spawn(paths, cid, cpid, st, mode, route_watch=None):
    from . import ports
    published = ports.allocate(st)
    rundir = os.path.join(paths.runroot, "net")
    os.makedirs(rundir, mode=0o700, exist_ok=True)
    direct = []
    if cid in _direct:
        direct = _direct[cid] = direct_bindings(published)
    if mode == "pasta":
        from .pasta import spawn
        helper = spawn(rundir, cid, cpid, st, published, direct, route_watch)
    else:
        from .slirp import spawn
        helper = spawn(rundir, cid, cpid, st, published)
    helper.published = published
    _running[cid] = helper
    return helper


# cid -> the bindings that go direct (decide_direct; filled in at _spawn).
_direct = {}


def decide_direct(paths, cid, st):
    """Whether the container's published TCP ports are to be sockets of the
    host's network namespace, handed to its server when it binds them (the
    native monitor's job; runtime's Launch.direct), and remember it for
    _spawn and direct_of.  Only when asked for (--network
    pasta:direct_ports=true): such a socket is the host's, and a process in
    the container can turn it into a client of anything the host reaches,
    its loopback included (README, "Direct ports"); no unprivileged kernel
    mechanism locks it to listening.  Then: pasta's mode (whose -T takes the
    container's own connections to those ports to the host's), on no
    user-defined network, with such a port published; and a container that
    joins the network namespace of one that went so (--network
    container:NAME, a pod's sidecar): its servers get that one's ports."""
    _direct.pop(cid, None)
    mode = st.get("NetworkMode") or ""
    if mode.startswith("container:"):
        from ..container import state
        target = mode.partition(":")[2]
        try:
            owner = state.refresh(paths, state.resolve(paths, target))
        except SandboxError:
            return False
        bindings = [tuple(b) for b in owner.get("DirectPorts") or []]
        if bindings and state.is_running(owner):
            _direct[cid] = bindings
        return bool(bindings)
    if helper_of(st) != "pasta" or st.get("Networks") or mode != "pasta" or \
            not (st.get("HelperSettings") or {}).get("direct_ports"):
        return False
    from . import ports
    if not direct_bindings(ports.wanted(st)):
        return False
    _direct[cid] = []
    return True


def direct_of(cid):
    """The bindings of ``cid`` that go direct."""
    return list(_direct.get(cid) or [])


def direct_bindings(published):
    """The bindings that go direct: TCP, published on all addresses or on
    127.0.0.1 (which pasta's -T reaches), one host port per container port
    (a socket the server binds can be bound once)."""
    count = {}
    for _, _, ctr, proto in published:
        count[(ctr, proto)] = count.get((ctr, proto), 0) + 1
    return [(ip, host, ctr, proto) for ip, host, ctr, proto in published
            if proto == "tcp" and ip in ("", "0.0.0.0", "127.0.0.1")
            and count[(ctr, proto)] == 1]


def attach(paths, cid, pid):
    """Have the container's network helper ready for PID 1 (host pid
    ``pid``), which waits before its exec, and record it.  When PID 1
    failed meanwhile (its command is missing: 127), nothing is started and
    its own error is the one the runtime reports."""
    from ..container import state
    try:
        st = state.read_state(paths, cid)
    except SandboxError:
        if _gone(pid):
            return          # --rm: C removed it after PID 1's failure
        raise
    if st.get("Networks"):
        try:
            _plug_user_networks(paths, cid, _parent(pid) or pid, st, st["Networks"])
        except (SandboxError, OSError):
            if _gone(pid):
                return      # its namespace went with it
            raise
    mode = helper_of(st)
    if mode is None:
        return
    # The helper joins the namespaces through C, PID 1's parent: PID 1 may
    # have switched to a subordinate uid already (-u), and then its
    # /proc/PID/ns/* are not ours to open; C stays root of the user
    # namespace (our own uid) and is in the same network namespace.
    from . import ports
    try:
        helper = _running.get(cid) or _spawn(paths, cid, _parent(pid) or pid, st, mode)
        helper.finish()
    except SandboxError:
        if _gone(pid):
            return
        raise
    published = helper.published
    try:
        state.update_state(paths, cid, durable=False, NetworkHelper={
            "Name": mode, "Pid": helper.pid,
            "PidStart": state.proc_start_time(helper.pid)},
            Ports=ports.to_ports(published), NetAddress=helper.address,
            DirectPorts=direct_of(cid))
    except SandboxError:
        if not _gone(pid):
            raise


def _plug_user_networks(paths, cid, ctr_pid, st, networks):
    """Addresses on user-defined ``networks`` ({name: endpoint config}),
    veth pairs into their bridges, the peers' /etc/hosts brought up to
    date.  ``st``: the container's record (its addresses of the last run)."""
    from . import bridge, usernet
    from ..container import state
    endpoints, settings = [], {}
    hints = st.get("NetAddressHints") or {}
    for name, conf in networks.items():
        rec = usernet.get(paths, name)
        ip = usernet.allocate(paths, rec, cid,
                              ((conf or {}).get("IPAMConfig") or {}).get("IPv4Address"),
                              prefer=hints.get(name))
        ep = usernet.endpoint(rec, ip)
        endpoints.append(ep)
        settings[name] = {"NetworkID": rec["Id"], "IPAddress": ip,
                          "IPPrefixLen": ep["PrefixLen"], "Gateway": rec["Gateway"],
                          "MacAddress": ep["MacAddress"]}
    names = bridge.plug(paths, ctr_pid, cid, endpoints)
    for name, ep in zip(networks, endpoints):
        settings[name]["IfName"] = names[ep["Id"]]
    def change(st):
        st.setdefault("NetEndpoints", {}).update(settings)
        st.setdefault("NetAddressHints", {}).update(
            {name: ep["IPAddress"] for name, ep in settings.items()})
    state.modify(paths, cid, change, durable=False)
    usernet.sync_hosts(paths)


def connect(paths, cid, name, conf):
    """`network connect`: a running container is plugged now; a stopped one
    is on the network from its next start."""
    from . import usernet
    from ..container import state
    rec = usernet.get(paths, name)
    st = state.refresh(paths, cid)
    mode = st.get("NetworkMode") or ""
    if mode in ("none", "host") or mode.startswith("container:"):
        raise SandboxError(
            "container %s uses --network %s and cannot be connected to "
            "another network" % (st.get("Name"), mode), exit_code=1,
            hint="run it with the default network or a user-defined one")
    if rec["Name"] in (st.get("Networks") or {}):
        raise SandboxError("container %s is already connected to network %s"
                           % (st.get("Name"), rec["Name"]), exit_code=1)
    if state.is_running(st):
        _plug_user_networks(paths, cid, _parent(st["Pid"]) or st["Pid"], st,
                            {rec["Name"]: conf})
    state.modify(paths, cid, lambda st: st.setdefault("Networks", {})
                 .update({rec["Name"]: conf}))
    usernet.event(paths, "connect", rec, cid)


def disconnect(paths, cid, name):
    from . import bridge, usernet
    from ..container import state
    rec = usernet.get(paths, name)
    st = state.refresh(paths, cid)
    networks = dict(st.get("Networks") or {})
    if rec["Name"] not in networks:
        raise SandboxError("container %s is not connected to network %s"
                           % (st.get("Name"), rec["Name"]), exit_code=1)
    del networks[rec["Name"]]
    if state.is_running(st) and rec["Name"] in (st.get("NetEndpoints") or {}):
        bridge.unplug(paths, cid, [rec["Id"]])
        usernet.release(paths, rec, cid)
    def change(st):
        st["Networks"] = networks
        (st.get("NetEndpoints") or {}).pop(rec["Name"], None)
    st = state.modify(paths, cid, change)
    usernet.event(paths, "disconnect", rec, cid)
    if not st.get("NetEndpoints"):
        usernet.drop_from_hosts(paths, cid)
    usernet.sync_hosts(paths)


def _release_user_networks(paths, cid):
    from ..container import state
    try:
        st = state.read_state(paths, cid)
    except SandboxError:
        st = {}
    if not st.get("Networks"):
        return
    from . import usernet
    for name in st["Networks"]:
        rec = usernet.find(paths, name)
        if rec:
            usernet.release(paths, rec, cid)
    if st.get("NetEndpoints"):
        try:
            state.update_state(paths, cid, durable=False, NetEndpoints={})
        except SandboxError:
            pass
        usernet.sync_hosts(paths)


def _parent(pid):
    from ..pids import stat_fields
    fields = stat_fields(pid)
    return int(fields[1]) if fields else 0


def _gone(pid):
    from ..pids import ended, stat_fields
    return ended(stat_fields(pid))


def release(paths, cid):
    """Stop the helper this process started for ``cid`` (idempotent)."""
    try:
        _release_user_networks(paths, cid)
    except SandboxError:
        pass
    helper = _running.pop(cid, None)
    if helper is not None:
        helper.stop()
        from .helper import reap_later
        reap_later()


def hand_over(cid):
    """The running helper of ``cid`` as data (Helper.hand_over), or None."""
    helper = _running.get(cid)
    return helper.hand_over() if helper is not None else None


def adopt(cid, data):
    """Take back a helper that hand_over() described (after an exec)."""
    if data:
        from .helper import Helper
        _running[cid] = Helper.adopt(data)


def preload(record=None):
    """Modules a detached supervisor needs later (see monitor.preload);
    pyroute2 (~0.13 s) only for a container on user-defined networks."""
    from . import files, pasta, ports, slirp      # noqa: F401
    if (record or {}).get("Networks"):
        from . import bridge, usernet      # noqa: F401
        bridge.preload()
    import ipaddress  # noqa: F401
    import json     # noqa: F401
    import select   # noqa: F401
    import shlex    # noqa: F401
    import socket   # noqa: F401
    import time     # noqa: F401


def network_settings(st, running):
    """Docker's NetworkSettings for inspect."""
    ports = {key: None for key in st.get("ExposedPorts") or []}
    addr = st.get("NetAddress") or {} if running else {}
    if running:
        ports.update(st.get("Ports") or {})
    pid = st.get("Pid") if running else 0
    networks = {}
    endpoints = (st.get("NetEndpoints") or {}) if running else {}
    for name, conf in (st.get("Networks") or {}).items():
        ep = endpoints.get(name) or {}
        networks[name] = {
            "IPAMConfig": (conf or {}).get("IPAMConfig"), "Links": None,
            "Aliases": (conf or {}).get("Aliases") or None,
            "MacAddress": ep.get("MacAddress", ""),
            "NetworkID": ep.get("NetworkID", ""),
            "EndpointID": ep.get("NetworkID", "")[:32] + st.get("Id", "")[:32]
            if ep else "",
            "Gateway": ep.get("Gateway", ""), "IPAddress": ep.get("IPAddress", ""),
            "IPPrefixLen": ep.get("IPPrefixLen", 0), "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DriverOpts": None, "DNSNames": None}
    return {"Bridge": "", "SandboxID": "", "HairpinMode": False,
            "Ports": ports,
            "SandboxKey": "/proc/%d/ns/net" % pid if pid else "",
            "Gateway": addr.get("Gateway", ""),
            "IPAddress": addr.get("IPAddress", ""),
            "IPPrefixLen": addr.get("IPPrefixLen", 0),
            "MacAddress": "", "Networks": networks}


def port_lines(st, which=None):
    """`port CONTAINER [PORT[/PROTO]]`: Docker's lines."""
    out = []
    for key, items in sorted((st.get("Ports") or {}).items(),
                             key=lambda kv: (int(kv[0].partition("/")[0]), kv[0])):
        if which and key != which:
            continue
        for item in items or []:
            hp = "%s:%s" % (item["HostIp"], item["HostPort"])
            out.append(hp if which else "%s -> %s" % (key, hp))
    return out
