"""Container lifecycle verbs: create's partner start, stop, kill, restart,
rm, wait, rename, pause/unpause.  No daemon: each reads the record
(state.refresh) and acts on the processes directly; the supervisor records
what happens next."""

import os
# _signal: the C module under `signal`, without its wrapper's enum import.
import _signal as signal
import sys
import time

from ..cli import report
from ..errors import Conflict, NotFound, SandboxError, UsageError


def register(sub):
    p = sub.add_parser("start", help="start created or stopped containers")
    p.add_argument("-a", "--attach", action="store_true",
                   help="follow the output and return the exit code")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="(with -a) pass stdin; needs the container made with -i")
    p.add_argument("--detach-keys", metavar="KEYS",
                   help='(with -ai and -t) the keys that detach (default "ctrl-p,ctrl-q")')
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("stop", help="stop running containers")
    p.add_argument("-t", "--time", "--timeout", type=int, default=None,
                   metavar="SECONDS", help="seconds to wait before SIGKILL (default 10)")
    p.add_argument("-s", "--signal", help="signal to send first (default: the "
                   "image's StopSignal or SIGTERM)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("restart", help="restart containers")
    p.add_argument("-t", "--time", "--timeout", type=int, default=None, metavar="SECONDS")
    p.add_argument("-s", "--signal", metavar="SIGNAL",
                   help="signal to stop it with first (default: the image's StopSignal "
                        "or SIGTERM)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_restart)

    p = sub.add_parser("kill", help="send a signal to containers (default SIGKILL)")
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_kill)

    p = sub.add_parser("rm", help="remove containers")
    p.unsupported["--link"] = ("legacy links are gone (nothing to remove)",
                               "sandbox rm CONTAINER")
    p.add_argument("-f", "--force", action="store_true",
                   help="kill a running container first")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="also remove its anonymous volumes")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("wait", help="wait for containers to stop; print exit codes")
    p.add_argument("--condition", action="append", default=[], metavar="STATE",
                   help="(podman's) wait for another state instead: running, paused, "
                        "healthy, unhealthy, created, exited or stopped (the default); "
                        "any of several")
    p.add_argument("-i", "--interval", default="250ms", metavar="DURATION",
                   help="(podman's) how often to look, with --condition (default 250ms)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("rename", help="rename a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.set_defaults(func=cmd_rename)

    p = sub.add_parser("attach", help="attach to a running container's stdio")
    p.add_argument("--no-stdin", action="store_true", help="do not pass stdin")
    p.add_argument("--sig-proxy", default="true", choices=("true", "false"),
                   help="pass SIGINT/SIGTERM on to the container (not with -t)")
    p.add_argument("--detach-keys", metavar="KEYS",
                   help='the keys that detach, leaving the container running (with -t; '
                        'default "ctrl-p,ctrl-q")')
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_attach)

    for verb in ("pause", "unpause"):
        p = sub.add_parser(verb, help="%s all processes of containers" % verb)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.set_defaults(func=cmd_pause, verb=verb)


# ---------------------------------------------------------------------------
def each(args, action):
    """Docker's multi-container verbs: act on every name, print each one
    that worked, report the others, exit 1 if any failed."""
    failed = False
    for ref in args.containers:
        try:
            out = action(ref)
        except SandboxError as exc:
            failed = True
            report(exc)         # this one failed; the others go on
            continue
        if out is not None:
            print(out)
            sys.stdout.flush()
    return 1 if failed else 0


def load(paths, ref):
    from ..container import state
    cid = state.resolve(paths, ref)
    return cid, state.refresh(paths, cid)


def signal_number(name):
    """"TERM", "SIGTERM", "15" -> 15."""
    if name is None:
        return signal.SIGTERM
    n = str(name).upper()
    if n.isdigit():
        return int(n)
    if not n.startswith("SIG"):
        n = "SIG" + n
    # The SIG* names of _signal are the members of signal.Signals; SIG_DFL,
    # SIG_IGN and SIG_BLOCK & co. are no signals.
    number = None if n.startswith("SIG_") else getattr(signal, n, None)
    if number is None:
        raise UsageError("invalid signal: %s" % name,
                         hint="a name like TERM, SIGKILL or a number")
    return number


