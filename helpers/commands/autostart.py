"""`system autostart`: what Docker's daemon does when it starts (after a
reboot, say): start again the containers whose restart policy asks for it.
With no daemon, something must run it at boot: `--enable` installs a
systemd user unit that does (podman ships podman-restart.service for the
same reason).

Which containers, as Docker's restart manager decides at its start:
  always          every one that is not running (even one stopped by the
                  user: Docker restarts those when its daemon restarts)
  unless-stopped  unless the user stopped it (`stop`, `kill`)
  on-failure[:N]  if it ended with a non-zero code, was not stopped by the
                  user, and has restarts left (RestartCount < N)
A machine that went down left its containers "exited (137)" (the records
are refreshed first: state.refresh), which on-failure counts as a failure.
"""

import os
import shutil
import subprocess
import sys

from ..errors import SandboxError, UsageError

UNIT = "sandbox-autostart.service"


def register(ssub):
    p = ssub.add_parser("autostart", help="start the containers whose restart policy "
                        "asks for it, as Docker's daemon does when it starts")
    p.add_argument("--enable", action="store_true",
                   help="install and enable a systemd user unit that does it at "
                        "every boot (or login)")
    p.add_argument("--disable", action="store_true", help="disable and remove that unit")
    p.set_defaults(func=cmd_autostart)


def wanted(st):
    """Whether the boot pass starts the container with record ``st``."""
    from ..container import state
    if state.is_running(st):
        return False
    policy = st.get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    stopped = bool(st.get("StopRequested"))
    if name == "always":
        return True
    if name == "unless-stopped":
        return not stopped
    if name == "on-failure":
        limit = policy.get("MaximumRetryCount") or 0
        return (not stopped and st.get("ExitCode", 0) != 0
                and (not limit or st.get("RestartCount", 0) < limit))
    return False


def cmd_autostart(args, paths):
    if args.enable and args.disable:
        raise UsageError("--enable and --disable exclude each other")
    if args.enable:
        return enable(paths)
    if args.disable:
        return disable()
    from ..cli import report
    from ..container import state
    from .lifecycle import start
    failed = False
    for cid in state.list_ids(paths):
        try:
            st = state.refresh(paths, cid)
            if wanted(st):
                start(paths, cid, st)
                print(st.get("Name", cid[:12]).lstrip("/"))
                sys.stdout.flush()
        except SandboxError as exc:
            failed = True
            report(exc)
        except ValueError:
            continue                # being removed right now
    return 1 if failed else 0


def _unit_dir():
    from ..paths import xdg_config_home
    return os.path.join(xdg_config_home(), "systemd", "user")


def _systemctl(what, *args):
    """`systemctl --user ARGS`; raises a clear error ("cannot WHAT ...")
    without a user manager."""
    exe = shutil.which("systemctl")
    hint = ("run `sandbox system autostart` from your session's start-up instead "
            "(or cron's @reboot)")
    if exe is None:
        raise SandboxError("cannot %s: systemctl is not installed" % what, hint=hint)
    r = subprocess.run([exe, "--user"] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        text = (r.stderr or r.stdout).strip().splitlines()
        raise SandboxError("cannot %s: systemctl --user %s: %s"
                           % (what, " ".join(args),
                              text[0] if text else "exit %d" % r.returncode),
                           hint="a systemd user manager is needed (a login session, or "
                                "`loginctl enable-linger`); else " + hint)
    return r


def unit_text(paths):
    """The unit: this program, with this store and run root, once per
    start of the user's manager.  KillMode=process: stopping the unit (or
    restarting it) leaves the containers it started running; they end with
    the user's manager."""
    from ..container.monitor import self_argv
    argv = self_argv(paths, "system", "autostart")
    return ("[Unit]\n"
            "Description=sandbox: start the containers whose restart policy asks for it\n"
            "\n"
            "[Service]\n"
            "Type=oneshot\n"
            "RemainAfterExit=yes\n"
            "KillMode=process\n"
            "TimeoutStartSec=600\n"
            "ExecStart=%s\n"
            "\n"
            "[Install]\n"
            "WantedBy=default.target\n" % " ".join(_quote(a) for a in argv))


def _quote(arg):
    """An argument as systemd's ExecStart= reads it."""
    if arg and not any(c in arg for c in " \t\"'\\%$;"):
        return arg
    return '"%s"' % arg.replace("\\", "\\\\").replace('"', '\\"').replace(
        "%", "%%").replace("$", "$$")


def enable(paths):
    from .. import fsutil
    os.makedirs(_unit_dir(), exist_ok=True)
    path = os.path.join(_unit_dir(), UNIT)
    fsutil.atomic_write(path, unit_text(paths))
    try:
        _systemctl("enable autostart", "daemon-reload")
        _systemctl("enable autostart", "enable", UNIT)
    except SandboxError:
        os.unlink(path)             # (a unit nobody enabled: not left behind)
        raise
    print("Enabled %s: containers with --restart always, unless-stopped or "
          "on-failure start again when your systemd user manager starts" % path)
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name
    if not os.path.exists(os.path.join("/var/lib/systemd/linger", user)):
        print("Note: your user manager starts at your first login; for the "
              "containers to start at boot: loginctl enable-linger %s" % user)
    return 0


def disable():
    path = os.path.join(_unit_dir(), UNIT)
    if not os.path.exists(path):
        print("%s is not installed" % UNIT)
        return 0
    _systemctl("disable autostart", "disable", UNIT)
    os.unlink(path)
    _systemctl("disable autostart", "daemon-reload")
    print("Disabled and removed %s" % path)
    return 0
