"""`sandbox info`: what this host gives us, and for each missing piece the
one-line fix."""

import json
import os
import sys

from ..errors import SandboxError


def register(sub):
    p = sub.add_parser("info", help="show what the host provides",
                       description="Show kernel, storage driver, id map, "
                                   "cgroups and network helpers.")
    p.add_argument("-f", "--format", metavar="TEMPLATE",
                   help="a Go template over Docker's fields (e.g. '{{.ServerVersion}}', "
                        "'{{.CgroupVersion}}', '{{json .}}'; sandbox's own under .Sandbox) "
                        "or 'json'")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("version", help="show the version",
                       description="Show sandbox's version.  There is no daemon: "
                                   "Server is this same program, as Docker's "
                                   "templates ({{.Server.Version}}) expect one.")
    p.add_argument("-f", "--format", metavar="TEMPLATE",
                   help="a Go template (e.g. '{{.Client.Version}}') or 'json'")
    p.set_defaults(func=cmd_version)


def _cgroup_info():
    """(version, manager, delegated controllers, problem and fix or None)."""
    from .. import cgroups
    info = cgroups.probe()
    problem = (info.reason_unavailable, info.hint) if info.manager is None else None
    return info.version, info.manager, list(info.controllers), problem


def _helper(name):
    from ..container.rootfs import find_program
    return find_program(name)


def collect(paths):
    from ..container import rootfs
    from ..userns import current_id_map, single_map_hint
    info = {"kernel": os.uname().release, "arch": os.uname().machine,
            "root": paths.root, "runroot": paths.runroot, "problems": []}
    problems = info["problems"]
    idmap = current_id_map()
    info["idmap"] = {"single": idmap.single, "uid_map": idmap.uid_map,
                     "gid_map": idmap.gid_map, "description": idmap.describe()}
    if idmap.single:
        problems.append(("single-id user namespace: chown inside containers "
                         "fails", single_map_hint()))
    try:
        forced = os.environ.get("SANDBOX_STORAGE_DRIVER")
        driver, reasons = (forced, []) if forced else rootfs.probe_driver(paths)
        info["storage_driver"] = driver
        info["storage_driver_notes"] = reasons
        if not forced:
            rootfs.choose_driver(paths)
    except Exception as exc:   # noqa: BLE001 - info reports, never fails
        info["storage_driver"] = None
        problems.append(("cannot create a user namespace: %s" % exc,
                         getattr(exc, "hint", None)))
    version, manager, controllers, problem = _cgroup_info()
    info["cgroup_version"] = version
    info["cgroup_manager"] = manager
    info["cgroup_controllers"] = controllers
    if problem:
        problems.append(("no resource limits: " + problem[0], problem[1]))
    helpers = {n: _helper(n) for n in ("newuidmap", "newgidmap", "fuse-overlayfs",
                                       "slirp4netns", "pasta")}
    info["helpers"] = helpers
    from ..container.monitor import INIT_NAME, native_path
    info["monitor"] = native_path()
    info["init"] = native_path(INIT_NAME)
    if os.environ.get("SANDBOX_MONITOR") != "python":
        if info["monitor"] is None:
            problems.append(("no native monitor: each detached container keeps a Python "
                             "supervisor (about 8 MB of memory instead of well under 1 MB)",
                             "scripts/setup-host (as root) builds native/monitor.c with gcc"))
        if info["init"] is None:
            problems.append(("no sandbox-init: each container is set up by a fork of this "
                             "program (~1.5 ms slower to start), and --init's PID 1 is one, "
                             "whose memory holds your environment and command line",
                             "scripts/setup-host (as root) builds native/init.c with gcc"))
    for dev in ("/dev/fuse", "/dev/net/tun"):
        ok = os.access(dev, os.R_OK | os.W_OK)
        info[dev] = ok
        if not ok:
            problems.append(("%s is not usable by this user" % dev,
                             "as root: chmod 0666 %s" % dev))
    if not helpers["slirp4netns"] and not helpers["pasta"]:
        problems.append(("no user-mode network helper found",
                         "apt-get install passt slirp4netns"))
    from ..container import emulation
    info["emulation"] = emulation.available()
    if not emulation.kernel_can() and any(v is not True for v in info["emulation"].values()):
        problems.append(("emulating other architectures needs Linux 6.7 or later (a "
                         "binfmt_misc of the user's namespace); this kernel is %s"
                         % info["kernel"], "or have root register qemu-user-static in the "
                         "host's binfmt_misc (its F flag)"))
    from .run import keep_id_problem
    problem = keep_id_problem()
    info["userns_modes"] = ["host"] + (["keep-id"] if problem is None else [])
    info["keep_id_problem"] = problem and problem.message
    from .. import network
    try:
        info["default_network"], info["default_network_from"] = \
            network.default_helper_and_source()
    except SandboxError as exc:
        info["default_network"] = info["default_network_from"] = None
        problems.append((exc.message, exc.hint))
    return info


