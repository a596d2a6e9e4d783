"""The one wrapper for running helper programs (fuse-overlayfs, slirp4netns,
pasta, systemd-run, ...): clean environment, stdin from /dev/null, and a
failure raised with the exact command line (DESIGN.md, house style 7)."""

import os

from .errors import HostError

CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG": "C.UTF-8"}


def run_checked(argv, env=None, hint=None, capture=True, timeout=60):
    # Imported here: spawn() is on the start path of every container with a
    # network helper, and shlex brings re and collections.
    import shlex
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


def spawn(argv, fds=None, die_with_parent=True, program=None):
    """Start a long-lived helper (slirp4netns, pasta) and return its pid;
    the caller reaps it.  Clean environment, stdin/stdout from /dev/null;
    ``fds`` maps target fd -> our fd (stderr included: 2 -> a log file);
    ``program``: the file to execute, when not argv[0] found in PATH.
    With ``die_with_parent`` the helper gets SIGKILL when this process
    dies, so a killed supervisor never leaves one behind (fork + prctl
    rather than posix_spawn, which has no way to ask for that)."""
    from . import linux
    env = dict(CLEAN_ENV)
    path = program or argv[0]
    if "/" not in path:
        for d in env["PATH"].split(":"):
            if os.access(os.path.join(d, path), os.X_OK):
                path = os.path.join(d, path)
                break
        else:
            raise HostError("%s: program not found" % argv[0])
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            if die_with_parent:
                linux.prctl(linux.PR_SET_PDEATHSIG, 9)
                if os.getppid() != parent:
                    os._exit(1)
            # Out of the terminal's process group: Ctrl-C is for the
            # container, not for its network.
            os.setpgid(0, 0)
            # Python ignores SIGPIPE and SIGXFSZ; an exec'd program expects
            # the defaults (pasta refuses to start with SIGPIPE ignored).
            # (_signal: the C module under `signal`, whose wrapper imports
            # enum, milliseconds before the helper can exec.)
            import _signal as signal
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            nul = os.open(os.devnull, os.O_RDWR)
            targets = {0: nul, 1: nul, 2: nul}
            targets.update(fds or {})
            # Move sources out of the way first, so dup2 onto a low
            # target cannot clobber a source still to be copied.
            moved = {t: os.dup(s) for t, s in targets.items()}
            for t, s in moved.items():
                os.dup2(s, t)       # dup2 clears close-on-exec on the target
            os.execve(path, argv, env)
        except BaseException:      # noqa: BLE001 - never unwind into the parent
            os._exit(127)
        os._exit(127)
    return pid
