"""Image verbs beyond listing and naming: save, history, image prune,
builder prune.  images.py registers them (top level and under `image`); output follows
Docker's (columns, messages, the prune prompt)."""

import os
import sys

from ..errors import SandboxError
from ..formatting import created_since, human_size, parse_time, print_rows, tabulate
from .registry import parse_bool


def save_flags(p):
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to a file instead of stdout")
    p.add_argument("--format", default="docker-archive",
                   choices=("docker-archive", "oci-archive"),
                   help="archive format (default docker-archive)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_save)


def history_flags(p):
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    p.add_argument("-H", "--human", type=parse_bool, default=True, metavar="BOOL",
                   help="sizes and dates in human readable form (default true)")
    p.add_argument("--format", help="a Go template, 'table TEMPLATE' or 'json'")
    p.add_argument("image", metavar="IMAGE")
    p.set_defaults(func=cmd_history)


def prune_flags(p):
    p.add_argument("-a", "--all", action="store_true",
                   help="remove every image no container uses, not just dangling ones "
                        "(the build cache stays: builder prune)")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="until=TIME, label=K[=V], label!=K[=V]")
    p.set_defaults(func=cmd_prune)


def builder_prune_flags(p):
    p.add_argument("-a", "--all", action="store_true",
                   help="accepted for Docker compatibility (the whole cache goes either way)")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt")
    p.set_defaults(func=cmd_builder_prune)


def _store(paths):
    from ..image.store import Store
    return Store(paths)


# -- save ---------------------------------------------------------------------------
def cmd_save(args, paths):
    from ..image import save
    from . import write_output
    write_output(args.output, lambda f: save.save(_store(paths), args.images, f, args.format))


# -- history ------------------------------------------------------------------------
def history_rows(store, image_id, no_trunc=False, human=True):
    """Docker's history rows, newest first: the top entry shows the image
    id, older ones "<missing>" (their images are not in the store);
    entries that made a layer show its size."""
    cfg = store.config(image_id)
    history = [h for h in cfg.get("history") or [] if isinstance(h, dict)]
    cids = store.chain_ids(image_id)
    if not history:     # configs without history: one entry per layer
        history = [{"created": cfg.get("created")} for _ in cids] or \
            [{"created": cfg.get("created"), "empty_layer": True}]
    layer = 0
    rows = []
    for h in history:
        size = 0
        if not h.get("empty_layer") and layer < len(cids):
            size = store.layer_meta(cids[layer]).get("size", 0)
            layer += 1
        created = parse_time(h.get("created"))
        created_by = (h.get("created_by") or "").replace("\t", " ")
        if not no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "\u2026"
        rows.append({
            "ID": "<missing>",
            "CreatedSince": created_since(created) if human else
            (h.get("created") or ""),
            "CreatedAt": h.get("created") or "",
            "CreatedBy": created_by,
            "Size": human_size(size) if human else str(size),
            "Comment": h.get("comment") or "",
        })
    rows.reverse()
    rows[0]["ID"] = image_id if no_trunc else image_id[7:19]
    return rows


def cmd_history(args, paths):
    store = _store(paths)
    rows = history_rows(store, store.lookup(args.image), args.no_trunc, args.human)
    if args.quiet:
        print("\n".join(r["ID"] for r in rows))
        return
    if print_rows(args.format, rows, {"ID": "IMAGE", "CreatedBy": "CREATED BY"}):
        return
    keys = ("ID", "CreatedSince", "CreatedBy", "Size", "Comment")
    table = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    table += [tuple(r[k] for k in keys) for r in rows]
    print(tabulate(table))


# -- image prune --------------------------------------------------------------------
DANGLING_WARNING = "WARNING! This will remove all dangling images."
ALL_WARNING = ("WARNING! This will remove all images without at least one "
               "container associated to them.")


