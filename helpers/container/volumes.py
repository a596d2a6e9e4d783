"""Volumes: named and anonymous, as Docker's "local" driver keeps them.

    volumes/<name>/_data        the content, owned as the container sees it
    volumes/<name>/meta.json    Name, CreatedAt, Labels, Anonymous

Mounting a volume is a bind mount of _data.  A volume that is empty when a
container mounts it is first filled with what the image has at that path
(Docker does the same); the copy happens in the container's PID 1 before
its pivot, as root of the user namespace, so owners and modes survive.
"""

import os

from .. import fsutil
from ..errors import Conflict, NotFound, UsageError
from .state import valid_name      # volumes are named like containers
FILL_ANNOTATION = "io.sandbox.volumes.fill"   # run.py and runtime.py spell it out


def volume_dir(paths, name):
    return os.path.join(paths.volumes, name)


def data_dir(paths, name):
    return os.path.join(paths.volumes, name, "_data")


def exists(paths, name):
    return os.path.isfile(os.path.join(volume_dir(paths, name), "meta.json"))


def check_options(opts):
    """The local driver's --opt (-o) K=V list -> {K: V}: what a rootless
    user can mount.  type=tmpfs (device=tmpfs, o=size=,mode=,uid=,gid=):
    a tmpfs at each mount; type=none with o=bind and device=HOST_PATH: that
    host directory.  Anything else (nfs, cifs, a block device) needs root."""
    out = {}
    for item in opts or []:
        key, eq, value = item.partition("=")
        if not eq or key not in ("type", "device", "o"):
            raise UsageError("invalid volume option %r" % item,
                             hint="type=tmpfs,device=tmpfs,o=size=64m or "
                                  "type=none,o=bind,device=/host/dir")
        out[key] = value
    if not out:
        return out
    kind = out.get("type")
    binds = [o for o in out.get("o", "").split(",") if o in ("bind", "rbind")]
    if kind == "tmpfs":
        tmpfs_mount("/x", out)                  # its options, checked
    elif kind == "none" and binds:
        device = out.get("device", "")
        if not device.startswith("/") or not os.path.isdir(device):
            raise UsageError("volume option device=%r: not a directory" % device,
                             hint="o=bind takes an existing absolute host directory")
    else:
        raise UsageError("volume options %s are not supported"
                         % ",".join("%s=%s" % kv for kv in sorted(out.items())),
                         hint="rootless, the local driver mounts type=tmpfs, or "
                              "type=none,o=bind,device=DIR; nfs, cifs and devices need root")
    return out


def tmpfs_mount(dest, options):
    """The spec mount of a type=tmpfs volume at ``dest`` (its o= options
    are the tmpfs's)."""
    from .spec import parse_tmpfs
    return parse_tmpfs(dest + (":" + options["o"] if options.get("o") else ""))


def create(paths, name=None, labels=None, anonymous=False, options=None):
    """Create (or find) a volume; returns its name.  ``options``: see
    check_options (checked by the caller)."""
    from . import state
    if name is None:
        name = os.urandom(32).hex()
    if not valid_name(name):
        raise UsageError("invalid volume name %r" % name,
                         hint="[a-zA-Z0-9][a-zA-Z0-9_.-]* (2+ characters)")
    d = volume_dir(paths, name)
    with fsutil.locked(os.path.join(paths.volumes, ".lock")):
        if exists(paths, name):
            return name
        os.makedirs(os.path.join(d, "_data"), exist_ok=True)
        fsutil.write_json(os.path.join(d, "meta.json"), {
            "Name": name, "Driver": "local", "CreatedAt": state.now_iso(),
            "Labels": labels or {}, "Options": dict(options or {}), "Scope": "local",
            "Anonymous": bool(anonymous)})
    _event(paths, "create", name)
    return name


def _event(paths, action, name):
    """A volume event (events.py)."""
    from .. import events
    events.emit(paths, "volume", action, name, {"driver": "local"})


def inspect(paths, name):
    try:
        meta = fsutil.read_json(os.path.join(volume_dir(paths, name), "meta.json"))
    except FileNotFoundError:
        raise NotFound("no such volume: %s" % name) from None
    return {"CreatedAt": meta.get("CreatedAt"), "Driver": "local",
            "Labels": meta.get("Labels") or None,
            "Mountpoint": data_dir(paths, name), "Name": name,
            "Options": meta.get("Options") or None, "Scope": "local"}


def names(paths):
    try:
        return sorted(n for n in os.listdir(paths.volumes) if exists(paths, n))
    except FileNotFoundError:
        return []


def is_anonymous(paths, name):
    try:
        return bool(fsutil.read_json(os.path.join(volume_dir(paths, name),
                                                  "meta.json")).get("Anonymous"))
    except FileNotFoundError:
        return False


