"""`inspect` of a container: Docker's JSON shape, derived from the record
(state.json) and the OCI spec (config.json), the two sources of truth."""

import os

from .. import fsutil
from ..network import network_settings
from . import logconfig, state
from .spec import config_env


def _spec(paths, cid):
    try:
        return fsutil.read_json(os.path.join(paths.container(cid), "config.json"))
    except (FileNotFoundError, ValueError):
        return {}


def _zero_time(value):
    return value or "0001-01-01T00:00:00Z"


def container_json(paths, cid):
    st = state.refresh(paths, cid)
    spec = _spec(paths, cid)
    proc = spec.get("process", {})
    linux = spec.get("linux", {})
    cdir = paths.container(cid)
    args = proc.get("args", [])
    status = st.get("Status", "created")
    entrypoint = st.get("Entrypoint")
    image_cfg = _image_config(paths, st.get("Image"))
    if entrypoint is None:
        entrypoint = image_cfg.get("Entrypoint")
    elif entrypoint == "":
        entrypoint = None
    else:
        entrypoint = [entrypoint]
    cmd = st.get("Cmd") or (image_cfg.get("Cmd") if st.get("Entrypoint") is None else None)
    mounts = [m for m in spec.get("mounts", []) if m.get("type") == "bind"
              and m.get("source") not in ("/sys",)]
    layers = _layers(paths, st.get("Image"))
    log_config = logconfig.of(st)
    out = {
        "Id": cid,
        "Created": st.get("Created"),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": status,
            "Running": status in ("running", "paused"),
            "Paused": status == "paused",
            "Restarting": status == "restarting",
            "OOMKilled": bool(st.get("OOMKilled", False)),
            "Dead": status == "dead",
            "Pid": st.get("Pid", 0) if state.is_running(st) else 0,
            "ExitCode": st.get("ExitCode", 0),
            "Error": st.get("Error", ""),
            "StartedAt": _zero_time(st.get("StartedAt")),
            "FinishedAt": _zero_time(st.get("FinishedAt")),
            # podman's field: the container's own cgroup, when it has one
            "CgroupPath": (st.get("Cgroup") or {}).get("path", ""),
        },
        "Image": st.get("Image"),
        "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
        "HostnamePath": os.path.join(cdir, "hostname"),
        "HostsPath": os.path.join(cdir, "hosts"),
        "LogPath": "" if log_config["Type"] == "none" else os.path.join(cdir, cid + "-json.log"),
        "Name": "/" + st.get("Name", ""),
        "RestartCount": st.get("RestartCount", 0),
        "Driver": st.get("Driver"),
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {
            "Binds": st.get("Binds") or None,
            "NetworkMode": st.get("NetworkMode", "none"),
            "PortBindings": st.get("PortBindings") or {},
            "PublishAllPorts": bool(st.get("PublishAllPorts")),
            "Dns": st.get("Dns") or [], "DnsSearch": st.get("DnsSearch") or [],
            "DnsOptions": st.get("DnsOptions") or [],
            "ExtraHosts": st.get("ExtraHosts") or None,
            "LogConfig": log_config,
            "RestartPolicy": st.get("RestartPolicy") or {"Name": "no",
                                                         "MaximumRetryCount": 0},
            "AutoRemove": bool(st.get("AutoRemove")),
            "CapAdd": st.get("CapAdd") or None,
            "CapDrop": st.get("CapDrop") or None,
            "Privileged": bool(st.get("Privileged")),
            "ReadonlyRootfs": bool(st.get("ReadonlyRootfs")),
            "SecurityOpt": st.get("SecurityOpt") or None,
            "Tmpfs": {t.partition(":")[0]: t.partition(":")[2]
                      for t in st.get("Tmpfs") or []} or None,
            **_limits(st),
            "MaskedPaths": linux.get("maskedPaths", []),
            "ReadonlyPaths": linux.get("readonlyPaths", []),
            "UsernsMode": st.get("UsernsMode") or "",
            "IpcMode": st.get("IpcMode") or "private",
            "PidMode": st.get("PidMode") or "",
            "UTSMode": st.get("UTSMode") or "",
            "CgroupnsMode": st.get("CgroupnsMode") or "private",
            "OomScoreAdj": st.get("OomScoreAdj") or 0,
            "Annotations": st.get("Annotations") or None,
            "Init": st.get("Init"),
            "ShmSize": st.get("ShmSize") or 67108864,
            "GroupAdd": st.get("GroupAdd") or None,
            "Sysctls": st.get("Sysctls") or None,
            "Ulimits": [{"Name": u["type"][7:].lower(), "Soft": _rlim(u["soft"]),
                         "Hard": _rlim(u["hard"])} for u in st.get("Ulimits") or []] or None,
            "Devices": [{"PathOnHost": m["source"], "PathInContainer": m["destination"],
                         "CgroupPermissions": "rwm"} for m in spec.get("mounts", [])
                        if m.get("source") in (st.get("Devices") or [])] or None,
        },
        "GraphDriver": {
            "Name": st.get("Driver"),
            "Data": {
                "LowerDir": ":".join(reversed(layers)),
                "UpperDir": os.path.join(cdir, "upper"),
                "MergedDir": os.path.join(cdir, "rootfs"),
                "WorkDir": os.path.join(cdir, "work"),
            },
        },
        "Mounts": [_mount_json(paths, m) for m in mounts
                   if m["destination"] not in ("/etc/hosts", "/etc/hostname",
                                               "/etc/resolv.conf")],
        "Config": {
            "Hostname": spec.get("hostname", st.get("Hostname", "")),
            "Domainname": st.get("Domainname") or "",
            "User": st.get("User", ""),
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "ExposedPorts": image_cfg.get("ExposedPorts"),
            "Tty": bool(st.get("Tty")),
            "OpenStdin": bool(st.get("OpenStdin")),
            "StdinOnce": False,
            "Env": config_env(proc.get("env", []), st),
            "Cmd": cmd,
            "Image": st.get("ImageName"),
            "Volumes": image_cfg.get("Volumes"),
            "WorkingDir": proc.get("cwd", ""),
            "Entrypoint": entrypoint,
            "OnBuild": None,
            "Labels": st.get("Labels") or {},
            "StopSignal": st.get("StopSignal"),
            "StopTimeout": st.get("StopTimeout"),
        },
        "NetworkSettings": network_settings(st, status == "running"),
    }
    if st.get("Healthcheck"):
        from . import health
        out["Config"]["Healthcheck"] = st["Healthcheck"]
        out["State"]["Health"] = health.read(paths, cid) or {
            "Status": "starting", "FailingStreak": 0, "Log": []}
    return out


