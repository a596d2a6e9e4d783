"""Supervising a running container: its stdio, Docker's json-file log, its
exit, its restart policy.

Two ways in:
- ``run_foreground``: `sandbox run` without -d.  The CLI process itself is
  the supervisor: it copies the container's output to the terminal and to
  the log, forwards signals, records the exit.
- ``start_detached``: `run -d` and `start`.  A supervisor process (what
  conmon is to podman) is forked from the CLI, leaves its session (setsid),
  reports "started" or the error back through a pipe, and lives on: it
  writes the log, records the exit, restarts per policy and cleans up.

There is no daemon: every other command reads state.json, and decides
whether a "running" container really runs from the supervisor's pid *and*
start time (state.refresh), so a killed supervisor or a reboot never leaves
a container "running" forever.
"""

import errno
import os
import select
import sys
# _signal is the C module under `signal`: the same functions and int
# constants, without the wrapper's enum import (milliseconds of start).
import _signal as signal
import time

from .. import collect_garbage_from_now_on, events, fsutil, jsonfast, linux, network
from ..errors import SandboxError
from . import state

MAX_PARTIAL = 16 * 1024     # Docker's json-file splits lines longer than this


def log_path(paths, cid):
    return os.path.join(paths.container(cid), cid + "-json.log")


def timestamp(ns=None):
    """RFC 3339 with nanoseconds, UTC, as Docker writes in its logs."""
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%09dZ" % frac


class LogWriter:
    """Docker's json-file format: one JSON object a line with log, stream
    and time; a line is an entry, a partial line is kept until its newline
    (or MAX_PARTIAL bytes, or the end).  ``limits``: (max_size, max_files)
    of --log-opt (logconfig.py), rotated as Docker's json-file does."""

    def __init__(self, path, limits=(0, 1), attrs=None):
        """``attrs``: Docker's "attrs" of each line (logconfig.attrs)."""
        self.path = path
        self.max_size, self.max_files = limits
        self.attrs = attrs or None
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                          0o640)
        self.partial = {"stdout": b"", "stderr": b""}

    def write(self, stream, data):
        buf = self.partial[stream] + data
        out = []
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl + 1], buf[nl + 1:]
            while len(line) > MAX_PARTIAL:      # a long line, even when whole
                out.append(self._entry(stream, line[:MAX_PARTIAL]))
                line = line[MAX_PARTIAL:]
            out.append(self._entry(stream, line))
        while len(buf) >= MAX_PARTIAL:
            out.append(self._entry(stream, buf[:MAX_PARTIAL]))
            buf = buf[MAX_PARTIAL:]
        self.partial[stream] = buf
        if out:
            self._append(b"".join(out))

    def _append(self, data):
        """Whole records only: a full disk (or quota) stops a write part
        way, and the file is cut back to the last whole line written (half
        a record would run into the next one).  The lines that did not fit
        are lost, as Docker's json-file loses them; the container goes on.
        (native/monitor.c's log_append does the same.)"""
        if self.max_size and os.fstat(self.fd).st_size >= self.max_size:
            from .logconfig import rotate
            try:
                self.fd = rotate(self.fd, self.path, self.max_files)
            except OSError:
                pass        # (renames refused) the live file grows on
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise
            cut = done - (data.rfind(b"\n", 0, done) + 1)
            if cut:
                try:
                    os.ftruncate(self.fd, os.fstat(self.fd).st_size - cut)
                except OSError:
                    pass

    def _entry(self, stream, chunk):
        entry = {"log": chunk.decode("utf-8", "replace"), "stream": stream}
        if self.attrs:
            entry["attrs"] = self.attrs         # (Docker's order: before time)
        entry["time"] = timestamp()
        return (jsonfast.dumps(entry,
                               separators=(",", ":")) + "\n").encode()

    def close(self):
        rest = [self._entry(s, b) for s, b in self.partial.items() if b]
        if rest:
            self._append(b"".join(rest))
        os.close(self.fd)


class NoLog:
    """--log-driver none: the output is not kept."""

    def write(self, stream, data):
        pass

    def close(self):
        pass


def open_log(paths, container):
    """The container's log writer, as its LogConfig says."""
    from .logconfig import writer_limits
    limits = writer_limits(container["record"])
    if limits is None:
        return NoLog()
    return LogWriter(log_path(paths, container["id"]), limits,
                     container["record"].get("LogAttrs"))