def wait_exited(paths, cid, timeout):
    """Poll the record until the container is no longer running (the
    supervisor writes the exit after tearing the container down)."""
    from ..container import state
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            st = state.refresh(paths, cid)
        except NotFound:
            return None
        if not state.is_running(st):
            return st
        if time.monotonic() >= deadline:
            return st
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def send(st, signum):
    pid = st.get("Pid")
    from ..container import state
    if not pid or not state.alive(pid, st.get("PidStart")):
        return False
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def stop(paths, cid, timeout=None, signum=None):
    """Docker's stop: StopSignal, wait, SIGKILL.  Returns the final record."""
    from ..container import state
    st = state.refresh(paths, cid)
    if not state.is_running(st):
        return st
    st = state.update_state(paths, cid, StopRequested=True)
    if timeout is None:
        timeout = st.get("StopTimeout", 10)
    signum = signum or signal_number(st.get("StopSignal") or "TERM")
    if st.get("Status") == "paused":
        _thaw_quietly(paths, cid)
    _event(paths, cid, st, "kill", signal=signum)
    send(st, signum)
    final = wait_exited(paths, cid, max(timeout, 0))
    if final is not None and state.is_running(final):
        _event(paths, cid, st, "kill", signal=int(signal.SIGKILL))
        send(final, signal.SIGKILL)
        final = wait_exited(paths, cid, 30)
    _event(paths, cid, st, "stop")
    return final


def _event(paths, cid, record, action, **extra):
    from .. import events
    events.container(paths, cid, record, action, **extra)


def _thaw_quietly(paths, cid):
    try:
        from ..container import state
        st = state.read_state(paths, cid)
        container_cgroup(paths, cid, st, "unpause").thaw()
    except Exception:      # noqa: BLE001 - best effort before a kill
        pass


# ---------------------------------------------------------------------------
def cmd_stop(args, paths):
    signum = signal_number(args.signal) if args.signal else None

    def action(ref):
        cid, _ = load(paths, ref)
        stop(paths, cid, args.time, signum)
        return ref
    return each(args, action)


def cmd_kill(args, paths):
    signum = signal_number(args.signal)
    from ..container import state

    def action(ref):
        cid, st = load(paths, ref)
        if not state.is_running(st):
            raise Conflict("cannot kill container: %s: container %s is not running"
                           % (ref, cid[:12]), exit_code=1)
        if signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            state.update_state(paths, cid, StopRequested=True)
        _event(paths, cid, st, "kill", signal=int(signum))
        send(st, signum)
        if signum == signal.SIGKILL:
            wait_exited(paths, cid, 10)
        return ref
    return each(args, action)


def cmd_rm(args, paths):
    from ..container import state

    def action(ref):
        cid = state.resolve(paths, ref)
        st = state.refresh(paths, cid, damaged_ok=True)
        if st.get("Damaged"):
            state.kill_supervisor_of(paths, cid)
        if state.is_running(st):
            if not args.force:
                raise Conflict(
                    "cannot remove container \"%s\": container is running: stop "
                    "the container before removing or force remove" % ref,
                    hint="sandbox stop %s, or sandbox rm -f %s" % (ref, ref),
                    exit_code=1)
            state.update_state(paths, cid, StopRequested=True)
            _event(paths, cid, st, "kill", signal=int(signal.SIGKILL))
            send(st, signal.SIGKILL)
            wait_exited(paths, cid, 30)
        remove(paths, cid, st, volumes=args.volumes)
        return ref
    return each(args, action)


def remove(paths, cid, st, volumes=False):
    from ..container import state
    state.release_name(paths, st.get("Name", ""), cid)
    state.remove_tree(paths, cid)
    _event(paths, cid, st, "destroy")
    if volumes:
        try:
            from ..container import volumes as vol
            vol.remove_anonymous(paths, st)
        except ImportError:
            pass


WAIT_CONDITIONS = ("stopped", "exited", "running", "paused", "healthy", "unhealthy",
                   "created")


