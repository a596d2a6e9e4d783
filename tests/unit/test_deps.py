"""helpers/deps.py: the ./sandbox launcher runs /usr/bin/python3 itself
(-EsS), and finds the shared virtualenv's packages and native programs on
its own.  Runs real interpreters (the virtualenv scripts/setup-host made)."""

import os
import subprocess

import pytest

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.environ.get("SANDBOX_VENV") or "/opt/sandbox/venv"

PROBE = """
import sys
sys.path.insert(0, %r)
from helpers import deps
from helpers.container import monitor
print(deps.venv())
print(monitor.native_path(monitor.INIT_NAME))
deps.enable_site()
import pyroute2
print(pyroute2.__file__)
print(any(p.rstrip("/").endswith("dist-packages") for p in sys.path))
""" % CHECKOUT


def probe(python, env=None):
    if not os.path.exists(os.path.join(VENV, "pyvenv.cfg")):
        pytest.fail("no virtualenv at %s: run scripts/setup-host (as root)" % VENV)
    out = subprocess.run([python, "-EsS", "-c", PROBE], capture_output=True, text=True,
                         env=dict(env or {}, PATH="/usr/bin:/bin"), check=True)
    return out.stdout.split("\n")[:4]


@pytest.mark.parametrize("python", ["/usr/bin/python3", VENV + "/bin/python3"])
def test_either_interpreter_finds_the_virtualenvs_packages_and_programs(python):
    venv, init, pyroute2, system_packages = probe(python, {"SANDBOX_VENV": VENV})
    assert venv == VENV
    assert init.startswith(os.path.join(VENV, "libexec", "sandbox-init."))
    assert pyroute2.startswith(VENV + "/lib/")
    # Only the virtualenv's: not Debian's dist-packages (other versions).
    assert system_packages == "False"


def test_the_system_interpreter_without_a_virtualenv_names_the_default(tmp_path):
    out = subprocess.run(["/usr/bin/python3", "-EsS", "-c",
                          "import sys; sys.path.insert(0, %r); from helpers import deps; "
                          "print(deps.venv())" % CHECKOUT],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
                         check=True)
    assert out.stdout.strip() == "/opt/sandbox/venv"


def test_the_launcher_is_run_by_python_itself_also_through_a_symlink(tmp_path):
    link = tmp_path / "sbx"
    link.symlink_to(os.path.join(CHECKOUT, "sandbox"))
    with open(os.path.join(CHECKOUT, "sandbox")) as f:
        assert f.readline() == "#!/usr/bin/python3 -EsS\n"
    out = subprocess.run([str(link), "version", "-f", "{{.Client.Version}}"],
                         capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() and out.stderr == ""