def pump(sources, log, tee=None):
    """Copy the container's output until every writer has closed it.
    ``sources``: {fd: "stdout"|"stderr"}; ``tee``: {"stdout": fd, ...} to
    also copy to (the CLI's own stdout/stderr); a tee that fails (a closed
    pipe) is dropped, the log goes on."""
    tee = dict(tee or {})

    def output(stream, data):
        log.write(stream, data)
        out = tee.get(stream)
        if out is not None:
            try:
                fsutil.write_all(out, data)
            except OSError:
                tee.pop(stream, None)
    drain_sources(sources, output)


def drain_sources(sources, on_output, poller=None, on_other=None):
    """Read ``sources`` ({fd: stream name}) until each is at EOF, calling
    ``on_output(stream, data)``.  ``poller``: one with more fds registered
    (they go to ``on_other(fd)``, which may register and unregister)."""
    poller = poller or select.poll()
    for fd in sources:
        poller.register(fd, select.POLLIN)
    open_fds = set(sources)
    while open_fds:
        try:
            ready = poller.poll()
        except InterruptedError:
            continue
        for fd, _ in ready:
            if fd not in sources:
                on_other(fd)
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            on_output(sources[fd], data)


def _started(paths, cid, monitor_pid):
    def record(pid):
        st = state.update_state(paths, cid, durable=False, Status="running", Pid=pid,
                                PidStart=state.proc_start_time(pid),
                                MonitorPid=monitor_pid,
                                MonitorStart=state.proc_start_time(monitor_pid),
                                StartedAt=state.now_iso(), FinishedAt=None,
                                ExitCode=0, Error="")
        # The network helper joins PID 1's namespace now, before the exec.
        network.attach(paths, cid, pid)
        events.container(paths, cid, st, "start")
    return record


def _after_a_client(on_started, server, ready_w):
    """on_started, then wait (PID 1 waits at its exec meanwhile) until the
    attaching CLI's connection is pending on the socket; the server takes
    it before it reads any output (Server.serve, native/monitor.c).  A CLI
    that dies first ends the wait at once: it held the read end of the
    ready pipe (``ready_w``'s), which then reports an error."""
    def record(pid):
        on_started(pid)
        poller = select.poll()
        poller.register(server.fd, select.POLLIN)
        poller.register(ready_w, 0)         # POLLERR: no reader left
        try:
            poller.poll(int(ATTACH_WAIT * 1000))
        except InterruptedError:
            pass
    return record


def record_exit(paths, cid, code, error="", oom=False):
    try:
        st = state.update_state(paths, cid, Status="exited", Pid=0, ExitCode=code,
                                FinishedAt=state.now_iso(), Error=error,
                                OOMKilled=bool(oom))
    except SandboxError:
        st = None      # removed meanwhile (rm -f)
    network.release(paths, cid)
    if st is not None:
        _died(paths, cid, st, code, oom)


def _died(paths, cid, record, code, oom):
    """The events of an end (events.py): oom first if so, then die."""
    if oom:
        events.container(paths, cid, record, "oom")
    events.container(paths, cid, record, "die", exitCode=code)


class CgroupHook:
    """The container's cgroup, made once C exists (Starter.start's
    on_forked): C goes into its reaper leaf, and G, told the path in the
    Launch, into the container's leaf before it makes its cgroup namespace.
    Remembers an fd on memory.events, read when C has not left its marker
    (runtime._note_oom): the scope vanishes with its last process."""

    def __init__(self, paths, cid, record, launch=None):
        self.paths, self.cid = paths, cid
        self.launch = launch
        self.wanted = bool(record.get("UseCgroup"))
        self.host_config = record.get("HostConfigLimits") or {}
        self.cgroup = None
        self.events_fd = None

    def __call__(self, cpid):
        if not self.wanted:
            return
        from .. import cgroups
        from .runtime import OOM_MARKER
        limits = cgroups.Limits.from_host_config(self.host_config)
        self.cgroup = cgroups.create(self.cid, cpid, limits)
        marker = os.path.join(self.paths.container(self.cid), OOM_MARKER)
        if os.path.exists(marker):
            os.unlink(marker)                # from an earlier run
        if self.launch is not None:
            self.launch.cgroup_path = self.cgroup.path
        try:
            self.events_fd = self.cgroup.open_events()
        except OSError:
            self.events_fd = None
        state.update_state(self.paths, self.cid, durable=False,
                           Cgroup=self.cgroup.to_dict())

    def oom_killed(self):
        """After C has ended: its marker (runtime._note_oom), or what the
        events fd still says."""
        if self.cgroup is None:
            return False
        from .runtime import OOM_MARKER
        if os.path.exists(os.path.join(self.paths.container(self.cid), OOM_MARKER)):
            return True
        try:
            return self.cgroup.oom_killed(self.events_fd)
        except (OSError, ValueError):
            return False

    def close(self):
        if self.events_fd is not None:
            os.close(self.events_fd)
            self.events_fd = None


