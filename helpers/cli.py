"""Command line: verbs and flags with Docker's names.

This is the one place that prints errors and chooses exit codes.  Each verb
lives in a module under ``helpers/commands`` that exposes ``register(sub)``
(adds its sub-parsers, helpers/options.py, each with ``set_defaults(func=...)``); the
verb function gets ``(args, paths)`` and returns an exit code (or None for
0).  Verb modules import their heavy dependencies lazily (DESIGN.md, house
style 9): ``run`` of a local image must not import the registry client.
"""

import os
import sys

from . import __version__
from .errors import SandboxError, Terminated, terminate_as_interrupt

VERB_MODULES = ("images", "run", "info", "lifecycle", "containers", "exec",
                "volumes", "registry", "cp", "network", "resources", "system", "events",
                "search", "compose")
# verb -> the module that registers it: only that module is imported (and
# only its parsers built) for a command, which keeps the image verbs off the
# `run` start path.  `--help` and unknown verbs load them all.
VERBS = {"run": "run", "create": "run", "info": "info", "version": "info",
         "images": "images", "image": "images", "load": "images",
         "import": "images", "rmi": "images", "tag": "images",
         "save": "images", "history": "images", "build": "images", "builder": "images",
         "system": "system",
         "start": "lifecycle", "stop": "lifecycle", "restart": "lifecycle",
         "kill": "lifecycle", "rm": "lifecycle", "wait": "lifecycle",
         "rename": "lifecycle", "pause": "lifecycle", "unpause": "lifecycle",
         "attach": "lifecycle",
         "ps": "containers", "logs": "containers", "inspect": "containers",
         "top": "containers", "container": "containers", "exec": "exec",
         "volume": "volumes", "stats": "resources", "update": "resources", "pull": "registry", "login": "registry", "logout": "registry",
         "push": "registry", "manifest": "registry", "cp": "cp", "export": "cp", "diff": "cp", "commit": "cp", "port": "network",
         "network": "network", "events": "events", "search": "search",
         "compose": "compose"}
# Verbs that write staged files into the store for a while: SIGTERM (a
# `kill`, a `timeout`) removes them as Ctrl-C does (errors.Terminated).
STAGING_VERBS = ("load", "import", "pull", "push", "save", "image", "system", "build",
                 "builder", "commit")
GLOBAL_OPTIONS_WITH_VALUE = ("--root", "--runroot", "--storage-driver")
# Called by one of these names (a symbolic link to sandbox), sandbox is
# `sandbox compose`: scripts and Makefiles that run docker-compose work.
COMPOSE_NAMES = ("docker-compose", "sandbox-compose")


# Docker's management commands name the top-level verbs too: `container
# rm X` is `rm X`, `image build .` is `build .` (those the container and
# image parsers do not have themselves).
MANAGED = {
    "container": ("attach", "commit", "cp", "create", "diff", "exec", "export", "kill",
                  "pause", "port", "rename", "restart", "rm", "run", "start", "stats",
                  "stop", "top", "unpause", "update", "wait"),
    "image": ("build", "pull", "push"),
    "builder": ("build",),
    "buildx": ("build",),       # (CI's `docker buildx build`: the same builder)
    "system": ("info", "events"),
}


def _verb_index(argv):
    """Where the first positional argument is, skipping global options."""
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return i
    return None


def find_verb(argv):
    """The first positional argument, skipping global options."""
    i = _verb_index(argv)
    return None if i is None else argv[i]


def unmanaged(argv):
    """argv with `container VERB` / `image VERB` as the top-level VERB."""
    i = _verb_index(argv)
    if i is not None and i + 1 < len(argv) and argv[i + 1] in MANAGED.get(argv[i], ()):
        return argv[:i] + argv[i + 1:]
    return argv


def build_parser(verb=None):
    from .options import Parser
    parser = Parser(
        prog="sandbox",
        description="Rootless, daemonless containers with Docker's verbs.")
    parser.add_argument("--version", action="version",
                        version="sandbox " + __version__)
    parser.add_argument("--root", help="data directory (default "
                        "$XDG_DATA_HOME/sandbox or ~/.local/share/sandbox)")
    parser.add_argument("--runroot", help="runtime directory (default "
                        "$XDG_RUNTIME_DIR/sandbox)")
    parser.add_argument("--storage-driver", choices=("overlay", "fuse-overlayfs", "vfs"),
                        help="force a storage driver (default: the best that "
                        "works here, chosen at run time)")
    parser.add_argument("--debug", action="store_true",
                        help="print each setup step")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    modules = [VERBS[verb]] if verb in VERBS else VERB_MODULES
    for name in modules:
        # __import__, not importlib (whose package imports warnings).
        module = "helpers.commands." + name
        __import__(module)
        sys.modules[module].register(sub)
    for group, verbs in MANAGED.items():
        # `image --help` lists `image build` too (the top-level verb's line).
        managed = sub.parsers.get(group)
        if managed is not None:
            managed.also = [(v, sub.parsers[v].summary) for v in verbs if v in sub.parsers]
    return parser


