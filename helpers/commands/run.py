"""`sandbox run`: create a container from a local image and run it in the
foreground.  The flow is DESIGN.md section 1 as straight-line code:
validate -> image -> container record -> spec -> spawn -> record the end."""

import os

from ..errors import HostError, ImageNotFound, SandboxError, UsageError



def register(sub):
    # add_help=False: Docker's -h is --hostname; --help stays.
    p = sub.add_parser("run", help="run a command in a new container",
                       description="Run a command in a new container.",
                       add_help=False)
    p.add_argument("--help", action="help", help="show this help")
    add_create_flags(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("create", help="create a container without starting it",
                       description="Create a container; `start` runs it.",
                       add_help=False)
    p.add_argument("--help", action="help", help="show this help")
    add_create_flags(p)
    p.set_defaults(func=cmd_create)


# Docker's (and podman's) run/create flags that have no rootless meaning
# here: refused with the reason (options.Parser.unsupported).
UNSUPPORTED_FLAGS = {
    "--gpus": ("GPUs need a vendor's container toolkit, which sandbox does not drive",
               "--device /dev/nvidia0 (and the other nodes) binds device nodes your "
               "user may open"),
    "--link": ("legacy links are gone",
               "put the containers on one network (sandbox network create NET, then "
               "--network NET): they reach each other by name (--network-alias adds "
               "names)"),
    "--mac-address": ("the MAC address is the network helper's (pasta, slirp4netns) or, "
                      "on a user-defined network, the kernel's choice",
                      "leave it out"),
    "--runtime": ("sandbox is its own runtime (no runc or crun behind it)",
                  "leave it out"),
    "--isolation": ("it is Windows' (Hyper-V or process isolation)", "leave it out"),
    "--storage-opt": ("a size per container needs project quotas, which only root "
                      "can set", "leave it out, or keep the data on a volume"),
    "--kernel-memory": ("cgroup v2 has no separate kernel memory limit (Docker "
                        "ignores the flag too)", "--memory counts kernel memory"),
    "--oom-kill-disable": ("cgroup v2 has no switch for the OOM killer",
                           "leave it out"),
    "--memory-swappiness": ("cgroup v2 has no swappiness per cgroup",
                            "leave it out (--memory-swap limits swap)"),
    "--cpu-rt-runtime": ("real-time CPU budgets are cgroup v1's", "leave it out"),
    "--cpu-rt-period": ("real-time CPU budgets are cgroup v1's", "leave it out"),
    "--device-cgroup-rule": ("device rules need the device controller, which is "
                             "root's", "--device HOST[:CTR] binds a node your user "
                             "may open"),
    "--cgroup-parent": ("the container's cgroup is a systemd scope of your user "
                        "manager's, placed by sandbox", "leave it out"),
    "--volume-driver": ("only the local driver exists", "leave it out"),
    "--ip6": ("user-defined networks are IPv4 only", "leave it out (--ip sets IPv4)"),
    "--link-local-ip": ("user-defined networks give no link-local addresses",
                        "leave it out"),
    "--cpuset-mems": ("memory nodes are not delegated to users here (cpuset.mems)",
                      "--cpuset-cpus limits the CPUs"),
    "--blkio-weight-device": ("per-device I/O weights are not supported",
                              "--blkio-weight weighs all devices"),
}


def add_create_flags(p):
    from ..options import add_content_trust_flag
    p.unsupported.update(UNSUPPORTED_FLAGS)
    add_content_trust_flag(p)
    p.add_argument("--rm", action="store_true",
                   help="remove the container when it exits")
    p.add_argument("-d", "--detach", action="store_true",
                   help="run in the background and print the container id")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="no, on-failure[:N], always or unless-stopped")
    p.add_argument("-l", "--label", action="append", default=[], metavar="K=V",
                   help="set a label on the container")
    p.add_argument("--label-file", action="append", default=[], metavar="FILE",
                   help="read labels from a file (K=V lines)")
    p.add_argument("--annotation", action="append", default=[], metavar="K=V",
                   help="an OCI annotation of the container")
    add_limit_flags(p)
    p.add_argument("--init", action="store_true",
                   help="a minimal init as PID 1 that forwards signals and reaps zombies")
    p.add_argument("--stop-signal", metavar="SIGNAL",
                   help="signal `stop` sends first (default: the image's, or SIGTERM)")
    p.add_argument("--stop-timeout", type=int, metavar="SECONDS",
                   help="seconds `stop` waits before SIGKILL (default 10)")
    p.add_argument("--health-cmd", metavar="CMD",
                   help="a command that checks the container's health (run with /bin/sh -c)")
    p.add_argument("--health-interval", metavar="DURATION",
                   help="time between checks (default 30s)")
    p.add_argument("--health-timeout", metavar="DURATION",
                   help="a check that runs longer fails (default 30s)")
    p.add_argument("--health-retries", type=int, metavar="N",
                   help="failures in a row that make it unhealthy (default 3)")
    p.add_argument("--health-start-period", metavar="DURATION",
                   help="time to start in, when failures do not count (default 0s)")
    p.add_argument("--health-start-interval", metavar="DURATION",
                   help="time between checks within the start period (default 5s)")
    p.add_argument("--no-healthcheck", action="store_true",
                   help="no health check, not even the image's")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
                   help="a resource limit (nofile, nproc, core, ...; up to your own hard limits)")
    p.add_argument("--sysctl", action="append", default=[], metavar="KEY=VALUE",
                   help="a namespaced kernel parameter (net.*, fs.mqueue.*, kernel.shm*, ...)")
    p.add_argument("--device", action="append", default=[], metavar="HOST[:CTR[:PERMS]]",
                   help="a host device node the user may open (bound, not created)")
    p.add_argument("--shm-size", metavar="SIZE", help="size of /dev/shm (default 64m)")
    p.add_argument("--group-add", action="append", default=[], metavar="GROUP",
                   help="a supplementary group of the process (name or number)")
    p.add_argument("--cidfile", metavar="FILE", help="write the container id to FILE")
    p.add_argument("--log-driver", metavar="DRIVER",
                   help="json-file (default) or none")
    p.add_argument("--log-opt", action="append", default=[], metavar="K=V",
                   help="json-file's max-size=SIZE (rotate at) and max-file=N (files kept)")
    for kind, what in (("pid", "processes"), ("ipc", "IPC objects"), ("uts", "host name")):
        p.add_argument("--" + kind, metavar="host|container:NAME",
                       help="share the %s of the host or of a running container" % what)
    p.add_argument("-i", "--interactive", action="store_true",
                   help="keep stdin open and pass it to the container")
    p.add_argument("-t", "--tty", action="store_true",
                   help="allocate a pseudo-terminal")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="set an environment variable (K alone: take it from "
                        "this environment)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="read environment variables from a file")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="USER[:GROUP] (name or number)")
    p.add_argument("--entrypoint", help="override the image's entrypoint")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("--domainname", help="container NIS domain name")
    p.add_argument("--oom-score-adj", type=int, metavar="N",
                   help="the OOM killer's preference (-1000..1000; raising only, unprivileged)")
    p.add_argument("--userns", metavar="MODE",
                   help="host (the default): your user namespace, as rootless Docker's "
                        "(your uid is root inside, your subordinate ids the other users); "
                        "keep-id[:uid=UID,gid=GID]: your uid is UID inside (default your "
                        "own) and the default user, so what the container writes to a bind "
                        "mount is yours, as podman's")
    p.add_argument("--cgroupns", choices=("private", "host"),
                   help="private (default): the container's cgroup is its root; "
                        "host: the user's view")
    p.add_argument("-a", "--attach", action="append", default=[], metavar="STREAM",
                   help="stdin, stdout or stderr: attach only these (foreground)")
    p.add_argument("--detach-keys", metavar="KEYS",
                   help="the keys that detach from -it, leaving the container running "
                        "(default ctrl-p,ctrl-q)")
    p.add_argument("--sig-proxy", default="true", choices=("true", "false"),
                   help="false: signals sent to the CLI stay with it (Ctrl-C ends the CLI, "
                        "the container runs on)")
    p.add_argument("--read-only", action="store_true",
                   help="mount the root filesystem read-only")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]",
                   help="mount a tmpfs")
    p.add_argument("--mount", action="append", default=[], metavar="SPEC",
                   help="type=bind|volume|tmpfs,source=...,target=...[,readonly]")
    p.add_argument("--volumes-from", action="append", default=[],
                   metavar="CONTAINER[:ro|rw]", help="mount the volumes of a container")
    p.add_argument("-v", "--volume", action="append", default=[],
                   metavar="HOST:CTR[:ro]", help="bind-mount a host path")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                   help="add a capability (ALL for all)")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                   help="drop a capability (ALL for all)")
    p.add_argument("--privileged", action="store_true",
                   help="every capability of the user namespace, no masked "
                        "paths, no seccomp filter")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="no-new-privileges[:true|false], seccomp=unconfined")
    from .. import network
    network.add_flags(p)
    p.add_argument("--pull", choices=("missing", "always", "never"),
                   default="missing",
                   help="pull the image before running (default: when missing)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="the image's platform (pulled when the local one is another's; "
                        "foreign binaries run only where the host emulates them)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no pull progress")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs="...", metavar="CMD")


