"""A compose service as the flags of our own `create` (and what must
happen around it: networks to join after it, host directories to make,
secrets to write)."""

import hashlib
import json
import math
import os
import shlex
import sys

from .project import ComposeError, dependencies

LABEL = "com.docker.compose."
IGNORED = ("mac_address", "external_links", "blkio_config", "oom_kill_disable")


def container_name(project, service, number):
    svc = project.service(service)
    return svc.get("container_name") or "%s-%s-%d" % (project.name, service, number)


def config_hash(project, service):
    """What a container of ``service`` was made from: a new one is made
    by `up` when this changes (Compose's com.docker.compose.config-hash)."""
    svc = project.service(service)
    text = json.dumps(svc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def service_networks(project, service):
    """[(key, network name, {aliases, ipv4_address, ...})], the first the
    one `create` joins; [] with a network_mode."""
    svc = project.service(service)
    if svc.get("network_mode"):
        return []
    nets = svc.get("networks") or {"default": None}
    out = [(key, project.network_name(key), cfg or {}) for key, cfg in nets.items()]
    out.sort(key=lambda item: -int(item[2].get("priority") or 0))
    return out


def seconds(value, what):
    """A compose duration ("1m30s", "500ms"; a number is seconds) in seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    from ..container.health import parse_duration
    return parse_duration(str(value), what) / 1e9


def _csv(fields):
    """--mount's fields, quoted where a value holds a comma or a quote."""
    out = []
    for f in fields:
        if "," in f or '"' in f:
            f = '"%s"' % f.replace('"', '""')
        out.append(f)
    return ",".join(out)


def _volume_args(project, service, item, make_dirs):
    where = "service %s: volumes" % service
    if isinstance(item, str):
        parts = item.split(":")
        if len(parts) == 1:
            return ["--volume=" + parts[0]]
        source, target, mode = parts[0], parts[1], ":".join(parts[2:])
        if source[:1] in ("/", ".", "~"):
            source = os.path.normpath(os.path.join(project.workdir, os.path.expanduser(source)))
            make_dirs.append(source)
        else:
            source = project.volume_name(source)       # (declared: project.py checks)
        return ["--volume=" + ":".join([source, target] + ([mode] if mode else []))]
    if not isinstance(item, dict) or not item.get("target"):
        raise ComposeError("%s: %r needs a target" % (where, item))
    kind = item.get("type") or "volume"
    fields = ["type=" + kind, "target=" + item["target"]]
    source = item.get("source")
    if kind == "bind":
        if not source:
            raise ComposeError("%s: a bind mount needs a source" % where)
        source = os.path.normpath(os.path.join(project.workdir, os.path.expanduser(source)))
        if (item.get("bind") or {}).get("create_host_path", True):
            make_dirs.append(source)
        fields.append("source=" + source)
        if (item.get("bind") or {}).get("propagation"):
            fields.append("bind-propagation=" + item["bind"]["propagation"])
    elif kind == "volume":
        if source:
            fields.append("source=" + project.volume_name(source))
        opts = item.get("volume") or {}
        if opts.get("nocopy"):
            fields.append("volume-nocopy")
        if opts.get("subpath"):
            fields.append("volume-subpath=" + opts["subpath"])
    elif kind == "tmpfs":
        opts = item.get("tmpfs") or {}
        if opts.get("size") is not None:
            fields.append("tmpfs-size=%s" % opts["size"])
        if opts.get("mode") is not None:
            fields.append("tmpfs-mode=%o" % opts["mode"] if isinstance(opts["mode"], int)
                          else "tmpfs-mode=%s" % opts["mode"])
    else:
        raise ComposeError("%s: type %s is not supported" % (where, kind),
                           hint="bind, volume or tmpfs")
    if item.get("read_only"):
        fields.append("readonly")
    return ["--mount=" + _csv(fields)]


def _port(item, service):
    if isinstance(item, (int, str)):
        return str(item)
    if not isinstance(item, dict) or "target" not in item:
        raise ComposeError("service %s: ports: %r needs a target" % (service, item))
    text = str(item["target"])
    if item.get("published") not in (None, ""):
        text = "%s:%s" % (item["published"], text)
    if item.get("host_ip"):
        text = "%s:%s" % (item["host_ip"], text if item.get("published") not in (None, "")
                          else ":" + text)
    if item.get("protocol"):
        text += "/" + item["protocol"]
    return text


def _health_args(health):
    if health.get("disable"):
        return ["--no-healthcheck"]
    out = []
    test = health.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if test:
        if test[0] == "NONE":
            return ["--no-healthcheck"]
        if test[0] == "CMD-SHELL":
            out.append("--health-cmd=" + " ".join(test[1:]))
        elif test[0] == "CMD":
            out.append("--health-cmd=" + shlex.join(test[1:]))
        else:
            raise ComposeError("healthcheck.test must start with CMD, CMD-SHELL or NONE")
    for key, flag in (("interval", "interval"), ("timeout", "timeout"),
                      ("start_period", "start-period"), ("start_interval", "start-interval"),
                      ("retries", "retries")):
        if health.get(key) is not None:
            out.append("--health-%s=%s" % (flag, health[key]))
    return out


def _secret_args(project, service, kind, items, secret_dir):
    top = project.secrets if kind == "secrets" else project.configs
    out = []
    for item in items or []:
        if isinstance(item, str):
            item = {"source": item}
        source = item.get("source")
        if source not in top:
            raise ComposeError("service %s refers to undefined %s %s"
                               % (service, kind[:-1], source),
                               hint="declare it under the top-level %s:" % kind)
        spec = top[source] or {}
        target = item.get("target") or source
        if not target.startswith("/"):
            target = ("/run/secrets/" if kind == "secrets" else "/") + target
        if spec.get("file"):
            path = os.path.normpath(os.path.join(project.workdir,
                                                 os.path.expanduser(spec["file"])))
            if not os.path.exists(path):
                raise ComposeError("%s %s: %s does not exist" % (kind[:-1], source, path))
        elif spec.get("environment") is not None or spec.get("content") is not None:
            if spec.get("environment") is not None:
                value = project.env(spec["environment"])
                if value is None:
                    raise ComposeError("%s %s: the variable %s is not set"
                                       % (kind[:-1], source, spec["environment"]))
            else:
                value = spec["content"]
            os.makedirs(secret_dir, mode=0o700, exist_ok=True)
            path = os.path.join(secret_dir, "%s-%s" % (kind, source))
            tmp = path + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
            with os.fdopen(fd, "w") as f:
                f.write(value)
            os.replace(tmp, path)
        elif spec.get("external"):
            raise ComposeError("%s %s is external: only a swarm has those" % (kind[:-1], source),
                               hint="give it a file: or environment:")
        else:
            raise ComposeError("%s %s needs a file:, environment: or content:"
                               % (kind[:-1], source))
        out.append("--mount=" + _csv(["type=bind", "source=" + path, "target=" + target,
                                      "readonly"]))
    return out


def create_args(project, service, number, name, secret_dir, oneoff=False, command=None,
                with_ports=True, extra=()):
    """(argv after `create`, [(network, alias/ip flags)] to connect after,
    [host dirs to make first]) for container ``number`` of ``service``."""
    svc = project.service(service)
    for key in IGNORED:
        if key in svc:
            sys.stderr.write("sandbox compose: warning: service %s: %s is ignored\n"
                             % (service, key))
    a = ["--name=" + name]
    labels = {LABEL + "project": project.name, LABEL + "service": service,
              LABEL + "container-number": str(number),
              LABEL + "oneoff": "True" if oneoff else "False",
              LABEL + "project.working_dir": project.workdir,
              LABEL + "project.config_files": ",".join(project.files),
              LABEL + "config-hash": config_hash(project, service),
              LABEL + "depends_on": ",".join(dependencies(svc))}
    labels.update(svc.get("labels") or {})
    for k, v in labels.items():
        a.append("--label=%s=%s" % (k, "" if v is None else v))
    for k, v in (svc.get("annotations") or {}).items():
        a.append("--annotation=%s=%s" % (k, v or ""))
    for k, v in (svc.get("environment") or {}).items():
        a.append("--env=%s=%s" % (k, v))
    if with_ports and svc.get("ports") and svc.get("network_mode") == "host":
        sys.stderr.write("sandbox compose: warning: service %s: published ports are "
                         "discarded with network_mode: host\n" % service)
    elif with_ports:
        for item in svc.get("ports") or []:
            a.append("--publish=" + _port(item, service))
    for item in svc.get("expose") or []:
        a.append("--expose=%s" % item)
    make_dirs = []
    for item in svc.get("volumes") or []:
        a += _volume_args(project, service, item, make_dirs)
    for item in svc.get("volumes_from") or []:
        ref, _, mode = item.partition(":")
        if ref == "container":
            ref, _, mode = mode.partition(":")
        elif ref in project.services:
            ref = container_name(project, ref, 1)
        a.append("--volumes-from=" + ref + (":" + mode if mode else ""))
    for item in svc.get("tmpfs") or []:
        a.append("--tmpfs=" + item)
    connect = []
    mode = svc.get("network_mode")
    if mode:
        if mode.startswith("service:"):
            mode = "container:" + container_name(project, mode[8:], 1)
        a.append("--network=" + mode)
    for i, (key, net, cfg) in enumerate(service_networks(project, service)):
        flags = ["--alias=" + service] + ["--alias=%s" % x for x in cfg.get("aliases") or []]
        if cfg.get("ipv4_address"):
            flags.append("--ip=" + cfg["ipv4_address"])
        if i == 0:
            a.append("--network=" + net)
            a += ["--network-" + f[2:] if f.startswith("--alias") else f for f in flags]
        else:
            connect.append((net, flags))
    simple = (("hostname", "--hostname"), ("domainname", "--domainname"), ("user", "--user"),
              ("working_dir", "--workdir"), ("pid", "--pid"), ("ipc", "--ipc"),
              ("uts", "--uts"), ("userns_mode", "--userns"), ("cgroup", "--cgroupns"),
              ("mem_limit", "--memory"), ("memswap_limit", "--memory-swap"),
              ("mem_reservation", "--memory-reservation"), ("cpus", "--cpus"),
              ("cpu_shares", "--cpu-shares"), ("cpu_period", "--cpu-period"),
              ("cpu_quota", "--cpu-quota"), ("cpuset", "--cpuset-cpus"),
              ("pids_limit", "--pids-limit"), ("shm_size", "--shm-size"),
              ("stop_signal", "--stop-signal"), ("oom_score_adj", "--oom-score-adj"),
              ("platform", "--platform"), ("restart", "--restart"))
    for key, flag in simple:
        if svc.get(key) is not None:
            a.append("%s=%s" % (flag, svc[key]))
    for key, flag in (("privileged", "--privileged"), ("read_only", "--read-only"),
                      ("stdin_open", "--interactive"), ("tty", "--tty")):
        if svc.get(key):
            a.append(flag)
    if svc.get("init") is not None:
        a.append("--init" if svc["init"] else "--init=false")
    for key, flag in (("cap_add", "--cap-add"), ("cap_drop", "--cap-drop"),
                      ("security_opt", "--security-opt"), ("devices", "--device"),
                      ("dns", "--dns"), ("dns_search", "--dns-search"),
                      ("dns_opt", "--dns-option"), ("group_add", "--group-add")):
        for item in svc.get(key) or []:
            a.append("%s=%s" % (flag, item))
    for item in svc.get("extra_hosts") or []:
        host, sep, ip = str(item).partition("=")
        a.append("--add-host=" + ("%s:%s" % (host, ip) if sep else item))
    for k, v in (svc.get("sysctls") or {}).items():
        a.append("--sysctl=%s=%s" % (k, v))
    for k, v in (svc.get("ulimits") or {}).items():
        if isinstance(v, dict):
            v = "%s:%s" % (v.get("soft"), v.get("hard"))
        a.append("--ulimit=%s=%s" % (k, v))
    if svc.get("stop_grace_period") is not None:
        grace = seconds(svc["stop_grace_period"], "service %s: stop_grace_period" % service)
        a.append("--stop-timeout=%d" % math.ceil(grace))
    logging = svc.get("logging") or {}
    if logging.get("driver"):
        a.append("--log-driver=" + logging["driver"])
    for k, v in (logging.get("options") or {}).items():
        a.append("--log-opt=%s=%s" % (k, v))
    if svc.get("healthcheck"):
        a += _health_args(svc["healthcheck"])
    deploy = svc.get("deploy") or {}
    limits = (deploy.get("resources") or {}).get("limits") or {}
    for key, flag in (("memory", "--memory"), ("cpus", "--cpus"), ("pids", "--pids-limit")):
        if limits.get(key) is not None and svc.get({"memory": "mem_limit", "cpus": "cpus",
                                                    "pids": "pids_limit"}[key]) is None:
            a.append("%s=%s" % (flag, limits[key]))
    reserve = (deploy.get("resources") or {}).get("reservations") or {}
    if reserve.get("memory") is not None and svc.get("mem_reservation") is None:
        a.append("--memory-reservation=%s" % reserve["memory"])
    policy = deploy.get("restart_policy") or {}
    if policy and svc.get("restart") is None:
        condition = policy.get("condition", "any")
        if condition == "on-failure" and policy.get("max_attempts"):
            a.append("--restart=on-failure:%d" % int(policy["max_attempts"]))
        else:
            a.append("--restart=" + {"none": "no", "any": "always"}.get(condition, condition))
    pull = svc.get("pull_policy")
    if pull in ("always", "never", "missing"):
        a.append("--pull=" + pull)
    a += _secret_args(project, service, "secrets", svc.get("secrets"), secret_dir)
    a += _secret_args(project, service, "configs", svc.get("configs"), secret_dir)
    a += list(extra)
    entrypoint = svc.get("entrypoint")
    args = list(command if command is not None else (svc.get("command") or []))
    if entrypoint is not None:
        a.append("--entrypoint=" + (entrypoint[0] if entrypoint else ""))
        args = entrypoint[1:] + args
    a.append(project.image_of(service))
    a += args
    return a, connect, make_dirs
