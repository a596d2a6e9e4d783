"""`exec`: a new process inside a running container.

X (forked from the CLI) joins the container's namespaces through
/proc/PID/ns of its PID 1: the user namespace first (it owns all the
others, and joining it grants the capabilities the other setns calls
need), then mount, UTS, IPC, network, cgroup and PID.  Joining a PID
namespace only moves the caller's future children, so X forks Y, which is
inside it; Y takes the container's security settings (the same code as the
container's PID 1: runtime.prepare_exec) and execs.  X waits and passes Y's
status on.  Failures travel over the same close-on-exec pipe protocol as in
runtime.py.
"""

import os

from .. import collect_garbage_from_now_on, linux
from ..errors import SandboxError
from . import ptys, runtime

# Order matters: user first (see above), mount before the PID namespace so
# that Y, forked last, starts with the container's root.
NAMESPACES = (("user", linux.CLONE_NEWUSER), ("mnt", linux.CLONE_NEWNS),
              ("uts", linux.CLONE_NEWUTS), ("ipc", linux.CLONE_NEWIPC),
              ("net", linux.CLONE_NEWNET), ("cgroup", linux.CLONE_NEWCGROUP),
              ("pid", linux.CLONE_NEWPID))


def starting_point(paths, cid, st):
    """What a process run in container ``cid`` (record ``st``) starts from:
    (its spec, a copy of its OCI process to change, its cgroups.Cgroup or
    None) -- for `exec` and for health checks."""
    from ..fsutil import read_json
    spec = read_json(os.path.join(paths.container(cid), "config.json"))
    cgroup = None
    if st.get("Cgroup"):
        from .. import cgroups
        cgroup = cgroups.Cgroup.from_dict(st["Cgroup"])
    return spec, dict(spec["process"]), cgroup


def open_namespaces(pid):
    """fds of the namespaces of ``pid`` that differ from ours (setns into
    our own namespace would need privileges over it that we lack)."""
    fds = []
    try:
        for name, flag in NAMESPACES:
            theirs = "/proc/%d/ns/%s" % (pid, name)
            if os.stat(theirs).st_ino == os.stat("/proc/self/ns/" + name).st_ino:
                continue
            fds.append((os.open(theirs, os.O_RDONLY | os.O_CLOEXEC), flag))
    except OSError as exc:
        for fd, _ in fds:
            os.close(fd)
        raise SandboxError("cannot enter the container: %s" % exc.strerror,
                           hint="is it still running? (sandbox ps)",
                           exit_code=126) from None
    return fds


