"""Build the OCI runtime spec (config.json) for a container.

The spec is the seam of the design: everything above it (CLI, images,
volumes) produces it; the runtime consumes only it.  Sandbox-specific facts
the runtime needs and the spec has no field for live in ``annotations``
under ``io.sandbox.*``.
"""

import os

from .. import fsutil
from ..errors import UsageError
from . import security

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def check_workdir(path):
    """-w: Docker's refusal of a relative working directory."""
    if path and not path.startswith("/"):
        raise UsageError("the working directory %r is invalid, it needs to be an "
                         "absolute path" % path)


def parse_env_file(path, what="env file"):
    """The lines of an --env-file (or --label-file): blank lines and
    # comments left out."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise UsageError("cannot read %s %s: %s" % (what, path, exc.strerror))
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


def merge_env(image_env, user_env):
    """Docker's rules: image Env, then -e/--env-file in order; ``-e NAME``
    without ``=`` takes NAME from the caller's environment (or drops it)."""
    env = {}
    order = []

    def put(k, v):
        if k not in env:
            order.append(k)
        env[k] = v

    for item in image_env or []:
        k, _, v = item.partition("=")
        put(k, v)
    for item in user_env:
        k, sep, v = item.partition("=")
        if not k:
            raise UsageError("invalid environment variable: %r" % item)
        if not sep:
            if k in os.environ:
                put(k, os.environ[k])
            continue
        put(k, v)
    if "PATH" not in env:
        put("PATH", DEFAULT_PATH)
    return ["%s=%s" % (k, env[k]) for k in order]


# Docker Desktop's bind consistency modes: accepted, and nothing on Linux
# (Docker's own Linux engine takes and ignores them too).
CONSISTENCY_MODES = ("consistent", "cached", "delegated")


def parse_volume(spec):
    """-v HOST:CTR[:OPTS] -> mount dict.  Named volumes are a later issue."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError("invalid volume specification: %r" % spec,
                         hint="use -v /host/path:/container/path[:ro]")
    host, ctr = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 else []
    if not host.startswith("/"):
        raise UsageError("invalid volume specification: %r: the host path must "
                         "be absolute (named volumes come with `volume create`)" % spec,
                         hint="use an absolute path, e.g. -v $PWD/data:/data")
    if not ctr.startswith("/"):
        raise UsageError("invalid volume specification: %r: the container "
                         "path must be absolute" % spec)
    for o in opts:
        if o not in ("ro", "rw", "z", "Z", "rprivate", "private", "rbind",
                     "bind") + CONSISTENCY_MODES:
            raise UsageError("invalid mode %r in volume specification %r" % (o, spec),
                             hint="use ro or rw")
    flags = ["rbind"] + (["ro"] if "ro" in opts else ["rw"])
    return {"destination": os.path.normpath(ctr), "type": "bind",
            "source": os.path.normpath(host), "options": flags}


def parse_tmpfs(spec):
    path, _, opts = spec.partition(":")
    if not path.startswith("/"):
        raise UsageError("invalid --tmpfs %r: the path must be absolute" % spec)
    options = ["nosuid", "nodev"] + ([o for o in opts.split(",") if o] if opts
                                     else ["mode=1777"])
    return {"destination": os.path.normpath(path), "type": "tmpfs",
            "source": "tmpfs", "options": options}


def default_mounts():
    # As runc's and Docker's defaults; /sys is read-only for unprivileged
    # containers (a user namespace cannot write it anyway).
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                     "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]


def merge_mounts(defaults, user):
    """The spec's mounts: the user's override a default at the same place,
    and a /dev of the user's (-v /dev:/dev) drops every default under
    /dev, as Docker does (the host's devices, pts, shm and mqueue then)."""
    dests = {os.path.normpath(m["destination"]) for m in user}
    keep = [m for m in defaults if m["destination"] not in dests and not (
        "/dev" in dests and m["destination"].startswith("/dev/"))]
    return keep + list(user)


def build(*, image_config, args, entrypoint, user, workdir, env, hostname,
          tty, stdin, read_only, mounts, cap_add, cap_drop, privileged,
          no_new_privileges, network, idmap, rootfs, annotations):
    """Return the spec dict.  ``args`` and ``entrypoint`` are None when not
    given on the command line (then the image's Cmd/Entrypoint apply)."""
    cfg = image_config.get("config") or {}
    if entrypoint is not None:
        ep = [entrypoint] if entrypoint else []
        cmd = args or []            # --entrypoint resets the image's Cmd
    else:
        ep = cfg.get("Entrypoint") or []
        cmd = args if args else (cfg.get("Cmd") or [])
    argv = list(ep) + list(cmd)
    if not argv:
        raise UsageError("no command specified",
                         hint="the image has no Cmd or Entrypoint: give one "
                              "after the image name")
    caps = security.effective_caps(cap_add, cap_drop, privileged)
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup", "user")]
    if network != "host":
        namespaces.append({"type": "network"})
    spec = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": bool(tty),
            "user": user,
            "args": argv,
            "env": env,
            "cwd": workdir or cfg.get("WorkingDir") or "/",
            "capabilities": {"bounding": caps, "effective": caps,
                             "permitted": caps, "inheritable": []},
            "noNewPrivileges": bool(no_new_privileges),
        },
        "root": {"path": rootfs, "readonly": bool(read_only)},
        "hostname": hostname,
        "mounts": merge_mounts(default_mounts(), mounts),
        "annotations": annotations,
        "linux": {
            "namespaces": namespaces,
            "uidMappings": [{"containerID": a, "hostID": b, "size": c}
                            for a, b, c in idmap.uid_map],
            "gidMappings": [{"containerID": a, "hostID": b, "size": c}
                            for a, b, c in idmap.gid_map],
            "maskedPaths": [] if privileged else list(security.MASKED_PATHS),
            "readonlyPaths": [] if privileged else list(security.READONLY_PATHS),
        },
    }
    if not privileged:
        spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                    "syscalls": _seccomp_rules(caps)}
    if stdin:
        spec["annotations"]["io.sandbox.stdin"] = "true"
    return spec