def _reached(paths, st, conditions):
    """Whether the container (record ``st``) is in one of ``conditions``
    (wait --condition)."""
    from ..container import health, state
    status = st.get("Status")
    for c in conditions:
        if c in ("stopped", "exited") and state.stopped(st):
            return True
        if c in ("running", "paused", "created") and status == c:
            return True
        if c in ("healthy", "unhealthy") and state.is_running(st) and \
                health.status_of(paths, st) == c:
            return True
    return False


def cmd_wait(args, paths):
    from ..container import state
    conditions = list(args.condition)
    for c in conditions:
        if c not in WAIT_CONDITIONS:
            raise UsageError("invalid condition %r" % c, hint="|".join(WAIT_CONDITIONS))
    if conditions and set(conditions) - {"stopped", "exited"}:
        from ..container.health import parse_duration
        text = args.interval.strip()
        interval = int(text) / 1e3 if text.isdigit() else \
            parse_duration(text, "--interval") / 1e9     # (a bare number: ms, as podman)
        return each(args, lambda ref: _wait_for(paths, ref, conditions, interval))

    def action(ref):
        cid, st = load(paths, ref)
        delay = 0.01
        while not state.stopped(st):
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
            try:
                st = state.refresh(paths, cid)
            except NotFound:
                raise NotFound("No such container: %s" % ref) from None
        return str(st.get("ExitCode", 0))
    return each(args, action)


def _wait_for(paths, ref, conditions, interval):
    """Until the container is in one of ``conditions`` (a state that is not
    an exit); prints -1, as podman's wait does then.  A container that
    stops for good first (or is removed) cannot get there: an error."""
    from ..container import state
    cid, st = load(paths, ref)
    while not _reached(paths, st, conditions):
        if state.stopped(st) and \
                not {"stopped", "exited"} & set(conditions):
            raise Conflict("container %s exited (%d) before it was %s"
                           % (ref, st.get("ExitCode", 0), " or ".join(conditions)),
                           exit_code=1)
        time.sleep(max(interval, 0.01))
        try:
            st = state.refresh(paths, cid)
        except NotFound:
            raise NotFound("No such container: %s" % ref) from None
    if {"stopped", "exited"} & set(conditions) and not state.is_running(st):
        return str(st.get("ExitCode", 0))
    return "-1"


def cmd_start(args, paths):
    from ..container import state
    if args.attach and len(args.containers) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")
    keys = None
    if args.attach:
        from ..container import attach
        if args.interactive:
            keys = attach.parse_detach_keys(args.detach_keys)   # refused before the start
    from ..container.logconfig import of as log_config
    box = {}

    def action(ref):
        cid, st = load(paths, ref)
        if state.is_running(st):
            return ref
        def connect():
            box["conn"] = attach.connect(attach.socket_path(paths, cid))
        # Attached before the start (the command waits for us): none of
        # its output is missed.
        first = args.attach and (args.interactive or log_config(st)["Type"] == "none")
        try:
            start(paths, cid, st, connect if first else None)
        except BaseException:
            if "conn" in box:
                box.pop("conn").close()
            raise
        return None if args.attach else ref
    code = each(args, action)
    if code or not args.attach:
        return code
    cid, st = load(paths, args.containers[0])
    if args.interactive or log_config(st)["Type"] == "none":
        # stdin goes through the supervisor's attach socket (and the output
        # of a container that keeps no log: --log-driver none)
        try:
            code = attach.attach(attach.socket_path(paths, cid), stdin=args.interactive,
                                 tty=bool(st.get("Tty")), detach_keys=keys,
                                 conn=box.pop("conn", None))
        except (FileNotFoundError, ConnectionRefusedError):
            code = None
        if code == attach.DETACHED:
            return 0
        return code if code is not None else state.refresh(paths, cid).get("ExitCode", 0)
    # Without stdin: the log from its start, then until the exit (no output
    # can be missed between the start and the attach).
    from .containers import follow_logs
    return follow_logs(paths, cid, tail=None, since=None, until=None,
                       timestamps=False, follow=True, return_exit_code=True)