# ---------------------------------------------------------------------------
# Foreground
# ---------------------------------------------------------------------------
def run_foreground(paths, container, launch, starter, autoremove):
    """Start ``launch`` with ``starter`` and supervise it from this process;
    returns the exit code."""
    from . import runtime
    cid = container["id"]
    log = open_log(paths, container)
    cg = CgroupHook(paths, cid, container["record"], launch)
    try:
        network.prepare(paths, launch)
        gpid = starter.start(launch, on_started=_started(paths, cid, os.getpid()),
                             on_forked=cg,
                             on_netns=lambda cpid: network.spawn_early(
                                 paths, cid, cpid, starter.route_watch))
    except SandboxError as exc:
        log.close()
        cg.close()
        finish(paths, container, autoremove, exc.exit_code, exc.message)
        raise
    collect_garbage_from_now_on()
    checker = _health_loop(paths, container)
    restore = runtime.forward_signals(gpid)
    try:
        if starter.master is not None:
            from .terminal import relay
            relay(starter.master, forward_stdin=launch.stdin,
                  on_output=lambda data: log.write("stdout", data))
        else:
            tee = {"stdout": 1, "stderr": 2}
            if container.get("attach"):         # -a: only those streams
                tee = {s: fd for s, fd in tee.items() if s in container["attach"]}
            pump(container["sources"], log, tee=tee)
        code = starter.wait()
        oom = cg.oom_killed()
    finally:
        restore()
        log.close()
        cg.close()
        _end_health_loop(checker)
    finish(paths, container, autoremove, code, oom=oom)
    return code


def _health_loop(paths, container, native=None):
    """The health check's loop (health.py) of a container that has just
    started, if it has a check: its pid."""
    if not container["record"].get("Healthcheck"):
        return None
    from . import health
    return health.spawn(paths, container["id"], container["record"], native)


def _end_health_loop(pid):
    if pid:
        from . import health
        health.stop(pid)


def finish(paths, container, autoremove, code, error="", oom=False):
    """After the container ended: record it, or remove it (--rm)."""
    cid = container["id"]
    network.release(paths, cid)
    if autoremove:
        # Docker's --rm also removes the container's anonymous volumes.
        record = container.get("record") or {}
        if record.get("Volumes"):
            from . import volumes
            volumes.remove_anonymous(paths, record)
        state.release_name(paths, container["name"], cid)
        if os.path.exists(paths.container(cid)):
            state.remove_tree(paths, cid)
        _died(paths, cid, record, code, oom)
        events.container(paths, cid, record, "destroy")
        return
    record_exit(paths, cid, code, error, oom)


# ---------------------------------------------------------------------------
# Detached
# ---------------------------------------------------------------------------
def preload(record=None):
    """Import, now, everything the supervisor may need later.  A one-file
    binary's bootloader deletes the unpacked modules when the first process
    exits; the supervisor outlives it and must never import again.  Only
    the frozen binary needs this: from a checkout the supervisor imports
    what it uses when it uses it, which keeps `run -d` quicker and the idle
    supervisor smaller (every module it holds is memory)."""
    import json          # noqa: F401
    import pickle        # noqa: F401
    import struct        # noqa: F401
    import subprocess    # noqa: F401  (fuse-overlayfs via helpers.proc)
    import shlex         # noqa: F401
    import socket        # noqa: F401
    import traceback     # noqa: F401
    from .. import linux, proc, userns    # noqa: F401
    linux.preload()
    network.preload(record)
    from .. import cgroups         # noqa: F401
    from . import attach, logconfig, rootfs, runtime, security, terminal, volumes   # noqa: F401
    if (record or {}).get("Ulimits"):
        import resource  # noqa: F401  (runtime._set_rlimits, at each restart)
    if (record or {}).get("Tty"):
        from . import ptys
        ptys.preload()   # (Starter._take_terminal, Server._add, at each start)
    if (record or {}).get("Healthcheck"):
        # The health loop probes from this process (health._python_loop).
        import select    # noqa: F401
        from .. import formatting          # noqa: F401
        from . import exec, health, state  # noqa: F401


