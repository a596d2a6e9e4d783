"""Registry verbs: pull, push, login, logout, manifest inspect.

The registry client and the zstd/ISA-L decompressors are third-party or
heavy: they are imported here, inside the verbs, never on `run`'s path for
a local image (DESIGN.md, house style 9)."""

import sys

from ..errors import SandboxError, UsageError
from ..options import add_content_trust_flag


def register(sub):
    p = sub.add_parser("pull", help="download an image from a registry")
    _pull_flags(p)
    p = sub.add_parser("login", help="log in to a registry")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from stdin")
    p.add_argument("--tls-verify", type=parse_bool, default=None, metavar="BOOL")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.set_defaults(func=cmd_login)
    p = sub.add_parser("logout", help="log out from a registry")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.set_defaults(func=cmd_logout)
    register_push(sub)
    p = sub.add_parser("manifest", help="look at image manifests in a registry, make "
                       "and push manifest lists")
    msub = p.add_subparsers(dest="manifest_verb", metavar="COMMAND")
    m = msub.add_parser("inspect", help="print a local manifest list, or an image's "
                                        "manifest (or list) as the registry has it")
    m.add_argument("--insecure", action="store_true",
                   help="do not verify the registry's certificate")
    m.add_argument("-v", "--verbose", action="store_true", help="(accepted)")
    m.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    m.set_defaults(func=cmd_manifest_inspect)
    m = msub.add_parser("create", help="make a local manifest list of images in a registry")
    m.add_argument("-a", "--amend", action="store_true", help="add to an existing list")
    m.add_argument("--insecure", action="store_true",
                   help="do not verify the registry's certificate")
    m.add_argument("name", metavar="MANIFEST_LIST")
    m.add_argument("images", nargs="+", metavar="MANIFEST")
    m.set_defaults(func=cmd_manifest_create)
    m = msub.add_parser("annotate", help="set the platform of an image in a local list")
    m.add_argument("--os")
    m.add_argument("--arch")
    m.add_argument("--variant")
    m.add_argument("--os-version")
    m.add_argument("--os-features", action="append", default=[])
    m.add_argument("name", metavar="MANIFEST_LIST")
    m.add_argument("image", metavar="MANIFEST")
    m.set_defaults(func=cmd_manifest_annotate)
    m = msub.add_parser("push", help="push a local manifest list to its registry")
    m.add_argument("-p", "--purge", action="store_true",
                   help="remove the local list once pushed")
    m.add_argument("--insecure", action="store_true",
                   help="do not verify the registry's certificate")
    m.add_argument("name", metavar="MANIFEST_LIST")
    m.set_defaults(func=cmd_manifest_push)
    m = msub.add_parser("rm", help="remove local manifest lists")
    m.add_argument("names", nargs="+", metavar="MANIFEST_LIST")
    m.set_defaults(func=cmd_manifest_rm)


def cmd_manifest_inspect(args, paths):
    """Docker's `manifest inspect`: the manifest (list) indented with tabs;
    exit 1 with "no such manifest" when the registry has none (the way CI
    scripts ask whether a tag exists without pulling it)."""
    _enable_deps()
    import json
    from ..image import manifest_list, reference, registry
    local = manifest_list.load(paths, args.name) if "@" not in args.name else None
    if local is not None:
        print(json.dumps(json.loads(manifest_list.body(local)), indent="\t"))
        return 0
    ref = reference.parse(args.name)
    client = registry.Client(ref.registry, ref.repository,
                             False if args.insecure else None)
    try:
        body, _, _ = client.get_manifest(ref.digest or ref.tag,
                                         "manifest for %s" % ref.familiar_string())
    except registry.NotFoundError:
        raise registry.NotFoundError("no such manifest: %s" % ref) from None
    finally:
        client.close()
    try:
        doc = json.loads(body)
    except ValueError:
        raise registry.RegistryError("the registry's manifest for %s is not JSON"
                                     % ref.familiar_string()) from None
    print(json.dumps(doc, indent="\t", ensure_ascii=False))
    return 0


def cmd_manifest_create(args, paths):
    from ..image import manifest_list
    name = manifest_list.create(paths, args.name, args.images, args.amend,
                                False if args.insecure else None)
    print("Created manifest list %s" % name)
    return 0


def cmd_manifest_annotate(args, paths):
    from ..image import manifest_list
    manifest_list.annotate(paths, args.name, args.image, args.os, args.arch, args.variant,
                           args.os_version, args.os_features)
    return 0


def cmd_manifest_push(args, paths):
    from ..image import manifest_list
    print(manifest_list.push(paths, args.name, args.purge, False if args.insecure else None))
    return 0


def cmd_manifest_rm(args, paths):
    from ..cli import report
    from ..errors import SandboxError
    from ..image import manifest_list
    failed = False
    for name in args.names:
        try:
            manifest_list.remove(paths, name)
        except SandboxError as exc:
            failed = True
            report(exc)
    return 1 if failed else 0


def _pull_flags(p):
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only the image's name")
    p.add_argument("-a", "--all-tags", action="store_true",
                   help="every tagged image of the repository")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="platform to pick from a manifest list (default: this host)")
    p.add_argument("--tls-verify", type=parse_bool, default=None, metavar="BOOL",
                   help="verify the registry's certificate (default true; "
                        "loopback registries speak plain HTTP)")
    add_content_trust_flag(p)
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.set_defaults(func=cmd_pull)


def parse_bool(s):
    v = s.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ValueError(s)


def _enable_deps():
    # zstandard and isal live in the venv's site-packages (python -S).
    from ..deps import enable_site
    enable_site()


def _store(paths):
    from ..image.store import Store
    return Store(paths)


