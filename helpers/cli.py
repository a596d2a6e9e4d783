"""Command line: verbs and flags with Docker's names.

This is the one place that prints errors and chooses exit codes.  Each verb
lives in a module under ``helpers/commands`` that exposes ``register(sub)``
(adds its argparse sub-parsers, each with ``set_defaults(func=...)``); the
verb function gets ``(args, paths)`` and returns an exit code (or None for
0).  Verb modules import their heavy dependencies lazily (DESIGN.md, house
style 9): ``run`` of a local image must not import the registry client.
"""

import gettext
import os
import sys

# argparse looks every message up in gettext's catalogs, which imports
# `locale` and stats translation files on each of dozens of calls: 5 ms of
# a start that should take tens.  Docker's messages are English only, so
# bind argparse to identity functions before it is imported.
gettext.gettext = lambda message: message
gettext.ngettext = lambda singular, plural, n: singular if n == 1 else plural

import argparse  # noqa: E402  (must come after the gettext binding above)

from . import __version__
from .errors import SandboxError

VERB_MODULES = ("images", "run", "info", "lifecycle", "containers", "exec",
                "volumes", "registry", "cp", "network", "resources", "system")
# verb -> the module that registers it: only that module is imported (and
# only its parsers built) for a command, which keeps argparse and the image
# verbs off the `run` start path.  `--help` and unknown verbs load them all.
VERBS = {"run": "run", "create": "run", "info": "info",
         "images": "images", "image": "images", "load": "images",
         "import": "images", "rmi": "images", "tag": "images",
         "save": "images", "history": "images", "system": "system",
         "start": "lifecycle", "stop": "lifecycle", "restart": "lifecycle",
         "kill": "lifecycle", "rm": "lifecycle", "wait": "lifecycle",
         "rename": "lifecycle", "pause": "lifecycle", "unpause": "lifecycle",
         "attach": "lifecycle",
         "ps": "containers", "logs": "containers", "inspect": "containers",
         "top": "containers", "container": "containers", "exec": "exec",
         "volume": "volumes", "stats": "resources", "update": "resources", "pull": "registry", "login": "registry", "logout": "registry",
         "push": "registry", "cp": "cp", "port": "network", "network": "network"}
GLOBAL_OPTIONS_WITH_VALUE = ("--root", "--runroot", "--storage-driver")


class Formatter(argparse.HelpFormatter):
    """argparse's formatter imports shutil (bz2, lzma) for the terminal
    width, on every add_argument; os has the same call."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        if width is None:
            try:
                width = os.get_terminal_size(sys.stdout.fileno()).columns - 2
            except (OSError, ValueError):
                width = 78
        super().__init__(prog, indent_increment, max_help_position, width)


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad flags; Docker exits 125."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("sandbox: %s\n  hint: see '%s --help'\n" % (message, self.prog))
        sys.exit(125)


def find_verb(argv):
    """The first positional argument, skipping global options."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


def build_parser(verb=None):
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
    import importlib
    modules = [VERBS[verb]] if verb in VERBS else VERB_MODULES
    for name in modules:
        importlib.import_module("helpers.commands." + name).register(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(find_verb(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 125 if args.verb is None else 0
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
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0 if code is None else code


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