ATTACH_WAIT = 30.0      # seconds the first round waits for its attaching CLI


def start_detached(paths, container, launch, options, on_listening=None):
    """Fork the supervisor; return PID 1's host pid once the command runs,
    or raise the reason it could not start.  ``on_listening()``: attach
    before the start, as Docker does (`run -it`, `start -a`): called once
    the attach socket listens, it connects; the command is exec'd only
    then (or after ATTACH_WAIT seconds without a client), so the client
    misses none of its output."""
    policy = options.get("restart", {"Name": "no", "MaximumRetryCount": 0})
    # Opened here, while the frozen binary's unpacked copy surely exists.
    native = open_native()
    if getattr(sys, "frozen", False) and native is None:
        # The supervisor stays Python for the container's life (with the
        # native monitor it is Python again only through a fresh exec).
        preload(container.get("record"))
    winsize = None
    if launch.tty:
        # The CLI's terminal's size becomes the container's pty's.
        from .runtime import terminal_winsize
        winsize = terminal_winsize()
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        code = 0
        try:
            os.setsid()
            nul = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(nul, fd)
            os.close(nul)
            linux.close_inherited_fds()     # the caller's, not ours to keep open
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if on_listening is not None:
                container = dict(container, attach_first=True)
            if winsize:
                container = dict(container, winsize=winsize)
            supervise(paths, container, launch, policy, ready_w, native)
        except BaseException as exc:      # noqa: BLE001
            code = 1
            _supervisor_failed(paths, container, exc, ready_w)
        os._exit(code)
    os.close(ready_w)
    if native is not None:
        os.close(native)
    # Lines, not EOF: the container's processes hold copies of the pipe.
    try:
        reply = _read_line(ready_r)
        if reply == "listening":
            on_listening()
            reply = _read_line(ready_r)
    finally:
        os.close(ready_r)
    if reply.startswith("ok "):
        return int(reply[3:])
    parts = (reply.split("\0") + ["", "", ""])[:3]
    code = int(parts[0]) if parts[0].isdigit() else 125
    raise SandboxError(parts[1] or "the container's supervisor died",
                       hint=parts[2] or None, exit_code=code)


def _read_line(fd):
    """One line of the supervisor's report, read a byte at a time (what
    follows it is not ours to take)."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace").rstrip("\n")


def _retire(fd):
    """Close the ready pipe but keep its fd number on /dev/null: a late
    error report (_supervisor_failed) must not land in a reused fd."""
    nul = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    os.dup2(nul, fd, inheritable=False)
    os.close(nul)


def _supervisor_failed(paths, container, exc, ready_w):
    """An unexpected error in the supervisor: tell the CLI if it still
    waits (the write fails harmlessly once it has its answer), and keep the
    traceback next to the container's log for whoever looks into it."""
    import traceback
    text = "".join(traceback.format_exception(exc))
    msg = "the container's supervisor failed: %s: %s" % (type(exc).__name__, exc)
    if ready_w is not None:
        try:
            os.write(ready_w, ("125\0%s\0see %s\n" % (
                msg.replace("\n", " "), "supervisor.log in the container's directory")).encode())
        except OSError:
            pass
    try:
        with open(os.path.join(paths.container(container["id"]), "supervisor.log"), "a") as f:
            f.write(state.now_iso() + " " + text)
    except OSError:
        pass


def supervise(paths, container, launch, policy, ready_w, native):
    """The supervisor's life: start, log, record, restart, clean up."""
    collect_garbage_from_now_on()
    from .attach import Server, socket_path
    server = Server(socket_path(paths, container["id"]))
    if container.get("attach_first") and ready_w is not None:
        os.write(ready_w, b"listening\n")
    # The restart policy travels with the container (and through resume).
    container = dict(container, policy=policy)
    try:
        _supervise_loop(paths, container, launch, ready_w, server, os.getpid(),
                        native=native)
    finally:
        server.shutdown()


