"""Image verbs: images, load, import, rmi, tag, image {ls,inspect,rm,tag,
load,import}, and the registration of save, history and image prune
(image_admin.py).  Output follows Docker's (columns, messages, JSON keys)."""

import datetime
import os
import sys

from ..errors import Conflict, ImageNotFound, NotFound, SandboxError, UsageError
from . import image_admin as admin
from ..options import has_label
from ..formatting import (created_since, human_size, parse_time, print_objects,
                          print_rows, tabulate)


def register(sub):
    p = sub.add_parser("images", help="list images")
    _ls_flags(p)
    p = sub.add_parser("load", help="load images from a tar archive or stdin")
    _load_flags(p)
    p = sub.add_parser("import", help="create an image from a root filesystem tar")
    _import_flags(p)
    p = sub.add_parser("rmi", help="remove images")
    _rm_flags(p)
    p = sub.add_parser("tag", help="create a tag TARGET that refers to SOURCE")
    _tag_flags(p)
    admin.save_flags(sub.add_parser("save", help="write images to a tar archive"))
    admin.history_flags(sub.add_parser("history", help="show the history of an image"))
    p = sub.add_parser(
        "build", help="build an image from a Dockerfile",
        description="Build an image from the Dockerfile in the context directory "
                    "(or -f FILE), as Docker's classic builder does: each RUN in a "
                    "container of its own, each COPY/ADD from the context or an "
                    "earlier stage. A step already built from the same steps and files "
                    "comes from the build cache (`builder prune` empties it).")
    p.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]",
                   help="name the image (repeatable)")
    p.add_argument("-f", "--file", metavar="FILE",
                   help="the Dockerfile (default: CONTEXT/Dockerfile; - for stdin)")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V",
                   help="a value for an ARG of the Dockerfile")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only the image id (the steps' output only on failure)")
    p.add_argument("--network", metavar="MODE",
                   help="the network of the RUN steps (default: the default network)")
    p.add_argument("--target", metavar="STAGE",
                   help="build up to the end of this stage (FROM IMAGE AS STAGE)")
    p.add_argument("--label", action="append", default=[], metavar="K=V",
                   help="a label of the image (repeatable)")
    p.add_argument("--iidfile", metavar="FILE", help="write the image id to FILE")
    p.add_argument("--secret", action="append", default=[], metavar="id=ID,src=FILE",
                   help="a secret for RUN --mount=type=secret (id=ID,src=FILE or "
                        "id=ID,env=VAR); in no layer of the image")
    p.add_argument("--ssh", action="append", default=[], metavar="default|ID[=SOCKET]",
                   help="an SSH agent for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK)")
    p.add_argument("--no-cache", action="store_true",
                   help="run every step (the cache is not read; its entries are replaced)")
    p.add_argument("--rm", action="store_true", default=True,
                   help="accepted for Docker compatibility (intermediate containers "
                        "are always removed)")
    p.add_argument("--force-rm", action="store_true",
                   help="accepted for Docker compatibility (as --rm)")
    p.add_argument("--pull", action="store_true",
                   help="pull the FROM images even when they are in the store")
    p.add_argument("--platform", metavar="OS/ARCH[,OS/ARCH...]",
                   help="build for these platforms (another architecture: emulated with "
                        "qemu-user; several: pushed as a manifest list, with --push)")
    p.add_argument("--progress", choices=("auto", "plain", "tty", "quiet", "rawjson"),
                   help="accepted for BuildKit's scripts (the output is always plain; "
                        "quiet is -q)")
    p.add_argument("-o", "--output", metavar="type=local,dest=DIR|type=tar,dest=FILE",
                   help="also write the image's files: into a directory (a path alone "
                        "means that), or a tar archive (- for stdout)")
    p.add_argument("--push", action="store_true", help="push every -t tag when built")
    p.add_argument("--load", action="store_true",
                   help="accepted for buildx's scripts (images always land in the store)")
    p.add_argument("--cache-from", action="append", default=[], metavar="IMAGE",
                   help="accepted (the local build cache is what is used)")
    p.add_argument("--cache-to", action="append", default=[], metavar="SPEC",
                   help="accepted for buildx's scripts (the build cache stays local)")
    p.add_argument("--provenance", metavar="BOOL|mode=...",
                   help="accepted for buildx's scripts (no attestations are made)")
    p.add_argument("--sbom", metavar="BOOL", help="accepted (no attestations are made)")
    from ..options import add_content_trust_flag
    add_content_trust_flag(p)
    p.add_argument("--add-host", action="append", default=[], metavar="NAME:IP",
                   help="a line of the RUN steps' /etc/hosts")
    p.add_argument("--shm-size", metavar="SIZE", help="/dev/shm of the RUN steps")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
                   help="a resource limit of the RUN steps")
    for flag, short in (("--memory", "-m"), ("--memory-swap", None),
                        ("--cpu-shares", "-c"), ("--cpu-period", None),
                        ("--cpu-quota", None), ("--cpuset-cpus", None)):
        p.add_argument(*((short, flag) if short else (flag,)), metavar="VALUE",
                       help="as `run %s`, for the RUN steps" % flag)
    p.add_argument("context", metavar="PATH|-",
                   help="the context directory (-: a Dockerfile on stdin, no context)")
    p.set_defaults(func=cmd_build)

    bld = sub.add_parser("builder", help="manage the build cache")
    bsub = bld.add_subparsers(dest="builder_verb", metavar="COMMAND")
    admin.builder_prune_flags(bsub.add_parser("prune", help="empty the build cache"))

    img = sub.add_parser("image", help="manage images")
    isub = img.add_subparsers(dest="image_verb", metavar="COMMAND")
    _ls_flags(isub.add_parser("ls", aliases=["list"], help="list images"))
    p = isub.add_parser("inspect", help="show images as JSON")
    p.add_argument("-f", "--format", help="a Go template, e.g. '{{.Id}}'")
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_inspect)
    _rm_flags(isub.add_parser("rm", aliases=["remove"], help="remove images"))
    _tag_flags(isub.add_parser("tag", help="tag an image"))
    _load_flags(isub.add_parser("load", help="load images from a tar archive"))
    _import_flags(isub.add_parser("import", help="import a root filesystem tar"))
    admin.save_flags(isub.add_parser("save", help="write images to a tar archive"))
    admin.history_flags(isub.add_parser("history", help="show the history of an image"))
    admin.prune_flags(isub.add_parser("prune", help="remove unused images"))