def _seccomp_rules(caps):
    """What security.seccomp_program refuses, in the OCI form (config.json
    shows it; the filter itself is made from the capabilities at start)."""
    rules = [{"names": sorted(security.SECCOMP_DENY_X86_64), "action": "SCMP_ACT_ERRNO"}]
    if "CAP_SYS_ADMIN" not in caps:
        rules += [{"names": ["setns"], "action": "SCMP_ACT_ERRNO"},
                  {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
        rules += [{"names": ["clone", "unshare"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 0, "value": flag, "valueTwo": flag,
                             "op": "SCMP_CMP_MASKED_EQ"}]}
                  for flag in sorted(security.CLONE_NAMESPACE_FLAGS.values())]
    return rules


# -- users ---------------------------------------------------------------
def _read_db(layers, name):
    """Lines of etc/<name> from the topmost layer that has it."""
    for layer in reversed(layers):
        p = os.path.join(layer, "etc", name)
        try:
            return fsutil.read_text(p, "replace").splitlines()
        except OSError:
            continue
    return []


def has_id(layers, db, ident):
    """Whether the image's /etc/passwd or /etc/group (``db``) has an entry
    with id ``ident``."""
    return any(len(e) > 2 and e[2] == str(ident)
               for e in (line.split(":") for line in _read_db(layers, db)))


def resolve_user(spec_user, layers):
    """``-u`` / the image's User ("name", "uid", "uid:gid", "name:group")
    to {uid, gid, additionalGids} plus the home directory, from the image's
    /etc/passwd and /etc/group as Docker does."""
    spec_user = spec_user or ""
    user, _, group = spec_user.partition(":")
    passwd = [line.split(":") for line in _read_db(layers, "passwd")]
    groups = [line.split(":") for line in _read_db(layers, "group")]
    uid, gid, home, uname = 0, 0, "/", "root"
    entry = None
    if user:
        for p in passwd:
            if len(p) >= 7 and (p[0] == user or (user.isdigit() and p[2] == user)):
                entry = p
                break
        if entry:
            uname, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5]
        elif user.isdigit():
            uid, gid, uname = int(user), 0, None
        else:
            raise UsageError("unable to find user %s: no matching entries in "
                             "passwd file" % user)
    else:
        for p in passwd:
            if len(p) >= 7 and p[2] == "0":
                home = p[5]
                break
    if group:
        for g in groups:
            if len(g) >= 3 and (g[0] == group or (group.isdigit() and g[2] == group)):
                gid = int(g[2])
                break
        else:
            if group.isdigit():
                gid = int(group)
            else:
                raise UsageError("unable to find group %s: no matching entries "
                                 "in group file" % group)
    extra = []
    if uname and not group:
        for g in groups:
            if len(g) >= 4 and uname in g[3].split(",") and g[2].isdigit():
                if int(g[2]) != gid:
                    extra.append(int(g[2]))
    return {"uid": uid, "gid": gid, "additionalGids": extra}, home or "/"