def start(paths, cid, st, on_listening=None):
    """Start an existing container under a new supervisor (attached first:
    ``on_listening``, see monitor.start_detached)."""
    from ..container import monitor, state
    from ..container.runtime import Launch
    from ..fsutil import read_json
    from ..image.store import Store
    from ..userns import current_id_map
    if st.get("Emulated"):
        from ..container import emulation
        emulation.prepare(st["Emulated"])   # (its keeper may be gone since)
    spec = read_json(os.path.join(paths.container(cid), "config.json"))
    store = Store(paths)
    from ..container.rootfs import with_mountpoints
    layers = with_mountpoints(paths, store.layer_dirs(st["Image"]))
    launch = Launch(spec, paths.container(cid), layers, st["Driver"],
                    current_id_map(), autoremove=st.get("AutoRemove", False))
    state.update_state(paths, cid, StopRequested=False)
    container = {"id": cid, "name": st["Name"], "record": st}
    monitor.start_detached(paths, container, launch,
                           {"restart": st.get("RestartPolicy") or {"Name": "no"}},
                           on_listening=on_listening)


def cmd_attach(args, paths):
    from ..container import attach, state
    cid, st = load(paths, args.container)
    if not state.is_running(st):
        raise Conflict("you cannot attach to a stopped container, start it first",
                       exit_code=1)
    restore = lambda: None          # noqa: E731
    if args.sig_proxy == "true" and not st.get("Tty") and st.get("Pid"):
        from ..container.runtime import forward_signals
        restore = forward_signals(st["Pid"])
    keys = attach.parse_detach_keys(args.detach_keys)      # refused before we attach
    try:
        code = attach.attach(attach.socket_path(paths, cid),
                             stdin=st.get("OpenStdin") and not args.no_stdin,
                             tty=bool(st.get("Tty")), detach_keys=keys)
    except (FileNotFoundError, ConnectionRefusedError):
        raise SandboxError("container %s has no attach socket (its supervisor is "
                           "gone)" % args.container, exit_code=1) from None
    finally:
        restore()
    if code == attach.DETACHED:
        return 0                    # the container runs on
    if code is None:
        code = state.refresh(paths, cid).get("ExitCode", 0)
    return code


def cmd_restart(args, paths):
    signum = signal_number(args.signal) if args.signal else None

    def action(ref):
        cid, _ = load(paths, ref)
        st = stop(paths, cid, args.time, signum)
        start(paths, cid, st)
        _event(paths, cid, st, "restart")
        return ref
    return each(args, action)


def cmd_rename(args, paths):
    from ..container import state
    cid, st = load(paths, args.container)
    new = args.new_name.lstrip("/")
    if not state.valid_name(new):
        raise UsageError("invalid container name %r" % new,
                         hint="only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    try:
        state.reserve_name(paths, new, cid)
    except Conflict as exc:
        exc.exit_code = 1       # Docker's for the daemon's errors (run's: 125)
        raise
    renamed = state.update_state(paths, cid, Name=new)
    state.release_name(paths, st["Name"], cid)
    _event(paths, cid, renamed, "rename", oldName="/" + st["Name"])
    return 0


def container_cgroup(paths, cid, st, verb):
    """The container's cgroup, or an error that says why there is none."""
    from .. import cgroups
    if not st.get("Cgroup"):
        ok, reason, hint = cgroups.availability()
        raise SandboxError(
            "%s needs the container's own cgroup%s, and this container has "
            "none: %s" % (verb, " (the cgroup v2 freezer)" if "pause" in verb else "",
                          reason or "it was created without one"),
            hint=hint or "create it with --cgroups=required to be sure",
            exit_code=1)
    return cgroups.Cgroup.from_dict(st["Cgroup"])


def cmd_pause(args, paths):
    from ..container import state

    def action(ref):
        cid, st = load(paths, ref)
        if not state.is_running(st):
            raise Conflict("container %s is not running" % ref, exit_code=1)
        cg = container_cgroup(paths, cid, st, args.verb)
        if args.verb == "pause":
            cg.freeze()
            state.update_state(paths, cid, Status="paused")
        else:
            cg.thaw()
            state.update_state(paths, cid, Status="running")
        _event(paths, cid, st, args.verb)
        return ref
    return each(args, action)