def _ls_flags(p):
    p.add_argument("-q", "--quiet", action="store_true", help="only show ids")
    p.add_argument("-a", "--all", action="store_true",
                   help="also the build cache's images (intermediate images)")
    p.add_argument("--no-trunc", action="store_true", help="full image ids")
    p.add_argument("--digests", action="store_true", help="show the DIGEST column")
    p.add_argument("-f", "--filter", action="append", default=[],
                   metavar="KEY=VALUE", help="dangling=true|false, reference="
                   "PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]")
    p.add_argument("--format", help="a Go template, 'table TEMPLATE' or 'json'")
    p.add_argument("repository", nargs="?", help="only this repository[:tag]")
    p.set_defaults(func=cmd_images)


def _load_flags(p):
    p.add_argument("-i", "--input", help="read from a tar file, not stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress output")
    p.set_defaults(func=cmd_load)


def _import_flags(p):
    p.add_argument("-q", "--quiet", action="store_true", help="suppress output")
    p.add_argument("-m", "--message", help="commit message for the image")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply a Dockerfile instruction (CMD, ENV, ...)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="the platform the image says it is for (default: this host's)")
    p.add_argument("source", metavar="FILE|-")
    p.add_argument("name", nargs="?", metavar="REPOSITORY[:TAG]")
    p.set_defaults(func=cmd_import)