LIMIT_DESTS = ("memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares",
               "cpu_period", "cpu_quota", "cpuset_cpus", "pids_limit",
               "device_read_bps", "device_write_bps", "device_read_iops",
               "device_write_iops", "blkio_weight")


def add_limit_flags(p):
    """Docker's resource flags (cgroups.py turns them into cgroup v2 files);
    their dests are LIMIT_DESTS."""
    p.add_argument("-m", "--memory", metavar="BYTES", help="memory limit (e.g. 32m)")
    p.add_argument("--memory-swap", metavar="BYTES",
                   help="memory plus swap (-1: unlimited swap)")
    p.add_argument("--memory-reservation", metavar="BYTES", help="soft limit (memory.low)")
    p.add_argument("--cpus", metavar="N", help="CPUs, e.g. 0.5 (cpu.max)")
    p.add_argument("-c", "--cpu-shares", metavar="N", help="relative weight (cpu.weight)")
    p.add_argument("--cpu-period", metavar="US", help="CFS period (cpu.max)")
    p.add_argument("--cpu-quota", metavar="US", help="CFS quota (cpu.max)")
    p.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs allowed, e.g. 0-1")
    p.add_argument("--pids-limit", metavar="N", help="process limit (pids.max)")
    for flag in ("--device-read-bps", "--device-write-bps", "--device-read-iops",
                 "--device-write-iops"):
        p.add_argument(flag, action="append", default=[], metavar="PATH:RATE",
                       help="io.max for a block device")
    p.add_argument("--blkio-weight", metavar="N", help="io.weight (10-1000)")
    p.add_argument("--cgroups", choices=("enabled", "disabled", "required"),
                   help="required: fail (exit 125) where limits cannot be applied; "
                        "also \"cgroups\" in ~/.config/sandbox/config.json")