# -- pull ---------------------------------------------------------------------
def pull_image(paths, name, quiet=False, platform=None, tls_verify=None, out=None):
    """Pull for `pull` and for `run`/`create` of a missing image; returns
    the image id.  Output (Docker's) goes to ``out`` (stdout)."""
    _enable_deps()
    from ..image import pull as pull_mod
    from ..image.progress import Progress
    progress = Progress("quiet" if quiet else None, out=out)
    image_id, ref = pull_mod.pull(_store(paths), name, platform, tls_verify, progress)
    from .. import events
    events.emit(paths, "image", "pull", ref.familiar_string(), {"name": str(ref)})
    return image_id, ref


def cmd_pull(args, paths):
    from ..image import reference
    ref = reference.parse(args.name)
    if args.all_tags:
        if ref.digest or ":" in args.name.rsplit("/", 1)[-1]:
            raise UsageError("tag can't be used with --all-tags/-a")
        names = _all_tags(ref, args.tls_verify)
    else:
        names = [args.name]
    for name in names:
        _, got = pull_image(paths, name, args.quiet, args.platform, args.tls_verify)
        if not args.all_tags:
            print(str(got), flush=True)
    if args.all_tags:
        print(ref.name, flush=True)


def _all_tags(ref, tls_verify):
    _enable_deps()
    import json
    from ..image import registry
    client = registry.Client(ref.registry, ref.repository, tls_verify)
    try:
        resp = client.request("GET", "/v2/%s/tags/list" % ref.repository)
        if resp.status != 200:
            raise client.check(resp, "tags of %s" % ref.familiar())
        tags = json.loads(resp.read()).get("tags") or []
        resp.release()
    finally:
        client.close()
    return [str(ref.with_tag(t)) for t in sorted(tags)]


# -- login / logout -----------------------------------------------------------
def cmd_login(args, paths):
    from ..image import auth, registry
    server = auth.normalize_registry(args.server)
    user = args.username
    password = args.password
    if args.password_stdin:
        if args.password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not user:
            raise UsageError("must provide --username with --password-stdin")
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. "
                         "Use --password-stdin.\n")
    if not user:
        if not sys.stdin.isatty():
            raise UsageError("cannot ask for a username: stdin is not a terminal",
                             hint="sandbox login -u USER --password-stdin " + server)
        user = input("Username: ").strip()
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError("cannot ask for a password: stdin is not a terminal",
                             hint="use --password-stdin")
        import getpass
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise UsageError("a username and a password are required")
    client = registry.Client(server, "", args.tls_verify, credentials=(user, password))
    try:
        verify_login(client)
    finally:
        client.close()
    auth.store(server, user, password)
    print("Login Succeeded")


def verify_login(client):
    """GET /v2/ with the credentials; a token server is asked for a token
    without a repository scope, as Docker does."""
    from ..image import registry
    resp = client.request("GET", "/v2/")
    body = resp.read()
    resp.release()
    if resp.status == 401:
        raise registry.Unauthorized("login to %s failed: unauthorized: incorrect "
                                    "username or password" % client.registry)
    if resp.status != 200:
        raise registry.RegistryError("login to %s failed: the registry answered %d: %s"
                                     % (client.registry, resp.status,
                                        registry.error_detail(body)[0]))


def cmd_logout(args, paths):
    from ..image import auth
    server = auth.normalize_registry(args.server)
    if auth.remove(server):
        print("Removing login credentials for %s" % server)
    else:
        print("Not logged in to %s" % server)


# -- run/create of a missing image ------------------------------------------------
def pull_for_run(paths, name, missing=True, platform=None, quiet=False):
    """`run`/`create` with --pull=missing (the image was not found) or
    --pull=always: pull as Docker does, progress on stderr; errors exit
    125 as every error of `run` before the container starts."""
    if missing and not quiet:
        from ..image.reference import parse
        try:
            shown = str(parse(name))
        except SandboxError:
            shown = name
        sys.stderr.write("Unable to find image '%s' locally\n" % shown)
        sys.stderr.flush()
    import _signal
    from ..errors import terminate_as_interrupt
    terminate_as_interrupt()        # for the pull only (what forks later keeps the default)
    try:
        image_id, _ = pull_image(paths, name, quiet=quiet, platform=platform,
                                 out=sys.stderr)
    except SandboxError as exc:
        exc.exit_code = 125
        raise
    finally:
        _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
    return image_id


# -- push ---------------------------------------------------------------------------
def register_push(sub):
    p = sub.add_parser("push", help="upload an image to a registry")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress; print only the image's reference, as Docker")
    p.add_argument("--digestfile", metavar="FILE",
                   help="write the pushed manifest's digest to FILE (podman's)")
    p.add_argument("--tls-verify", type=parse_bool, default=None, metavar="BOOL")
    add_content_trust_flag(p)
    p.add_argument("name", metavar="NAME[:TAG]")
    p.set_defaults(func=cmd_push)


def cmd_push(args, paths):
    from ..image import reference
    ref = reference.parse(args.name)        # (refused before the push)
    digest = push_tag(paths, args.name, args.quiet, args.tls_verify)
    if args.digestfile:
        from .. import fsutil
        fsutil.atomic_write(args.digestfile, digest)
    if args.quiet:
        print(str(ref))


def push_tag(paths, name, quiet=False, tls_verify=None):
    """Push the image tagged ``name`` (`push`, `build --push`); returns
    the manifest's digest.  ``quiet``: no progress."""
    from ..image import push as push_mod
    from ..image.progress import Progress
    progress = Progress("quiet" if quiet else None)
    _, digest, _ = push_mod.push(_store(paths), name, tls_verify, progress)
    from .. import events
    events.emit(paths, "image", "push", name, {"name": name})
    return digest