def _rm_flags(p):
    p.add_argument("-f", "--force", action="store_true",
                   help="remove even if a container uses it")
    p.add_argument("--no-prune", action="store_true",
                   help="accepted (there are no untagged parent images to keep)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_rmi)


def _tag_flags(p):
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    p.set_defaults(func=cmd_tag)


def _store(paths):
    from ..image.store import Store
    return Store(paths)


# -- load / import ----------------------------------------------------------
def cmd_load(args, paths):
    from ..image import archive
    if args.input:
        source = args.input
    else:
        if sys.stdin.isatty():
            raise UsageError("requested load from stdin, but stdin is empty",
                             hint="sandbox load -i FILE, or pipe an archive in")
        source = sys.stdin.buffer
    try:
        results = archive.load(_store(paths), source)
    except FileNotFoundError as exc:
        raise UsageError("cannot open %s: %s" % (exc.filename, exc.strerror)) from None
    from .. import events
    out = []
    for image_id, tags, moved in results:
        events.emit(paths, "image", "load", image_id,
                    {"name": str(tags[0]) if tags else image_id})
        for tag, old in moved:
            from ..image.reference import familiar_name
            out.append("The image %s already exists, renaming the old one with "
                       "ID %s to empty string" % (familiar_name(tag), old))
        if tags:
            out.extend("Loaded image: " + t.familiar_string() for t in tags)
        else:
            out.append("Loaded image ID: " + image_id)
    if not args.quiet:
        print("\n".join(out))
    _gc_quietly(paths)


def cmd_import(args, paths):
    from ..image import archive
    platform = None
    if args.platform:
        from ..image.pull import parse_platform
        platform = parse_platform(args.platform)
    image_id, _ = archive.import_rootfs(_store(paths), args.source, args.name,
                                        args.message, args.change, platform)
    from .. import events
    events.emit(paths, "image", "import", image_id, {"name": args.name or image_id})
    print(image_id)
    _gc_quietly(paths)


def _gc_quietly(paths):
    # A tag that moved may leave an untagged image whose layers nobody
    # else uses; Docker keeps it as <none>, and so do we.  gc here only
    # clears temp dirs of interrupted loads.
    try:
        _store(paths).gc()
    except SandboxError:
        pass


# -- images ---------------------------------------------------------------
IMAGE_FILTERS = ("dangling", "reference", "before", "since", "label")


def parse_filters(values, allowed):
    """--filter KEY=VALUE flags -> {key: [values]}; unknown keys are
    refused before anything is read, as Docker does."""
    out = {}
    for f in values or []:
        key, eq, value = f.partition("=")
        if not eq or key not in allowed:
            raise UsageError("invalid filter %r" % f,
                             hint="filters: " + ", ".join(k + "=..." for k in allowed))
        out.setdefault(key, []).append(value)
    for v in out.get("dangling", []):
        if v.lower() not in ("true", "false", "1", "0"):
            raise UsageError("invalid filter 'dangling=%s'" % v,
                             hint="dangling=true or dangling=false")
    return out


def _created_of(store, name):
    cfg = store.config(store.lookup(name))
    return parse_time(cfg.get("created")) or _EPOCH


_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def _label_match(labels, wanted):
    return all(has_label(labels, w) for w in wanted)


def image_rows(store, filters, want=None, no_trunc=False, cached=frozenset(), all_=False):
    """One row per (image, tag) as `docker images` lists them, newest
    first; a row is the dict --format templates see.  ``cached``: the
    build cache's images without a name, listed only with ``all_`` (as
    Docker's intermediate images) and never dangling."""
    from fnmatch import fnmatchcase
    from ..image import reference
    repos = store.repositories()
    dangling = [v.lower() in ("true", "1") for v in filters.get("dangling", [])]
    before = [_created_of(store, n) for n in filters.get("before", [])]
    since = [_created_of(store, n) for n in filters.get("since", [])]
    rows = []
    for image_id in store.image_ids():
        try:
            cfg = store.config(image_id)
        except (NotFound, ValueError):
            continue
        created = parse_time(cfg.get("created")) or _EPOCH
        if any(created >= b for b in before) or any(created <= s for s in since):
            continue
        if not _label_match((cfg.get("config") or {}).get("Labels") or {},
                            filters.get("label", [])):
            continue
        tags = sorted(k for k, v in repos.items() if v == image_id and "@" not in k)
        digests = {k.partition("@")[0]: k.partition("@")[2]
                   for k, v in repos.items() if v == image_id and "@" in k}
        if not tags and image_id in cached and (not all_ or dangling):
            continue
        if dangling and dangling[-1] != (not tags):
            continue
        pairs = [(reference.parse(t), t) for t in tags]
        if "reference" in filters:
            pairs = [(r, t) for r, t in pairs if any(
                fnmatchcase(r.familiar_string(), p) or fnmatchcase(r.familiar(), p)
                for p in filters["reference"])]
            if not pairs:
                continue
        if want is not None:
            pairs = [(r, t) for r, t in pairs if r.name == want.name and
                     (not want.tag or r.tag == want.tag)]
            if not pairs:
                continue
        size = store.size(image_id)
        base = {
            "Containers": "N/A", "CreatedAt": _go_time(created),
            "CreatedSince": created_since(None if created is _EPOCH else created),
            "ID": image_id if no_trunc else image_id[7:19],
            "SharedSize": "N/A", "Size": human_size(size), "UniqueSize": "N/A",
            "VirtualSize": human_size(size), "_created": created, "_id": image_id,
        }
        if not pairs:
            repo_digests = sorted(digests.items()) or [(None, None)]
            for name, digest in repo_digests:
                repo = reference.parse(name, default_tag=False).familiar() \
                    if name else "<none>"
                rows.append(dict(base, Repository=repo, Tag="<none>",
                                 Digest=digest or "<none>"))
            continue
        for ref, _ in pairs:
            rows.append(dict(base, Repository=ref.familiar(), Tag=ref.tag or "<none>",
                             Digest=digests.get(ref.name) or "<none>"))
    rows.sort(key=lambda r: r["_created"], reverse=True)     # newest first, as Docker
    return rows


def _go_time(t):
    """Go's time.Time.String() of a UTC time, as Docker's CreatedAt."""
    return t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if t is not _EPOCH else ""


def cmd_images(args, paths):
    from .containers import _configured_format
    args.format = _configured_format(args, "imagesFormat")
    from ..image import reference
    filters = parse_filters(args.filter, IMAGE_FILTERS)
    want = reference.parse(args.repository, default_tag=False) if args.repository else None
    from ..image.buildcache import BuildCache
    store = _store(paths)
    rows = image_rows(store, filters, want, args.no_trunc, BuildCache(paths).hidden(store),
                      args.all)
    if args.quiet:
        for r in rows:
            print(r["ID"])
        return
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    if print_rows(args.format, public, {"ID": "IMAGE ID"}):
        return
    columns = ["Repository", "Tag"] + (["Digest"] if args.digests else []) + \
        ["ID", "CreatedSince", "Size"]
    table = [["REPOSITORY", "TAG"] + (["DIGEST"] if args.digests else []) +
             ["IMAGE ID", "CREATED", "SIZE"]]
    table += [[r[c] for c in columns] for r in rows]
    print(tabulate(table))


# -- tag / rmi --------------------------------------------------------------
def cmd_tag(args, paths):
    from ..image import reference
    target = reference.parse(args.target)
    if target.digest:
        raise UsageError("refusing to create a tag with a digest reference")
    store = _store(paths)
    store.tag(store.lookup(args.source), target)


def _image_in_use(paths, image_id):
    try:
        from ..container.state import image_in_use
    except ImportError:
        # TODO: drop once helpers.container.state.image_in_use exists.
        return False
    return image_in_use(paths, image_id)


def cmd_rmi(args, paths):
    from ..image import reference
    store = _store(paths)
    errors = []
    for name in args.images:
        # Like Docker, go on with the other names after an error.
        try:
            for line in _rmi_one(store, paths, name, args.force, reference):
                print(line, flush=True)
        except SandboxError as exc:
            errors.append(exc)
    try:
        store.gc()
    except SandboxError:
        pass
    _raise_all(errors)


def _raise_all(errors):
    """Each error on a line of its own, as `rm` reports them; the last
    one's exit code."""
    if errors:
        from ..cli import report
        for exc in errors[:-1]:
            report(exc)
        raise errors[-1]


def _rmi_one(store, paths, name, force, reference):
    """Docker's ImageDelete: a name untags (and deletes the image once no
    tag is left); an id deletes the image with all its tags."""
    image_id = store.lookup(name)
    bare = name[7:] if name.startswith("sha256:") else name
    by_id = image_id[7:].startswith(bare) and not (
        reference.is_reference(name) and
        str(reference.parse(name)) in store.repositories())
    in_use = _image_in_use(paths, image_id)
    tags = store.names(image_id, full=True)
    lines = []
    if not by_id:
        ref = reference.parse(name)
        if in_use and not force and len(tags) <= 1:
            # (Docker's rule: only the last tag, whose removal would leave
            # the container's image dangling, needs -f.)
            raise Conflict(
                "conflict: unable to remove repository reference %r (must "
                "force) - container %s is using its referenced image %s"
                % (name, _short(in_use), image_id[7:19]),
                hint="remove the container first, or use -f", exit_code=1)
        store.untag(ref)
        lines.append("Untagged: " + ref.familiar_string())
        if len(tags) > 1:
            return lines
    else:
        if len(tags) > 1 and not force:
            raise Conflict("conflict: unable to delete %s (must be forced) - "
                           "image is referenced in multiple repositories"
                           % image_id[7:19], hint="use -f, or rmi each tag", exit_code=1)
        if in_use and not force:
            raise Conflict("conflict: unable to delete %s (must be forced) - "
                           "image is being used by container %s"
                           % (image_id[7:19], _short(in_use)),
                           hint="remove the container first, or use -f", exit_code=1)
    if in_use:
        # Forced: untag, but keep the image record so that the container's
        # layers stay (the garbage collector keeps what an image references).
        for t in tags:
            if by_id:
                store.untag(reference.parse(t))
                lines.append("Untagged: " + reference.familiar_name(t))
        return lines
    removed = store.delete_image(image_id)
    lines.extend("Untagged: " + reference.familiar_name(t) for t in removed)
    lines.append("Deleted: " + image_id)
    return lines


def _short(in_use):
    # image_in_use returns the ids of the containers using the image.
    if isinstance(in_use, (list, tuple)):
        in_use = in_use[0] if in_use else ""
    return in_use[:12] if isinstance(in_use, str) and in_use else "(unknown)"


# -- inspect ----------------------------------------------------------------
def cmd_inspect(args, paths):
    store = _store(paths)
    out, missing = [], []
    for name in args.names:
        try:
            out.append(inspect_image(store, store.lookup(name)))
        except ImageNotFound as exc:
            missing.append(exc)         # "No such image", or an ambiguous prefix
    print_objects(args.format, out)
    _raise_all(missing)


def inspect_image(store, image_id):
    """The object `docker image inspect` prints for one image."""
    from ..image import reference
    cfg = store.config(image_id)
    return {
        "Id": image_id,
        "RepoTags": store.names(image_id),
        "RepoDigests": [reference.familiar_name(d) for d in store.digests(image_id)],
        "Parent": cfg.get("parent", ""),
        "Comment": cfg.get("comment", ""),
        "Created": cfg.get("created", ""),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": cfg.get("config"),
        "Architecture": cfg.get("architecture", ""),
        "Variant": cfg.get("variant"),
        "Os": cfg.get("os", ""),
        "Size": store.size(image_id),
        "RootFS": {"Type": (cfg.get("rootfs") or {}).get("type", "layers"),
                   "Layers": store.diff_ids(image_id)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def build_secrets(paths, values):
    """--secret id=ID,src=FILE | id=ID,env=VAR -> ({id: file}, the private
    directory made for env secrets or None)."""
    secrets, made = {}, None
    for value in values:
        fields = dict(item.partition("=")[::2] for item in value.split(","))
        sid = fields.get("id")
        src = fields.get("src") or fields.get("source")
        env = fields.get("env")
        if not sid and (src or env):
            sid = os.path.basename(src) if src else env
        if not sid or bool(src) == bool(env):
            raise UsageError("invalid --secret %r" % value,
                             hint="--secret id=ID,src=FILE or --secret id=ID,env=VAR")
        if src:
            src = os.path.abspath(src)
            if not os.path.isfile(src) or not os.access(src, os.R_OK):
                raise UsageError("--secret %s: %s is not a readable file" % (sid, src))
            secrets[sid] = src
            continue
        if env not in os.environ:
            raise UsageError("--secret %s: the variable %s is not set" % (sid, env))
        if made is None:
            from ..image.build import staging_dir
            made = staging_dir(paths)
            os.chmod(made, 0o700)
        path = os.path.join(made, "secret-%d" % len(secrets))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.environ[env])
        secrets[sid] = path
    return secrets, made


def build_ssh(values):
    """--ssh default | ID | ID=SOCKET -> {id: agent socket}.  Agent sockets
    only (BuildKit also loads key files into an agent of its own: run
    ssh-agent and ssh-add instead)."""
    import stat
    agents = {}
    for value in values:
        sid, eq, path = value.partition("=")
        if not sid or "," in value:
            raise UsageError("invalid --ssh %r" % value, hint="--ssh default or --ssh ID=SOCKET")
        if not eq:
            path = os.environ.get("SSH_AUTH_SOCK")
            if not path:
                raise UsageError("--ssh %s: SSH_AUTH_SOCK is not set" % sid,
                                 hint="start ssh-agent (eval $(ssh-agent); ssh-add), or "
                                      "give its socket: --ssh %s=SOCKET" % sid)
        path = os.path.abspath(path)
        try:
            is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
        except OSError as exc:
            raise UsageError("--ssh %s: %s: %s" % (sid, path, exc.strerror)) from None
        if not is_socket:
            raise UsageError("--ssh %s: %s is not an SSH agent's socket" % (sid, path),
                             hint="key files are not loaded: add them to an ssh-agent "
                                  "(ssh-add FILE) and give its socket")
        agents[sid] = path
    return agents


def _build_platform(text):
    """A --platform of build: linux/ARCH[/VARIANT] this host runs or
    qemu-user emulates (container/emulation.py)."""
    from ..container import emulation
    from ..image.pull import parse_platform
    platform = parse_platform(text.strip())
    if platform[0] != "linux" or not emulation.supported(platform[1]):
        raise UsageError("--platform %s: sandbox cannot build for it" % text.strip(),
                         hint="linux/ARCH, with ARCH this host's or one qemu-user "
                              "emulates: %s" % ", ".join(sorted(emulation.QEMU)))
    return platform


def _build_for_platforms(paths, args, platforms, kw):
    """`build --platform A,B --push -t NAME...` (buildx's multi-platform
    build): the image of each platform, then for each NAME those images
    pushed by digest and their manifest list under NAME.  The images stay
    in the store untagged (and in the build cache)."""
    from ..image import build, manifest_list
    from ..platforms import text
    from ..image.progress import Progress
    from ..image.store import Store
    dockerfile = args.file
    if dockerfile == "-":           # read once, built for every platform
        kw["dockerfile_text"] = sys.stdin.buffer.read().decode(errors="replace")
        dockerfile = None
    out = kw.get("out") or sys.stdout
    image_ids = []
    for platform in platforms:
        if not args.quiet:
            out.write("#### %s\n" % text(*platform))
            out.flush()
        image_ids.append(build.build(paths, args.context, dockerfile, platform=platform, **kw))
    store = Store(paths)
    digest = None
    for tag in args.tag:
        digest = manifest_list.push_built(store, tag, image_ids,
                                          progress=Progress("quiet" if args.quiet else None))
        if not args.quiet:
            out.write("Pushed manifest list %s: digest: %s\n" % (tag, digest))
    if args.iidfile:
        from ..fsutil import atomic_write
        atomic_write(os.path.abspath(args.iidfile), digest)
    if args.quiet:
        print(digest)
    return 0


def cmd_build(args, paths):
    from ..image import build
    from ..image.reference import parse
    tags = [parse(t) for t in args.tag]         # bad names fail before any work
    build_args = {}
    for item in args.build_arg:
        k, eq, v = item.partition("=")
        if not k:
            raise UsageError("invalid --build-arg %r" % item, hint="--build-arg KEY=VALUE")
        build_args[k] = v if eq else os.environ.get(k, "")
    from ..options import labels
    if args.progress == "quiet":
        args.quiet = True
    platforms = [_build_platform(p) for p in (args.platform or "").split(",") if p.strip()]
    output = build.parse_output(args.output) if args.output else None
    if args.push and not tags:
        raise UsageError("--push needs a name to push", hint="add -t REGISTRY/NAME[:TAG]")
    if len(platforms) > 1 and (not args.push or output or args.context == "-"):
        raise UsageError("a build for several platforms is pushed as a manifest list",
                         hint="add --push -t REGISTRY/NAME[:TAG] (the store keeps one image "
                              "per name; -o and a Dockerfile-only context take one platform)")
    run_options = []
    if args.add_host:
        from ..network.files import parse_add_hosts
        parse_add_hosts(args.add_host)          # refused now, not at the first RUN
        run_options += [o for h in args.add_host for o in ("--add-host", h)]
    for flag in ("shm_size", "memory", "memory_swap", "cpu_shares", "cpu_period",
                 "cpu_quota", "cpuset_cpus"):
        if getattr(args, flag) is not None:
            run_options += ["--" + flag.replace("_", "-"), getattr(args, flag)]
    run_options += [o for u in args.ulimit for o in ("--ulimit", u)]
    ssh = build_ssh(args.ssh)
    secrets, made = build_secrets(paths, args.secret)
    kw = dict(build_args=build_args, quiet=args.quiet, network=args.network,
              no_cache=args.no_cache, target=args.target, labels=labels(args.label),
              secrets=secrets, ssh=ssh, pull=args.pull, run_options=run_options,
              # (-o -: the archive is stdout, the steps go to stderr)
              out=sys.stderr if output == ("tar", "-") else None)
    try:
        if len(platforms) > 1:
            return _build_for_platforms(paths, args, platforms, kw)
        image_id = build.build(paths, args.context, args.file, tags=tags,
                               platform=platforms[0] if platforms else None, **kw)
    finally:
        if made:
            import shutil
            shutil.rmtree(made, ignore_errors=True)
    if args.iidfile:
        from ..fsutil import atomic_write
        atomic_write(os.path.abspath(args.iidfile), image_id)
    if output:
        build.export_image(paths, image_id, *output)
    if args.push:
        from .registry import push_tag
        for tag in args.tag:
            push_tag(paths, tag, args.quiet)
    if args.quiet and output != ("tar", "-"):
        print(image_id)
    return 0