# ---------------------------------------------------------------------------
HEALTH_FLAGS = ("health_cmd", "health_interval", "health_timeout", "health_retries",
                "health_start_period", "health_start_interval")


def validate(args, attaching=True):
    """Every flag checked before any side effect (house style 6).
    ``attaching``: `run` (not `create`, which attaches nothing)."""
    from ..container import security, spec as spec_mod
    if args.name is not None:
        from ..container.state import valid_name
        if not valid_name(args.name):
            raise UsageError("invalid container name %r" % args.name,
                             hint="only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    spec_mod.check_workdir(args.workdir)
    if args.userns is None:
        args.userns = default_userns()
    from ..userns import parse_userns
    keep_id = parse_userns(args.userns)
    from .. import network
    net = network.validate(args)
    nnp = False
    seccomp = True              # True: sandbox's own filter; or a profile (dict)
    system_paths = True         # Docker's masked and read-only /proc, /sys paths
    for opt in args.security_opt:
        key, _, val = opt.replace("=", ":", 1).partition(":")
        if key == "no-new-privileges" and val in ("", "true"):
            nnp = True
        elif key == "no-new-privileges" and val == "false":
            nnp = False
        elif key == "seccomp" and val == "unconfined":
            seccomp = False
        elif key == "seccomp" and val and val != "builtin":
            from ..container import seccomp_profile
            seccomp = seccomp_profile.load(os.path.abspath(val))
        elif key == "seccomp" and val == "builtin":
            seccomp = True
        elif key == "systempaths" and val == "unconfined":
            system_paths = False
        elif key in ("label", "apparmor") and val in ("disable", "unconfined"):
            continue
        else:
            raise UsageError("invalid --security-opt %r" % opt,
                             hint="supported: no-new-privileges, seccomp=unconfined, "
                                  "seccomp=PROFILE.json, systempaths=unconfined")
    security.effective_caps(args.cap_add, args.cap_drop, args.privileged)
    volume_specs = []
    if args.volume or args.mount:
        from ..container import volumes
        args.volume = volumes.absolute_sources(args.volume)
        volume_specs = [v for v in args.volume if volumes.is_volume_spec(v)]
        for v in volume_specs:
            volumes.parse_volume_flag(v)    # checked now, resolved at create
        for m in args.mount:
            volumes.parse_mount(m)      # checked now, resolved at create
    mounts = [spec_mod.parse_volume(v) for v in args.volume if v not in volume_specs]
    mounts += [spec_mod.parse_tmpfs(t) for t in args.tmpfs]
    env = list(args.env)
    for f in args.env_file:
        env = spec_mod.parse_env_file(f) + env
    if args.tty and args.interactive and not os.isatty(0) and not args.detach and attaching:
        raise UsageError("the input device is not a TTY",
                         hint="drop -t when stdin is a pipe or file")
    restart = parse_restart(args.restart)
    if restart["Name"] != "no" and args.rm:
        raise UsageError("conflicting options: --restart and --rm",
                         hint="a container removed at exit cannot be restarted")
    from ..options import labels as parse_labels
    file_labels = []
    for f in args.label_file:
        file_labels += spec_mod.parse_env_file(f, "label file")
    labels = parse_labels(file_labels + args.label)
    annotations = parse_labels(args.annotation, "--annotation")
    for key in annotations:
        if key.startswith("io.sandbox."):
            raise UsageError("invalid --annotation %r: io.sandbox.* keys are sandbox's own"
                             % key)
    streams = []
    for a in args.attach:
        if a.lower() not in ("stdin", "stdout", "stderr"):
            raise UsageError("invalid argument %r for \"-a, --attach\" flag: valid "
                             "streams are STDIN, STDOUT and STDERR" % a)
        streams.append(a.lower())
    if streams and args.detach:
        raise UsageError("conflicting options: -a and -d",
                         hint="-d runs in the background; attach later with "
                              "sandbox attach")
    if streams and "stdin" not in streams:
        args.interactive = False        # -i's input is not attached
    detach_keys = None
    if args.tty and args.interactive or args.detach_keys is not None:
        from ..container.attach import parse_detach_keys
        detach_keys = parse_detach_keys(args.detach_keys)   # refused before anything is made
    if args.oom_score_adj is not None and not -1000 <= args.oom_score_adj <= 1000:
        raise UsageError("invalid value %d for --oom-score-adj: it must be between "
                         "-1000 and 1000" % args.oom_score_adj)
    limits, use_cgroup = cgroup_plan(args)
    extra = {}
    if args.ulimit:
        extra["rlimits"] = [spec_mod.parse_ulimit(u) for u in args.ulimit]
    if args.sysctl:
        not_own = net["NetworkMode"] == "host" or net["NetworkMode"].startswith("container:")
        extra["sysctl"] = dict(spec_mod.parse_sysctl(x, not_own) for x in args.sysctl)
    if args.device:
        extra["devices"] = [spec_mod.parse_device(d) for d in args.device]
    if args.shm_size is not None:
        from ..cgroups import _size
        extra["shm_size"] = _size("--shm-size", args.shm_size)
        if extra["shm_size"] <= 0:
            raise UsageError("invalid --shm-size %r: it must be above 0" % args.shm_size)
    shared = {}
    host = []      # --pid/--ipc/--uts host: the host's namespace, kept (not joined)
    for kind in ("pid", "ipc", "uts"):
        value = getattr(args, kind)
        if value in (None, "", "private") or (kind == "ipc" and value == "shareable"):
            continue
        if value == "host":
            host.append(kind)
            continue
        if not value.startswith("container:") or not value[10:]:
            raise UsageError(
                "invalid --%s %r" % (kind, value),
                hint="host, private or container:NAME")
        shared[kind] = value[10:]            # resolved at create
    if args.hostname and (shared.get("uts") or "uts" in host):
        raise UsageError("conflicting options: --hostname and --uts %s" % args.uts,
                         hint="the container has the host name of the UTS namespace "
                              "it shares")
    if "ipc" in host and args.shm_size is not None:
        raise UsageError("conflicting options: --shm-size and --ipc host",
                         hint="the container uses the host's /dev/shm")
    if "ipc" in host:
        for key in extra.get("sysctl", {}):
            if not key.startswith("net."):
                raise UsageError("sysctl %r is not allowed with --ipc host" % key,
                                 hint="that IPC namespace is the host's")
    extra["shared"] = shared
    extra["host_ns"] = host
    if args.cidfile and os.path.lexists(args.cidfile):
        raise UsageError("Container ID file found, make sure the other container isn't "
                         "running or delete %s" % args.cidfile)
    from ..paths import config_dir
    log = log_limits = None
    if args.log_driver or args.log_opt or \
            os.path.exists(os.path.join(config_dir(), "config.json")):
        from ..container import logconfig
        log = logconfig.parse(args.log_driver, args.log_opt)
        log_limits = logconfig.limits(log["Config"])     # the values, checked now
        if log == logconfig.DEFAULT:
            log = None
    health_flags = args.no_healthcheck or any(getattr(args, f) is not None
                                              for f in HEALTH_FLAGS)
    if health_flags:
        from ..container import health
        health.effective({"Test": ["NONE"]}, args)      # its durations checked now
    return {"nnp": nnp, "seccomp": seccomp, "system_paths": system_paths,
            "mounts": mounts, "env": env,
            "restart": restart, "labels": labels, "volume_specs": volume_specs,
            "limits": limits, "use_cgroup": use_cgroup, "net": net, "extra": extra,
            "health_flags": health_flags, "log": log, "log_limits": log_limits,
            "annotations": annotations, "attach": streams, "detach_keys": detach_keys,
            "keep_id": keep_id and _check_keep_id(keep_id, net, extra)}


def default_userns():
    """--userns when not given: $SANDBOX_USERNS, else "userns" in
    ~/.config/sandbox/config.json (as podman's $PODMAN_USERNS and
    containers.conf), else None (the shared namespace)."""
    mode = os.environ.get("SANDBOX_USERNS")
    if mode is None:
        from ..paths import config_dir, user_config
        if os.path.exists(os.path.join(config_dir(), "config.json")):
            mode = user_config().get("userns")
            if mode is not None and not isinstance(mode, str):
                raise UsageError("%s: \"userns\" must be a string such as \"keep-id\""
                                 % os.path.join(config_dir(), "config.json"))
    return mode or None


def keep_id_problem():
    """Why --userns keep-id cannot work here (an error to raise), or None:
    it needs a subordinate range and fuse-overlayfs (its root filesystem
    is shown through the container's own map).  Also for `info`."""
    from ..container import rootfs
    from ..userns import current_id_map, single_map_hint
    if current_id_map().single:
        return HostError("--userns keep-id needs a subordinate id range for this user",
                         hint=single_map_hint())
    if rootfs.find_program("fuse-overlayfs") is None:
        return HostError("--userns keep-id needs fuse-overlayfs, which is not installed",
                         hint="apt-get install fuse-overlayfs (it shows the image's "
                              "files through the container's own id map)")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return rootfs.fuse_unusable()
    return None


def _check_keep_id(keep_id, net, extra):
    """--userns keep-id's needs, checked before anything is made (see
    keep_id_problem), and no namespace of another container (they belong
    to the shared user namespace, where the container's has no rights)."""
    problem = keep_id_problem()
    if problem is not None:
        raise problem
    shared = sorted(extra["shared"]) + (
        ["network"] if net["NetworkMode"].startswith("container:") else [])
    if shared:
        raise UsageError("--userns keep-id cannot share the %s namespace of another "
                         "container" % shared[0],
                         hint="leave out --%s container:NAME, or run without "
                              "--userns keep-id" % shared[0])
    return keep_id


def cgroup_plan(args):
    """(Limits or None, whether the container gets a cgroup): parsed and the
    host checked now, before any side effect (a warning, or exit 125 with
    --cgroups=required).  cgroups.py is imported only when it can matter
    (limit flags, --cgroups, a config file, or a cgroup v2 host): its import
    costs more than a third of a plain `run` on hosts without cgroup v2."""
    from ..paths import config_dir
    asked = args.cgroups or any(getattr(args, d, None) for d in LIMIT_DESTS)
    if not asked and not os.path.exists("/sys/fs/cgroup/cgroup.controllers") \
            and not os.path.exists(os.path.join(config_dir(), "config.json")):
        return None, False
    from .. import cgroups
    limits = cgroups.limits_from_args(args)
    mode = cgroups.cgroups_mode(args.cgroups)
    info = cgroups.probe() if mode != "disabled" else None      # (read once, for both)
    use = cgroups.decide(limits, mode, info)
    return (cgroups.with_default_pids_limit(limits, info) if use else limits), use


def parse_restart(value):
    """Docker's --restart values to its HostConfig.RestartPolicy."""
    name, _, count = value.partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped") or \
            (count and (name != "on-failure" or not count.isdigit())):
        raise UsageError("invalid restart policy %r" % value,
                         hint="no, on-failure[:max-retries], always or unless-stopped")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def image_for(paths, store, args):
    """The image of `run`/`create`: the local one, else (or with
    --pull=always) pulled, as Docker does; --platform picks it (a local
    image of another platform counts as missing)."""
    image_id = None
    try:
        if args.pull != "always":
            image_id = store.lookup(args.image)
    except ImageNotFound:
        if args.pull == "never":
            raise SandboxError(
                "Unable to find image '%s' locally" % _full_name(args.image),
                hint="pull it (sandbox pull), load it (sandbox load -i FILE), "
                     "or drop --pull=never") from None
    if image_id is not None and args.platform:
        from ..image.pull import parse_platform
        wanted = _platform_text(*parse_platform(args.platform))
        cfg = store.config(image_id)
        actual = _platform_text(cfg.get("os"), cfg.get("architecture"), cfg.get("variant"))
        if actual != wanted:
            if args.pull == "never":
                raise SandboxError(
                    "image with reference %s was found but does not match the "
                    "specified platform: wanted %s, actual: %s"
                    % (args.image, wanted, actual),
                    hint="pull that platform (sandbox pull --platform %s %s)"
                         % (wanted, args.image))
            image_id = None
    if image_id is None:
        # The registry client is imported only here, never for a local image.
        from .registry import pull_for_run
        image_id = pull_for_run(paths, args.image, missing=args.pull != "always",
                                platform=args.platform, quiet=args.quiet)
    return image_id


def _platform_text(os_, arch, variant):
    """"linux/arm64/v8" and "linux/arm64" alike (and an image config
    without some of them as it is)."""
    from ..platforms import text
    if arch == "arm64" and variant == "v8":
        variant = None
    return text(os_, arch, variant)


def cmd_run(args, paths):
    checked = validate(args)
    from ..image.store import Store
    store = Store(paths)
    image_id = image_for(paths, store, args)
    if args.detach:
        container = create(paths, store, image_id, args, checked)
        return start_detached(paths, container, args)
    # A restart policy needs a supervisor to carry it out (Docker's daemon
    # restarts an attached container too; the CLI ends with its first exit).
    if (args.tty and args.interactive) or args.sig_proxy == "false" \
            or checked["restart"]["Name"] != "no":
        container = create(paths, store, image_id, args, checked)
        return run_attached(paths, container, args, checked["detach_keys"])
    from ..container.runtime import Starter
    from ..userns import current_id_map
    # Without a terminal the output goes through pipes, as under Docker: we
    # copy it to our stdout/stderr and to the container's log.
    out_r, out_w = os.pipe2(os.O_CLOEXEC) if not args.tty else (None, None)
    err_r, err_w = os.pipe2(os.O_CLOEXEC) if not args.tty else (None, None)
    # Fork the container's first process now: it joins the user namespace
    # while we write the record.  What this process needs later is
    # imported before the fork: an import after it writes to pages that it
    # then shares with C (copy-on-write), and costs about three times as
    # much (measured: state.py 1.3 ms instead of 0.4).
    from .. import network
    from ..container import logconfig, monitor, state   # noqa: F401
    # sandbox-init (native/init.c) where it is built: G (runtime._spawn_g)
    # and --init's PID 1 (runtime._native_init), and C itself where it can
    # be (_native_start).  C gets this fd with the fork (or the spawn).
    init_fd = monitor.open_native(monitor.INIT_NAME)
    config = store.config(image_id)
    native = init_fd if init_fd is not None and _native_start(
        paths, args, checked, config) else None
    nested = None
    if checked["keep_id"]:
        from ..userns import keep_id_maps
        nested = keep_id_maps(current_id_map(), checked["keep_id"])
    starter = Starter(current_id_map(), tty=args.tty, stdio=(None, out_w, err_w),
                      keep=(out_r, err_r),
                      early_net=network.early_netns(checked["net"]),
                      watch_routes=checked["net"]["NetworkMode"] == "pasta",   # (pasta.spawn)
                      early_exit=True, split_cpus=True, native=native, nested=nested)
    for fd in (out_w, err_w):
        if fd is not None:
            os.close(fd)
    try:
        container = create(paths, store, image_id, args, checked, starter, config)
    except BaseException:
        starter.abort()
        if init_fd is not None:
            os.close(init_fd)
        raise
    starter.restore_cpus()          # before network.prepare may start a helper
    container["sources"] = {out_r: "stdout", err_r: "stderr"} if not args.tty else {}
    container["attach"] = checked["attach"]
    launch = make_launch(container, args)
    launch.init_fd = init_fd
    try:
        return monitor.run_foreground(paths, container, launch, starter, args.rm)
    finally:
        for fd in (out_r, err_r, init_fd):
            if fd is not None:
                os.close(fd)


def _native_start(paths, args, checked, config):
    """Whether C can be sandbox-init's start mode (runtime.Starter's
    ``native``): the root filesystem is the kernel's overlay (mounted
    early), and G one that runtime._native_plan takes (not with --debug,
    --ulimit, --oom-score-adj, nor with a volume the image may fill), in
    a PID namespace of the container's (--pid host needs the Python C,
    which ends the container's other processes)."""
    if (getattr(args, "debug", False) or args.ulimit or args.oom_score_adj is not None
            or checked["keep_id"]
            or checked["volume_specs"] or args.mount or args.volumes_from
            or (config.get("config") or {}).get("Volumes")
            or "pid" in checked["extra"]["host_ns"]):
        return False
    from ..container import rootfs
    return rootfs.choose_driver(paths) == "overlay"


def _profile_seccomp(profile, spec):
    """The spec's linux.seccomp from a --security-opt seccomp=PROFILE: the
    profile resolved for this container's capabilities (OCI form), with
    its filter compiled now (seccomp_profile.py)."""
    from .. import linux
    from ..container import seccomp_profile
    caps = spec["process"].get("capabilities", {}).get("bounding", [])
    oci = seccomp_profile.resolve(profile, caps)
    oci["sandboxProgram"] = linux.bpf_code(seccomp_profile.to_bpf(oci)).hex()
    return oci


def cmd_create(args, paths):
    checked = validate(args, attaching=False)
    from ..image.store import Store
    store = Store(paths)
    image_id = image_for(paths, store, args)
    container = create(paths, store, image_id, args, checked)
    print(container["id"])
    return 0


def start_detached(paths, container, args):
    """`run -d`: print the full id once the command runs (Docker's -d)."""
    from ..container import monitor
    launch = make_launch(container, args)
    monitor.start_detached(paths, container, launch,
                           {"restart": container["record"]["RestartPolicy"]})
    print(container["id"])
    return 0


def run_attached(paths, container, args, keys):
    """`run -it` (and `run --sig-proxy=false`), as Docker does it: the
    container under a supervisor of its own (as with -d) and this CLI
    attached to it from before its start.  The detach keys (ctrl-p ctrl-q)
    leave it running (exit 0); signals sent to the CLI go to PID 1 (not
    with --sig-proxy=false: they end the CLI alone); the container's
    terminal keeps the size of ours.  ``keys``: the parsed --detach-keys
    (validate)."""
    from ..container import attach, monitor, state
    from ..container.runtime import forward_signals
    from ..errors import NotFound
    cid = container["id"]
    path = attach.socket_path(paths, cid)
    box = {}

    def on_listening():
        box["conn"] = attach.connect(path)
    try:
        pid = monitor.start_detached(paths, container, make_launch(container, args),
                                     {"restart": container["record"]["RestartPolicy"]},
                                     on_listening=on_listening)
    except BaseException:
        if "conn" in box:
            box["conn"].close()
        raise
    restore = forward_signals(pid) if args.sig_proxy == "true" else (lambda: None)
    try:
        code = attach.attach(path, stdin=args.interactive, tty=args.tty, detach_keys=keys,
                             conn=box.pop("conn"))
    finally:
        restore()
    if code == attach.DETACHED:
        return 0                    # the container runs on
    if code is None:
        # The supervisor went away without a word: what the record says.
        try:
            code = state.refresh(paths, cid).get("ExitCode", 125)
        except NotFound:
            code = 125
    return code


def make_launch(container, args):
    from ..container.runtime import Launch
    return Launch(container["spec"], container["dir"], container["layers"],
                  container["driver"], container["idmap"], autoremove=args.rm,
                  debug=getattr(args, "debug", False))


def _keep_id_account(keep_id, layers):
    """--userns keep-id: {"passwd": line, "group": line} to add to the
    image's databases for the kept ids, each None where the image has an
    entry with that id (podman's: the user's name, gecos, home directory
    and a shell; the primary group's name)."""
    import grp
    import pwd
    from ..container import spec as spec_mod
    uid, gid = keep_id["uid"], keep_id["gid"]
    try:
        pw = pwd.getpwuid(os.getuid())
        name, gecos, home = pw.pw_name, pw.pw_gecos.split(",")[0], pw.pw_dir or "/"
    except KeyError:
        name, gecos, home = "user%d" % uid, "", "/"
    try:
        group = grp.getgrgid(os.getgid()).gr_name
    except KeyError:
        group = name
    return {"passwd": None if spec_mod.has_id(layers, "passwd", uid) else
            "%s:x:%d:%d:%s:%s:/bin/sh" % (name, uid, gid, gecos, home),
            "group": None if spec_mod.has_id(layers, "group", gid) else
            "%s:x:%d:" % (group, gid)}


def _full_name(name):
    try:
        from ..image.reference import parse
        return str(parse(name))
    except SandboxError:
        return name


def _other(paths, kind, name):
    """The container --KIND container:NAME names (exit 125 if none)."""
    from ..container import state
    from ..errors import ContainerNotFound
    try:
        return state.resolve(paths, name)
    except ContainerNotFound:
        raise SandboxError("--%s container:%s: no such container" % (kind, name),
                           hint="name a running container (sandbox ps)") from None


def _emulated(config):
    """The image's architecture when this host runs it through qemu-user
    (made ready now: emulation.prepare), else None."""
    from ..container import emulation
    arch = config.get("architecture")
    if not emulation.needed(arch):
        return None
    emulation.prepare(arch)
    return arch


def create(paths, store, image_id, args, checked, starter=None, config=None):
    """Write the container record and its spec; return a dict describing
    it.  On failure, nothing of the container stays behind.  ``starter``
    (a foreground run's, runtime.Starter): its C mounts the root
    filesystem as soon as the directory exists, while the rest is
    written.  ``config``: the image's, if read already."""
    from .. import fsutil, jsonfast
    from ..container import rootfs, spec as spec_mod, state
    from ..userns import current_id_map, keep_id_user_map, single_map_hint
    from ..errors import warn

    from .. import network
    if config is None:
        config = store.config(image_id)
    emulated = _emulated(config)
    layers = rootfs.with_mountpoints(paths, store.layer_dirs(image_id, config))
    net = network.resolve(paths, checked["net"], config)
    idmap = current_id_map()
    if idmap.single:
        warn("this user has no subordinate id range: the container gets a "
             "single-id user namespace, so only root exists inside and "
             "chown to another user will fail",
             hint=single_map_hint(), once_key="single-map")
    keep_id = checked["keep_id"]
    # (keep-id: the image's files shown through the container's own map)
    driver = "fuse-overlayfs" if keep_id else rootfs.choose_driver(paths)
    # the ids inside (keep-id: its own namespace's)
    user_map = keep_id_user_map(idmap, keep_id) if keep_id else idmap

    cid = state.new_id()
    name = args.name or state.generate_name(paths)
    os.makedirs(paths.containers, exist_ok=True)
    cdir = paths.container(cid)
    try:
        # The directory (with its maker's mark) before the name: a name
        # whose container has no directory is free to take (a removed
        # one's), so the other order let two creates of one name both win.
        os.mkdir(cdir, 0o700)
        state.mark_creating(paths, cid)
        state.reserve_name(paths, name, cid)
        for d in ("upper", "work", "rootfs"):
            os.mkdir(os.path.join(cdir, d), 0o755)
        if starter is not None:
            starter.mount_root_early(driver, layers, cdir, os.path.join(cdir, "rootfs"),
                                     bool(args.rm))
        img_cfg = config.get("config") or {}
        user_spec = args.user if args.user is not None else img_cfg.get("User", "")
        account = None
        if keep_id:
            # podman's: the user is the default user, with an account.
            account = _keep_id_account(keep_id, layers)
            if args.user is None:
                user_spec = "%d:%d" % (keep_id["uid"], keep_id["gid"])
        user, home = spec_mod.resolve_user(user_spec, layers)
        if account and account["passwd"] and user["uid"] == keep_id["uid"]:
            home = account["passwd"].split(":")[5]
        if args.group_add:
            user["additionalGids"] = list(user.get("additionalGids") or []) + [
                g for g in spec_mod.resolve_groups(args.group_add, layers)
                if g not in (user.get("additionalGids") or [])]
        host_ns = checked["extra"]["host_ns"]
        hostname = args.hostname or (os.uname().nodename
                                     if net["NetworkMode"] == "host" or "uts" in host_ns
                                     else cid[:12])
        # --pid/--ipc/--uts container:NAME: {kind: the other container's id}
        others = {kind: _other(paths, kind, target)
                  for kind, target in checked["extra"]["shared"].items()}
        if "uts" in others:
            # The other container's name, which the shared namespace has.
            hostname = state.read_state(paths, others["uts"]).get("Hostname") or hostname
        env = spec_mod.merge_env(img_cfg.get("Env"), checked["env"])
        keys = {e.partition("=")[0] for e in env}
        extra = ["HOSTNAME=" + hostname]
        if "HOME" not in keys:
            extra.append("HOME=" + home)
        if args.tty and "TERM" not in keys:
            extra.append("TERM=xterm")
        added = [e for e in extra if e.partition("=")[0] not in keys or
                 e.startswith("HOSTNAME=")]
        env = [e for e in env if not e.startswith("HOSTNAME=")] + added
        network.write_files(paths, cdir, hostname, name, net)
        annotations = {"io.sandbox.name": name, "io.sandbox.image": image_id,
                       "io.sandbox.driver": driver}
        if net["NetworkMode"].startswith("container:"):
            annotations["io.sandbox.network.container"] = net["NetworkMode"][10:]
        # Volumes: named (-v NAME:/p, --mount type=volume), anonymous (-v /p,
        # the image's VOLUME list), and those of --volumes-from.
        vol_mounts, vol_names, fill = [], [], []
        if checked["volume_specs"] or args.mount or args.volumes_from or \
                img_cfg.get("Volumes"):
            from ..container import volumes
            vol_mounts, vol_names, fill = volumes.resolve(
                paths, checked["volume_specs"], args.mount, args.volumes_from,
                img_cfg.get("Volumes"))
        chosen = checked["extra"]      # --ulimit, --sysctl, --device, --shm-size
        user_mounts = checked["mounts"] + vol_mounts + chosen.get("devices", [])
        if checked["use_cgroup"]:
            # Its own cgroup, seen as the root through the cgroup namespace.
            user_mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup2",
                                "source": "cgroup2",
                                "options": ["nosuid", "noexec", "nodev"]})
        if fill:
            annotations["io.sandbox.volumes.fill"] = jsonfast.dumps(fill)
        if args.init:
            annotations["io.sandbox.init"] = "true"
        if keep_id:
            from ..container import runtime
            annotations[runtime.KEEP_ID_ANNOTATION] = jsonfast.dumps(keep_id)
            annotations[runtime.ACCOUNT_ANNOTATION] = jsonfast.dumps(account)
        for kind, tid in others.items():
            # (network.prepare finds its namespace when the container starts)
            annotations["io.sandbox.%s.container" % kind] = tid
        healthcheck = None
        if img_cfg.get("Healthcheck") or checked["health_flags"]:
            from ..container import health
            healthcheck = health.effective(img_cfg.get("Healthcheck"), args)
        spec = spec_mod.build(
            image_config=config, args=args.command or None,
            entrypoint=args.entrypoint, user=user, workdir=args.workdir,
            env=env, hostname=hostname, tty=args.tty, stdin=args.interactive,
            read_only=args.read_only, mounts=user_mounts,
            cap_add=args.cap_add, cap_drop=args.cap_drop,
            privileged=args.privileged, no_new_privileges=checked["nnp"],
            network=network.spec_mode(net), idmap=user_map,
            rootfs=os.path.join(cdir, "rootfs"), annotations=annotations)
        if not checked["seccomp"]:
            spec["linux"].pop("seccomp", None)
        elif isinstance(checked["seccomp"], dict):
            spec["linux"]["seccomp"] = _profile_seccomp(checked["seccomp"], spec)
        if not checked["system_paths"]:
            spec["linux"]["maskedPaths"] = []
            spec["linux"]["readonlyPaths"] = []
        if checked["annotations"]:
            spec["annotations"] = dict(checked["annotations"], **spec["annotations"])
        if args.domainname:
            spec["domainname"] = args.domainname
        if args.oom_score_adj is not None:
            spec["process"]["oomScoreAdj"] = args.oom_score_adj
        if args.cgroupns == "host":
            spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                           if n["type"] != "cgroup"]
        if host_ns:
            # Kept from the host: runtime.plan_mounts binds its /proc
            # (--pid), /dev/shm and /dev/mqueue (--ipc) instead.
            spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                           if n["type"] not in host_ns]
        if chosen.get("rlimits"):
            spec["process"]["rlimits"] = chosen["rlimits"]
        sysctl = {}
        if net["NetworkMode"] != "host" and not net["NetworkMode"].startswith("container:"):
            sysctl.update(spec_mod.default_net_sysctls(user_map))   # Docker's
        sysctl.update(chosen.get("sysctl") or {})
        if sysctl:
            spec["linux"]["sysctl"] = sysctl
        if chosen.get("shm_size"):
            for m in spec["mounts"]:
                # (the default's: a /dev/shm of the user's stays as given)
                if m["destination"] == "/dev/shm" and m.get("source") == "shm":
                    m["options"] = spec_mod.shm_options(chosen["shm_size"])
        # New files of a new container: nothing reads them before it runs,
        # and fsync would only slow the start.
        fsutil.write_new(os.path.join(cdir, "config.json"),
                         jsonfast.dumps(spec, separators=(",", ":")) + "\n")
        record = {
            "Id": cid, "Name": name, "Image": image_id,
            "ImageName": args.image, "Created": state.now_iso(),
            "Driver": driver, "Status": "created", "Pid": 0, "ExitCode": 0,
            "StartedAt": None, "FinishedAt": None, "AutoRemove": bool(args.rm),
            "Error": "", "RestartCount": 0,
            "RestartPolicy": checked["restart"], "Labels": checked["labels"],
            "OpenStdin": bool(args.interactive), "Tty": bool(args.tty),
            "User": user_spec or "", "Entrypoint": args.entrypoint,
            "Cmd": args.command or None, "CapAdd": list(args.cap_add),
            "CapDrop": list(args.cap_drop), "Privileged": bool(args.privileged),
            "ReadonlyRootfs": bool(args.read_only), "Binds": list(args.volume),
            "Tmpfs": list(args.tmpfs), "SecurityOpt": list(args.security_opt),
            "Hostname": hostname, "WorkingDir": args.workdir or "",
            # What the process gets beyond Config.Env (Docker's inspect and
            # commit leave them out): spec.config_env.
            "RuntimeEnv": [e.partition("=")[0] for e in added],
            "StopSignal": args.stop_signal or img_cfg.get("StopSignal") or "SIGTERM",
            "StopTimeout": 10 if args.stop_timeout is None else args.stop_timeout,
            "Volumes": vol_names, "UserMounts": user_mounts,
            "Init": bool(args.init) or None, "Emulated": emulated,
            "HostConfigLimits": checked["limits"].host_config() if checked["limits"] else {},
            "UseCgroup": bool(checked["use_cgroup"]),
            **net,
        }
        if args.group_add or any(chosen.get(k) for k in ("rlimits", "sysctl", "devices",
                                                        "shm_size")):
            record.update(Ulimits=chosen.get("rlimits"), Sysctls=chosen.get("sysctl"),
                          Devices=[d["source"] for d in chosen.get("devices", [])],
                          ShmSize=chosen.get("shm_size"), GroupAdd=list(args.group_add))
        field = {"pid": "PidMode", "ipc": "IpcMode", "uts": "UTSMode"}
        record.update({field[kind]: "container:" + tid for kind, tid in others.items()})
        record.update({field[kind]: "host" for kind in host_ns})
        for field, value in (("Annotations", checked["annotations"]),
                             ("Domainname", args.domainname),
                             ("OomScoreAdj", args.oom_score_adj),
                             ("CgroupnsMode", args.cgroupns)):
            if value:
                record[field] = value
        if checked["log"]:
            record.update(LogConfig=checked["log"], LogLimits=list(checked["log_limits"]))
            from ..container import logconfig
            log_attrs = logconfig.attrs(checked["log"]["Config"], dict(
                img_cfg.get("Labels") or {}, **checked["labels"]), env)
            if log_attrs:
                record["LogAttrs"] = log_attrs
        if keep_id:
            record["UsernsMode"] = args.userns
        if healthcheck:
            # (with the image's SHELL, which CMD-SHELL checks run with)
            record.update(Healthcheck=healthcheck, Shell=img_cfg.get("Shell"))
        state.write_state(paths, cid, record, durable=False)
        state.creation_done(paths, cid)
        from .. import events
        events.container(paths, cid, record, "create")
        if args.cidfile:
            try:
                fsutil.write_new(os.path.abspath(args.cidfile), cid)
            except FileExistsError:
                raise UsageError("Container ID file found, make sure the other container "
                                 "isn't running or delete %s" % args.cidfile) from None
    except BaseException:
        if starter is not None:
            starter.abort()         # (C may be mounting in the directory)
        state.release_name(paths, name, cid)
        try:
            state.remove_tree(paths, cid)
        except SandboxError:
            pass
        raise
    return {"id": cid, "name": name, "spec": spec, "layers": layers,
            "driver": driver, "idmap": idmap, "dir": cdir, "record": record}