def users(paths, name):
    """Ids of the containers that mount volume ``name``."""
    from . import state
    out = []
    for cid in state.list_ids(paths):
        try:
            if name in (state.read_state(paths, cid).get("Volumes") or []):
                out.append(cid)
        except (NotFound, ValueError):
            continue
    return out


def remove(paths, name, force=False):
    if not exists(paths, name):
        raise NotFound("no such volume: %s" % name)
    used = users(paths, name)
    if used and not force:
        raise Conflict("remove %s: volume is in use - [%s]" % (name, ", ".join(used)),
                       hint="remove the containers that use it first", exit_code=1)
    from .state import remove_any
    remove_any(volume_dir(paths, name))
    _event(paths, "destroy", name)


def remove_anonymous(paths, record):
    for name in record.get("Volumes") or []:
        if is_anonymous(paths, name) and not [c for c in users(paths, name)
                                              if c != record.get("Id")]:
            from .state import remove_any
            remove_any(volume_dir(paths, name))
            _event(paths, "destroy", name)


# -- from flags to spec mounts ------------------------------------------------
def _bind(source, dest, readonly):
    return {"destination": os.path.normpath(dest), "type": "bind",
            "source": source, "options": ["rbind", "ro" if readonly else "rw"]}


def absolute_sources(volume_flags):
    """-v values with a host path that starts with "." (".", "./x", "../x")
    made absolute against the current directory, as Docker's CLI does
    (23.0): no volume name starts with a dot, so nothing else is meant.
    (--mount type=bind's: parse_mount.)"""
    out = []
    for v in volume_flags:
        host, sep, rest = v.partition(":")
        out.append(os.path.abspath(host) + sep + rest if sep and host.startswith(".") else v)
    return out


def parse_mount(value):
    """--mount type=bind|volume|tmpfs,source=,target=,readonly,... -> dict.
    Comma-separated values as Docker reads them (CSV: a field in double
    quotes may hold commas, "volume-opt=o=size=1m,mode=700"); a new volume's
    volume-opt=K=V (check_options) and volume-label=K=V, repeatable."""
    import csv
    try:
        items = next(csv.reader([value]))
    except (csv.Error, StopIteration):
        raise UsageError("invalid --mount %r" % value,
                         hint="type=bind|volume|tmpfs,source=...,target=...") from None
    fields, volume_opts, volume_labels = {}, [], {}
    for item in items:
        k, sep, v = item.partition("=")
        k = k.strip().lower()
        if k in ("readonly", "ro", "volume-nocopy"):
            fields["readonly" if k != "volume-nocopy" else k] = v.lower() in ("", "1", "true")
            continue
        if not sep:
            raise UsageError("invalid --mount field %r" % item,
                             hint="type=bind|volume|tmpfs,source=...,target=...")
        if k == "volume-opt":
            volume_opts.append(v)
        elif k == "volume-label":
            key, _, label = v.partition("=")
            volume_labels[key] = label
        else:
            fields[{"src": "source", "dst": "target", "destination": "target"}.get(k, k)] = v
    if volume_opts or volume_labels:
        if fields.get("type", "volume") != "volume":
            raise UsageError("volume-opt and volume-label are for --mount type=volume")
        fields["volume-opt"] = check_options(volume_opts)
        fields["volume-label"] = volume_labels
    mtype = fields.get("type", "volume")
    if mtype == "bind" and fields.get("source", "").startswith("."):
        # From the current directory, as Docker's CLI (26.0)
        fields["source"] = os.path.abspath(fields["source"])
    if mtype not in ("bind", "volume", "tmpfs"):
        raise UsageError("unsupported --mount type %r" % mtype, hint="bind, volume or tmpfs")
    if not fields.get("target", "").startswith("/"):
        raise UsageError("--mount needs an absolute target=", hint="target=/path")
    if mtype == "bind" and not fields.get("source", "").startswith("/"):
        raise UsageError("--mount type=bind needs an absolute source=")
    fields["type"] = mtype
    return fields