def _supervise_loop(paths, container, launch, ready_w, server, me,
                    restarts=0, delay=0.1, native=None, ended=None):
    """Start the container, supervise it, restart it per its policy
    (container["policy"]).  With ``native`` (an fd on the native monitor)
    this process becomes the monitor once the container runs, and resume()
    comes back here with ``ended``: the exit code of the round it has just
    recorded, for the restart decision."""
    cid = container["id"]
    while True:
        if ended is not None:
            code, ended = ended, None
        else:
            code = _round(paths, container, launch, ready_w, server, me,
                          restarts, delay, native)
            ready_w = None
            if code is None:
                return
        if not _should_restart(paths, cid, container["policy"], code, restarts):
            return
        restarts += 1
        try:
            state.update_state(paths, cid, Status="restarting", RestartCount=restarts)
        except SandboxError:
            return
        time.sleep(delay)
        delay = min(delay * 2, 60)   # Docker's back-off: 100 ms, doubling
        if state.read_state(paths, cid).get("Status") != "restarting":
            return                   # stopped or removed while we slept


def _round(paths, container, launch, ready_w, server, me, restarts, delay, native):
    """One run of the container: its exit code, or None when there is
    nothing more to do (it failed to start for the CLI, or --rm removed it)."""
    from .runtime import Starter, namespace_kinds, native_start_possible
    cid = container["id"]
    stdin_r = stdin_w = None
    if launch.stdin and not launch.tty:
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    stdio = (stdin_r, out_w, err_w) if not launch.tty else (None, None, None)
    # C becomes the native reaper once PID 1 runs (runtime._child_c), and
    # the native monitor gives the server published ports' host sockets.
    # (Not with --pid host: C itself ends the container's other processes
    # then, runtime._kill_namespace.)
    launch.reaper_fd = native if "pid" in namespace_kinds(launch.spec) else None
    # G (runtime._spawn_g) and --init's PID 1 (runtime._native_init); C
    # inherits the fd.
    launch.init_fd = open_native(INIT_NAME)
    launch.direct = native is not None and network.decide_direct(paths, cid,
                                                                 container["record"])
    # C itself is sandbox-init's start mode where it can be (runtime.Starter).
    native_c = launch.init_fd if native_start_possible(launch) else None
    starter = Starter(launch.idmap, tty=launch.tty, stdio=stdio,
                      keep=(stdin_w, out_r, err_r),
                      early_net=network.early_netns(container["record"]),
                      direct=launch.direct, winsize=container.get("winsize"),
                      native=native_c, reaper=None if native_c is None else launch.reaper_fd,
                      nested=launch.nested)
    # C mounts the root filesystem while we open the log and make the
    # cgroup (not fuse-overlayfs: Starter.mount_root_early).
    starter.mount_root_early(launch.driver, launch.layers, launch.cdir, launch.rootfs,
                             launch.autoremove)
    for fd in (stdin_r, out_w, err_w):
        if fd is not None:
            os.close(fd)
    log = open_log(paths, container)
    cg = CgroupHook(paths, cid, container["record"], launch)
    on_started = _started(paths, cid, me)
    if ready_w is not None and container.pop("attach_first", False):
        on_started = _after_a_client(on_started, server, ready_w)
    try:
        network.prepare(paths, launch)
        starter.start(launch, on_started=on_started, on_forked=cg,
                      on_netns=lambda cpid: network.spawn_early(
                          paths, cid, cpid, starter.route_watch))
    except SandboxError as exc:
        _close_init(launch)
        log.close()
        cg.close()
        for fd in (out_r, err_r, stdin_w):
            if fd is not None:
                os.close(fd)
        if ready_w is not None:
            # Cleaned up (its network helper stopped, its ports free)
            # before the CLI hears of the failure and returns.
            try:
                finish(paths, container, launch.autoremove, exc.exit_code,
                       exc.message)
            finally:
                os.write(ready_w, ("%d\0%s\0%s\n" % (
                    exc.exit_code, exc.message.replace("\n", " "),
                    (exc.hint or "").replace("\n", " "))).encode())
                _retire(ready_w)
            return None
        record_exit(paths, cid, exc.exit_code, exc.message)
        return exc.exit_code
    _close_init(launch)
    if ready_w is not None:
        os.write(ready_w, ("ok %d\n" % starter.gpid).encode())
        _retire(ready_w)
    container["health_pid"] = _health_loop(paths, container, native)
    if native is not None:
        if launch.tty:
            sources = (starter.master, starter.master, -1)
        else:
            sources = (-1 if stdin_w is None else stdin_w, out_r, err_r)
        # Returns only if the exec failed: then Python goes on as below.
        _hand_over(paths, container, launch, server, cg, starter, sources,
                   restarts, delay, native)
    if launch.tty:
        server.serve({starter.master: "stdout"}, log, stdin_fd=starter.master,
                     terminal=starter.master)
    else:
        server.serve({out_r: "stdout", err_r: "stderr"}, log, stdin_fd=stdin_w)
    for fd in (out_r, err_r, stdin_w):
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass          # the server closed stdin at its EOF
    code = starter.wait()
    log.close()
    return _ended(paths, container, launch, cg, server, code)