def run(pid, process, linux_cfg, idmap, tty=False, stdin=False, detach=False,
        cgroup=None, on_detached_exit=None, detach_keys=None):
    """Run ``process`` (an OCI process dict) in the container whose PID 1
    has host pid ``pid``; returns the exit code (0 at once with detach).
    ``cgroup``: the container's (a cgroups.Cgroup), joined first, so its
    limits hold for the command as for the container's own processes.
    ``on_detached_exit(code)``: with detach, called when the command has
    ended, by X, which stays for it (out of our session, off our stdio), in
    the container's mount namespace (nothing there may open host paths or
    import); also after the user detached from a -it command.
    ``detach_keys`` (with -it: attach.parse_detach_keys's bytes): typed,
    they leave the command running, as Docker's exec does: X holds its
    terminal then and reads what nobody reads; returns "detached"."""
    nsfds = open_namespaces(pid)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    master = slave = pty_r = pty_w = winsize = None
    # With -d, X stays for the command when someone is to hear of its end,
    # or to hold its terminal's master (-t: Docker's detached exec has one).
    stays = detach and (on_detached_exit is not None or tty)
    if tty:
        import _socket
        ptys.preload()              # for X: not once inside
        from . import terminal      # noqa: F401  (its drain, for X)
        if not detach:
            pty_r, pty_w = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM
                                              | _socket.SOCK_CLOEXEC)
            winsize = runtime.terminal_winsize()
    xpid = os.fork()
    if xpid == 0:
        code = 125
        try:
            # Y, forked below, is one of the container's processes until its
            # exec: not with the CLI's command line and environment.
            linux.scrub_command_line("sandbox-exec")
            os.close(err_r)
            os.close(pid_r)
            if pty_r is not None:
                pty_r.close()
            if cgroup is not None:
                cgroup.add_process(os.getpid())
            for fd, flag in nsfds:
                linux.setns(fd, flag)
                os.close(fd)
            os.chdir("/")
            if tty:
                master, slave = ptys.open_in_container(
                    winsize, process.get("user", {}).get("uid", 0),
                    hint="run exec without -t")
                if pty_w is not None:           # to the CLI, which relays it
                    ptys.send_fd(pty_w.fileno(), master)
            ypid = os.fork()
            if ypid == 0:
                _child_y(process, linux_cfg, idmap, err_w, slave, stdin, detach)
            os.write(pid_w, str(ypid).encode())
            os.close(pid_w)
            if stays:
                # Off our caller's session and stdio before the caller
                # can return (it waits for err_w's EOF): a `$(sandbox exec
                # -d ...)` must not wait for the command.
                _leave_the_caller()
            os.close(err_w)
            if slave is not None:
                os.close(slave)
            if detach:
                if stays:
                    _stay_for(ypid, master, on_detached_exit)
                os._exit(0)
            if pty_w is not None:
                # The CLI relays the terminal: it says "d" when the user
                # typed the detach keys (we then hold the terminal, off
                # its session, and read what nobody reads), else it closes
                # its end when the command's terminal has closed.
                try:
                    word = pty_w.recv(1)
                except OSError:
                    word = b""
                if word == b"d":
                    # Out of the CLI's session before the CLI may end (it
                    # waits for this close): its end hangs up its terminal,
                    # whose SIGHUP would kill us and with us the command's
                    # terminal.
                    _leave_the_caller()
                    pty_w.close()
                    _stay_for(ypid, master, on_detached_exit)
                pty_w.close()
                os.close(master)
                master = None
            code = runtime._wait(ypid)
        except BaseException as exc:   # noqa: BLE001 - reported to the CLI
            code = runtime._report(err_w, exc)
        os._exit(code)
    for fd, _ in nsfds:
        os.close(fd)
    os.close(err_w)
    os.close(pid_w)
    if pty_r is not None:
        pty_w.close()
        master = ptys.receive_fd(pty_r.fileno())    # None: X failed (err_r says)
    ypid = runtime._read_int(pid_r)
    os.close(pid_r)
    from ..fsutil import read_all
    failure = read_all(err_r)
    os.close(err_r)
    if failure:
        if pty_r is not None:
            pty_r.close()
        runtime._wait(xpid)
        if master is not None:
            os.close(master)
        raise runtime._decode_failure(failure)
    if detach:
        if not stays:
            runtime._wait(xpid)
        return 0        # (else X waits for the command, and outlives us)
    collect_garbage_from_now_on()
    restore = runtime.forward_signals(ypid) if ypid else (lambda: None)
    try:
        if master is not None:
            from .attach import _Escape
            from .terminal import relay
            escape = _Escape(detach_keys) if detach_keys and stdin and os.isatty(0) else None
            if relay(master, forward_stdin=stdin, escape=escape) == "detached":
                pty_r.send(b"d")        # X holds the terminal from now on
                pty_r.recv(1)           # once it has left our session
                return "detached"
        if pty_r is not None:
            pty_r.close()               # (X waits for it: "d" or the end)
            pty_r = None
        return runtime._wait(xpid)
    finally:
        restore()
        if pty_r is not None:
            pty_r.close()
        if master is not None:
            os.close(master)


def _leave_the_caller():
    """X, staying for a command after the CLI returns: a session of its
    own, off the CLI's stdio."""
    os.setsid()
    nul = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(nul, fd)
    os.close(nul)


def _stay_for(ypid, master, on_exit):
    """X, for a detached command: read its terminal (``master``, or None)
    that nobody reads, wait for it, say so (``on_exit(status)``), exit."""
    if master is not None:
        from .terminal import drain
        drain(master, lambda data: None)        # what nobody reads
        os.close(master)
    status = runtime._wait(ypid)
    if on_exit is not None:
        on_exit(status)
    os._exit(0)


def _child_y(process, linux_cfg, idmap, err_w, slave, stdin, detach):
    try:
        os.setsid()
        if slave is not None:
            runtime.take_terminal(slave)
        else:
            nul = os.open(os.devnull, os.O_RDWR)
            targets = (0, 1, 2) if detach else ((0,) if not stdin else ())
            for fd in targets:
                os.dup2(nul, fd)
            os.close(nul)
        path, env = runtime.prepare_exec(process, linux_cfg, idmap)
        runtime.exec_command(path, process["args"], env)
    except OSError as exc:
        os._exit(runtime._report(err_w, runtime._exec_error(exc)))
    except BaseException as exc:   # noqa: BLE001 - reported to the CLI
        os._exit(runtime._report(err_w, exc))
