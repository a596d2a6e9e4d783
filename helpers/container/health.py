"""Health checks: Docker's HEALTHCHECK and `run --health-*`, daemonless.

The check is the image's Healthcheck (a Dockerfile's HEALTHCHECK) with the
run flags on top, kept in the record as "Healthcheck" (durations in ns, as
Docker's config).  While the container runs, a small loop process, a child
of its supervisor that dies with it (PR_SET_PDEATHSIG), sleeps and runs
the probe: `sandbox __health ROOT RUNROOT ID STARTEDAT`, which runs the
check in the container as `exec` does (its namespaces, cgroup, user,
environment), updates the container's health.json and prints how many
milliseconds to sleep before the next probe (nothing: the container is
gone or restarted, and the loop ends).  The loop is the native monitor's
`health` subcommand (a few hundred kB), or a forked Python process where
there is no native monitor.

Docker's rules (daemon/health.go): the status is "starting" until a probe
succeeds ("healthy") or `Retries` probes in a row fail ("unhealthy");
failures within StartPeriod do not count while it is still starting;
probes come every Interval (every StartInterval within StartPeriod); a
probe that runs longer than Timeout fails with exit code -1; the last 5
results are kept, each output cut to 4096 bytes.
"""

import os
import re
import sys
import time

from .. import fsutil
from ..errors import UsageError

SECOND = 1_000_000_000
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0,
            "StartInterval": 5 * SECOND, "Retries": 3}
MAX_LOG = 5
MAX_OUTPUT = 4096
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 1_000_000, "s": SECOND,
          "m": 60 * SECOND, "h": 3600 * SECOND}


def parse_duration(text, what="duration"):
    """A Go duration ("30s", "1m30s", "500ms", "0") -> nanoseconds."""
    text = text.strip()
    if text == "0":
        return 0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError("invalid %s %r" % (what, text),
                         hint="a duration such as 30s, 1m30s or 500ms")
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


def go_duration(ns):
    """Nanoseconds as Go prints a time.Duration ("30s", "1m30s", "500ms")."""
    if ns % SECOND:
        return "%gms" % (ns / 1e6) if ns < SECOND else "%gs" % (ns / SECOND)
    s = ns // SECOND
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    out = ("%dh" % h if h else "") + ("%dm" % m if h or m else "") + "%ds" % s
    return out


def effective(image_hc, args):
    """The check a container gets: the image's with the run flags on top;
    None without one (or with --no-healthcheck, or the image's NONE)."""
    hc = dict(image_hc or {})
    if args.no_healthcheck:
        if args.health_cmd:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return None
    if args.health_cmd:
        hc["Test"] = ["CMD-SHELL", args.health_cmd]
    for flag, key in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                      ("health_start_period", "StartPeriod"),
                      ("health_start_interval", "StartInterval")):
        value = getattr(args, flag)
        if value is not None:
            hc[key] = parse_duration(value, "--" + flag.replace("_", "-"))
    if args.health_retries is not None:
        if args.health_retries < 0:
            raise UsageError("--health-retries cannot be negative")
        hc["Retries"] = args.health_retries
    test = hc.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise UsageError("invalid health check test %r" % (test,))
    return hc


def from_dockerfile(rest):
    """HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D]
    [--start-interval=D] [--retries=N] CMD command | NONE -> the config's
    Healthcheck."""
    from ..image import archive
    m = re.match(r"((?:--\S+\s+)*)(.*)$", rest.strip(), re.S)
    hc = {}
    flags = {"--interval": "Interval", "--timeout": "Timeout",
             "--start-period": "StartPeriod", "--start-interval": "StartInterval"}
    for word in m.group(1).split():
        flag, _, value = word.partition("=")
        if flag in flags:
            hc[flags[flag]] = parse_duration(value, "HEALTHCHECK " + flag)
        elif flag == "--retries" and value.isdigit():
            hc["Retries"] = int(value)
        else:
            raise UsageError("HEALTHCHECK: unknown flag %s" % word)
    kind, _, command = m.group(2).partition(" ")
    command = command.strip()
    if kind.upper() == "NONE" and not command and not hc:
        return {"Test": ["NONE"]}
    if kind.upper() != "CMD" or not command:
        raise UsageError("HEALTHCHECK takes CMD command or NONE",
                         hint="e.g. HEALTHCHECK --interval=5s CMD wget -q -O- localhost")
    form = archive.json_list(command)
    hc["Test"] = ["CMD"] + form if form is not None else ["CMD-SHELL", command]
    return hc