def forget_bootloader_environment():
    """The frozen binary's bootloader (PyInstaller's) points LD_LIBRARY_PATH
    at its bundled libraries, which stay on disk (scripts/build-binary),
    and leaves _PYI_* variables for a child it would start itself.  No
    process of ours needs them once started (sandbox runs itself again
    through the binary, which sets them afresh), and a host tool that
    inherited them (pasta, the user namespace keeper, a build's `git`)
    would load our libraries instead of its own."""
    if "LD_LIBRARY_PATH_ORIG" in os.environ:
        os.environ["LD_LIBRARY_PATH"] = os.environ.pop("LD_LIBRARY_PATH_ORIG")
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)
    for key in [k for k in os.environ if k.startswith("_PYI_")]:
        del os.environ[key]


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
        if os.path.basename(sys.argv[0]) in COMPOSE_NAMES:
            argv = ["compose"] + argv      # (a link named docker-compose to us)
    if getattr(sys, "frozen", False):
        forget_bootloader_environment()
    if argv == ["--version"]:
        # Without building every verb's parser (all their modules: ~30 ms).
        print("sandbox " + __version__)
        return 0
    if argv[:1] == ["__supervise-exit"]:
        # The native monitor handing a detached container back (monitor.py).
        from .container import monitor
        return monitor.resume(argv[1], int(argv[2]),
                              [int(fd) for fd in argv[3].split(",") if fd])
    if argv[:1] == ["__health"]:
        # One health check of a container (its loop runs this).
        from .container import health
        return health.main(argv[1:])
    from . import linux
    linux.hold_back_inherited_fds()
    argv = unmanaged(argv)
    verb = find_verb(argv)
    # Help for a management verb (`image --help`) names the top-level verbs
    # it also takes, which live in other modules: build them all.
    help_of_group = verb in MANAGED and (
        "-h" in argv or "--help" in argv or argv[-1:] == [verb])
    parser = build_parser(None if help_of_group else verb)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        getattr(args, "_parser", parser).print_help(sys.stderr)
        return 125 if args.verb is None else 0
    if getattr(args, "disable_content_trust", True) is False:
        report(SandboxError("content trust (image signing) is not supported",
                            hint="leave out --disable-content-trust=false"))
        return 125
    if args.verb not in ("run", "exec"):
        from . import collect_garbage_from_now_on
        collect_garbage_from_now_on()
    if args.verb in STAGING_VERBS:
        terminate_as_interrupt()
    from .paths import Paths
    paths = Paths(args.root, args.runroot)
    if args.storage_driver:
        os.environ["SANDBOX_STORAGE_DRIVER"] = args.storage_driver
    if args.runroot:
        # The shared user namespace's record lives in the run root
        # (userns.py finds it through the environment, like our children).
        os.environ["SANDBOX_RUNROOT"] = paths.runroot
    try:
        code = args.func(args, paths)
    except SandboxError as exc:
        report(exc)
        return exc.exit_code
    except BrokenPipeError:
        return 0            # (an OSError: before the clause below)
    except OSError as exc:
        error = None if args.debug else os_error(exc, paths)
        if error is None:
            raise
        report(error)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 143
    return 0 if code is None else code


def os_error(exc, paths):
    """An OSError about a file of the user's (an archive to load, the data
    directory, a full disk), as one line with a hint instead of a
    traceback; whatever the verb was writing is undone on the way up
    (staging directories, records), as for any failure.  None for the rest
    (no file named: a bug of ours, whose traceback should reach us)."""
    import errno
    where = paths.root, paths.runroot
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        return SandboxError(
            what + (" (%s)" % exc.filename if exc.filename else ""),
            hint="free space where sandbox keeps its data (%s, runtime files in %s): "
                 "sandbox system prune, sandbox rmi, or choose another --root" % where)
    if not exc.filename or exc.errno not in (
            errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR,
            errno.ENOENT, errno.ELOOP, errno.ENAMETOOLONG):
        return None
    path = os.path.abspath(str(exc.filename))
    ours = any(path == d or path.startswith(d + "/") or d.startswith(path + "/")
               for d in where)
    hint = None
    if ours and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = ("sandbox keeps its data in %s and %s: they must be yours and "
                "writable (check HOME and XDG_RUNTIME_DIR), or choose others "
                "with --root and --runroot" % where)
    return SandboxError("%s: %s" % (path, exc.strerror or "error %d" % exc.errno),
                        hint=hint)


def report(exc):
    line = "sandbox: " + exc.message
    if exc.hint:
        line += "\n  hint: " + exc.hint
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def main_and_exit(argv=None):
    """main(), then leave without the interpreter's teardown (freeing every
    module costs milliseconds at the end of each `run`); output is flushed
    first, and nothing else of ours needs finalizers."""
    code = main(argv)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)