# -- --ulimit, --sysctl, --device, --shm-size, --group-add ---------------------
ULIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


def parse_ulimit(text):
    """--ulimit NAME=SOFT[:HARD] -> an OCI rlimit (Docker's names; -1 is
    unlimited)."""
    name, eq, value = text.partition("=")
    if not eq or name not in ULIMITS:
        raise UsageError("invalid --ulimit %r" % text,
                         hint="NAME=SOFT[:HARD], NAME one of " + ", ".join(ULIMITS))
    soft, _, hard = value.partition(":")
    try:
        soft = int(soft)
        hard = int(hard) if hard else soft
    except ValueError:
        raise UsageError("invalid --ulimit %r: the limits are numbers" % text) from None
    unlimited = (1 << 64) - 1
    soft, hard = (unlimited if v == -1 else v for v in (soft, hard))
    if soft < 0 or hard < 0 or soft > hard:
        raise UsageError("invalid --ulimit %r: the soft limit must not be above the "
                         "hard one" % text)
    return {"type": "RLIMIT_" + name.upper(), "soft": soft, "hard": hard}


# Docker's namespaced sysctls (the only ones a container may set).
_SYSCTL_IPC = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def default_net_sysctls(idmap):
    """Docker's network sysctls for a container of ``idmap``: the ping
    group range is the gids mapped from 0 on (the kernel refuses gids the
    container's user namespace lacks; Docker's 0-2147483647 needs them
    all)."""
    top = 0
    for inside, _, count in sorted(idmap.gid_map):
        if inside > top:
            break
        top = max(top, inside + count)
    return {security.PING_GROUPS: "0 %d" % max(top - 1, 0),
            security.UNPRIVILEGED_PORTS: "0"}


def parse_sysctl(text, host_network):
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise UsageError("invalid --sysctl %r" % text, hint="--sysctl KEY=VALUE")
    key = key.replace("/", ".")
    if key in _SYSCTL_IPC or key.startswith("fs.mqueue."):
        return key, value
    if key.startswith("net."):
        if host_network:
            raise UsageError("sysctl %r is not allowed with --network host or "
                             "container:NAME" % key,
                             hint="that network namespace is not the container's own")
        return key, value
    raise UsageError("sysctl %r is not allowed in a container" % key,
                     hint="only namespaced ones: net.*, fs.mqueue.*, kernel.msg*, "
                          "kernel.sem, kernel.shm*")


def parse_device(text):
    """--device HOST[:CTR[:PERMS]] -> a bind mount of the host's device node
    (a user namespace cannot mknod; PERMS are accepted and not enforced:
    no device cgroup without privilege)."""
    parts = text.split(":")
    host = parts[0]
    ctr = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    if not host.startswith("/") or len(parts) > 3 or not set(perms) <= set("rwm"):
        raise UsageError("invalid --device %r" % text, hint="--device /dev/HOST[:/dev/CTR[:rwm]]")
    import stat as _stat
    try:
        st = os.stat(host)
    except OSError as exc:
        raise UsageError("--device %s: %s" % (host, exc.strerror)) from None
    if not (_stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode)):
        raise UsageError("--device %s: not a device node" % host)
    if not os.access(host, os.R_OK | (os.W_OK if "w" in perms else 0)):
        raise UsageError("--device %s: this user may not open it" % host,
                         hint="a rootless container gets only the devices its user can use "
                              "(check the node's owner, group and mode)")
    return {"destination": os.path.normpath(ctr), "type": "bind", "source": host,
            "options": ["bind", "rw" if "w" in perms else "ro"]}


def shm_options(size):
    return ["nosuid", "noexec", "nodev", "mode=1777", "size=%d" % size]


def resolve_groups(groups, layers):
    """--group-add: numbers, or names of the image's /etc/group."""
    out = []
    known = {}
    for line in _read_db(layers, "group"):
        f = line.split(":")
        if len(f) >= 3 and f[2].isdigit():
            known[f[0]] = int(f[2])
    for g in groups:
        if g.isdigit():
            out.append(int(g))
        elif g in known:
            out.append(known[g])
        else:
            raise UsageError("unable to find group %s: no matching entries in group file" % g)
    return out


def config_env(env, record):
    """Docker's Config.Env of a container whose process has ``env``: the
    image's and the user's variables, without those that the runtime adds
    (HOSTNAME; HOME and TERM where nothing set them: the record's
    RuntimeEnv)."""
    added = set(record.get("RuntimeEnv") or ["HOSTNAME"])
    return [e for e in env if e.partition("=")[0] not in added]
