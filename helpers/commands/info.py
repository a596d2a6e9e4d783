"""`sandbox info`: what this host gives us, and for each missing piece the
one-line fix."""

import json
import os


def register(sub):
    p = sub.add_parser("info", help="show what the host provides",
                       description="Show kernel, storage driver, id map, "
                                   "cgroups and network helpers.")
    p.add_argument("-f", "--format", help="'json' for machine-readable output")
    p.set_defaults(func=cmd_info)


def _cgroup_info():
    """(version string, delegated controllers, problem or None)."""
    try:
        mounts = open("/proc/self/mountinfo").read().splitlines()
    except OSError:
        mounts = []
    v1 = any(" - cgroup " in m for m in mounts)
    v2_mounts = [m.split()[4] for m in mounts if " - cgroup2 " in m]
    if not v2_mounts:
        return "1", [], ("cgroup v2 is not mounted: resource limits are "
                         "unavailable (boot with systemd.unified_cgroup_hierarchy=1)")
    version = "hybrid (v1 controllers, v2 at %s)" % v2_mounts[0] if v1 else "2"
    mine = ""
    try:
        for line in open("/proc/self/cgroup"):
            if line.startswith("0::"):
                mine = line[3:].strip()
    except OSError:
        pass
    base = v2_mounts[0]
    cg = os.path.join(base, mine.lstrip("/"))
    try:
        controllers = open(os.path.join(cg, "cgroup.controllers")).read().split()
    except OSError:
        controllers = []
    writable = os.access(cg, os.W_OK) and os.access(
        os.path.join(cg, "cgroup.subtree_control"), os.W_OK)
    if v1:
        return version, controllers, ("hybrid cgroup layout: limits need the "
                                      "cpu/memory/pids controllers on cgroup v2")
    if not writable:
        return version, controllers, ("this user has no delegated cgroup: run "
                                      "inside a systemd user session (loginctl "
                                      "enable-linger $USER)")
    return version, controllers, None


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
    version, controllers, problem = _cgroup_info()
    info["cgroup_version"] = version
    info["cgroup_controllers"] = controllers
    if problem:
        problems.append((problem, None))
    helpers = {n: _helper(n) for n in ("newuidmap", "newgidmap", "fuse-overlayfs",
                                       "slirp4netns", "pasta")}
    info["helpers"] = helpers
    for dev in ("/dev/fuse", "/dev/net/tun"):
        ok = os.access(dev, os.R_OK | os.W_OK)
        info[dev] = ok
        if not ok:
            problems.append(("%s is not usable by this user" % dev,
                             "as root: chmod 0666 %s" % dev))
    if not helpers["slirp4netns"] and not helpers["pasta"]:
        problems.append(("no user-mode network helper found",
                         "apt-get install passt slirp4netns"))
    return info


def cmd_info(args, paths):
    info = collect(paths)
    if args.format == "json":
        print(json.dumps(info, indent=2))
        return 0
    print("Kernel:          %s (%s)" % (info["kernel"], info["arch"]))
    print("Data root:       %s" % info["root"])
    print("Run root:        %s" % info["runroot"])
    print("Storage driver:  %s" % info.get("storage_driver"))
    for note in info.get("storage_driver_notes", []):
        print("  passed over:   %s" % note)
    print("ID map:          %s" % info["idmap"]["description"])
    print("Cgroups:         %s" % info["cgroup_version"])
    print("  controllers:   %s" % (" ".join(info["cgroup_controllers"]) or "none"))
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