def _rlim(v):
    return -1 if v >= 1 << 63 else v


def _limits(st):
    hc = st.get("HostConfigLimits") or {}
    return {"Memory": hc.get("Memory", 0), "MemorySwap": hc.get("MemorySwap", 0),
            "MemoryReservation": hc.get("MemoryReservation", 0),
            "NanoCpus": hc.get("NanoCpus", 0), "CpuShares": hc.get("CpuShares", 0),
            "CpuPeriod": hc.get("CpuPeriod", 0), "CpuQuota": hc.get("CpuQuota", 0),
            "CpusetCpus": hc.get("CpusetCpus", ""), "PidsLimit": hc.get("PidsLimit"),
            "BlkioWeight": hc.get("BlkioWeight", 0),
            "BlkioDeviceReadBps": hc.get("BlkioDeviceReadBps") or None,
            "BlkioDeviceWriteBps": hc.get("BlkioDeviceWriteBps") or None,
            "BlkioDeviceReadIOps": hc.get("BlkioDeviceReadIOps") or None,
            "BlkioDeviceWriteIOps": hc.get("BlkioDeviceWriteIOps") or None,
            "CgroupParent": ""}


def _mount_json(paths, m):
    rw = "ro" not in m.get("options", [])
    source = m["source"]
    vroot = paths.volumes + os.sep
    if source.startswith(vroot) and source.endswith(os.sep + "_data"):
        return {"Type": "volume", "Name": source[len(vroot):-len("/_data")],
                "Source": source, "Destination": m["destination"],
                "Driver": "local", "Mode": "", "RW": rw, "Propagation": ""}
    return {"Type": "bind", "Source": source, "Destination": m["destination"],
            "Mode": "", "RW": rw, "Propagation": "rprivate"}


def _image_config(paths, image_id):
    if not image_id:
        return {}
    try:
        from ..image.store import Store
        return Store(paths).config(image_id).get("config") or {}
    except Exception:       # noqa: BLE001 - the image may be gone (rmi -f)
        return {}


def _layers(paths, image_id):
    try:
        from ..image.store import Store
        return Store(paths).layer_dirs(image_id)
    except Exception:       # noqa: BLE001
        return []