def _os_release():
    fields = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    fields[key] = value.strip().strip('"')
    except OSError:
        pass
    return fields


def docker_info(paths, info):
    """`docker info`'s fields (its --format templates: {{.ServerVersion}},
    {{.CgroupVersion}}, {{.Driver}}, {{json .}}, ...) for what sandbox is,
    with sandbox's own report (collect) as .Sandbox."""
    import socket
    from .. import __version__
    from ..container import state
    from ..image.archive import host_arch
    from .containers import all_records
    from .resources import host_memory
    counts = {"running": 0, "paused": 0, "stopped": 0}
    for st in all_records(paths):
        status = st.get("Status")
        counts["paused" if status == "paused" else
               "running" if state.is_running(st) else "stopped"] += 1
    try:
        from ..image.store import Store
        images = len(list(Store(paths).image_ids()))
    except (OSError, SandboxError):
        images = 0
    controllers = set(info["cgroup_controllers"])
    version = str(info["cgroup_version"] or "")
    osr = _os_release()
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            forwarding = f.read().strip() == "1"
    except OSError:
        forwarding = False
    try:
        from ..container.logconfig import parse
        logging = parse(None, None)["Type"]
    except SandboxError:
        logging = "json-file"
    security = ["name=seccomp,profile=builtin", "name=rootless"]
    if version in ("v2", "2"):
        security.append("name=cgroupns")
    return {
        "Containers": sum(counts.values()), "ContainersRunning": counts["running"],
        "ContainersPaused": counts["paused"], "ContainersStopped": counts["stopped"],
        "Images": images, "Driver": info.get("storage_driver") or "",
        "DriverStatus": [[note, ""] for note in info.get("storage_driver_notes", [])],
        "MemoryLimit": "memory" in controllers, "SwapLimit": "memory" in controllers,
        "CpuCfsPeriod": "cpu" in controllers, "CpuCfsQuota": "cpu" in controllers,
        "CPUShares": "cpu" in controllers, "CPUSet": "cpuset" in controllers,
        "PidsLimit": "pids" in controllers, "IPv4Forwarding": forwarding,
        "Debug": False, "OomKillDisable": False, "LoggingDriver": logging,
        "CgroupDriver": {"systemd": "systemd", "delegated": "cgroupfs"}.get(
            info["cgroup_manager"], "none"),
        "CgroupVersion": "2" if version in ("v2", "2") else "1",
        "KernelVersion": info["kernel"],
        "OperatingSystem": osr.get("PRETTY_NAME", "Linux"),
        "OSVersion": osr.get("VERSION_ID", ""), "OSType": "linux",
        "Architecture": info["arch"], "NCPU": os.cpu_count() or 1,
        "MemTotal": host_memory(), "DockerRootDir": paths.root,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
        "HttpProxy": os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy") or "",
        "HttpsProxy": os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or "",
        "NoProxy": os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or "",
        "Name": socket.gethostname(), "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__, "DefaultRuntime": "sandbox",
        "Runtimes": {"sandbox": {"path": "sandbox"}}, "InitBinary": "sandbox-init",
        "LiveRestoreEnabled": False, "Isolation": "", "Platform": "linux/" + host_arch(),
        "SecurityOptions": security,
        "Warnings": ["WARNING: " + problem for problem, _ in info["problems"]],
        "Sandbox": info,
    }