def argv_of(hc, shell=None):
    test = hc["Test"]
    if test[0] == "CMD-SHELL":
        return list(shell or ["/bin/sh", "-c"]) + [test[1]]
    return list(test[1:])


def setting(hc, key):
    return hc.get(key) or DEFAULTS[key]


# -- the state: containers/<id>/health.json ----------------------------------
def path(paths, cid):
    return os.path.join(paths.container(cid), "health.json")


def read(paths, cid):
    try:
        return fsutil.read_json(path(paths, cid))
    except (OSError, ValueError):
        return None


def reset(paths, cid):
    fsutil.write_json(path(paths, cid), {"Status": "starting", "FailingStreak": 0,
                                         "Log": []}, durable=False)


def ps_suffix(paths, st):
    """" (healthy)", " (unhealthy)", " (health: starting)" for `ps`."""
    if not st.get("Healthcheck"):
        return ""
    h = read(paths, st["Id"]) or {}
    status = h.get("Status", "starting")
    return " (health: starting)" if status == "starting" else " (%s)" % status


def status_of(paths, st):
    """ps's health=... filter value: starting, healthy, unhealthy or none."""
    if not st.get("Healthcheck"):
        return "none"
    return (read(paths, st["Id"]) or {}).get("Status", "starting")


# -- the loop ---------------------------------------------------------------
def spawn(paths, cid, record, native=None):
    """Start the probe loop of a container that has just started (a child of
    the calling supervisor, which it never outlives).  ``native``: an fd on
    the native monitor (the frozen binary's copy vanishes), else its path
    is looked up."""
    hc = record.get("Healthcheck")
    if not hc:
        return None
    from .. import linux
    from .monitor import _self_command, native_path
    reset(paths, cid)
    st = fsutil.read_json(os.path.join(paths.container(cid), "state.json"))
    first = _next_delay(hc, st.get("StartedAt"))
    probe = _self_command() + ["__health", paths.root, paths.runroot, cid,
                               st.get("StartedAt") or ""]
    exe = native if native is not None else native_path()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, 9)
        os.setsid()         # (not in the terminal's process group: no Ctrl-C)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        # Nothing of the supervisor's: a copy of a pipe's write end would
        # keep its reader from ever seeing EOF.
        top = os.sysconf("SC_OPEN_MAX")
        if isinstance(exe, int):
            os.closerange(3, exe)
            os.closerange(exe + 1, top)
        else:
            os.closerange(3, top)
        if exe is not None:
            env = dict(os.environ)
            if getattr(sys, "frozen", False):
                env["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
            try:
                os.execve(exe, ["sandbox-monitor", "health", str(first)] + probe, env)
            except OSError:
                pass
        _python_loop(paths, cid, st.get("StartedAt") or "", first)
    finally:
        os._exit(0)


def stop(pid):
    """End the loop of a container that has ended (and reap it)."""
    if not pid:
        return
    import signal
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _python_loop(paths, cid, started_at, delay):
    """The loop without a native monitor: this process probes itself."""
    from .. import collect_garbage_from_now_on, linux
    linux.set_process_name("sandbox-health")
    collect_garbage_from_now_on()
    while delay:
        time.sleep(delay / 1000)
        delay = probe_once(paths, cid, started_at)


def _next_delay(hc, started_at):
    """Milliseconds until the next probe."""
    from ..formatting import parse_time
    start_period = hc.get("StartPeriod") or 0
    interval = setting(hc, "Interval")
    if start_period:
        t = parse_time(started_at)
        if t is not None and (time.time() - t.timestamp()) * SECOND < start_period:
            interval = setting(hc, "StartInterval")
    return max(1, interval // 1_000_000)


# -- one probe ----------------------------------------------------------------
def main(argv):
    """`sandbox __health ROOT RUNROOT ID STARTEDAT` (the loop's probe):
    prints the next delay in ms, or nothing to end the loop."""
    from ..paths import Paths
    root, runroot, cid, started_at = argv
    delay = probe_once(Paths(root, runroot), cid, started_at)
    if delay:
        sys.stdout.write("%d\n" % delay)
    return 0


def probe_once(paths, cid, started_at):
    """Run the check once, record it; the next delay (ms), or 0 when the
    container is no longer the one this loop was started for."""
    from . import state
    from ..errors import SandboxError
    try:
        st = state.refresh(paths, cid)
    except SandboxError:
        return 0
    hc = st.get("Healthcheck")
    if not hc or not state.is_running(st) or st.get("StartedAt") != started_at:
        return 0
    if st.get("Status") != "paused":
        start = state.now_iso()
        code, output = _run_check(paths, cid, st, hc)
        _record(paths, cid, hc, started_at, {
            "Start": start, "End": state.now_iso(), "ExitCode": code, "Output": output})
    return _next_delay(hc, started_at)


def _run_check(paths, cid, st, hc):
    """(exit code, output) of the check run in the container; -1 and
    Docker's message when it runs longer than the timeout."""
    import select
    import signal
    from ..userns import current_id_map
    from . import exec as cexec, runtime
    spec, process, cgroup = cexec.starting_point(paths, cid, st)
    process["args"] = argv_of(hc, st.get("Shell"))
    process["terminal"] = False
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            fd = os.open(os.devnull, os.O_RDONLY)
            os.dup2(fd, 0)
            code = cexec.run(st["Pid"], process, spec.get("linux", {}),
                             runtime.user_map_of(spec, current_id_map()),
                             cgroup=cgroup)
        except BaseException as exc:       # noqa: BLE001 - its message is the output
            os.write(2, (getattr(exc, "message", None) or str(exc)).encode() + b"\n")
        finally:
            os._exit(code if isinstance(code, int) and 0 <= code < 256 else 125)
    os.close(out_w)
    timeout = setting(hc, "Timeout")
    deadline = time.monotonic() + timeout / SECOND
    chunks, size = [], 0
    timed_out = False
    status = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        # Until EOF, or until the check has ended (a process it left in the
        # background may hold the pipe open): its output so far is it.
        ready, _, _ = select.select([out_r], [], [], min(left, 0.1))
        if not ready:
            if status is not None:
                break
            done, wstatus = os.waitpid(pid, os.WNOHANG)
            if done:
                status = wstatus
            continue
        data = os.read(out_r, 65536)
        if not data:
            break
        if size < MAX_OUTPUT:
            chunks.append(data[:MAX_OUTPUT - size])
            size += len(chunks[-1])
    os.close(out_r)
    if timed_out and status is None:
        # The exec forwards SIGTERM to the check's process; then it goes.
        os.kill(pid, signal.SIGTERM)
        for _ in range(20):
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        return -1, "Health check exceeded timeout (%s)" % go_duration(timeout)
    if status is None:
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return (code if code >= 0 else 128 - code), b"".join(chunks).decode("utf-8", "replace")


def _record(paths, cid, hc, started_at, result):
    """Docker's handleProbeResult, on health.json."""
    from ..formatting import parse_time
    h = read(paths, cid) or {"Status": "starting", "FailingStreak": 0, "Log": []}
    before = h.get("Status")
    h["Log"] = (h.get("Log") or [])[-(MAX_LOG - 1):] + [result]
    if result["ExitCode"] == 0:
        h["FailingStreak"] = 0
        h["Status"] = "healthy"
    else:
        t = parse_time(started_at)
        in_start = t is not None and hc.get("StartPeriod") and \
            (time.time() - t.timestamp()) * SECOND < hc["StartPeriod"]
        if not (in_start and h.get("Status") == "starting"):
            h["FailingStreak"] = h.get("FailingStreak", 0) + 1
            if h["FailingStreak"] >= setting(hc, "Retries"):
                h["Status"] = "unhealthy"
    fsutil.write_json(path(paths, cid), h, durable=False)
    if h["Status"] != before:
        # Docker's event of a change (events.py)
        from .. import events
        from ..errors import SandboxError
        from . import state
        try:
            record = state.read_state(paths, cid)
        except SandboxError:
            return
        events.container(paths, cid, record, "health_status: " + h["Status"])