def resolve(paths, volume_flags, mount_flags, volumes_from, image_volumes):
    """All user mounts of a new container: (spec mounts, volume names used,
    anonymous volumes created, destinations to fill from the image).
    ``volume_flags`` are -v values that name volumes (not host paths)."""
    from .spec import parse_tmpfs
    mounts, used, fill = [], [], []
    taken = set()

    def add_volume(name, dest, readonly, anonymous=False, nocopy=False, options=None,
                   labels=None):
        name = name or os.urandom(32).hex()
        fresh = not exists(paths, name)
        name = create(paths, name, labels=labels, anonymous=anonymous, options=options)
        used.append(name)
        taken.add(os.path.normpath(dest))
        opts = dict(options or {}) if fresh else (inspect(paths, name).get("Options") or {})
        if opts.get("type") == "tmpfs":
            mount = tmpfs_mount(dest, opts)
            if readonly:
                mount["options"] = list(mount.get("options") or []) + ["ro"]
            mounts.append(mount)
            return
        if opts.get("type") == "none":
            mounts.append(_bind(opts["device"], dest, readonly))
            return
        if not nocopy and (fresh or not os.listdir(data_dir(paths, name))):
            fill.append(os.path.normpath(dest))
        mounts.append(_bind(data_dir(paths, name), dest, readonly))

    for spec in volume_flags:
        name, dest, readonly, nocopy = parse_volume_flag(spec)
        add_volume(name, dest, readonly, anonymous=name is None, nocopy=nocopy)
    for value in mount_flags:
        m = parse_mount(value)
        if m["type"] == "bind":
            mounts.append(_bind(m["source"], m["target"], m.get("readonly")))
        elif m["type"] == "tmpfs":
            opts = []
            if m.get("tmpfs-size"):
                opts.append("size=" + m["tmpfs-size"])
            if m.get("tmpfs-mode"):
                opts.append("mode=" + m["tmpfs-mode"])
            mounts.append(parse_tmpfs(m["target"] + (":" + ",".join(opts) if opts else "")))
        else:
            add_volume(m.get("source") or None, m["target"], m.get("readonly"),
                       anonymous=not m.get("source"), nocopy=m.get("volume-nocopy"),
                       options=m.get("volume-opt"), labels=m.get("volume-label"))
        taken.add(os.path.normpath(m["target"]))
    for ref in volumes_from:
        mounts_of, names_of = _volumes_from(paths, ref)
        for m in mounts_of:
            if m["destination"] not in taken:
                mounts.append(m)
                taken.add(m["destination"])
        used.extend(n for n in names_of if n not in used)
    for dest in sorted(image_volumes or {}):
        if os.path.normpath(dest) not in taken:
            add_volume(None, dest, False, anonymous=True)
    return mounts, used, fill


def _volumes_from(paths, ref):
    from . import state
    cref, _, mode = ref.partition(":")
    if mode not in ("", "ro", "rw"):
        raise UsageError("invalid --volumes-from mode %r" % mode, hint="ro or rw")
    cid = state.resolve(paths, cref)
    record = state.read_state(paths, cid)
    out = []
    for m in record.get("UserMounts") or []:
        if m.get("type") != "bind":
            continue                   # Docker passes on volumes and binds only
        m = dict(m)
        if mode:
            m["options"] = ["rbind", mode]
        out.append(m)
    return out, record.get("Volumes") or []


def parse_volume_flag(spec):
    """-v NAME:/path[:OPTS] or -v /path (anonymous) -> (name or None,
    destination, read-only, nocopy); OPTS as Docker takes them for a
    volume: ro, rw, nocopy (no filling from the image), z, Z and the
    consistency modes (accepted, nothing on Linux)."""
    from .spec import CONSISTENCY_MODES
    parts = spec.split(":")
    if len(parts) == 1:
        return None, parts[0], False, False
    if len(parts) > 3 or not parts[1].startswith("/"):
        raise UsageError("invalid volume specification: %r" % spec,
                         hint="-v NAME:/container/path[:ro] (the path absolute)")
    opts = parts[2].split(",") if len(parts) == 3 else []
    for o in opts:
        if o not in ("ro", "rw", "nocopy", "z", "Z") + CONSISTENCY_MODES:
            raise UsageError("invalid mode %r in volume specification %r" % (o, spec),
                             hint="ro, rw or nocopy")
    return parts[0], parts[1], "ro" in opts, "nocopy" in opts


def is_volume_spec(spec):
    """-v NAME:/path and -v /path are volumes; -v /host:/path is a bind."""
    parts = spec.split(":")
    if len(parts) == 1:
        return True
    if parts[0].startswith("/"):
        return False
    if not valid_name(parts[0]):
        raise UsageError(
            '"%s" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed' % parts[0],
            hint="if you intended to pass a host directory, use an absolute path")
    return True


def fill_from_image(rootfs, dest, source_dir):
    """In PID 1, before the pivot: copy the image's content at ``dest``
    into an empty volume (``source_dir``'s _data), keeping owners."""
    from . import rootfs as rootfs_mod
    src = fsutil.resolve_in_root(rootfs, dest)
    if os.path.isdir(src) and os.path.isdir(source_dir) and not os.listdir(source_dir):
        rootfs_mod.copy_tree(src, source_dir)