def cmd_info(args, paths):
    info = collect(paths)
    if args.format:
        data = docker_info(paths, info)
        if args.format == "json":
            print(json.dumps(data))
        else:
            from ..gotemplate import render
            print(render(args.format, data))
        return 0
    print("Kernel:          %s (%s)" % (info["kernel"], info["arch"]))
    print("Data root:       %s" % info["root"])
    print("Run root:        %s" % info["runroot"])
    print("Storage driver:  %s" % info.get("storage_driver"))
    for note in info.get("storage_driver_notes", []):
        print("  passed over:   %s" % note)
    print("ID map:          %s" % info["idmap"]["description"])
    print("Cgroups:         %s (%s)" % (info["cgroup_version"],
                                       info["cgroup_manager"] or "no delegation"))
    print("  delegated:     %s" % (" ".join(info["cgroup_controllers"]) or "none"))
    def native(path):
        if path and getattr(sys, "frozen", False):
            return "%s (bundled in this binary)" % os.path.basename(path)
        return path
    monitor, init = native(info["monitor"]), native(info["init"])
    print("Supervisor:      %s" % ("native monitor " + monitor if monitor
                                   else "Python (no native monitor)"))
    print("Setup, --init:   %s" % (init or "Python (no sandbox-init)"))
    print("Default network: %s%s" % (info["default_network"] or "none usable",
                                      " (default_rootless_network_cmd in %s)"
                                      % info["default_network_from"]
                                      if info["default_network_from"] else ""))
    print("User namespaces: %s" % ", ".join(info["userns_modes"]) + (
        " (not keep-id: %s)" % info["keep_id_problem"] if info["keep_id_problem"] else ""))
    emulated = info["emulation"]
    print("Emulation:       %s" % (", ".join(
        "%s (%s)" % (arch, "the host's binfmt_misc" if how is True else how)
        for arch, how in sorted(emulated.items())) or
        "none (other architectures: install qemu-user-static)"))
    print("Helpers:")
    for name, path in info["helpers"].items():
        print("  %-14s %s" % (name, path or "missing"))
    for dev in ("/dev/fuse", "/dev/net/tun"):
        print("%-16s %s" % (dev + ":", "usable" if info[dev] else "NOT usable"))
    if info["problems"]:
        print("Problems:")
        for problem, hint in info["problems"]:
            print("  - " + problem)
            if hint:
                print("    fix: " + hint)
    return 0


def version_info():
    import platform
    from .. import __version__
    from ..image.archive import host_arch
    part = {"Version": __version__, "ApiVersion": __version__,
            "PythonVersion": platform.python_version(), "Os": "linux",
            "Arch": host_arch(), "KernelVersion": os.uname().release,
            "Frozen": bool(getattr(sys, "frozen", False))}
    return {"Client": dict(part), "Server": dict(part)}


def cmd_version(args, paths):
    data = version_info()
    if args.format == "json":
        print(json.dumps(data))
    elif args.format:
        from ..gotemplate import render
        print(render(args.format, data))
    else:
        c = data["Client"]
        print("Client: sandbox (rootless, daemonless: no server)\n"
              " Version:        %s\n Python:         %s%s\n OS/Arch:        %s/%s\n"
              " Kernel:         %s" % (c["Version"], c["PythonVersion"],
                                       " (frozen binary)" if c["Frozen"] else "",
                                       c["Os"], c["Arch"], c["KernelVersion"]))
    return 0