def confirm(warning):
    """Docker's PromptForConfirmation: the question on stdout, one line of
    stdin; only y or Y is a yes (also when stdin is not a terminal)."""
    sys.stdout.write(warning + "\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.strip() in ("y", "Y")


def store_usage(store):
    """Bytes the image store holds: layer contents plus blobs."""
    total = 0
    for name in _listdir(store.paths.layers):
        if name != "mountpoints":
            total += store.layer_meta("sha256:" + name).get("size", 0)
    for name in _listdir(store.paths.blobs):
        try:
            total += os.lstat(os.path.join(store.paths.blobs, name)).st_size
        except FileNotFoundError:
            pass
    return total


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def containers_by_image(paths):
    """{image id: [container ids]} for every container record."""
    from ..container.state import list_ids, read_state
    out = {}
    for cid in list_ids(paths):
        try:
            image = read_state(paths, cid).get("Image")
        except (SandboxError, ValueError):
            continue
        if image:
            out.setdefault(image, []).append(cid)
    return out


def cmd_prune(args, paths):
    from .containers import prune_filters
    prune_filters(args.filter)
    if not args.force and not confirm(ALL_WARNING if args.all else DANGLING_WARNING):
        print("Total reclaimed space: 0B")
        return
    lines, reclaimed = prune_images(paths, args.all, args.filter)
    if lines:
        print("Deleted Images:\n" + "\n".join(lines) + "\n")
    print("Total reclaimed space: " + human_size(reclaimed))


def prune_images(paths, all_images=False, filters=()):
    """Remove dangling images (every image no container uses, with
    ``all_images``) that match ``filters`` (containers.prune_filters), not
    the build cache's; returns (Docker's untagged:/deleted: lines, bytes
    reclaimed)."""
    from ..image import reference
    from ..image.buildcache import BuildCache
    from .containers import prune_filters
    wanted = prune_filters(filters)
    store = _store(paths)
    used = containers_by_image(paths)
    repos = store.repositories()
    before = store_usage(store)
    lines = []
    cached = BuildCache(paths).hidden(store)
    for image_id in store.image_ids():
        if image_id in used or image_id in cached:
            continue        # Docker never prunes what a container uses
        refs = sorted(k for k, v in repos.items() if v == image_id)
        if not all_images and any("@" not in r for r in refs):
            continue        # tagged: not dangling
        try:
            cfg = store.config(image_id)
        except (SandboxError, ValueError):
            continue
        if filters and not wanted(cfg.get("created"), (cfg.get("config") or {}).get("Labels")):
            continue
        removed = store.delete_image(image_id)
        lines += ["untagged: " + reference.familiar_name(r) for r in removed]
        lines.append("deleted: " + image_id)
    store.gc()
    return lines, max(0, before - store_usage(store))


# -- builder prune --------------------------------------------------------------
def prune_build_cache(paths):
    """Empty the build cache (image/buildcache.py) and the volumes of RUN
    --mount=type=cache; returns (the removed images' ids and volumes'
    names, bytes reclaimed).  While a build runs, nothing goes (a
    notice on stderr)."""
    from ..image.buildcache import BuildCache
    store = _store(paths)
    before = store_usage(store)
    cache = BuildCache(paths)
    removed = cache.prune(store, containers_by_image(paths))
    if removed is None:
        sys.stderr.write("sandbox: a build is running: the build cache was left as it is\n")
        return [], 0
    store.gc()
    freed = max(0, before - store_usage(store))
    # RUN --mount=type=cache's volumes (build.cache_volume) go too.
    from ..container import volumes
    from ..image.build import CACHE_VOLUME_PREFIX
    from .system import tree_size
    for name in volumes.names(paths):
        if name.startswith(CACHE_VOLUME_PREFIX) and not volumes.users(paths, name):
            try:
                size = tree_size(volumes.volume_dir(paths, name))
            except OSError:
                size = 0            # (a directory of another id of the container's)
            try:
                volumes.remove(paths, name)
            except SandboxError:
                continue
            removed.append(name)
            freed += size
    return removed, freed


def cmd_builder_prune(args, paths):
    if not args.force and not confirm("WARNING! This will remove all build cache."):
        print("Total reclaimed space: 0B")
        return
    removed, reclaimed = prune_build_cache(paths)
    if removed:
        print("Deleted build cache objects:\n" + "\n".join(
            i.partition("sha256:")[2] or i for i in removed) + "\n")
    print("Total reclaimed space: " + human_size(reclaimed))