def _close_init(launch):
    """Our copy of the fd on sandbox-init, once G has its own."""
    if launch.init_fd is not None:
        os.close(launch.init_fd)
        launch.init_fd = None


def _ended(paths, container, launch, cg, server, code):
    """The container's process has ended (and its output with it): record
    it, free what it held, tell the attached clients.  Returns the code, or
    None once --rm has removed the container."""
    cid = container["id"]
    oom = cg.oom_killed()
    _end_health_loop(container.pop("health_pid", None))
    network.release(paths, cid)     # its ports are free once it ended
    # ... and its helper, killed without a wait, is reaped now (else a
    # restarting container's supervisor collects a zombie a round).
    from ..network.helper import reap_later
    reap_later(wait=0.5)
    cg.close()
    try:
        if launch.autoremove:
            finish(paths, container, True, code)
            return None
        record_exit(paths, cid, code, oom=oom)
        return code
    finally:
        # Told last: a client that acts on the exit (`attach X; rm X`,
        # `start -a X; ps -a`) finds it recorded, or removed (--rm).
        server.end_clients(code)


# ---------------------------------------------------------------------------
# The native monitor (native/monitor.c): what holds an idle container
# ---------------------------------------------------------------------------
NATIVE_NAME = "sandbox-monitor.6"       # the suffix versions its arguments
INIT_NAME = "sandbox-init.4"            # C, G and --init's PID 1 (native/init.c)


def native_path(name=NATIVE_NAME):
    """The native monitor (or, by ``name``, sandbox-init) built by
    scripts/setup-host or bundled in the frozen binary, or None: then the
    Python supervisor stays for the container's whole life (the Python
    init is PID 1).  $SANDBOX_MONITOR names another monitor, or "python"
    to keep the Python supervisor and init."""
    wanted = os.environ.get("SANDBOX_MONITOR")
    if wanted == "python":
        return None
    if wanted and name == NATIVE_NAME:
        return wanted
    if getattr(sys, "frozen", False):
        base = getattr(sys, "_MEIPASS", "")
    else:
        from ..deps import venv
        base = os.path.join(venv(), "libexec")
    path = os.path.join(base, name)
    return path if os.access(path, os.X_OK) else None


def open_native(name=NATIVE_NAME):
    """An fd on the native monitor (or ``name``), opened now: C, G and this
    process exec it later (fexecve), when the frozen binary's unpacked copy
    may be gone (a version unused for a day is removed when another is
    unpacked) and G is past its pivot."""
    path = native_path(name)
    if path is None:
        return None
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _self_command():
    """The argv that runs this program again (checkout or frozen).  The
    frozen binary's: its front (native/unpack.c, which sets SANDBOX_BINARY),
    which unpacks the program again should its cache have gone while a
    container ran, rather than the unpacked program itself."""
    if getattr(sys, "frozen", False):
        return [os.environ.get("SANDBOX_BINARY") or sys.executable]
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable, "-E", "-s", "-S", os.path.join(here, "sandbox.py")]


def self_argv(paths, *args):
    """The argv of `sandbox ARGS` on this store (its --root and --runroot;
    the storage driver goes along in SANDBOX_STORAGE_DRIVER)."""
    return _self_command() + ["--root", paths.root, "--runroot", paths.runroot] + list(args)


def _handoff_path(paths, cid):
    return os.path.join(paths.container(cid), "supervisor.json")


