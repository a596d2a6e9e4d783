"""Command line: verbs and flags with Docker's names.

This is the one place that prints errors and chooses exit codes.  Each verb
lives in a module under ``helpers/commands`` that exposes ``register(sub)``
(adds its argparse sub-parsers, each with ``set_defaults(func=...)``); the
verb function gets ``(args, paths)`` and returns an exit code (or None for
0).  Verb modules import their heavy dependencies lazily (DESIGN.md, house
style 9): ``run`` of a local image must not import the registry client.
"""

import argparse
import os
import sys

from . import __version__
from .errors import SandboxError

VERB_MODULES = ("images", "run", "info")


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad flags; Docker exits 125."""

    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("sandbox: %s\n  hint: see '%s --help'\n" % (message, self.prog))
        sys.exit(125)


def build_parser():
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
    for name in VERB_MODULES:
        importlib.import_module("helpers.commands." + name).register(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 125 if args.verb is None else 0
    from .paths import Paths
    paths = Paths(args.root, args.runroot)
    if args.storage_driver:
        os.environ["SANDBOX_STORAGE_DRIVER"] = args.storage_driver
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
