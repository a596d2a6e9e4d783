"""Where the optional parts live: the shared virtualenv that
scripts/setup-host builds from the system's python3 ($SANDBOX_VENV, else
/opt/sandbox/venv), with the third-party packages (site-packages) and the
native programs (libexec).  The ./sandbox launcher runs that python3 itself
with -S, so neither is on sys.path: a verb that needs a package calls
``enable_site()`` first."""

import os
import sys

DEFAULT_VENV = "/opt/sandbox/venv"


def _running_venv():
    """The virtualenv this interpreter belongs to (run as
    VENV/bin/python3), or None."""
    mine = os.path.dirname(os.path.dirname(sys.executable))
    return mine if os.path.exists(os.path.join(mine, "pyvenv.cfg")) else None


def venv():
    """The virtualenv's directory: the one this interpreter belongs to,
    else $SANDBOX_VENV or /opt/sandbox/venv (it may not exist)."""
    return _running_venv() or os.environ.get("SANDBOX_VENV") or DEFAULT_VENV


def enable_site():
    if getattr(sys, "_sandbox_site", False):
        return
    if getattr(sys, "frozen", False):
        # The binary carries its packages; its ctypes package (pyroute2's)
        # sits apart, off the path of its bootstrap (scripts/build-binary).
        sys.path.append(os.path.join(getattr(sys, "_MEIPASS", ""), "_late"))
        sys._sandbox_site = True
        return
    import site
    if _running_venv():
        site.main()         # the virtualenv's own python: its site-packages
    else:
        site.addsitedir(os.path.join(venv(), "lib", "python%d.%d" % sys.version_info[:2],
                                     "site-packages"))
    sys._sandbox_site = True
