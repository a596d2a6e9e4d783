"""`system df [-v]`: disk usage of images, containers, volumes and the
build cache, as Docker's columns.  Container upper dirs and volumes hold
files owned by subordinate ids in directories the user may not enter, so
their sizes are summed in the user namespace (one fork for all)."""

import datetime
import os
import stat

from ..errors import SandboxError
from ..formatting import created_since, human_size, parse_time, print_rows, tabulate


def register(sub):
    p = sub.add_parser("system", help="manage sandbox")
    ssub = p.add_subparsers(dest="system_verb", metavar="COMMAND")
    df = ssub.add_parser("df", help="show disk usage")
    df.add_argument("-v", "--verbose", action="store_true",
                    help="show usage per image, container and volume")
    df.add_argument("--format", help="a Go template, 'table TEMPLATE' or 'json'")
    df.set_defaults(func=cmd_df)
    pr = ssub.add_parser("prune", help="remove stopped containers, unused "
                         "networks, dangling images (and more with -a, --volumes)")
    pr.add_argument("-a", "--all", action="store_true",
                    help="every image no container uses, not only dangling ones")
    pr.add_argument("-f", "--force", action="store_true", help="do not prompt")
    pr.add_argument("--volumes", action="store_true",
                    help="also anonymous volumes no container uses")
    pr.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                    help="until=TIME, label=K[=V], label!=K[=V] (containers, images, networks)")
    pr.set_defaults(func=cmd_prune)
    from . import autostart
    autostart.register(ssub)


def cmd_prune(args, paths):
    """Docker's `system prune`: the four prunes in its order, one question."""
    from .containers import prune_containers, prune_filters
    from .image_admin import confirm, prune_build_cache, prune_images
    from .network import prune_networks
    from .volumes import prune_volumes
    prune_filters(args.filter)
    items = ["all stopped containers",
             "all networks not used by at least one container"]
    if args.volumes:
        items.append("all anonymous volumes not used by at least one container")
    items += ["all images without at least one container associated to them"
              if args.all else "all dangling images", "unused build cache"]
    if not args.force and not confirm("WARNING! This will remove:\n" + "".join(
            "  - %s\n" % item for item in items)):
        return 0
    sizes = {}          # what the containers and volumes held
    for title, names in (("Deleted Containers", prune_containers(paths, args.filter,
                                                                 sizes)),
                         ("Deleted Networks", prune_networks(paths, args.filter)),
                         ("Deleted Volumes", prune_volumes(paths, sizes=sizes)
                          if args.volumes else [])):
        if names:
            print("%s:\n%s\n" % (title, "\n".join(names)))
    lines, reclaimed = prune_images(paths, args.all, args.filter)
    if lines:
        print("Deleted Images:\n" + "\n".join(lines) + "\n")
    # (a filter keeps the build cache, which has no labels or dates of its own)
    cached, freed = prune_build_cache(paths) if not args.filter else ([], 0)
    if cached:
        print("Deleted build cache objects:\n" + "\n".join(
            i.partition("sha256:")[2] or i for i in cached) + "\n")
    print("Total reclaimed space: " + human_size(reclaimed + freed + sum(sizes.values())))
    return 0


