"""The start paths import no module they do not need (DESIGN.md section 5,
house style 9): on these hosts each stdlib module costs about a
millisecond, and `re` alone brings enum, functools and collections.

`exec CTR true` and `run --rm --network none busybox true` run as the test
user under `python3 -X importtime`, straight from the checkout (so not for
the frozen binary: these tests carry no `binary` mark).  Its report is a
tree: a module's line comes after the lines of what it imported, indented
one level deeper.

Until helpers/cli.py parses without argparse, argparse brings re, enum,
functools, collections, gettext and warnings before any verb runs: a later
import of those by a verb is then invisible.  Meanwhile the forbidden
modules are checked outside helpers.cli's subtree only, and the test ends
as xfail; once argparse has left, the whole report is checked.

The containers run with --cgroups disabled: where a container gets a
systemd scope, the D-Bus call goes through busctl and subprocess, which
belongs to that case only.
"""

import os

import pytest

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The interpreter and flags of the ./sandbox launcher.
PYTHON = os.environ.get("SANDBOX_PYTHON") or "/opt/sandbox/venv/bin/python3"
if not os.access(PYTHON, os.X_OK):
    PYTHON = "/usr/bin/python3"

FORBIDDEN = ("re", "enum", "functools", "collections", "contextlib", "json",
             "json.decoder", "signal", "subprocess", "socket", "selectors",
             "typing", "dataclasses", "inspect", "tempfile", "shutil", "random",
             "datetime", "locale", "string", "textwrap", "argparse", "gettext")


def imported(sb, *args):
    """``sandbox ARGS`` with -X importtime -> [(module, top-level import
    it came with)], in the report's order."""
    result = sb.run_raw([PYTHON, "-E", "-s", "-S", "-X", "importtime",
                         os.path.join(CHECKOUT, "sandbox.py"), *args])
    assert result.returncode == 0, result.stderr[-3000:]
    modules, pending = [], []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or line.endswith("imported package"):
            continue
        field = line.split("|", 2)[2]
        name = field.strip()
        if field.startswith("   "):          # below the top level
            pending.append(name)
            continue
        modules += [(m, name) for m in pending + [name]]
        pending = []
    assert modules, "no -X importtime report in:\n" + result.stderr[-3000:]
    return modules


def check(modules):
    outside_cli = {m for m, top in modules if top != "helpers.cli"}
    bad = sorted(outside_cli.intersection(FORBIDDEN))
    assert not bad, "imported outside helpers.cli: %s" % ", ".join(bad)
    everything = {m for m, _ in modules}
    if "argparse" in everything:
        pytest.xfail("helpers.cli still imports argparse (and with it re, enum, "
                     "functools, collections): checked outside its subtree only")
    bad = sorted(everything.intersection(FORBIDDEN))
    assert not bad, "imported: %s" % ", ".join(bad)


def test_exec_imports(sb, busybox):
    sb.ok("run", "-d", "--name", "imports-exec", "--network", "none",
          "--cgroups", "disabled", busybox, "sleep", "600")
    try:
        modules = imported(sb, "exec", "imports-exec", "true")
    finally:
        sb("rm", "-f", "imports-exec")
    assert ("helpers.container.exec", "helpers.container.exec") in modules
    check(modules)


def test_run_imports(sb, busybox):
    modules = imported(sb, "run", "--rm", "--network", "none", "--cgroups", "disabled",
                       busybox, "true")
    assert any(m == "helpers.container.monitor" for m, _ in modules)
    check(modules)
