"""The start paths import no module they do not need (DESIGN.md section 5,
house style 9): on these hosts each stdlib module costs about a
millisecond, and `re` alone brings enum, functools and collections.

`exec CTR true` and `run --rm --network none busybox true` run as the test
user under `python3 -X importtime`, straight from the checkout (so not for
the frozen binary: these tests carry no `binary` mark).

The containers run with --cgroups disabled: where a container gets a
systemd scope, the D-Bus call goes through busctl and subprocess, which
belongs to that case only.
"""

import os

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The interpreter and flags of the ./sandbox launcher (its #! line).
PYTHON = "/usr/bin/python3"

FORBIDDEN = ("re", "enum", "functools", "collections", "contextlib", "json",
             "json.decoder", "signal", "subprocess", "socket", "selectors",
             "typing", "dataclasses", "inspect", "tempfile", "shutil", "random",
             "datetime", "locale", "string", "textwrap", "argparse", "gettext")


def imported(sb, *args):
    """The modules ``sandbox ARGS`` imports (python -X importtime)."""
    result = sb.run_raw([PYTHON, "-E", "-s", "-S", "-X", "importtime",
                         os.path.join(CHECKOUT, "sandbox.py"), *args])
    assert result.returncode == 0, result.stderr[-3000:]
    modules = {line.split("|", 2)[2].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:")
               and not line.endswith("imported package")}
    assert modules, "no -X importtime report in:\n" + result.stderr[-3000:]
    return modules


def check(modules):
    bad = sorted(modules.intersection(FORBIDDEN))
    assert not bad, "imported: %s" % ", ".join(bad)


def test_exec_imports(sb, busybox):
    sb.ok("run", "-d", "--name", "imports-exec", "--network", "none",
          "--cgroups", "disabled", busybox, "sleep", "600")
    try:
        modules = imported(sb, "exec", "imports-exec", "true")
    finally:
        sb("rm", "-f", "imports-exec")
    assert "helpers.container.exec" in modules
    check(modules)


def test_run_imports(sb, busybox):
    modules = imported(sb, "run", "--rm", "--network", "none", "--cgroups", "disabled",
                       busybox, "true")
    assert "helpers.container.monitor" in modules
    check(modules)


def test_run_cli_leaves_ctypes_to_the_container(sb, busybox):
    """The CLI of a foreground `run` without a network helper never loads
    _ctypes: the container's first process does, on the other core, while
    the CLI writes the record (linux._Lib).  And the route watch that only
    pasta uses is not made (taking it from C is a syscall of _ctypes)."""
    import subprocess
    proc = sb.popen_raw([PYTHON, "-E", "-s", "-S", os.path.join(CHECKOUT, "sandbox.py"),
                         "run", "--rm", "-i", "--network", "none", "--cgroups", "disabled",
                         busybox, "sh", "-c", "echo up; read x; exit 0"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "up\n"
        with open("/proc/%d/maps" % proc.pid) as f:
            maps = f.read()
        assert "python" in maps          # the CLI itself
        assert "_ctypes" not in maps
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()