def tree_size(path):
    """Bytes of the files under ``path`` (hardlinks once), like Docker's
    directory.Size; 0 when it does not exist."""
    total, seen = 0, set()
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            st = e.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                stack.append(e.path)
            elif (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _sizes(dirs):
    """{dir: tree_size(dir)}, computed as root of the user namespace."""
    dirs = [d for d in dirs if os.path.isdir(d)]
    if not dirs:
        return {}
    from .. import userns
    return userns.run_in_userns(lambda: {d: tree_size(d) for d in dirs})


def sizes_by_name(dirs):
    """{name: bytes} for {name: directory} (_sizes: as root of the user
    namespace, one fork for all; 0 for a directory that is gone)."""
    measured = _sizes(list(dirs.values()))
    return {name: measured.get(d, 0) for name, d in dirs.items()}


def _percent(part, total):
    if total <= 0:
        return human_size(part)
    return "%s (%d%%)" % (human_size(part), int(100 * part / total))


def usage(paths):
    """Everything `system df` shows, as rows and details."""
    from ..container import state, volumes
    from ..image.buildcache import BuildCache
    from ..image.store import Store
    from .containers import all_records
    from .image_admin import containers_by_image
    store = Store(paths)
    by_image = containers_by_image(paths)
    records = all_records(paths)
    vol_names = volumes.names(paths)
    sizes = _sizes([os.path.join(paths.container(st["Id"]), "upper") for st in records]
                   + [volumes.data_dir(paths, n) for n in vol_names])

    cache = BuildCache(paths)
    entries = cache.entries()
    cached = cache.hidden(store, entries)
    images, layer_users, cache_images = [], {}, []
    for image_id in store.image_ids():
        try:
            cids = store.chain_ids(image_id)
            cfg = store.config(image_id)
        except (SandboxError, ValueError):
            continue
        for c in cids:
            layer_users.setdefault(c, set()).add(image_id)
        (cache_images if image_id in cached else images).append((image_id, cfg, cids))
    layer_size = {c: store.layer_meta(c).get("size", 0) for c in layer_users}
    # The cache's size: the layers only its (nameless) images hold.
    cache_only = {c for c, users in layer_users.items() if users <= cached}
    cache_size = sum(layer_size[c] for c in cache_only)
    total = sum(layer_size.values()) - cache_size
    last_used = {}
    for k, image_id in entries.items():
        try:
            mtime = os.stat(os.path.join(cache.dir, k)).st_mtime
        except FileNotFoundError:
            continue
        last_used[image_id] = max(mtime, last_used.get(image_id, 0))
    cache_rows, counted = [], set()
    for image_id, cfg, cids in sorted(cache_images, key=lambda i: i[1].get("created") or ""):
        # A layer's size goes to the first image made with it on top (a
        # config step's image shares its parent's top layer).
        top = cids[-1] if cids else None
        own = top in cache_only and top not in counted
        counted.add(top)
        cache_rows.append({"id": image_id, "cfg": cfg, "last_used": last_used.get(image_id),
                           "size": layer_size[top] if own else 0,
                           "shared": top is not None and len(layer_users[top]) > 1})
    active_layers = {c for image_id, _, cids in images if image_id in by_image for c in cids}
    image_rows = []
    for image_id, cfg, cids in images:
        shared = sum(layer_size[c] for c in cids if len(layer_users[c]) > 1)
        size = sum(layer_size[c] for c in cids)
        image_rows.append({"id": image_id, "cfg": cfg, "size": size, "shared": shared,
                           "containers": len(by_image.get(image_id, []))})

    containers = []
    for st in records:
        containers.append({"st": st, "size": sizes.get(
            os.path.join(paths.container(st["Id"]), "upper"), 0),
            "running": state.is_running(st)})
    vols = [{"name": n, "links": len(volumes.users(paths, n)),
             "size": sizes.get(volumes.data_dir(paths, n), 0)} for n in vol_names]

    c_total = sum(c["size"] for c in containers)
    v_total = sum(v["size"] for v in vols)
    summary = [
        {"Type": "Images", "TotalCount": str(len(images)),
         "Active": str(sum(1 for i in images if i[0] in by_image)),
         "Size": human_size(total),
         "Reclaimable": _percent(total - sum(layer_size[c] for c in active_layers), total)},
        {"Type": "Containers", "TotalCount": str(len(containers)),
         "Active": str(sum(1 for c in containers if c["running"])),
         "Size": human_size(c_total),
         "Reclaimable": _percent(sum(c["size"] for c in containers if not c["running"]),
                                 c_total)},
        {"Type": "Local Volumes", "TotalCount": str(len(vols)),
         "Active": str(sum(1 for v in vols if v["links"])),
         "Size": human_size(v_total),
         "Reclaimable": _percent(sum(v["size"] for v in vols if not v["links"]), v_total)},
        {"Type": "Build Cache", "TotalCount": str(len(cache_rows)), "Active": "0",
         "Size": human_size(cache_size), "Reclaimable": human_size(cache_size)},
    ]
    return summary, image_rows, containers, vols, store, cache_rows


def cmd_df(args, paths):
    summary, images, containers, vols, store, cache_rows = usage(paths)
    if print_rows(args.format, summary, {"TotalCount": "TOTAL", "Type": "TYPE"}):
        return
    if not args.verbose:
        table = [("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")]
        table += [(r["Type"], r["TotalCount"], r["Active"], r["Size"], r["Reclaimable"])
                  for r in summary]
        print(tabulate(table))
        return
    print(verbose_text(paths, images, containers, vols, store, cache_rows))


def verbose_text(paths, images, containers, vols, store, cache_rows):
    from ..image import reference
    from .containers import ps_row
    out = ["Images space usage:", ""]
    table = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
              "UNIQUE SIZE", "CONTAINERS")]
    for img in images:
        created = created_since(parse_time(img["cfg"].get("created")))
        names = [reference.parse(t) for t in store.names(img["id"], full=True)] or [None]
        for ref in names:
            table.append((ref.familiar() if ref else "<none>",
                          ref.tag if ref else "<none>", img["id"][7:19], created,
                          human_size(img["size"]), human_size(img["shared"]),
                          human_size(img["size"] - img["shared"]),
                          str(img["containers"])))
    out += [tabulate(table), "", "Containers space usage:", ""]
    table = [("CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
              "STATUS", "NAMES")]
    for c in containers:
        r = ps_row(paths, c["st"])
        table.append((r["ID"], r["Image"], r["Command"],
                      str(len(c["st"].get("Volumes") or [])), human_size(c["size"]),
                      created_since(parse_time(r["CreatedAt"])), r["Status"], r["Names"]))
    out += [tabulate(table), "", "Local Volumes space usage:", ""]
    table = [("VOLUME NAME", "LINKS", "SIZE")]
    table += [(v["name"], str(v["links"]), human_size(v["size"])) for v in vols]
    cache = [("CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED")]
    for c in cache_rows:
        used = c["last_used"]
        cache.append((c["id"][7:19], "regular", human_size(c["size"]),
                      created_since(parse_time(c["cfg"].get("created"))),
                      created_since(datetime.datetime.fromtimestamp(
                          used, datetime.timezone.utc)) if used else "",
                      "1", "true" if c["shared"] else "false"))
    out += [tabulate(table), "",
            "Build cache usage: " + human_size(sum(c["size"] for c in cache_rows)), "",
            tabulate(cache)]
    return "\n".join(out)
