"""`compose`: Docker Compose's verbs over compose files, without a daemon.

Each action is sandbox's own verb run as a child (create, start, stop,
rm, network create, volume create, build, pull, logs -f), so a project's
containers are ordinary containers with Compose's labels; what a project
has is read from those labels (helpers/compose/__init__.py)."""

import json
import os
import subprocess
import sys
import threading
import time

from ..errors import SandboxError, UsageError

COLORS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


def register(sub):
    p = sub.add_parser("compose", help="run multi-container projects from compose files",
                       description="Docker Compose's verbs: the project's containers, "
                                   "networks and volumes from compose.yaml.")
    p.add_argument("-f", "--file", action="append", default=[], metavar="FILE",
                   help="a compose file (repeatable: later ones override; - for stdin)")
    p.add_argument("-p", "--project-name", metavar="NAME",
                   help="the project's name (default: its directory's)")
    p.add_argument("--project-directory", metavar="DIR",
                   help="where relative paths start (default: the first file's directory)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="variables for interpolation (default: the project's .env)")
    p.add_argument("--profile", action="append", default=[], metavar="NAME",
                   help="also the services of this profile")
    p.add_argument("--ansi", choices=("never", "always", "auto"), default="auto",
                   help="colour the prefixes of logs")
    p.add_argument("--progress", help="accepted (the output is always plain)")
    p.add_argument("--parallel", type=int, help="accepted (services start in order)")
    csub = p.add_subparsers(dest="compose_verb", metavar="COMMAND")

    def verb(name, func, help, aliases=()):
        q = csub.add_parser(name, help=help, aliases=list(aliases))
        q.set_defaults(func=func)
        return q

    def services(q, nargs="*"):
        q.add_argument("services", nargs=nargs, metavar="SERVICE")

    q = verb("up", cmd_up, "create and start the services' containers")
    q.add_argument("-d", "--detach", action="store_true", help="in the background")
    q.add_argument("--build", action="store_true", help="build images first")
    q.add_argument("--no-build", action="store_true", help="never build a missing image")
    q.add_argument("--pull", choices=("always", "missing", "never"),
                   help="pull images (default: missing ones)")
    q.add_argument("--force-recreate", action="store_true",
                   help="new containers even where nothing changed")
    q.add_argument("--no-recreate", action="store_true",
                   help="keep existing containers even where the service changed")
    q.add_argument("--no-start", action="store_true", help="create only")
    q.add_argument("--no-deps", action="store_true", help="not the services they depend on")
    q.add_argument("--remove-orphans", action="store_true",
                   help="remove containers of services no longer in the files")
    q.add_argument("--abort-on-container-exit", action="store_true",
                   help="stop every container when one exits")
    q.add_argument("--exit-code-from", metavar="SERVICE",
                   help="exit with this service's code (implies --abort-on-container-exit)")
    q.add_argument("-t", "--timeout", type=int, metavar="SECONDS",
                   help="stop timeout of recreated containers")
    q.add_argument("--wait", action="store_true",
                   help="with -d: until the services are running or healthy")
    q.add_argument("--wait-timeout", type=int, metavar="SECONDS")
    q.add_argument("--scale", action="append", default=[], metavar="SERVICE=N")
    q.add_argument("--no-log-prefix", action="store_true")
    q.add_argument("--no-color", action="store_true")
    q.add_argument("--quiet-pull", action="store_true")
    q.add_argument("--timestamps", action="store_true")
    q.add_argument("--attach", action="append", default=[], metavar="SERVICE",
                   help="show only these services' output")
    q.add_argument("-w", "--watch", action="store_true",
                   help="then watch their develop.watch files (as `compose watch`), "
                        "showing their output")
    services(q)

    q = verb("create", cmd_create, "create the services' containers without starting them")
    q.add_argument("--build", action="store_true", help="build images first")
    q.add_argument("--no-build", action="store_true", help="never build a missing image")
    q.add_argument("--pull", choices=("always", "missing", "never"))
    q.add_argument("--force-recreate", action="store_true")
    q.add_argument("--no-recreate", action="store_true")
    q.add_argument("--remove-orphans", action="store_true")
    q.add_argument("--scale", action="append", default=[], metavar="SERVICE=N")
    q.add_argument("--quiet-pull", action="store_true")
    services(q)

    q = verb("cp", cmd_cp, "copy files between a service's container and the host")
    q.add_argument("--index", type=int, default=1, metavar="N")
    q.add_argument("-a", "--archive", action="store_true", help="keep owners")
    q.add_argument("-L", "--follow-link", action="store_true")
    q.add_argument("source", metavar="SRC")
    q.add_argument("dest", metavar="DEST")

    q = verb("down", cmd_down, "stop and remove the project's containers and networks")
    q.add_argument("-v", "--volumes", action="store_true",
                   help="also its named volumes and the containers' anonymous ones")
    q.add_argument("--rmi", choices=("local", "all"),
                   help="also the images: built ones (local) or all")
    q.add_argument("--remove-orphans", action="store_true")
    q.add_argument("-t", "--timeout", type=int, metavar="SECONDS")

    q = verb("ps", cmd_ps, "list the project's containers")
    q.add_argument("-a", "--all", action="store_true", help="stopped ones too")
    q.add_argument("-q", "--quiet", action="store_true", help="only ids")
    q.add_argument("--services", dest="list_services", action="store_true",
                   help="only service names")
    q.add_argument("--format", help="table, json or a Go template")
    q.add_argument("--status", action="append", default=[], metavar="STATUS")
    q.add_argument("--no-trunc", action="store_true")
    services(q)

    q = verb("logs", cmd_logs, "show the services' output")
    q.add_argument("-f", "--follow", action="store_true")
    q.add_argument("-n", "--tail", default="all", metavar="N")
    q.add_argument("-t", "--timestamps", action="store_true")
    q.add_argument("--since", metavar="TIME")
    q.add_argument("--until", metavar="TIME")
    q.add_argument("--no-color", action="store_true")
    q.add_argument("--no-log-prefix", action="store_true")
    q.add_argument("--index", type=int, metavar="N")
    services(q)

    q = verb("config", cmd_config, "check the files and print the project", ("convert",))
    q.add_argument("-q", "--quiet", action="store_true", help="only check")
    q.add_argument("--services", dest="list_services", action="store_true")
    q.add_argument("--volumes", action="store_true")
    q.add_argument("--networks", action="store_true")
    q.add_argument("--images", action="store_true")
    q.add_argument("--profiles", action="store_true")
    q.add_argument("--format", choices=("yaml", "json"), default="yaml")
    q.add_argument("-o", "--output", metavar="FILE")
    services(q)

    q = verb("build", cmd_build, "build the services' images")
    q.add_argument("--no-cache", action="store_true")
    q.add_argument("--pull", action="store_true")
    q.add_argument("-q", "--quiet", action="store_true")
    q.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    services(q)

    q = verb("pull", cmd_pull, "pull the services' images")
    q.add_argument("-q", "--quiet", action="store_true")
    q.add_argument("--ignore-pull-failures", action="store_true")
    q.add_argument("--ignore-buildable", action="store_true")
    services(q)

    q = verb("push", cmd_push, "push the services' images")
    q.add_argument("-q", "--quiet", action="store_true")
    services(q)

    for name, help in (("start", "start the services' stopped containers"),
                       ("stop", "stop the services' containers"),
                       ("restart", "restart the services' containers")):
        q = verb(name, cmd_simple, help)
        if name != "start":
            q.add_argument("-t", "--timeout", type=int, metavar="SECONDS")
        services(q)
    q = verb("kill", cmd_simple, "send a signal to the services' containers")
    q.add_argument("-s", "--signal", default="SIGKILL")
    services(q)
    for name, help in (("pause", "pause the services' containers"),
                       ("unpause", "unpause the services' containers"),
                       ("top", "the processes of the services' containers")):
        services(verb(name, cmd_simple, help))

    q = verb("watch", cmd_watch, "start the services, then sync, rebuild or restart them "
                                 "as their develop.watch files change")
    q.add_argument("--no-up", action="store_true", help="do not start the services first")
    q.add_argument("--prune", action="store_true",
                   help="remove the dangling images a rebuild leaves")
    q.add_argument("--quiet", action="store_true", help="no build output")
    services(q)

    q = verb("wait", cmd_wait, "wait for the services' containers to stop; exit with "
                               "the code of the last")
    q.add_argument("--down-project", action="store_true",
                   help="then take the project down (as `down --remove-orphans`)")
    services(q, "+")

    q = verb("attach", cmd_attach, "attach to a service's running container")
    q.add_argument("--index", type=int, default=1, metavar="N")
    q.add_argument("--no-stdin", action="store_true", help="do not pass stdin")
    q.add_argument("--sig-proxy", default="true", metavar="BOOL",
                   help="pass signals on to the container (default true)")
    q.add_argument("--detach-keys", metavar="KEYS")
    q.add_argument("service", metavar="SERVICE")

    q = verb("stats", cmd_stats, "live resource usage of the services' containers")
    q.add_argument("-a", "--all", action="store_true", help="stopped ones too")
    q.add_argument("--no-stream", action="store_true", help="print once")
    q.add_argument("--no-trunc", action="store_true")
    q.add_argument("--format", help="a Go template, 'table TEMPLATE' or json")
    services(q)

    q = verb("events", cmd_events, "what happens to the services' containers, as it "
                                   "happens")
    q.add_argument("--json", action="store_true", help="one JSON object a line")
    q.add_argument("--since", metavar="TIME", help="from this time (default: now)")
    q.add_argument("--until", metavar="TIME", help="up to this time (then exit)")
    services(q)

    q = verb("rm", cmd_rm, "remove the services' stopped containers")
    q.add_argument("-f", "--force", action="store_true", help="without asking")
    q.add_argument("-s", "--stop", action="store_true", help="stop them first")
    q.add_argument("-v", "--volumes", action="store_true", help="and their anonymous volumes")
    services(q)

    q = verb("exec", cmd_exec, "run a command in a service's running container")
    q.add_argument("-d", "--detach", action="store_true")
    q.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true",
                   help="no pseudo-terminal (the default when stdin is not one)")
    q.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    q.add_argument("-u", "--user", metavar="USER")
    q.add_argument("-w", "--workdir", metavar="DIR")
    q.add_argument("--privileged", action="store_true")
    q.add_argument("--index", type=int, default=1, metavar="N")
    q.add_argument("service", metavar="SERVICE")
    q.add_argument("command", nargs="...", metavar="CMD")

    q = verb("run", cmd_run, "run a one-off command in a new container of a service")
    q.add_argument("-d", "--detach", action="store_true")
    q.add_argument("--rm", action="store_true", help="remove it when it exits")
    q.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true")
    q.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    q.add_argument("-l", "--label", action="append", default=[], metavar="K=V")
    q.add_argument("-u", "--user", metavar="USER")
    q.add_argument("-w", "--workdir", metavar="DIR")
    q.add_argument("-v", "--volume", action="append", default=[], metavar="VOLUME")
    q.add_argument("-p", "--publish", action="append", default=[], metavar="PORT")
    q.add_argument("--entrypoint", metavar="CMD")
    q.add_argument("--name", metavar="NAME")
    q.add_argument("--no-deps", action="store_true")
    q.add_argument("--service-ports", action="store_true",
                   help="publish the service's ports (not published otherwise)")
    q.add_argument("--build", action="store_true")
    q.add_argument("service", metavar="SERVICE")
    q.add_argument("command", nargs="...", metavar="CMD")

    q = verb("port", cmd_port, "the host address of a service's published port")
    q.add_argument("--index", type=int, default=1, metavar="N")
    q.add_argument("--protocol", default="tcp", choices=("tcp", "udp"))
    q.add_argument("service", metavar="SERVICE")
    q.add_argument("port", metavar="PRIVATE_PORT")

    q = verb("images", cmd_images, "the images of the project's containers")
    q.add_argument("-q", "--quiet", action="store_true")
    services(q)

    q = verb("ls", cmd_ls, "list compose projects")
    q.add_argument("-a", "--all", action="store_true", help="stopped projects too")
    q.add_argument("-q", "--quiet", action="store_true")
    q.add_argument("--format", help="table or json")

    verb("version", cmd_version, "show the version")


# -- running sandbox itself ---------------------------------------------------

def sandbox_argv(paths, *args):
    from ..container.monitor import self_argv
    return self_argv(paths, *args)


def sandbox(paths, *args, capture=True, check=True, what=None, input=None):
    """Run one of our verbs; its output captured (returned as text), its
    failure an error that says what it was doing.  ``input``: bytes for
    its stdin (else it reads none)."""
    argv = sandbox_argv(paths, *args)
    result = subprocess.run(argv, input=input,
                            stdin=subprocess.DEVNULL if input is None else None,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.PIPE if capture else None)
    if check and result.returncode != 0:
        raise _failed(what or " ".join(args[:2]), result.returncode,
                      result.stderr.decode(errors="replace") if capture else "")
    return (result.stdout or b"").decode(errors="replace") if capture else result.returncode


def _exit_code(code):
    """Ours for a child verb's exit ``code``: its own, but 1 (docker
    compose's) for its setup errors (125 and up)."""
    return code if code < 125 else 1


def _failed(what, code, stderr):
    """A child verb's failure as our error: its message and hint."""
    from ..compose.project import ComposeError
    message, hint = _failure(stderr)
    return ComposeError("%s: %s" % (what, message), hint=hint, exit_code=_exit_code(code))


def _failure(stderr):
    message, hint = None, None
    for line in stderr.splitlines():
        if line.startswith("sandbox: ") and message is None:
            message = line[len("sandbox: "):]
        elif line.strip().startswith("hint: ") and hint is None:
            hint = line.strip()[len("hint: "):]
    if message is None:
        lines = [x for x in stderr.splitlines() if x.strip()]
        message = lines[-1] if lines else "failed"
    return message, hint


def say(kind, name, what):
    """Compose's progress line, on stderr: " Container demo-web-1  Started"."""
    sys.stderr.write(" %s %s  %s\n" % (kind, name, what))
    sys.stderr.flush()


# -- the project and its containers -------------------------------------------

def load_project(args):
    """The project, with the profiles of the services the command names
    enabled (`compose up debug-tool` starts a service of an inactive
    profile, as Docker Compose does)."""
    from ..compose import project
    targets = list(getattr(args, "services", None) or []) + \
        [name for name in (getattr(args, "service", None),) if name]
    return project.load(args.file, args.project_name, args.project_directory,
                        args.env_file, args.profile, targets=targets)


def project_containers(paths, project_name, services=None, oneoff=False):
    """Records of a project's containers (all states), by service order
    then number; ``oneoff``: None for both kinds."""
    from .containers import all_records
    from ..compose.plan import LABEL
    out = []
    for st in all_records(paths):
        labels = st.get("Labels") or {}
        if labels.get(LABEL + "project") != project_name:
            continue
        if oneoff is not None and (labels.get(LABEL + "oneoff") == "True") != oneoff:
            continue
        if services and labels.get(LABEL + "service") not in services:
            continue
        out.append(st)
    order = {s: i for i, s in enumerate(services or [])}
    out.sort(key=lambda st: (order.get(_label(st, "service"), 0), _label(st, "service"),
                             int(_label(st, "container-number") or 0), st.get("Name")))
    return out


def _label(st, key):
    from ..compose.plan import LABEL
    return (st.get("Labels") or {}).get(LABEL + key, "")


def _running(st):
    return st.get("Status") in ("running", "paused", "restarting")


def _containers_of(paths, project, names, oneoff=False):
    names = project.selected(names)
    return project_containers(paths, project.name, names, oneoff)


def _image_id(paths, ref):
    from ..image.store import Store
    try:
        return Store(paths).lookup(ref)
    except SandboxError:
        return None


def _secret_dir(paths, project):
    return os.path.join(paths.runroot, "compose", project.name)


# -- up -------------------------------------------------------------------------

def _networks_used(project, services):
    from ..compose.plan import service_networks
    keys = []
    for name in services:
        for key, _, _ in service_networks(project, name):
            if key not in keys:
                keys.append(key)
    return keys


def _networks(paths):
    from ..network import usernet
    return usernet.list_all(paths)


def ensure_networks(paths, project, services):
    from ..compose.plan import LABEL
    existing = {n["Name"] for n in _networks(paths)} | {"host", "none", "bridge"}
    for key in _networks_used(project, services):
        spec = project.networks.get(key) or {}
        name = project.network_name(key)
        if spec.get("external"):
            if name not in existing:
                from ..compose.project import ComposeError
                raise ComposeError("network %s declared as external, but could not be found"
                                   % name, hint="sandbox network create " + name)
            continue
        if name in existing:
            continue
        argv = ["network", "create", "--label=%sproject=%s" % (LABEL, project.name),
                "--label=%snetwork=%s" % (LABEL, key)]
        for k, v in (spec.get("labels") or {}).items() if isinstance(
                spec.get("labels"), dict) else []:
            argv.append("--label=%s=%s" % (k, v))
        if spec.get("internal"):
            argv.append("--internal")
        for k, v in (spec.get("driver_opts") or {}).items():
            argv.append("--opt=%s=%s" % (k, v))
        driver = spec.get("driver")
        if driver and driver != "bridge":
            from ..compose.project import ComposeError
            raise ComposeError("network %s: driver %s is not supported" % (key, driver),
                               hint="bridge networks only (leave driver: out)")
        for cfg in ((spec.get("ipam") or {}).get("config") or [])[:1]:
            for k, flag in (("subnet", "--subnet"), ("gateway", "--gateway"),
                            ("ip_range", "--ip-range")):
                if cfg.get(k):
                    argv.append("%s=%s" % (flag, cfg[k]))
        sandbox(paths, *(argv + [name]), what="network " + name)
        say("Network", name, "Created")


def _volumes_used(project, services):
    from ..compose.project import named_volume
    keys = []
    for name in services:
        for item in project.services[name].get("volumes") or []:
            source = named_volume(item)
            if source in project.volumes and source not in keys:
                keys.append(source)
    return keys


def ensure_volumes(paths, project, services):
    from ..compose.plan import LABEL
    from ..compose.project import ComposeError
    from ..container import volumes
    existing = set(volumes.names(paths))
    for key in _volumes_used(project, services):
        spec = project.volumes.get(key) or {}
        name = project.volume_name(key)
        if name in existing:
            continue
        if spec.get("external"):
            raise ComposeError("external volume %s not found" % name,
                               hint="sandbox volume create " + name)
        argv = ["volume", "create", "--label=%sproject=%s" % (LABEL, project.name),
                "--label=%svolume=%s" % (LABEL, key)]
        labels = spec.get("labels") or {}
        if isinstance(labels, list):
            labels = dict(x.partition("=")[::2] for x in labels)
        for k, v in labels.items():
            argv.append("--label=%s=%s" % (k, v))
        for k, v in (spec.get("driver_opts") or {}).items():
            argv.append("--opt=%s=%s" % (k, v))
        sandbox(paths, *(argv + [name]), what="volume " + name)
        say("Volume", name, "Created")


def build_service(paths, project, name, no_cache=False, pull=False, quiet=False,
                  build_args=()):
    from ..compose.project import ComposeError
    svc = project.service(name)
    build = svc.get("build")
    if not build:
        return
    context = build["context"]
    if not os.path.isdir(context):
        raise ComposeError("service %s: build context %s is not a directory" % (name, context))
    argv = ["build", "-t", project.image_of(name)]
    dockerfile = build.get("dockerfile")
    if build.get("dockerfile_inline") is not None:
        argv += ["-f", "-"]
    elif dockerfile:
        argv += ["-f", os.path.join(context, dockerfile)]
    for k, v in (build.get("args") or {}).items():
        if v is None:
            v = os.environ.get(k)
            if v is None:
                continue
        argv.append("--build-arg=%s=%s" % (k, v))
    for item in build_args:
        argv.append("--build-arg=" + item)
    for k, v in (build.get("labels") or {}).items():
        argv.append("--label=%s=%s" % (k, v or ""))
    if build.get("target"):
        argv.append("--target=" + build["target"])
    if build.get("network"):
        argv.append("--network=" + build["network"])
    for tag in build.get("tags") or []:
        argv += ["-t", tag]
    for host in build.get("extra_hosts") or []:
        argv.append("--add-host=" + host)
    if build.get("shm_size"):
        argv.append("--shm-size=%s" % build["shm_size"])
    if no_cache or build.get("no_cache"):
        argv.append("--no-cache")
    if pull or build.get("pull"):
        argv.append("--pull")
    if quiet:
        argv.append("-q")
    argv.append(context)
    inline = build.get("dockerfile_inline")
    result = subprocess.run(sandbox_argv(paths, *argv),
                            input=inline.encode() if inline is not None else None,
                            stdin=None if inline is not None else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL if quiet else sys.stderr.fileno())
    if result.returncode != 0:
        raise ComposeError("service %s: its image could not be built" % name,
                           hint="see the build's output above",
                           exit_code=_exit_code(result.returncode))
    say("Image", project.image_of(name), "Built")


def pull_image(paths, ref, quiet=False, always=False):
    """Pull ``ref`` (unless it is here and not ``always``)."""
    if not always and _image_id(paths, ref):
        return False
    argv = ["pull"] + (["-q"] if quiet else []) + [ref]
    result = subprocess.run(sandbox_argv(paths, *argv), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL if quiet else sys.stderr.fileno(),
                            stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise _failed("pull " + ref, result.returncode, result.stderr.decode(errors="replace"))
    return True


def ensure_images(paths, project, services, build=False, no_build=False, pull=None,
                  quiet=False):
    from ..compose.project import ComposeError
    for name in services:
        svc = project.services[name]
        ref = project.image_of(name)
        here = _image_id(paths, ref) is not None
        policy = pull or svc.get("pull_policy") or "missing"
        if svc.get("build") and not no_build and (build or policy == "build" or not here):
            if svc.get("image") and policy == "always" and not build:
                pull_image(paths, ref, quiet, always=True)
                continue
            build_service(paths, project, name)
            continue
        if policy in ("always", "daily", "weekly") or (policy == "missing" and not here):
            if not svc.get("image"):
                raise ComposeError("service %s has no image and --no-build was given" % name)
            if pull_image(paths, ref, quiet, always=policy != "missing"):
                say("Image", ref, "Pulled")
        elif policy == "never" and not here:
            raise ComposeError("service %s: image %s is not here and pull_policy is never"
                               % (name, ref), hint="sandbox compose pull " + name)


def _wait_dependencies(paths, project, name):
    """depends_on's conditions: service_healthy, service_completed_successfully."""
    from ..compose.project import ComposeError
    from ..container import health, state
    svc = project.services[name]
    for dep, cond in (svc.get("depends_on") or {}).items():
        condition = (cond or {}).get("condition", "service_started")
        if condition == "service_started" or dep not in project.services:
            continue
        for st in project_containers(paths, project.name, [dep]):
            cid = st["Id"]
            while True:
                st = state.refresh(paths, cid)
                if condition == "service_healthy":
                    if not st.get("Healthcheck"):
                        raise ComposeError("dependency %s has no healthcheck" % dep,
                                           hint="give it one, or depend on "
                                                "service_started")
                    status = health.status_of(paths, st) if state.is_running(st) else "exited"
                    if status == "healthy":
                        break
                    if status in ("unhealthy", "exited"):
                        raise ComposeError("dependency failed to start: container %s is %s"
                                           % (st["Name"], status))
                elif condition == "service_completed_successfully":
                    if state.stopped(st):
                        if st.get("ExitCode"):
                            raise ComposeError(
                                "service %s didn't complete successfully: exit %d"
                                % (dep, st["ExitCode"]))
                        break
                else:
                    raise ComposeError("service %s: depends_on condition %s is not known"
                                       % (name, condition))
                time.sleep(0.1)
            say("Container", st["Name"], "Healthy" if condition == "service_healthy"
                else "Exited")


def _remove(paths, names, timeout=None, volumes=False):
    if not names:
        return
    stop = ["stop"] + (["-t", str(timeout)] if timeout is not None else []) + list(names)
    sandbox(paths, *stop, what="stop")
    sandbox(paths, *(["rm"] + (["-v"] if volumes else []) + list(names)), what="rm")


def _link_hosts(paths, project, service):
    """--add-host flags for the aliases of `links: [SERVICE:ALIAS]` (Docker's
    legacy links, scoped to the linking container): the linked service's
    first container's address on a network of theirs (it started first)."""
    from ..compose.plan import service_networks
    mine = {net for _, net, _ in service_networks(project, service)}
    out = []
    for link in project.services[service].get("links") or []:
        target, _, alias = str(link).partition(":")
        if not alias or alias == target or target not in project.services:
            continue
        for st in project_containers(paths, project.name, [target]):
            if _label(st, "container-number") != "1":
                continue
            for net, ep in (st.get("NetEndpoints") or {}).items():
                if net in mine and ep.get("IPAddress"):
                    out.append("--add-host=%s:%s" % (alias, ep["IPAddress"]))
                    break
    return out


def create_container(paths, project, service, number, name, **kw):
    from ..compose.plan import create_args
    kw["extra"] = _link_hosts(paths, project, service) + list(kw.get("extra") or ())
    argv, connect, make_dirs = create_args(project, service, number, name,
                                           _secret_dir(paths, project), **kw)
    for d in make_dirs:
        if not os.path.exists(d):
            os.makedirs(d, exist_ok=True)
    cid = sandbox(paths, "create", "-q", *argv, what="container " + name).strip()
    for net, flags in connect:
        sandbox(paths, "network", "connect", *flags, net, cid, what="container " + name)
    return cid


def converge(paths, project, name, want, force=False, keep=False, start=True,
             timeout=None):
    """``want`` containers for service ``name`` (made, recreated where the
    service or its image changed, started); their names."""
    from ..compose import plan
    current = {}
    for st in project_containers(paths, project.name, [name]):
        current.setdefault(int(_label(st, "container-number") or 0), st)
    digest = plan.config_hash(project, name)
    image = _image_id(paths, project.image_of(name))
    out = []
    for number in range(1, want + 1):
        cname = plan.container_name(project, name, number)
        st = current.pop(number, None)
        if st is not None and not force and (keep or (
                _label(st, "config-hash") == digest and st.get("Image") == image
                and st.get("Name") == cname)):
            if start and not _running(st):
                sandbox(paths, "start", st["Id"], what="container " + st["Name"])
                say("Container", st["Name"], "Started")
            else:
                say("Container", st["Name"], "Running")
            out.append(st["Name"])
            continue
        if st is not None:
            _remove(paths, [st["Id"]], timeout)
            say("Container", st["Name"], "Recreated")
        create_container(paths, project, name, number, cname)
        if start:
            sandbox(paths, "start", cname, what="container " + cname)
            say("Container", cname, "Started")
        else:
            say("Container", cname, "Created")
        out.append(cname)
    for st in current.values():         # scaled down
        _remove(paths, [st["Id"]], timeout)
        say("Container", st["Name"], "Removed")
    return out


def _orphans(paths, project):
    return [st for st in project_containers(paths, project.name, oneoff=False)
            if _label(st, "service") not in project.services]


def _scales(project, items):
    out = {}
    for item in items:
        name, sep, n = item.partition("=")
        if not sep or not n.isdigit():
            raise UsageError("invalid --scale %r" % item, hint="SERVICE=N")
        project.service(name)
        out[name] = int(n)
    return out


def cmd_up(args, paths):
    from ..compose import plan
    from ..compose.project import ComposeError, scale_of
    project = load_project(args)
    chosen = project.selected(args.services)
    services = chosen if args.no_deps else project.with_dependencies(chosen)
    scales = _scales(project, args.scale)
    if args.exit_code_from:
        project.service(args.exit_code_from)
        args.abort_on_container_exit = True
    if args.detach and args.abort_on_container_exit:
        raise UsageError("-d and --abort-on-container-exit cannot go together")
    rules = None
    if args.watch:
        if args.detach or args.no_start or args.abort_on_container_exit:
            raise UsageError("--watch cannot go with -d, --no-start or "
                             "--abort-on-container-exit")
        from ..compose import watch
        rules = watch.rules_of(project, chosen)       # (checked before anything)
    orphans = _orphans(paths, project)
    if orphans and args.remove_orphans:
        for st in orphans:
            _remove(paths, [st["Id"]], args.timeout)
            say("Container", st["Name"], "Removed")
    elif orphans:
        sys.stderr.write("sandbox compose: warning: found orphan containers (%s) for this "
                         "project; remove them with --remove-orphans\n"
                         % ", ".join(st["Name"] for st in orphans))
    ensure_networks(paths, project, services)
    ensure_volumes(paths, project, services)
    ensure_images(paths, project, services, args.build, args.no_build, args.pull,
                  args.quiet_pull)
    attach = args.attach or [s for s in chosen if project.services[s].get("attach", True)]
    follower = None
    if not (args.detach or args.no_start or args.watch):
        width = max((len(_short_name(project.name, plan.container_name(project, s, n), s, n))
                     for s in attach if s in project.services
                     for n in range(1, scales.get(s, scale_of(project.services[s])) + 1)),
                    default=0)
        follower = Follower(paths, project, width, prefix=not args.no_log_prefix,
                            color=_color(args), timestamps=args.timestamps, up=True,
                            abort=args.abort_on_container_exit)
    names = []

    def stop():
        # (those made meanwhile by another up --scale too, as the follower
        # shows them)
        stop_in_order(paths, project, project_containers(paths, project.name, services),
                      args.timeout)

    def kill():
        sandbox(paths, "kill", *names, check=False)
    def one(name):
        if not args.no_start:
            _wait_dependencies(paths, project, name)
        made = converge(paths, project, name,
                        scales.get(name, scale_of(project.services[name])),
                        force=args.force_recreate, keep=args.no_recreate,
                        start=not args.no_start, timeout=args.timeout)
        names.extend(made)
        if follower is not None and name in attach:
            for st in project_containers(paths, project.name, [name]):
                if st["Name"] in made:
                    follower.add(st)
    try:
        for level in levels(project, services):
            at_once(one, level)
    except KeyboardInterrupt:
        if follower is None:
            raise
        sys.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
        stop()
        return 130
    if rules is not None:
        return _up_watch(paths, project, args, rules, attach,
                         lambda: stop_in_order(paths, project, project_containers(
                             paths, project.name, services), args.timeout))
    if follower is None:
        if args.wait:
            return _wait_up(paths, project, services, args.wait_timeout)
        return 0
    if not follower.threads:
        raise ComposeError("no container to attach to", hint="up -d starts them "
                           "in the background")
    code = follower.wait(stop, kill, rescan=lambda: [
        st for st in project_containers(paths, project.name, attach) if _running(st)])
    if code == 0 and args.exit_code_from:
        for service, exit_code in follower.exited:
            if service == args.exit_code_from:
                return exit_code
    return code


def _wait_up(paths, project, services, timeout):
    from ..compose.project import ComposeError
    from ..container import health, state
    deadline = time.monotonic() + timeout if timeout else None
    for st in project_containers(paths, project.name, services):
        while True:
            st = state.refresh(paths, st["Id"])
            if not state.is_running(st):
                if st.get("ExitCode") == 0 and st.get("Status") == "exited":
                    break
                raise ComposeError("container %s exited (%d)" % (st["Name"], st.get("ExitCode", 0)))
            status = health.status_of(paths, st)
            if status in ("none", "healthy"):
                break
            if status == "unhealthy":
                raise ComposeError("container %s is unhealthy" % st["Name"])
            if deadline and time.monotonic() > deadline:
                raise ComposeError("timeout waiting for container %s" % st["Name"])
            time.sleep(0.2)
        say("Container", st["Name"], "Healthy" if st.get("Healthcheck") else "Running")
    return 0


# -- following output -----------------------------------------------------------

def _color(args):
    if getattr(args, "no_color", False):
        return False
    mode = getattr(args, "ansi", None) or "auto"
    return sys.stdout.isatty() if mode == "auto" else mode == "always"


def _short_name(project_name, name, service, number):
    """How Compose shows a container: SERVICE-N for the name it gave it."""
    if name == "%s-%s-%s" % (project_name, service, number):
        return "%s-%s" % (service, number)
    return name


def _shown(project_name, st):
    """_short_name of a container's record."""
    return _short_name(project_name, st.get("Name", ""), _label(st, "service"),
                       _label(st, "container-number"))


def _prefix(name, width, color, index):
    """The `name | ` before each of a container's lines (coloured by index)."""
    text = "%-*s | " % (width, name)
    if color:
        text = "\x1b[%sm%s\x1b[0m" % (COLORS[index % len(COLORS)], text)
    return text.encode()


def _logs_argv(first, tail, since, until):
    """`logs FIRST... [--tail N] [--since T] [--until T]` (for a container id)."""
    argv = ["logs"] + list(first)
    argv += ["--tail", str(tail)] if tail not in (None, "all") else []
    argv += ["--since", since] if since else []
    argv += ["--until", until] if until else []
    return argv


class Follower:
    """Containers' output (their `logs -f`) line by line, each prefixed
    with its service-number, as Compose's up and logs show it; containers
    may be added while it runs (up adds each as it starts).  ``up``: say
    when one exits; ``abort``: stop them all then."""

    def __init__(self, paths, project, width, prefix=True, color=False, timestamps=False,
                 up=False, abort=False, tail="all", since=None, until=None):
        self.paths, self.project, self.width = paths, project, width
        self.prefix, self.color, self.timestamps = prefix, color, timestamps
        self.up, self.abort = up, abort
        self.tail, self.since, self.until = tail, since, until
        self.lock = threading.Lock()
        self.out = sys.stdout.buffer
        self.procs, self.threads, self.exited = [], [], []
        self.followed = set()
        self.aborted = threading.Event()

    def add(self, st):
        with self.lock:
            self._add(st)

    def _add(self, st):
        self.followed.add(st["Id"])
        label = _prefix(_shown(self.project.name, st), self.width, self.color,
                        len(self.procs)) if self.prefix else b""
        argv = _logs_argv(["-f"] + (["-t"] if self.timestamps else []), self.tail, self.since,
                          self.until)
        proc = subprocess.Popen(sandbox_argv(self.paths, *(argv + [st["Id"]])),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        t = threading.Thread(target=self._pump, args=(proc, label, st), daemon=True)
        t.start()
        self.threads.append(t)

    def _pump(self, proc, label, st):
        from ..container import state
        for line in iter(proc.stdout.readline, b""):
            with self.lock:
                self.out.write(label + line if line.endswith(b"\n") else label + line + b"\n")
                self.out.flush()
        proc.wait()
        if not self.up:
            return
        try:
            st = state.refresh(self.paths, st["Id"])
        except SandboxError:
            pass
        code = st.get("ExitCode", 0)
        with self.lock:
            self.exited.append((_label(st, "service"), code))
            self.out.write(("%s exited with code %d\n" % (
                _shown(self.project.name, st), code)).encode())
            self.out.flush()
        if self.abort:
            self.aborted.set()

    def wait(self, stop=None, kill=None, rescan=None):
        """Until every container's output has ended; Ctrl-C: with ``up``
        ``stop()`` them (a second Ctrl-C: ``kill()``), 130.  ``rescan()``:
        the records to follow, looked at twice a second (containers made
        meanwhile join)."""
        looked = time.monotonic()
        try:
            while any(t.is_alive() for t in self.threads):
                if rescan is not None and time.monotonic() - looked > 0.5:
                    looked = time.monotonic()
                    for st in rescan():
                        if st["Id"] not in self.followed:
                            self.add(st)
                if self.aborted.is_set():
                    sys.stderr.write("Aborting on container exit...\n")
                    stop()
                    self.aborted.clear()
                    self.abort = False
                time.sleep(0.05)
        except KeyboardInterrupt:
            if not self.up:
                for proc in self.procs:
                    proc.terminate()
                return 130
            sys.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
            try:
                stop()
            except KeyboardInterrupt:
                kill()
            for t in self.threads:
                t.join(timeout=5)
            return 130
        return 0


def _stop_quietly(paths, names, timeout):
    """Stop containers at once (each its own `stop`, as Docker's stops
    them in parallel: one that ignores SIGTERM does not delay the rest)."""
    procs = [(name, subprocess.Popen(
        sandbox_argv(paths, *(["stop"] + (["-t", str(timeout)] if timeout is not None else [])
                              + [name])),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for name in names]
    for name, proc in procs:
        proc.wait()
        say("Container", name, "Stopped")


def levels(project, services):
    """``services`` in groups that may start at once, in order: each
    service in a later group than every service of ``services`` it
    depends on."""
    from ..compose.project import dependencies
    depth = {}
    for name in project.with_dependencies(list(services)):
        depth[name] = 1 + max((depth[d] for d in dependencies(project.services[name])
                               if d in depth), default=-1)
    out = []
    for name in services:
        while len(out) <= depth[name]:
            out.append([])
        out[depth[name]].append(name)
    return [group for group in out if group]


def at_once(action, items):
    """action(item) for each item, in threads (each runs our own verbs as
    children); the first failure is raised once all have ended."""
    if len(items) == 1:
        return action(items[0])
    failures = []

    def run(item):
        try:
            action(item)
        except BaseException as exc:   # noqa: BLE001 - raised below
            failures.append(exc)
    threads = [threading.Thread(target=run, args=(item,), daemon=True) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.1)         # (Ctrl-C reaches the main thread here)
    if failures:
        raise failures[0]


def stop_in_order(paths, project, records, timeout):
    """Stop running containers, those that depend on others first, each
    level at once."""
    running = [st for st in records if _running(st)]
    in_order = levels(project, list(project.services))
    for group in reversed(in_order + [["(orphans)"]]):
        names = [st["Name"] for st in running if _label(st, "service") in group or (
            group == ["(orphans)"] and _label(st, "service") not in project.services)]
        _stop_quietly(paths, names, timeout)


# -- the other verbs ------------------------------------------------------------

def cmd_down(args, paths):
    from ..compose.plan import LABEL
    project = load_project(args)
    records = project_containers(paths, project.name, oneoff=None)
    services = project.with_dependencies(list(project.services))
    rank = {s: i for i, s in enumerate(services)}
    orphans = [st for st in records if _label(st, "service") not in project.services]
    mine = [st for st in records if _label(st, "service") in project.services]
    if orphans and not args.remove_orphans:
        sys.stderr.write("sandbox compose: warning: found orphan containers (%s) for this "
                         "project; remove them with --remove-orphans\n"
                         % ", ".join(st["Name"] for st in orphans))
    else:
        mine += orphans
    # Dependents first.
    mine.sort(key=lambda st: -rank.get(_label(st, "service"), -1))
    stop_in_order(paths, project, mine, args.timeout)
    if mine:
        sandbox(paths, "rm", "-f", *(["-v"] if args.volumes else []),
                *[st["Id"] for st in mine], what="rm")
    for st in mine:
        say("Container", st["Name"], "Removed")
    for net in _networks(paths):
        labels = net.get("Labels") or {}
        if labels.get(LABEL + "project") == project.name:
            sandbox(paths, "network", "rm", net["Name"], what="network " + net["Name"])
            say("Network", net["Name"], "Removed")
    if args.volumes:
        from ..container import volumes
        for name in volumes.names(paths):
            try:
                labels = volumes.inspect(paths, name).get("Labels") or {}
            except SandboxError:
                continue
            if labels.get(LABEL + "project") == project.name:
                sandbox(paths, "volume", "rm", name, what="volume " + name)
                say("Volume", name, "Removed")
    import shutil
    shutil.rmtree(_secret_dir(paths, project), ignore_errors=True)
    if args.rmi:
        for name in services:
            svc = project.services[name]
            if args.rmi == "local" and svc.get("image"):
                continue
            ref = project.image_of(name)
            if _image_id(paths, ref):
                sandbox(paths, "rmi", ref, check=False)
                say("Image", ref, "Removed")
    return 0


def cmd_ps(args, paths):
    from .containers import ps_row
    from ..formatting import print_rows, tabulate
    project = load_project(args)
    records = _containers_of(paths, project, args.services)
    if not args.all:
        records = [st for st in records if _running(st)]
    if args.status:
        records = [st for st in records if st.get("Status") in args.status]
    if args.list_services:
        seen = []
        for st in records:
            if _label(st, "service") not in seen:
                seen.append(_label(st, "service"))
        _lines(seen)
        return 0
    if args.quiet:
        for st in records:
            print(st["Id"] if args.no_trunc else st["Id"][:12])
        return 0
    rows = []
    for st in records:
        row = ps_row(paths, st, args.no_trunc)
        row["Name"] = st.get("Name", "")
        row["Service"] = _label(st, "service")
        row["Project"] = project.name
        row["Created"] = (row["RunningFor"] + " ago") if row["RunningFor"] else ""
        row["Publishers"] = row["Ports"]
        row["ExitCode"] = str(st.get("ExitCode", 0))
        row["Health"] = ""
        rows.append(row)
    fmt = args.format
    if fmt == "table":
        fmt = None
    if print_rows(fmt, rows):
        return 0
    columns = [("NAME", "Name"), ("IMAGE", "Image"), ("COMMAND", "Command"),
               ("SERVICE", "Service"), ("CREATED", "Created"), ("STATUS", "Status"),
               ("PORTS", "Ports")]
    lines = [[c for c, _ in columns]] + [[r[k] for _, k in columns] for r in rows]
    print(tabulate(lines))
    return 0


def cmd_logs(args, paths):
    project = load_project(args)
    records = _containers_of(paths, project, args.services, oneoff=None)
    if args.index:
        records = [st for st in records if _label(st, "container-number") == str(args.index)]
    if not records:
        return 0
    if args.follow:
        width = max(len(_shown(project.name, st)) for st in records)
        follower = Follower(paths, project, width, prefix=not args.no_log_prefix,
                            color=_color(args), timestamps=args.timestamps, tail=args.tail,
                            since=args.since, until=args.until)
        for st in records:
            follower.add(st)
        return follower.wait(rescan=lambda: _containers_of(paths, project, args.services,
                                                           oneoff=None))
    return _logs_merged(paths, project, records, args)


def _time_key(stamp):
    """An RFC 3339 time with its fraction padded (Docker trims zeros)."""
    head, dot, rest = stamp.partition(".")
    frac = rest.rstrip("Z")
    return head.rstrip("Z") + "." + frac.ljust(9, "0") if dot else head.rstrip("Z") + ".0"


def _logs_merged(paths, project, records, args):
    """Each container's log so far, merged in time order."""
    names = [_shown(project.name, st) for st in records]
    width = max(len(n) for n in names)
    color = _color(args)
    entries = []
    for i, (st, name) in enumerate(zip(records, names)):
        argv = _logs_argv(["-t"], args.tail, args.since, args.until)
        result = subprocess.run(sandbox_argv(paths, *(argv + [st["Id"]])),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        label = b"" if args.no_log_prefix else _prefix(name, width, color, i)
        for stream in (result.stdout, result.stderr):
            for line in stream.splitlines():
                stamp, _, rest = line.partition(b" ")
                entries.append((_time_key(stamp.decode(errors="replace")), i,
                                label + (line if args.timestamps else rest)))
    entries.sort(key=lambda e: (e[0], e[1]))
    out = sys.stdout.buffer
    for _, _, line in entries:
        out.write(line + b"\n")
    out.flush()
    return 0


def _lines(items):
    """Each item on a line of its own (nothing for none)."""
    for item in items:
        print(item)


def cmd_config(args, paths):
    project = load_project(args)
    if args.quiet:
        return 0
    if args.list_services:
        _lines(project.selected(args.services))
        return 0
    if args.volumes:
        _lines(project.volumes)
        return 0
    if args.networks:
        _lines(project.networks)
        return 0
    if args.images:
        _lines(project.image_of(s) for s in project.selected(args.services))
        return 0
    if args.profiles:
        seen = []
        for svc in project.model.get("services", {}).values():
            seen += [p for p in (svc or {}).get("profiles") or [] if p not in seen]
        _lines(seen)
        return 0
    model = {"name": project.name}
    model["services"] = {n: project.services[n] for n in project.selected(args.services)}
    networks = {k: project.networks.get(k) or {} for k in _networks_used(
        project, list(model["services"]))}
    for key, spec in networks.items():
        spec = dict(spec)
        spec.setdefault("name", project.network_name(key))
        networks[key] = spec
    if networks:
        model["networks"] = networks
    for key in ("volumes", "secrets", "configs"):
        section = getattr(project, key)
        if section:
            model[key] = {k: dict(v or {}, **({"name": project.volume_name(k)}
                                               if key == "volumes" else {}))
                          for k, v in section.items()}
    if args.format == "json":
        text = json.dumps(model, indent=2) + "\n"
    else:
        from ..compose.project import yaml_module
        text = yaml_module().safe_dump(model, sort_keys=False, default_flow_style=False)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_build(args, paths):
    project = load_project(args)
    for name in project.selected(args.services):
        if project.services[name].get("build"):
            build_service(paths, project, name, args.no_cache, args.pull, args.quiet,
                          args.build_arg)
    return 0


def cmd_pull(args, paths):
    project = load_project(args)
    failed = 0
    for name in project.selected(args.services):
        svc = project.services[name]
        if not svc.get("image") or (svc.get("build") and args.ignore_buildable):
            continue
        try:
            pull_image(paths, svc["image"], args.quiet, always=True)
            say("Image", svc["image"], "Pulled")
        except SandboxError:
            if not args.ignore_pull_failures:
                raise
            failed += 1
    return 0


def cmd_push(args, paths):
    project = load_project(args)
    for name in project.selected(args.services):
        svc = project.services[name]
        if not svc.get("image"):
            continue
        sandbox(paths, "push", *(["-q"] if args.quiet else []), svc["image"],
                capture=False, what="push " + svc["image"])
    return 0


def cmd_simple(args, paths):
    """start, stop, restart, kill, pause, unpause, top: the verb on the
    services' containers (dependencies last for stop, first for start)."""
    project = load_project(args)
    verb = args.compose_verb
    records = _containers_of(paths, project, args.services)
    if verb == "start":
        ranked = project.with_dependencies(project.selected(args.services))
        records.sort(key=lambda st: ranked.index(_label(st, "service"))
                     if _label(st, "service") in ranked else 0)
        records = [st for st in records if not _running(st)]
    elif verb in ("stop", "kill", "pause"):
        records = [st for st in records if _running(st)]
        ranked = project.with_dependencies(list(project.services))
        records.sort(key=lambda st: -ranked.index(_label(st, "service"))
                     if _label(st, "service") in ranked else 0)
    if not records:
        return 0
    if verb == "stop":
        stop_in_order(paths, project, records, args.timeout)
        return 0
    if verb == "top":
        for st in records:
            print(st["Name"])
            sys.stdout.flush()
            sandbox(paths, "top", st["Id"], capture=False)
            print()
        return 0
    argv = [verb]
    if getattr(args, "timeout", None) is not None:
        argv += ["-t", str(args.timeout)]
    if verb == "kill":
        argv += ["-s", args.signal]
    for st in records:
        sandbox(paths, *(argv + [st["Id"]]), what="container " + st["Name"])
        say("Container", st["Name"], {"start": "Started", "stop": "Stopped",
                                      "restart": "Restarted", "kill": "Killed",
                                      "pause": "Paused", "unpause": "Unpaused"}[verb])
    return 0


def cmd_rm(args, paths):
    project = load_project(args)
    records = _containers_of(paths, project, args.services)
    if args.stop:
        _stop_quietly(paths, [st["Name"] for st in records if _running(st)], None)
        records = _containers_of(paths, project, args.services)
    gone = [st for st in records if not _running(st)]
    if not gone:
        sys.stderr.write("No stopped containers\n")
        return 0
    if not args.force:
        names = ", ".join(st["Name"] for st in gone)
        if not sys.stdin.isatty():
            raise UsageError("removing %s needs -f when stdin is not a terminal" % names)
        sys.stderr.write("Going to remove %s\n? Are you sure? [yN] " % names)
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    for st in gone:
        sandbox(paths, "rm", *(["-v"] if args.volumes else []), st["Id"],
                what="container " + st["Name"])
        say("Container", st["Name"], "Removed")
    return 0


def _one_container(paths, project, service, index, running=True):
    from ..compose.project import ComposeError
    project.service(service)
    for st in project_containers(paths, project.name, [service]):
        if _label(st, "container-number") == str(index) and (_running(st) or not running):
            return st
    raise ComposeError("service %s %s" % (service, "is not running" if running else
                                          "has no container %d" % index),
                       hint="sandbox compose up -d " + service)


def cmd_exec(args, paths):
    project = load_project(args)
    st = _one_container(paths, project, args.service, args.index)
    if not args.command:
        raise UsageError("exec needs a command", hint="compose exec SERVICE CMD...")
    argv = ["exec"]
    if args.detach:
        argv.append("-d")
    else:
        argv.append("-i")
        if not args.no_tty and sys.stdin.isatty():
            argv.append("-t")
    for item in args.env:
        argv.append("--env=" + item)
    if args.user:
        argv.append("--user=" + args.user)
    if args.workdir:
        argv.append("--workdir=" + args.workdir)
    if args.privileged:
        argv.append("--privileged")
    return _replace_with(paths, argv + [st["Id"]] + list(args.command))


def _up_watch(paths, project, args, rules, attach, stop):
    """`up --watch` once the services run: their output (a `compose logs
    -f` child, made again from the batch's time when a rebuild's new
    containers outlived it), and the watch; Ctrl-C stops the services."""
    from ..compose import watch
    rules = _watchable(rules)
    logs_argv = sandbox_argv(paths, "compose", *_project_argv(args), "logs", "-f",
                             *(["--no-log-prefix"] if args.no_log_prefix else []),
                             *(["--timestamps"] if args.timestamps else []), *attach)
    logs = [subprocess.Popen(logs_argv)]

    def apply(batch):
        since = time.time()
        _apply_watch(paths, project, args, batch)
        if logs[0].poll() is not None:
            logs[0] = subprocess.Popen(logs_argv[:-len(attach) or None] +
                                       ["--since", "%.3f" % since] + list(attach))
    print("Watch enabled", flush=True)
    try:
        watch.poll(rules, apply)
    except KeyboardInterrupt:
        sys.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
        logs[0].kill()
        logs[0].wait()
        stop()
        return 130
    return 0


def cmd_watch(args, paths):
    """Docker Compose's watch: up -d, then each develop.watch rule's path
    is looked at (compose/watch.py); a quiet moment after changes applies
    them: rebuild (build, then new containers), sync (the files copied in,
    the deleted ones removed), restart, exec.  Ctrl-C ends the watch, the
    services stay up."""
    from ..compose import watch
    project = load_project(args)
    services = project.selected(args.services)
    rules = _watchable(watch.rules_of(project, services))
    if not args.no_up:
        code = sandbox(paths, "compose", *_project_argv(args), "up", "-d",
                       *(["--quiet-pull"] if args.quiet else []), *services,
                       capture=False, check=False)
        if code:
            return _exit_code(code)
    initial = watch.Batch()
    for rule in rules:
        if rule.initial_sync:
            initial.add(rule, set(rule.scan()), set())
    initial.restart, initial.execs = set(), {}      # (the files only, as Compose)
    if initial:
        _apply_watch(paths, project, args, initial)
    print("Watch enabled", flush=True)
    try:
        watch.poll(rules, lambda batch: _apply_watch(paths, project, args, batch))
    except KeyboardInterrupt:
        print("Watch disabled", flush=True)
    return 0


def _watchable(rules):
    """The rules to watch: not a sync rule whose path a bind mount of its
    service shares already (said, as Compose says it)."""
    for rule in rules:
        if rule.shared:
            sys.stderr.write("sandbox compose: warning: path %s is also a bind mount of "
                             "service %s: not watched\n" % (rule.path, rule.service))
    return [rule for rule in rules if not rule.shared]


def _apply_watch(paths, project, args, batch):
    """One batch of changes, in Docker Compose's order: rebuilds, syncs,
    restarts, then the exec commands.  A failure is reported and the
    watch goes on."""
    import io
    import shlex
    import tarfile
    from ..compose.project import scale_of

    def running(service):
        return [st for st in project_containers(paths, project.name, [service])
                if st.get("Status") == "running"]
    try:
        if batch.rebuild:
            names = sorted(batch.rebuild)
            print("Rebuilding service(s) %s after changes were detected..."
                  % json.dumps(names), flush=True)
            for name in names:
                build_service(paths, project, name, quiet=getattr(args, "quiet", False))
            if getattr(args, "prune", False):
                sandbox(paths, "image", "prune", "-f", check=False)
            print("service(s) %s successfully built" % json.dumps(names), flush=True)
            for name in names:
                want = len(running(name)) or scale_of(project.services[name])
                converge(paths, project, name, want, force=True)
        for service in sorted(batch.count):
            if not batch.count[service]:
                continue
            print('Syncing service "%s" after %d changes were detected'
                  % (service, batch.count[service]), flush=True)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for target, host in sorted(batch.copy.get(service, {}).items()):
                    if os.path.islink(host) or os.path.isfile(host):
                        tar.add(host, arcname=target.lstrip("/"), recursive=False)
            gone = sorted(batch.delete.get(service, ()))
            for st in running(service):
                if batch.copy.get(service):
                    sandbox(paths, "cp", "-a", "-", st["Id"] + ":/", input=buf.getvalue(),
                            what="sync to " + st["Name"])
                if gone:
                    sandbox(paths, "exec", st["Id"], "rm", "-rf", "--", *gone,
                            what="sync to " + st["Name"])
        if batch.restart:
            names = sorted(batch.restart)
            for name in names:
                for st in running(name):
                    sandbox(paths, "restart", st["Id"], what="restart " + st["Name"])
            print("service(s) %s restarted" % json.dumps(names), flush=True)
        for service, execs in sorted(batch.execs.items()):
            for hook in execs:
                command = hook["command"]
                argv = shlex.split(command) if isinstance(command, str) else \
                    [str(a) for a in command]
                flags = (["--user=" + str(hook["user"])] if hook.get("user") else []) + \
                    (["--privileged"] if hook.get("privileged") else []) + \
                    (["--workdir=" + hook["working_dir"]] if hook.get("working_dir") else [])
                env = hook.get("environment") or {}
                items = env.items() if isinstance(env, dict) else \
                    (e.partition("=")[::2] for e in env)
                flags += ["--env=%s=%s" % (k, "" if v is None else v) for k, v in items]
                for st in running(service):
                    sandbox(paths, "exec", *flags, st["Id"], *argv, capture=False,
                            what="exec in " + st["Name"])
    except SandboxError as exc:
        sys.stderr.write("sandbox compose: watch: %s\n" % exc.message)
        sys.stderr.flush()


def cmd_wait(args, paths):
    """Docker Compose's: wait for each container of the services (one-off
    ones too), printing how each ended; exit with the code of the last to
    end (--down-project: after taking the project down)."""
    from ..compose.project import ComposeError
    project = load_project(args)
    records = project_containers(paths, project.name, project.selected(args.services),
                                 oneoff=None)
    if not records:
        raise ComposeError("no containers for project %r" % project.name,
                           hint="sandbox compose up -d")
    import selectors
    sel = selectors.DefaultSelector()
    children = []
    for st in records:
        child = subprocess.Popen(sandbox_argv(paths, "wait", st["Id"]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children.append(child)
        sel.register(child.stdout, selectors.EVENT_READ, (child, st))
    code = 0
    try:
        while sel.get_map():
            for key, _ in sel.select():
                # Readable: that container has ended (its `wait` prints
                # the code and exits).
                child, st = key.data
                sel.unregister(key.fileobj)
                out, err = child.stdout.read().strip(), child.stderr.read()
                if child.wait() != 0 or not out.isdigit():
                    raise _failed("container " + st["Name"], child.returncode, err)
                code = int(out)
                print("container %s exited with status code %d" % (json.dumps(st["Id"]),
                                                                   code), flush=True)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    if args.down_project:
        sandbox(paths, "compose", *_project_argv(args), "down", "--remove-orphans",
                capture=False)
    return code


def _project_argv(args):
    """The options that name the project again, for a compose child."""
    argv = []
    for f in args.file:
        argv += ["-f", f]
    for f in args.env_file:
        argv += ["--env-file", f]
    for name in args.profile:
        argv += ["--profile", name]
    if args.project_name:
        argv += ["-p", args.project_name]
    if args.project_directory:
        argv += ["--project-directory", args.project_directory]
    return argv


def cmd_attach(args, paths):
    project = load_project(args)
    st = _one_container(paths, project, args.service, args.index)
    argv = ["attach", "--sig-proxy=" + args.sig_proxy]
    if args.no_stdin:
        argv.append("--no-stdin")
    if args.detach_keys is not None:
        argv += ["--detach-keys", args.detach_keys]
    return _replace_with(paths, argv + [st["Id"]])


def cmd_stats(args, paths):
    project = load_project(args)
    # (as Docker Compose's: the project's containers, by its label, also
    # those of services whose profile is not active now)
    records = project_containers(paths, project.name, project.selected(args.services)
                                 if args.services else None)
    if not args.all:
        records = [st for st in records if _running(st)]
    argv = ["stats"] + [flag for flag, on in (("--all", args.all),
                                              ("--no-stream", args.no_stream),
                                              ("--no-trunc", args.no_trunc)) if on]
    if args.format:
        argv += ["--format", args.format]
    if not records:
        return 0            # (`stats` without a container shows every one)
    return _replace_with(paths, argv + [st["Id"] for st in records])


def cmd_events(args, paths):
    """Docker Compose's: the project's container events (not one-off
    containers'), as `TIME container ACTION ID (ATTRIBUTES)` lines or, with
    --json, its JSON objects; attributes without the Compose labels."""
    import datetime
    from ..compose.plan import LABEL
    from .events import follow, message_nanos, rfc3339
    project = load_project(args)
    wanted = set(project.selected(args.services)) if args.services else None

    def handle(msg):
        attrs = (msg.get("Actor") or {}).get("Attributes") or {}
        if msg.get("Type") != "container" or attrs.get(LABEL + "project") != project.name \
                or attrs.get(LABEL + "oneoff") == "True":
            return
        service = attrs.get(LABEL + "service", "")
        if wanted is not None and service not in wanted:
            return
        shown = {k: v for k, v in attrs.items() if not k.startswith(LABEL)}
        nanos = message_nanos(msg)
        cid = (msg.get("Actor") or {}).get("ID", "")
        if args.json:
            print(json.dumps({"time": rfc3339(nanos, trim=True), "type": "container",
                              "service": service, "id": cid, "action": msg.get("Action"),
                              "attributes": shown}, separators=(",", ":")), flush=True)
        else:
            when = datetime.datetime.fromtimestamp(nanos / 1e9)
            print("%s container %s %s (%s)" % (
                when.strftime("%Y-%m-%d %H:%M:%S.%f"), msg.get("Action"), cid,
                ", ".join("%s=%s" % kv for kv in sorted(shown.items()))), flush=True)
    follow(paths, args.since, args.until, handle)
    return 0


def _replace_with(paths, argv):
    """Become `sandbox ARGV` (the terminal, signals and exit code are its)."""
    full = sandbox_argv(paths, *argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(full[0], full)


def cmd_run(args, paths):
    import secrets
    from ..compose.plan import LABEL
    project = load_project(args)
    svc = project.service(args.service)
    services = [] if args.no_deps else [
        s for s in project.with_dependencies([args.service]) if s != args.service]
    ensure_networks(paths, project, project.with_dependencies([args.service]))
    ensure_volumes(paths, project, [args.service])
    ensure_images(paths, project, services + [args.service], build=args.build)
    from ..compose.project import scale_of
    for name in services:
        _wait_dependencies(paths, project, name)
        converge(paths, project, name, scale_of(project.services[name]))
    _wait_dependencies(paths, project, args.service)
    if args.entrypoint is not None:
        import shlex
        svc["entrypoint"] = shlex.split(args.entrypoint)
    # A one-off container: no fixed name, no restart policy.
    svc.pop("container_name", None)
    svc.pop("restart", None)
    if isinstance(svc.get("deploy"), dict):
        svc["deploy"] = {k: v for k, v in svc["deploy"].items() if k != "restart_policy"}
    if args.no_tty:
        svc["tty"] = False
    name = args.name or "%s-%s-run-%s" % (project.name, args.service, secrets.token_hex(6))
    extra = ["--env=" + e for e in args.env] + ["--label=" + x for x in args.label]
    extra += ["--volume=" + v for v in args.volume] + ["--publish=" + x for x in args.publish]
    if args.user:
        extra.append("--user=" + args.user)
    if args.workdir:
        extra.append("--workdir=" + args.workdir)
    interactive = not args.detach
    tty = interactive and not args.no_tty and sys.stdin.isatty()
    if tty and not svc.get("tty"):
        extra.append("--tty")
    if interactive and not svc.get("stdin_open"):
        extra.append("--interactive")
    if args.rm:
        extra.append("--rm")
    svc.setdefault("labels", {})[LABEL + "slug"] = name.rsplit("-", 1)[-1]
    cid = create_container(paths, project, args.service, 1, name, oneoff=True,
                           command=list(args.command) if args.command else None,
                           with_ports=args.service_ports, extra=extra)
    if args.detach:
        sandbox(paths, "start", cid, what="container " + name)
        print(name)
        return 0
    return _replace_with(paths, ["start", "-a"] + (["-i"] if interactive else []) + [cid])


def cmd_port(args, paths):
    project = load_project(args)
    st = _one_container(paths, project, args.service, args.index)
    port = args.port if "/" in args.port else "%s/%s" % (args.port, args.protocol)
    return sandbox(paths, "port", st["Id"], port, capture=False)


def cmd_images(args, paths):
    from ..formatting import human_size, tabulate
    from ..image.store import Store
    project = load_project(args)
    records = _containers_of(paths, project, args.services)
    store = Store(paths)
    lines = [["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"]]
    for st in records:
        image = st.get("Image", "")
        if args.quiet:
            print(image[7:])
            continue
        repo, _, tag = (st.get("ImageName") or "").rpartition(":")
        if "/" in tag or not repo:
            repo, tag = st.get("ImageName") or "", "latest"
        try:
            size = human_size(store.size(image))
        except (OSError, SandboxError, ValueError):
            size = ""
        lines.append([st["Name"], repo, tag, image[7:19], size])
    if not args.quiet:
        print(tabulate(lines))
    return 0


def cmd_ls(args, paths):
    from .containers import all_records
    from ..compose.plan import LABEL
    projects = {}
    for st in all_records(paths):
        labels = st.get("Labels") or {}
        name = labels.get(LABEL + "project")
        if not name:
            continue
        p = projects.setdefault(name, {"Name": name, "states": {}, "ConfigFiles": labels.get(
            LABEL + "project.config_files", "")})
        p["states"][st.get("Status")] = p["states"].get(st.get("Status"), 0) + 1
    rows = []
    for name in sorted(projects):
        p = projects[name]
        if not args.all and not p["states"].get("running"):
            continue
        status = ", ".join("%s(%d)" % kv for kv in sorted(p["states"].items()))
        rows.append({"Name": name, "Status": status, "ConfigFiles": p["ConfigFiles"]})
    if args.quiet:
        for r in rows:
            print(r["Name"])
        return 0
    if args.format == "json":
        print(json.dumps(rows))
        return 0
    from ..formatting import tabulate
    print(tabulate([["NAME", "STATUS", "CONFIG FILES"]] +
                   [[r["Name"], r["Status"], r["ConfigFiles"]] for r in rows]))
    return 0


def cmd_create(args, paths):
    """up --no-start."""
    for key, value in (("detach", False), ("no_start", True), ("no_deps", False),
                       ("exit_code_from", None), ("abort_on_container_exit", False),
                       ("timeout", None), ("wait", False), ("attach", [])):
        setattr(args, key, value)
    return cmd_up(args, paths)


def cmd_cp(args, paths):
    """SERVICE:PATH on either side names the service's container --index."""
    project = load_project(args)
    ends = []
    for end in (args.source, args.dest):
        service, sep, path = end.partition(":")
        if sep and service in project.services:
            st = _one_container(paths, project, service, args.index, running=False)
            end = "%s:%s" % (st["Id"], path)
        elif sep and not end.startswith(("/", ".")):
            project.service(service)            # (an error naming the services)
        ends.append(end)
    flags = (["-a"] if args.archive else []) + (["-L"] if args.follow_link else [])
    return sandbox(paths, "cp", *flags, *ends, capture=False, check=False)


def cmd_version(args, paths):
    from .. import __version__
    print("sandbox compose version %s (Compose Specification)" % __version__)
    return 0
