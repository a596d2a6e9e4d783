"""Third-party packages live in the shared virtualenv's site-packages, which
the launcher leaves off sys.path (python -S) to keep `run` fast.  A verb that
needs one calls ``enable_site()`` first."""

import sys


def enable_site():
    if "site" in sys.modules and getattr(sys, "_sandbox_site", False):
        return
    import site
    site.main()
    sys._sandbox_site = True
