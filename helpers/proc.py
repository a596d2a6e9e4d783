"""The one wrapper for running helper programs (fuse-overlayfs, slirp4netns,
pasta, systemd-run, ...): clean environment, stdin from /dev/null, and a
failure raised with the exact command line (DESIGN.md, house style 7)."""

import os
import shlex

from .errors import HostError

CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG": "C.UTF-8"}


def run_checked(argv, env=None, hint=None, capture=True, timeout=60):
    import subprocess
    full_env = dict(CLEAN_ENV)
    if env:
        full_env.update(env)
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, env=full_env,
                             stdout=subprocess.PIPE if capture else None,
                             stderr=subprocess.PIPE if capture else None,
                             timeout=timeout, close_fds=True)
    except FileNotFoundError:
        raise HostError("%s: program not found" % argv[0], hint=hint) from None
    except subprocess.TimeoutExpired:
        raise HostError("%s timed out after %ds" % (shlex.join(argv), timeout),
                        hint=hint) from None
    if res.returncode != 0:
        detail = ""
        if capture:
            detail = (res.stderr or res.stdout or b"").decode(errors="replace").strip()
            detail = detail.splitlines()[-1] if detail else ""
        raise HostError("%s failed (exit %d)%s" % (
            shlex.join(argv), res.returncode, ": " + detail if detail else ""),
            hint=hint)
    return res