def _hand_over(paths, container, launch, server, cg, starter, stdio, restarts, delay,
               native):
    """Become the native monitor (same pid, children and fds); it comes
    back to Python (resume) when the container has ended."""
    cid = container["id"]
    idmap = launch.idmap
    launch.reaper_fd = None
    handoff = {"root": paths.root, "runroot": paths.runroot, "id": cid,
               "name": container["name"], "record": container["record"],
               "launch": launch.to_json().decode(),
               "idmap": [idmap.uid_map, idmap.gid_map, idmap.single],
               "policy": container["policy"], "restarts": restarts, "delay": delay,
               "listen_fd": server.fd, "socket": server.path,
               "events_fd": cg.events_fd,
               "cgroup": cg.cgroup.to_dict() if cg.cgroup is not None else None,
               "native": native, "network": network.hand_over(cid),
               "health_pid": container.get("health_pid")}
    path = _handoff_path(paths, cid)
    fsutil.write_json(path, handoff, durable=False)
    stdin_fd, out_fd, err_fd = stdio
    listener = starter.bind_listener
    inherit = {fd for fd in (server.fd, cg.events_fd, native, stdin_fd,
                             out_fd, err_fd, listener) if fd is not None and fd >= 0}
    for fd in inherit:
        os.set_inheritable(fd, True)
    direct = ",".join("%d:%s:%d" % (ctr, ip, host)
                      for ip, host, ctr, _ in network.direct_of(cid))
    from .logconfig import writer_limits
    limits = writer_limits(container["record"])
    argv = ["sandbox-monitor", "supervise", log_path(paths, cid),
            "%d:%d" % limits if limits else "-", str(starter.cpid),
            str(server.fd), str(stdin_fd), str(out_fd), str(err_fd),
            "1" if launch.tty else "0",
            # The listener whenever PID 1 has the filter, even with no port
            # to swap: an unanswered bind(2) would wait forever.
            str(listener if listener is not None else -1), direct,
            ] + _self_command() + ["__supervise-exit", path]
    env = dict(os.environ)
    env.pop("SANDBOX_LOG_ATTRS", None)
    if container["record"].get("LogAttrs"):
        # Each log line's "attrs" (log_entry), as LogWriter writes them.
        env["SANDBOX_LOG_ATTRS"] = jsonfast.dumps(container["record"]["LogAttrs"],
                                                  separators=(",", ":"))
    if getattr(sys, "frozen", False):
        env["PYINSTALLER_RESET_ENVIRONMENT"] = "1"    # unpack afresh, not ours
    try:
        os.execve(native, argv, env)
    except OSError:
        for fd in inherit | set((handoff["network"] or {}).get("keep", ())):
            os.set_inheritable(fd, False)
        if listener is not None:
            # Python does not answer bind(2): with the listener closed the
            # container's binds fail (ENOSYS) instead of waiting forever.
            os.close(listener)
            starter.bind_listener = None


def resume(path, code, client_fds):
    """Back from the native monitor (``sandbox __supervise-exit``): the
    container's round has ended with ``code``; finish the supervisor's
    work as if it had never left."""
    collect_garbage_from_now_on()
    from ..paths import Paths
    from ..userns import IdMap
    from .attach import Server
    from .runtime import Launch
    h = fsutil.read_json(path)
    for fd in (h["listen_fd"], h["events_fd"], h["native"]):
        if fd is not None:
            os.set_inheritable(fd, False)
    paths = Paths(h["root"], h["runroot"])
    idmap = IdMap(*h["idmap"])
    launch = Launch.from_json(h["launch"].encode(), idmap)
    container = {"id": h["id"], "name": h["name"], "record": h["record"],
                 "policy": h["policy"], "health_pid": h.get("health_pid")}
    server = Server.adopt(h["socket"], h["listen_fd"], client_fds)
    network.adopt(h["id"], h["network"])
    cg = CgroupHook(paths, h["id"], h["record"], launch)
    if h["cgroup"]:
        from .. import cgroups
        cg.cgroup = cgroups.Cgroup.from_dict(h["cgroup"])
        cg.events_fd = h["events_fd"]
    try:
        code = _ended(paths, container, launch, cg, server, code)
        if code is not None:
            _supervise_loop(paths, container, launch, None, server, os.getpid(),
                            h["restarts"], h["delay"], h["native"], ended=code)
    except BaseException as exc:      # noqa: BLE001
        _supervisor_failed(paths, container, exc, None)
        return 1
    finally:
        server.shutdown()
    return 0


def _should_restart(paths, cid, policy, code, restarts):
    name = policy.get("Name", "no")
    try:
        st = state.read_state(paths, cid)
    except SandboxError:
        return False
    if st.get("StopRequested"):
        return False                 # `stop`/`kill` by the user: stay down
    if name == "always" or name == "unless-stopped":
        return True
    if name == "on-failure" and code != 0:
        limit = policy.get("MaximumRetryCount", 0)
        return not limit or restarts < limit
    return False
