"""Spawn a container from its OCI spec: user namespace -> id maps -> the
other namespaces -> root filesystem -> pivot_root -> security -> exec.

Three processes take part:

  P  the caller (``sandbox run``): writes the container record, forwards
     signals, relays the terminal, collects the exit code.
  C  forked from P: joins the user's shared user namespace (userns.py), then
     unshares mount, UTS, IPC, cgroup, network and PID namespaces; mounts the
     root filesystem; forks G;
     waits for it; tears down (and removes the container for --rm) as root
     of the user namespace, where files owned by subordinate ids can be
     deleted.  C is sandbox-init's start mode (native/start.c) where it
     can be: spawned, not forked, and P computes G's plan (Starter with
     ``native``; native_start_possible).
  G  started by C: PID 1 of the new PID namespace.  Mounts /proc, /dev,
     /sys and volumes, pivots, applies the security settings and execs the
     command.  G is sandbox-init's setup mode (native/setup.c) carrying out
     the plan C computes (_native_plan, _spawn_g), or, where that is
     missing or a step needs Python, a fork of C (_child_g).

Errors in C or G travel to P over a close-on-exec pipe ("code NUL message
NUL hint"); EOF on that pipe means the exec succeeded.  Children leave only
through os._exit (house style 5).
"""

import errno
import os
# _signal is the C module under `signal`: the same functions and int
# constants, without the wrapper's enum import (milliseconds of start).
import _signal as signal
import stat
import sys
import time

from .. import fsutil, jsonfast, linux
from ..errors import (CannotExecute, CommandNotFound, HostError, SandboxError,
                      UsageError)
from ..pids import in_namespace, stat_fields
from ..userns import (Sync, join_userns, keep_id_maps, keep_id_user_map,
                      shared_userns_fd)
from . import rootfs as rootfs_mod
from . import security

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                     signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
# What C gets when P dies (PR_SET_PDEATHSIG; _child_c).
PARENT_GONE = signal.SIGTERM

# Host device nodes bind-mounted into the container's tmpfs /dev (a user
# namespace cannot mknod real devices).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_SYMLINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
                ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
                ("pts/ptmx", "ptmx"))

_FLAG_OPTS = {"ro": linux.MS_RDONLY, "nosuid": linux.MS_NOSUID,
              "nodev": linux.MS_NODEV, "noexec": linux.MS_NOEXEC,
              "strictatime": linux.MS_STRICTATIME, "noatime": linux.MS_NOATIME,
              "bind": linux.MS_BIND, "rbind": linux.MS_BIND | linux.MS_REC}
_IGNORED_OPTS = ("rw", "suid", "dev", "exec", "private", "rprivate", "relatime")
# The spec annotation of --userns keep-id (JSON: {"uid": U, "gid": G}), and
# the /etc/passwd and /etc/group lines C adds when the image lacks them.
KEEP_ID_ANNOTATION = "io.sandbox.userns.keep-id"
ACCOUNT_ANNOTATION = "io.sandbox.userns.account"


def user_map_of(spec, idmap):
    """The IdMap of the ids that exist inside the container of ``spec``
    (to host ids), ``idmap`` being the shared user namespace's: its own
    with --userns keep-id."""
    keep = spec.get("annotations", {}).get(KEEP_ID_ANNOTATION)
    return keep_id_user_map(idmap, jsonfast.loads(keep)) if keep else idmap


class Launch:
    """Everything the runtime needs, derived from the spec and the store."""

    def __init__(self, spec, cdir, layers, driver, idmap, autoremove=False,
                 debug=False):
        self.spec = spec
        self.cdir = cdir
        self.layers = layers
        self.driver = driver
        self.idmap = idmap
        self.autoremove = autoremove
        self.debug = debug
        # An fd on the native monitor: C becomes its reaper (monitor.py).
        self.reaper_fd = None
        # An fd on sandbox-init: --init's PID 1 (_native_init).
        self.init_fd = None
        # The container's cgroup (cgroups.Cgroup.path), set by the caller's
        # on_forked: G moves itself in.
        self.cgroup_path = None
        # PID 1 hands the supervisor a seccomp listener for bind(2)
        # (network.direct_bindings); set by the supervisor.
        self.direct = False
        self.rootfs = spec["root"]["path"]
        self.tty = spec["process"].get("terminal", False)
        self.stdin = spec.get("annotations", {}).get("io.sandbox.stdin") == "true"
        ns = {n["type"] for n in spec["linux"]["namespaces"]}
        self.new_net = "network" in ns
        # A "path" on the network entry: join that namespace (OCI runtime
        # spec, config-linux.md; --network container:NAME).
        self.net_path = next((n.get("path") for n in spec["linux"]["namespaces"]
                              if n["type"] == "network"), None)
        # --userns keep-id: {"uid", "gid"} (userns.parse_userns), else None.
        keep = spec.get("annotations", {}).get(KEEP_ID_ANNOTATION)
        self.keep_id = jsonfast.loads(keep) if keep else None

    @property
    def nested(self):
        """The maps of the container's own user namespace (relative to the
        shared one) with --userns keep-id, else None."""
        return keep_id_maps(self.idmap, self.keep_id) if self.keep_id else None

    @property
    def user_map(self):
        """The ids that exist inside the container (user_map_of)."""
        return user_map_of(self.spec, self.idmap)

    def to_json(self):
        return jsonfast.dumps({"spec": self.spec, "cdir": self.cdir,
                               "layers": self.layers, "driver": self.driver,
                               "autoremove": self.autoremove,
                               "debug": self.debug,
                               "cgroup_path": self.cgroup_path,
                               "reaper_fd": self.reaper_fd,
                               "init_fd": self.init_fd,
                               "direct": self.direct}).encode()

    @classmethod
    def from_json(cls, data, idmap):
        d = jsonfast.loads(data)
        launch = cls(d["spec"], d["cdir"], d["layers"], d["driver"], idmap,
                     d["autoremove"], d["debug"])
        launch.cgroup_path = d.get("cgroup_path")
        launch.reaper_fd = d.get("reaper_fd")
        launch.init_fd = d.get("init_fd")
        launch.direct = d.get("direct", False)
        return launch


# ---------------------------------------------------------------------------
# P: the caller
# ---------------------------------------------------------------------------
class Starter:
    """P's side.  C is forked *before* the container record is written and
    joins the user namespace while the caller writes it; it then waits for
    the Launch, sent as JSON over a pipe."""

    def __init__(self, idmap, tty=False, stdio=(None, None, None), keep=(),
                 early_net=False, direct=False, early_exit=False, winsize=None,
                 watch_routes=True, split_cpus=False, native=None, reaper=None,
                 nested=None):
        """``stdio``: fds G gets as 0, 1, 2 when there is no terminal (None:
        the caller's own).  With ``tty``, G makes a pty of the container's
        devpts (ptys.py) and sends its master over a socket (G's 0-2 until
        then) that start() reads: ``self.master``.  ``keep``: the caller's ends of
        those pipes, closed in the children (a stray copy of a stdin pipe's
        write end would keep the container from ever seeing EOF).
        ``early_net``: the container gets a network namespace of its own
        (network.early_netns); C makes it at once, so that start() can have
        the network helper started while the container is set up.
        ``watch_routes``: with early_net, C also makes a route watch for us
        (_route_watch; network.pasta waits on it, nothing else does).
        ``direct``: G hands over a seccomp listener for its bind(2) calls
        (Launch.direct), kept as ``self.bind_listener``.
        ``winsize``: the pty's window size (TIOCGWINSZ bytes; default: our
        terminal's).
        ``early_exit``: C reports PID 1's exit status as soon as it has it,
        and tears down on its own afterwards (wait() returns sooner; for a
        caller that exits right after, the foreground `run`).
        ``split_cpus``: we and C run on CPUs of our own until start() (for
        a caller that writes the record meanwhile, the foreground `run`).
        ``native``: an fd on sandbox-init: C is its start mode
        (native/start.c), spawned, not a fork of this process (which then
        copies none of our pages while we write the record, nor they
        ours); we compute G's plan (_native_plan) and send it with the
        Launch's few other facts (_native_launch).  Needs the kernel
        overlay, and a container that _native_plan takes without
        ``notif_w`` (native_start_possible; commands/run.py checks
        before the record exists).  ``reaper``: with ``native``, an fd on
        the native monitor, whose reap mode C becomes once G runs
        (Launch.reaper_fd of the Python C).  ``nested``: the maps of the
        container's own user namespace (Launch.nested: --userns keep-id),
        which C makes inside the shared one first (_enter_nested; not the
        native C)."""
        self.idmap = idmap
        nsfd = shared_userns_fd(idmap)
        self.net_r, net_w = os.pipe2(os.O_CLOEXEC) if early_net else (None, None)
        self.notif_r, notif_w = os.pipe2(os.O_CLOEXEC) if direct else (None, None)
        self.status_r, status_w = os.pipe2(os.O_CLOEXEC) if early_exit else (None, None)
        self.bind_listener = None
        self.route_watch = None     # (early_net) see _route_watch
        self.err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self.pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
        go_r, self.go_w = os.pipe2(os.O_CLOEXEC)
        launch_r, self.launch_w = os.pipe2(os.O_CLOEXEC)
        self.master = pty_w = self.pty_r = None
        self.winsize = winsize
        self.gpid = 0
        if tty:
            import _socket
            self.pty_r, pty_w = (s.detach() for s in _socket.socketpair(
                _socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC))
        sys.stdout.flush()
        sys.stderr.flush()
        # While we write the record, C makes its namespaces and mounts the
        # root, side by side: on CPUs of our own, or the scheduler may
        # queue C behind us on ours (on a 2-CPU machine: ~1.4 ms of every
        # start).  Each takes the whole set back before it starts any
        # process (a helper would inherit the pinning): we in
        # restore_cpus (start() at the latest), C once it has the Launch.
        self.native = native is not None
        self.early_net = early_net
        self.root_sent = False      # (mount_root_early)
        # (Not for the native C: it is done long before we are, split or
        # not; measured.)
        self.cpus = _cpu_split() if split_cpus and not self.native else None
        if self.native:
            self.cpid = _spawn_c(native, watch_routes, tty,
                                 (launch_r, err_w, go_r, native, pid_w, status_w, nsfd,
                                  net_w) + ((pty_w, None, None) if tty else tuple(stdio))
                                 + (reaper,))
        else:
            self.cpid = os.fork()
        if self.cpid == 0:
            for fd in (self.go_w, self.launch_w, self.err_r, self.pid_r,
                       self.net_r, self.notif_r, self.status_r, self.pty_r) + tuple(keep):
                if fd is not None:
                    os.close(fd)
            _set_cpus(self.cpus and self.cpus[2])
            _child_c(nsfd, idmap, launch_r, err_w, pid_w, go_r, net_w,
                     pty_w, stdio, notif_w, status_w,
                     watch_routes, self.cpus and self.cpus[0], nested)    # never returns
        _set_cpus(self.cpus and self.cpus[1])
        for fd in (nsfd, err_w, pid_w, go_r, launch_r, net_w, notif_w, status_w):
            if fd is not None:
                os.close(fd)
        if pty_w is not None:
            os.close(pty_w)

    def mount_root_early(self, driver, layers, cdir, rootfs, volatile):
        """Have C mount the container's root filesystem now, while the
        caller finishes the record (start() sends the rest of the Launch
        later): one line before the Launch.  Not for fuse-overlayfs, whose
        daemon C would start before it is in the container's cgroup
        (start()'s on_forked)."""
        if driver == "fuse-overlayfs" or self.launch_w is None:
            return
        self.root_sent = True
        if self.native:
            where, data = rootfs_mod.overlay_mount_args(
                layers, os.path.join(cdir, "upper"), os.path.join(cdir, "work"), volatile)
            message = _message("R", [where, rootfs, data, rootfs_mod.OVERLAY_HINT])
        else:
            line = jsonfast.dumps({"driver": driver, "layers": layers, "cdir": cdir,
                                   "rootfs": rootfs, "volatile": volatile})
            message = b"R" + line.encode() + b"\n"
        try:
            fsutil.write_all(self.launch_w, message)
        except BrokenPipeError:
            pass        # C died; the error pipe says why

    def abort(self):
        """The container will not start: end C and release everything
        (again: nothing)."""
        if self.cpid:
            _kill_wait(self.cpid)
            self.cpid = 0
        self._close()
        self.restore_cpus()

    def restore_cpus(self):
        """Our whole CPU set again (see __init__)."""
        if self.cpus:
            _set_cpus(self.cpus[0])
            self.cpus = None

    def _close(self):
        for name in ("pid_r", "go_w", "launch_w", "err_r", "master", "net_r",
                     "notif_r", "status_r", "route_watch", "pty_r"):
            fd = getattr(self, name)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, None)

    def start(self, launch, on_started=None, on_forked=None, on_netns=None):
        """Send the Launch, let G exec, and return PID 1's host pid once the
        command runs; a failure to start raises (126/127 for the command,
        125 for setup).  ``on_forked(cpid)`` is called before C has made its
        namespaces (it waits for the Launch): the place to make the
        container's cgroup (C goes into its reaper leaf) and set
        launch.cgroup_path, which G moves itself into.
        ``on_netns(cpid)`` (with early_net) once C has its network namespace
        and the Launch, while C sets up the container.  ``on_started(pid)`` is called while G
        waits at the exec, so the record says "running" before the command
        can act."""
        self.restore_cpus()
        try:
            if on_forked:
                on_forked(self.cpid)
            made = False
            if self.net_r is not None:
                # "n" and the number of C's route watch (_route_watch): C
                # has its network namespace (EOF: C failed, and the error
                # pipe says why).  Taken before the Launch goes: C closes
                # its copy once it has read the Launch.
                data = fsutil.read_all(self.net_r)
                os.close(self.net_r)
                self.net_r = None
                made = data[:1] == b"n"
                if data[1:].isdigit():
                    try:
                        self.route_watch = _take_fd(self.cpid, int(data[1:]))
                    except OSError:
                        # pidfd_getfd needs ptrace rights over C (Yama's
                        # ptrace_scope 2 or 3 refuses them): then the helper's
                        # own ready signal is waited for instead.
                        self.route_watch = None
            if self.native and not self.root_sent:
                self.mount_root_early(launch.driver, launch.layers, launch.cdir,
                                      launch.rootfs, launch.autoremove)
            if not self.native:
                data = launch.to_json()
            elif os.read(self.pid_r, 1) == b"m":     # C has mounted the root
                data = self._native_launch(launch)
            else:
                data = b""      # C failed; the error pipe says why
            try:
                fsutil.write_all(self.launch_w, data)
            except BrokenPipeError:
                pass        # C died; the error pipe says why
            os.close(self.launch_w)
            self.launch_w = None
            if made and on_netns:
                # C sets the container up meanwhile.
                on_netns(self.cpid)
            self.gpid = _read_int(self.pid_r)
            if on_started and self.gpid:
                on_started(self.gpid)
            if self.route_watch is not None:
                os.close(self.route_watch)      # lent until now (on_netns)
                self.route_watch = None
            if self.notif_r is not None:
                self._take_bind_listener()
            if self.pty_r is not None:
                self._take_terminal()
            try:
                os.write(self.go_w, b"g")
            except BrokenPipeError:
                pass            # G failed before the exec; err_r says why
            os.close(self.go_w)
            self.go_w = None
            failure = fsutil.read_all(self.err_r)
        except BaseException:
            self.abort()
            raise
        if failure:
            _wait(self.cpid)
            self._close()
            raise _decode_failure(failure)
        return self.gpid

    def _native_launch(self, launch):
        """The "L" message for the native C (native/start.c): the
        namespaces to join and make, what its teardown needs, and G's
        plan, computed here through C's view of the root filesystem
        (/proc/C/root: C has it mounted in its own mount namespace)."""
        joins, flags, pid_ns = _namespace_steps(launch, self.early_net)
        plan = _native_plan(launch, None, view="/proc/%d/root" % self.cpid)
        if plan is None:
            raise SandboxError("internal error: the native start was chosen for a "
                               "container it cannot set up")
        return _message("L", [str(flags), str(len(joins))] + [
            word for flag, path in joins for word in (str(flag), path)] + [
            pid_ns, launch.rootfs, launch.cdir, "1" if launch.autoremove else "",
            _grave(launch, self.cpid) if launch.autoremove else "",
            launch.cgroup_path or "", "1" if launch.stdin else ""] + plan)

    def _take_terminal(self):
        """The master of G's pty (EOF: G failed, and err_r says why), at
        the window size asked for, before G may exec."""
        from . import ptys
        self.master = ptys.receive_fd(self.pty_r)
        os.close(self.pty_r)
        self.pty_r = None
        if self.master is not None:
            copy_winsize_to(self.master, self.winsize)

    def _take_bind_listener(self):
        """G's seccomp listener: G writes its fd number and waits for "f"
        (still as root of the user namespace, before it switches user,
        so that the copy is ours to take); EOF: G failed."""
        number = _read_int(self.notif_r)
        os.close(self.notif_r)
        self.notif_r = None
        if number and self.gpid:
            self.bind_listener = _take_fd(self.gpid, number)
        try:
            os.write(self.go_w, b"f")
        except BrokenPipeError:
            pass

    def wait(self):
        """The exit code, once C has torn the container down (with
        early_exit: once C has it; C goes on with the teardown alone, and
        the container's directory is out of the store already)."""
        try:
            if self.status_r is not None:
                data = fsutil.read_all(self.status_r)
                if data.isdigit():
                    return int(data)
            return _wait(self.cpid)
        finally:
            self._close()


def _cpu_split():
    """(all, ours, C's): our CPU set, the one we run on, the others; None
    with a single CPU."""
    try:
        cpus = os.sched_getaffinity(0)
        if len(cpus) < 2:
            return None
        # proc(5): field 39, "processor", the CPU we last ran on.
        here = int(stat_fields(os.getpid())[36])
    except (OSError, TypeError, ValueError, IndexError):
        return None
    if here not in cpus:
        here = min(cpus)
    return cpus, {here}, cpus - {here}


def _set_cpus(cpus):
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:
            pass


def _take_fd(pid, number):
    """A copy of fd ``number`` of our child ``pid`` (pidfd_getfd)."""
    pidfd = os.pidfd_open(pid)
    try:
        return linux.pidfd_getfd(pidfd, number)
    finally:
        os.close(pidfd)


def _spawn_c(exe, watch_routes, tty, fds):
    """C as sandbox-init's start mode (native/start.c): ``fds`` become its
    3 to 14 (None: unused there; its header says which is which; ``exe``
    is the fourth, its 6), fds 0-2 are ours; in a process group of its own
    (out of the terminal's foreground group: Ctrl-C and friends reach us,
    and we forward them).  Returns its pid."""
    options = ("n" if fds[7] is not None else "") + (
        "w" if watch_routes and fds[7] is not None else "") + (
        "r" if fds[11] is not None else "") + ("s" if fds[5] is not None else "")
    if tty:
        options += "t"
    else:
        options += "".join(str(i) for i, fd in enumerate(fds[8:11]) if fd is not None)
    return _spawn_init(["sandbox-init", "start", options], fds, setpgroup=0)


def _spawn_init(argv, fds, actions=(), **kw):
    """posix_spawn sandbox-init (``fds[3]``, an fd on it) with ``argv``,
    an empty environment, ``fds`` as its fds 3, 4, ... (None: unused
    there), after the file ``actions``; ``kw``: posix_spawn's.  Returns its
    pid."""
    top = 2 + len(fds)
    # Above the targets first, so that placing them overwrites none.
    moved = [None if fd is None else _dup_above(fd, top) for fd in fds]
    try:
        return os.posix_spawn(
            "/proc/self/fd/%d" % moved[3], argv, {},
            file_actions=list(actions) + [(os.POSIX_SPAWN_DUP2, fd, target)
                                          for target, fd in enumerate(moved, 3)
                                          if fd is not None], **kw)
    finally:
        for fd in moved:
            if fd is not None:
                os.close(fd)


def _message(letter, words):
    """A message to the native C: the letter, the payload's length, ":",
    then ``words``, each NUL-ended."""
    payload = ("\0".join(words) + "\0").encode("utf-8", "surrogateescape")
    return b"%s%d:" % (letter.encode(), len(payload)) + payload


def forward_signals(pid):
    """Install handlers that pass the usual termination signals on to
    ``pid``; returns a function that restores the old handlers."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    old = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}

    def restore():
        for s, h in old.items():
            signal.signal(s, h)
    return restore


def _wait(pid):
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 125
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _kill_wait(pid):
    _kill_quietly(pid)
    _wait(pid)


def _kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_int(fd):
    data = b""
    while True:
        chunk = os.read(fd, 32)
        if not chunk:
            break
        data += chunk
    try:
        return int(data)
    except ValueError:
        return 0


def _decode_failure(data):
    parts = data.decode(errors="replace").split("\0")
    while len(parts) < 3:
        parts.append("")
    if parts[0] == "E" and parts[1].isdigit():
        # sandbox-init could not exec the command (_native_init, _spawn_g).
        exc = OSError(int(parts[1]), os.strerror(int(parts[1])))
        exc.filename, exc.sandbox_exec = parts[2], True
        return _exec_error(exc)
    if parts[0] == "F" and parts[1].isdigit():
        # Its lookup of the command found nothing it could run (_spawn_g).
        return _exec_error(_not_runnable(int(parts[1]), parts[2]))
    if parts[0] == "N":
        return _not_in_path(parts[1])
    code, message, hint = parts[0], parts[1], parts[2]
    code = int(code) if code.isdigit() else 125
    cls = {126: CannotExecute, 127: CommandNotFound}.get(code, SandboxError)
    return cls(message, hint=hint or None, exit_code=code)


def _report(fd, exc):
    """Child side: send an error to P (best effort; we are about to exit)."""
    if isinstance(exc, SandboxError):
        code, msg, hint = exc.exit_code, exc.message, exc.hint or ""
    elif isinstance(exc, OSError):
        code, msg, hint = 125, _oserror_text(exc), ""
    else:
        code, msg, hint = 125, "%s: %s" % (type(exc).__name__, exc), ""
    try:
        os.write(fd, ("%d\0%s\0%s" % (code, msg, hint)).encode(errors="replace"))
    except OSError:
        pass
    return code


def _oserror_text(exc):
    if exc.filename:
        return "%s: %s" % (exc.filename if isinstance(exc.filename, str)
                           else os.fsdecode(exc.filename), exc.strerror)
    return exc.strerror or str(exc)


def terminal_winsize():
    """Our terminal's window size (TIOCGWINSZ bytes): the first of stdin,
    stdout, stderr that is a terminal; None without one."""
    import fcntl
    import termios
    for fd in (0, 1, 2):
        if os.isatty(fd):
            try:
                return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
            except OSError:
                continue
    return None


def copy_winsize_to(master, ws=None):
    """Our terminal's window size (or ``ws``, TIOCGWINSZ bytes) onto
    ``master`` (a pty's master or slave)."""
    ws = ws or terminal_winsize()
    if ws is not None:
        import fcntl
        import termios
        try:
            fcntl.ioctl(master, termios.TIOCSWINSZ, ws)
        except OSError:
            pass


# ---------------------------------------------------------------------------
# C: namespaces and root filesystem
# ---------------------------------------------------------------------------
def _route_watch():
    """A netlink socket in our new network namespace that hears of its
    routes (RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE), made before any helper
    can configure the namespace, so that P, which takes a copy, misses
    nothing (network.pasta: a namespace with its routes is one the
    container may use).  None if it cannot be made."""
    import _socket
    try:
        sock = _socket.socket(_socket.AF_NETLINK,
                              _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                              _socket.NETLINK_ROUTE)
    except OSError:
        return None
    try:
        sock.bind((0, 0x40 | 0x400))
    except OSError:
        sock.close()
        return None
    return sock.detach()


def _child_c(nsfd, idmap, launch_r, err_w, pid_w, go_r, net_w, pty_w,
             stdio, notif_w=None, status_w=None, watch_routes=True, cpus=None,
             nested=None):
    code = 125
    launch = None
    try:
        # When P dies (a foreground run's CLI, a detached container's Python
        # supervisor; even by SIGKILL), the container ends with it, and C
        # lives on just to tear down as after any end: an --rm container's
        # directory (its record with it) goes, the rest is unmounted.  (The
        # native reaper that C may become dies of it instead, G with it.)
        fate = {"parent_gone": False, "g": 0}

        def parent_gone(_signum, _frame):
            fate["parent_gone"] = True
            if fate["g"]:
                _kill_quietly(fate["g"])
        signal.signal(PARENT_GONE, parent_gone)
        linux.prctl(linux.PR_SET_PDEATHSIG, PARENT_GONE)
        # Out of the terminal's foreground process group: Ctrl-C and friends
        # reach P, which forwards them to G; C must live on to tear down.
        # (Ignoring them instead would leak SIG_IGN into helpers we spawn.)
        os.setpgid(0, 0)
        # Root of the user's shared user namespace (see userns.py).
        join_userns(nsfd)
        if nested is not None:
            # Then of the container's own, before any other namespace is
            # made: they belong to it (its root binds port 80 in its
            # network namespace, mounts in its mount namespace).
            _enter_nested(nested)
        watch = None
        if net_w is not None:
            # Owned by the container's user namespace (the shared one, or its
            # own with keep-id), as the others below.
            linux.unshare(linux.CLONE_NEWNET)
            watch = _route_watch() if watch_routes else None
            os.write(net_w, b"n%d" % watch if watch is not None else b"n")
            os.close(net_w)
        data, root = _read_launch(launch_r)
        os.close(launch_r)
        # All of them again (Starter.__init__): P waits for us from now on,
        # and what we start (fuse-overlayfs, G) inherits them.
        _set_cpus(cpus)
        if watch is not None:
            os.close(watch)        # P has its copy (it sends the Launch after)
        if not data:
            os._exit(125)          # P gave up (its error is its own to report)
        launch = Launch.from_json(data, idmap)
        if nested is not None:
            _root_of_nested()
        kinds = namespace_kinds(launch.spec)
        joins, flags, pid_ns = _namespace_steps(launch, net_w is not None)
        for flag, path in joins:
            _join(path, flag)
        flags |= 0 if root else linux.CLONE_NEWNS
        if flags:
            linux.unshare(flags)
        if not root:
            _mount_root(launch.driver, launch.layers, launch.cdir, launch.rootfs,
                        launch.autoremove, nested)
            if nested is not None:
                _add_account(launch)
        # The PID namespace last: its first child becomes PID 1, so no helper
        # (fuse-overlayfs) may be forked after this.  (Joined: G is one
        # more process of the other container's.)
        if pid_ns == "new":
            linux.unshare(linux.CLONE_NEWPID)
        elif pid_ns:
            _join(pid_ns, linux.CLONE_NEWPID)
        sys.stdout.flush()
        plan = _native_plan(launch, notif_w)
        if plan is not None:
            gpid = _spawn_g(launch, plan, err_w, go_r, pty_w, stdio)
        else:
            gpid = os.fork()
            if gpid == 0:
                os.close(pid_w)
                _child_g(launch, err_w, go_r, pty_w, stdio, notif_w)   # never returns
        fate["g"] = gpid
        if fate["parent_gone"]:
            _kill_quietly(gpid)
        # In the host's PID namespace nothing ends the container's other
        # processes when its first one exits: they are found by its mount
        # namespace (G makes its own at once, _child_g).
        leftovers = None if "pid" in kinds else _mount_namespace_of(gpid)
        if not launch.autoremove:
            os.close(go_r)
            go_r = None
        if notif_w is not None:
            os.close(notif_w)
        for fd in set(stdio) - {None}:
            os.close(fd)
        os.write(pid_w, str(gpid).encode())
        os.close(pid_w)
        pid_w = None
        # Only G keeps the error pipe: EOF tells P the exec happened.
        os.close(err_w)
        err_w = None
        if pty_w is not None:
            os.close(pty_w)
        for fd in (0, 1, 2):
            # C does not read or write the container's stdio: keep a pipe or
            # terminal from seeing C as a reader/writer after G is gone.
            if fd != 2:
                _devnull_onto(fd)
        if launch.reaper_fd is not None:
            _become_reaper(launch, gpid)      # returns only if the exec failed
        code = _wait(gpid)
        if leftovers is not None:
            _kill_namespace(leftovers)
        _note_oom(launch)
        _await_record(go_r)
        if status_w is not None:
            _teardown_after_report(launch, code, status_w)     # never returns
        _teardown(launch)
    except BaseException as exc:   # noqa: BLE001 - reported to P
        if err_w is not None:
            code = _report(err_w, exc)
        try:
            if launch is not None:
                if pid_w is not None:
                    os.close(pid_w)        # P reads "no pid" and goes on
                _await_record(go_r if launch.autoremove else None)
                _teardown(launch)
        except BaseException:      # noqa: BLE001
            pass
    finally:
        os._exit(code)


def _read_launch(fd):
    """The Launch (JSON bytes; empty: P gave up), and whether the root
    filesystem was mounted first, on P's word (Starter.mount_root_early:
    a line before the Launch, while P finishes the record)."""
    data = os.read(fd, 65536)
    root = False
    if data[:1] == b"R":
        while b"\n" not in data:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"", False
            data += chunk
        line, _, data = data.partition(b"\n")
        r = jsonfast.loads(line[1:])
        _mount_root(r["driver"], r["layers"], r["cdir"], r["rootfs"], r["volatile"])
        root = True
    return data + fsutil.read_all(fd), root


def _namespace_steps(launch, early_net):
    """What C does with the container's namespaces once it has the Launch
    (after the user namespace, the network namespace when ``early_net``,
    and the mount namespace of its root filesystem): ([(flag, path)] to
    join, in order, flags to unshare, then the PID namespace: "new", a path
    to join, or "" (the host's)).  --pid/--ipc/--uts/--network
    container:NAME: namespaces with a path (the other container's, owned by
    the same user namespace) are joined; --pid/--ipc/--uts host: no entry
    of that type, the host's is kept.  The cgroup namespace is G's
    (_child_g), made in the container's own cgroup, which C is not in
    (cgroups.py)."""
    spec = launch.spec
    kinds = namespace_kinds(spec)
    paths = {n["type"]: n["path"] for n in spec["linux"]["namespaces"]
             if n.get("path") and n["type"] in ("pid", "ipc", "uts")}
    joins, flags = [], 0
    for kind, flag in (("uts", linux.CLONE_NEWUTS), ("ipc", linux.CLONE_NEWIPC)):
        if kind in paths:
            joins.append((flag, paths[kind]))
        elif kind in kinds:
            flags |= flag
    if launch.net_path:
        joins.append((linux.CLONE_NEWNET, launch.net_path))
    elif launch.new_net and not early_net:
        flags |= linux.CLONE_NEWNET
    return joins, flags, paths.get("pid") or ("new" if "pid" in kinds else "")


def _mount_root(driver, layers, cdir, rootfs, volatile, nested=None):
    """A mount namespace of C's own with the container's root filesystem
    (``nested``: shown through those maps, Launch.nested)."""
    linux.unshare(linux.CLONE_NEWNS)
    # Private propagation before any mount, so nothing leaks to the host.
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    os.makedirs(rootfs, exist_ok=True)
    rootfs_mod.mount_rootfs(driver, layers, cdir, rootfs, volatile=volatile,
                            idmapping=nested)


def _enter_nested(nested):
    """C: from root of the shared user namespace, move into a new one
    inside it with the ``nested`` maps (Launch.nested), with every
    capability there (root of it later: _root_of_nested).  Only a process
    outside the new namespace with CAP_SETUID in the shared one may write
    maps of more than one id (user_namespaces(7)): a child, H, stays
    behind to write ours."""
    me = os.getpid()
    sync = Sync()
    hpid = os.fork()
    if hpid == 0:
        code = 1
        try:
            sync.in_child()
            if sync.child_wait() == b"u":
                for name, mapping in (("uid_map", nested[0]), ("gid_map", nested[1])):
                    with open("/proc/%d/%s" % (me, name), "w") as f:
                        f.write("".join("%d %d %d\n" % m for m in mapping))
                sync.child_send(b"m")
                code = 0
        finally:
            os._exit(code)
    sync.in_parent()
    try:
        linux.unshare(linux.CLONE_NEWUSER)
        sync.parent_send(b"u")
        mapped = sync.parent_wait() == b"m"
    finally:
        sync.close_parent()
        os.waitpid(hpid, 0)
    if not mapped:
        raise HostError("cannot map the container's own user namespace "
                        "(--userns keep-id)",
                        hint="check /etc/subuid and /etc/subgid for this user")


def _root_of_nested():
    """C, in the container's own user namespace (_enter_nested), with
    every capability there but still the user's ids, until now: the
    caller has had C moved into the container's cgroup (on_forked, before
    it sent the Launch), and systemd's user manager moves only processes
    of the user's own uid."""
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    # Root here is a subordinate id on the host: the change of ids made
    # us undumpable, and /proc/C/ns unreadable for the user's helpers
    # (the network plug, a later exec's checks), which need it.
    linux.prctl(linux.PR_SET_DUMPABLE, 1)


def _add_account(launch):
    """--userns keep-id: the user's /etc/passwd and /etc/group lines (and
    home directory) in the container's root filesystem where the image has
    none for those ids (as podman does).  Done by a child chrooted into it,
    where the image's symlinks cannot lead out."""
    account = launch.spec.get("annotations", {}).get(ACCOUNT_ANNOTATION)
    if not account:
        return
    account = jsonfast.loads(account)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.chroot(launch.rootfs)
            os.chdir("/")
            if account.get("group"):
                _add_line("/etc/group", account["group"], 2)
            home = ""
            if account.get("passwd"):
                _add_line("/etc/passwd", account["passwd"], 2)
                home = account["passwd"].split(":")[5]
            if home.startswith("/") and not os.path.lexists(home):
                os.makedirs(home, 0o755)
                os.chown(home, launch.keep_id["uid"], launch.keep_id["gid"])
                os.chmod(home, 0o700)
        except OSError:
            code = 1            # a read-only or odd image: left as it is
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def _add_line(path, line, field):
    """Append ``line`` to the colon-separated database ``path`` unless an
    entry has its id (field ``field``) already; nothing without the file."""
    try:
        with open(path, "r+", encoding="utf-8", errors="replace") as f:
            text = f.read()
            ident = line.split(":")[field]
            if any(len(e.split(":")) > field and e.split(":")[field] == ident
                   for e in text.splitlines()):
                return
            if text and not text.endswith("\n"):
                f.write("\n")
            f.write(line + "\n")
    except FileNotFoundError:
        pass


def wants_init(spec):
    """--init: PID 1 is an init (sandbox-init or _init) with the command
    as its child."""
    return spec.get("annotations", {}).get("io.sandbox.init") == "true"


def namespace_kinds(spec):
    """The namespace types the spec asks for; a type without an entry is
    the host's, kept (--pid/--ipc/--uts host)."""
    return {n["type"] for n in spec["linux"]["namespaces"]}


def _mount_namespace_of(gpid):
    """G's own mount namespace (an inode number), once G has made it (at
    the start of its setup); None if G ended before."""
    mine = os.stat("/proc/self/ns/mnt").st_ino
    for _ in range(2000):
        try:
            theirs = os.stat("/proc/%d/ns/mnt" % gpid).st_ino
        except OSError:
            return None                 # G is gone already
        if theirs != mine:
            return theirs
        time.sleep(0.001)
    return None


def _kill_namespace(mntns):
    """SIGKILL every process in the mount namespace ``mntns`` (--pid host:
    what the end of a PID namespace does for the others), until none is
    left."""
    for _ in range(100):
        found = False
        for pid in in_namespace("mnt", mntns):
            try:
                os.kill(pid, signal.SIGKILL)
                found = True
            except OSError:
                continue
        if not found:
            return
        time.sleep(0.01)


def _join(path, flag):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, flag)
    finally:
        os.close(fd)


def _await_record(go_r):
    """Before an --rm container's directory goes: P writes the record
    (and the network helper's) until it has sent "go", then closes its end.
    Our copy of the pipe is read only now that G is gone (or never was),
    so it cannot take G's byte; EOF means P is done with the directory
    (G may have failed before reading it, when its command is missing)."""
    if go_r is not None:
        try:
            fsutil.read_all(go_r)
        except OSError:
            pass
        os.close(go_r)


OOM_MARKER = "oom-killed"


def _become_reaper(launch, gpid):
    """What follows in Python (_wait, _note_oom, _teardown's unmount), done
    by the native monitor, which costs a fraction of an idle Python
    process.  Removing an --rm container's directory is left to the
    supervisor."""
    try:
        os.execve(launch.reaper_fd,
                  ["sandbox-monitor", "reap", str(gpid), launch.rootfs,
                   launch.cgroup_path or "",
                   os.path.join(launch.cdir, OOM_MARKER),
                   launch.cdir if launch.autoremove else "",
                   _grave(launch) if launch.autoremove else ""], os.environ)
    except OSError:
        pass


def _note_oom(launch):
    """C sits in the reaper's leaf beside the container's cgroup, so that
    cgroup (a systemd scope vanishes with its last process) still exists
    now that PID 1 is gone, and its memory.events can be read without a
    race.  The supervisor finds the answer as a marker file."""
    path = launch.cgroup_path
    if not path:
        return
    try:
        with open(os.path.join(path, "memory.events")) as f:
            kills = [int(line.split()[1]) for line in f if line.startswith("oom_kill ")]
    except (OSError, ValueError, IndexError):
        return
    if kills and kills[0] > 0:
        with open(os.path.join(launch.cdir, OOM_MARKER), "w"):
            pass


def _grave(launch, pid=None):
    """Where C (``pid``, else us) moves an --rm container's directory out
    of the store before deleting it: <root>/containers/<id> ->
    <root>/tmp/rm-<pid>-<id> (paths.py; `store gc` finishes a deletion cut
    short)."""
    staging = os.path.join(os.path.dirname(os.path.dirname(launch.cdir)), "tmp")
    return os.path.join(staging, "rm-%d-%s" % (pid or os.getpid(),
                                               os.path.basename(launch.cdir)))


def _teardown_after_report(launch, code, status_w):
    """Tell P the exit code first, then tear down: what P must not see is
    gone before (the root file system unmounted, an --rm container's
    directory renamed out of the store, into its staging area under a name
    with our pid, which `store gc` clears if we die before the end); the
    slow part, deleting that directory, is ours alone afterwards.  We no
    longer die with P: it exits as soon as it has the code."""
    rootfs_mod.unmount_rootfs(launch.rootfs)
    grave = None
    if launch.autoremove:
        grave = _grave(launch)
        try:
            os.makedirs(os.path.dirname(grave), exist_ok=True)
            os.rename(launch.cdir, grave)
        except OSError:
            fsutil.rmtree(launch.cdir)        # in place, before the report
            grave = None
    linux.prctl(linux.PR_SET_PDEATHSIG, 0)
    try:
        os.write(status_w, b"%d" % code)
    except OSError:
        pass
    os.close(status_w)
    if grave is not None:
        try:
            fsutil.rmtree(grave)
        except OSError:
            pass                              # store gc finishes it
    os._exit(code)


def _devnull_onto(fd):
    nul = os.open("/dev/null", os.O_RDWR)
    os.dup2(nul, fd)
    os.close(nul)


def _teardown(launch):
    # Detach the root filesystem first: for fuse-overlayfs this ends the
    # daemon, which lives in this mount namespace.
    rootfs_mod.unmount_rootfs(launch.rootfs)
    if launch.autoremove:
        # As root of the user namespace: upper/ holds files owned by
        # subordinate ids that the plain user could not delete.
        fsutil.rmtree(launch.cdir)


# ---------------------------------------------------------------------------
# G: PID 1 of the container
# ---------------------------------------------------------------------------
def _child_g(launch, err_w, go_r, pty_w, stdio, notif_w=None):
    try:
        signal.signal(PARENT_GONE, signal.SIG_DFL)      # (C's handler)
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        _setup_stdio(launch, pty_w, stdio)
        if pty_w is not None:
            from . import ptys
            ptys.preload()      # (now: after the pivot they are out of reach)
        spec = launch.spec
        root = launch.rootfs
        process = spec["process"]
        if wants_init(spec) or any(
                n["type"] == "pid" and n.get("path") for n in spec["linux"]["namespaces"]):
            # The container's processes see this one while it sets up
            # (--pid container:NAME), and for its whole life with the
            # Python init (--init without sandbox-init): not with the
            # CLI's command line and environment.
            linux.scrub_command_line("sandbox-init")
        # Into the container's cgroup (C stays in the reaper's leaf beside
        # it, cgroups.py), then a cgroup namespace rooted there.
        if launch.cgroup_path:
            with open(os.path.join(launch.cgroup_path, "cgroup.procs"), "w") as f:
                f.write("0")
        # A mount namespace of G's own: pivot_root moves the root of every
        # process in the namespace, and C and the fuse-overlayfs daemon must
        # keep the host's (the daemon reads the layers by their host paths,
        # C removes the container directory at the end).
        linux.unshare(_g_unshare_flags(spec))
        if process.get("rlimits"):
            import resource     # noqa: F401  (now: after the pivot it is out of reach)
        # Step 0: empty volumes take the image's content at their path
        # (before their mounts hide it; as root here, so owners survive).
        fill = spec.get("annotations", {}).get("io.sandbox.volumes.fill")
        if fill:
            _fill_volumes(spec, root, fill)
        # Step 1: mounts inside the new root, parents first (before the
        # pivot because host device nodes and volume sources must still be
        # reachable by their host paths).
        for op in plan_mounts(spec, root, launch):
            if launch.debug:
                os.write(2, ("sandbox: mount %s\n" % (op,)).encode())
            op.execute()
        # Step 2: the working directory must exist (Docker creates it).
        cwd = process.get("cwd") or "/"
        cwd_host = fsutil.resolve_in_root(root, cwd)
        if not os.path.isdir(cwd_host):
            os.makedirs(cwd_host, exist_ok=True)
        # Step 3: pivot_root(".", ".") stacks the old root under the new one;
        # detaching it leaves no path back to the host (runc's approach).
        os.chdir(root)
        linux.pivot_root(".", ".")
        linux.umount2(".", linux.MNT_DETACH)
        os.chdir("/")
        if pty_w is not None:
            _take_container_terminal(process.get("user", {}).get("uid", 0))
        # Step 4: --sysctl (namespaced ones: the container's network, IPC
        # and mqueue namespaces are this user namespace's), then masked and
        # read-only paths, after /proc and /sys exist.
        linux_cfg = spec.get("linux", {})
        for key, value in (linux_cfg.get("sysctl") or {}).items():
            _write_sysctl(key, value)
        for path in linux_cfg.get("maskedPaths", []):
            _mask(path)
        for path in linux_cfg.get("readonlyPaths", []):
            _make_readonly(path)
        if spec["root"].get("readonly"):
            _remount_readonly("/")
        # Step 5: identity of the container.
        if _hostname_to_set(spec):
            linux.sethostname(spec["hostname"])
        if spec.get("domainname"):
            linux.setdomainname(spec["domainname"])
        if launch.new_net:
            linux.interface_up("lo")
        if process.get("oomScoreAdj") is not None:
            _set_oom_score_adj(process["oomScoreAdj"])
        # Step 6: security and identity of the process, then its command.
        if notif_w is not None:
            _hand_bind_listener(notif_w, go_r)
        if process.get("rlimits"):
            _set_rlimits(process["rlimits"])
        path, env = prepare_exec(process, linux_cfg, launch.user_map)
        # Wait for P to have recorded us as running (EOF: P is gone).
        if os.read(go_r, 1) != b"g":
            os._exit(125)
        if wants_init(spec):
            if launch.init_fd is not None:
                _native_init(launch.init_fd, path, process["args"], env, err_w)
            _init(path, process["args"], env, err_w)     # (neither returns)
        exec_command(path, process["args"], env)
    except OSError as exc:
        code = _report(err_w, _exec_error(exc))
        os._exit(code)
    except BaseException as exc:   # noqa: BLE001 - reported to P
        code = _report(err_w, exc)
        os._exit(code)
    os._exit(125)


# ---------------------------------------------------------------------------
# G as native code: sandbox-init's setup mode (native/setup.c)
# ---------------------------------------------------------------------------
_PLAN_VERSION = "sandbox-setup-3"


def _native_plan(launch, notif_w, view=""):
    """G's setup (_child_g, prepare_exec) as the words of sandbox-init's
    setup mode, in the same order; or None where the Python G stays: no
    sandbox-init (launch.init_fd), or a step only it takes (--debug's
    listing of the mounts, volumes filled from the image, --ulimit,
    --oom-score-adj, direct ports' bind listener).  Computed
    in C, whose mount namespace has the root filesystem G's will have, or,
    for the native C, in P, through ``view`` ("/proc/C/root": the same
    mount namespace); what it refuses (an unmapped user, a missing bind
    source) is reported as G would."""
    spec = launch.spec
    process = spec["process"]
    linux_cfg = spec.get("linux", {})
    if notif_w is not None or not _plan_takes(launch):
        return None
    words = [_PLAN_VERSION]
    if launch.cgroup_path:
        words += ["C", os.path.join(launch.cgroup_path, "cgroup.procs")]
    words += ["U", str(_g_unshare_flags(spec))]
    root = launch.rootfs
    for op in plan_mounts(spec, view + root, launch):
        # (targets as C sees them: without the view's prefix)
        target = op.target[len(view):]
        if op.kind == "symlink":
            words += ["L", op.source, target]
        else:
            words += ["M", op.source or "", target, op.fstype or "", str(op.flags),
                      op.data or "", "f" if op.is_file else "d",
                      "r" if op.readonly else ""]
    cwd = process.get("cwd") or "/"
    words += ["V", root, "D", cwd]
    uid, gid, groups = _user_ids(process.get("user", {}), launch.user_map)
    if launch.tty:
        words += ["P", str(uid)]
    for key, value in (linux_cfg.get("sysctl") or {}).items():
        words += ["Y", key, value, "o" if key in OPTIONAL_SYSCTLS else ""]
    for path in linux_cfg.get("maskedPaths", []):
        words += ["K", path]
    for path in linux_cfg.get("readonlyPaths", []):
        words += ["O", path]
    if spec["root"].get("readonly"):
        words.append("R")
    if _hostname_to_set(spec):
        words += ["H", spec["hostname"]]
    if spec.get("domainname"):
        words += ["N", spec["domainname"]]
    if launch.new_net:
        words.append("I")
    # prepare_exec's steps, in its order (its docstring says why).
    if process.get("noNewPrivileges"):
        words.append("X")
    caps = process.get("capabilities", {})
    if "seccomp" in linux_cfg and os.uname().machine == "x86_64":
        words += ["S", linux.bpf_code(security.seccomp_filter(
            linux_cfg["seccomp"], caps.get("bounding", []))).hex()]
    words += ["B", "%x" % security.cap_mask(caps.get("bounding", []))]
    words += ["G", str(uid), str(gid),
              "-" if groups is None else ",".join(map(str, groups))]
    if uid == 0:
        words += ["E", "%x" % security.cap_mask(caps.get("effective", []))]
    words += ["A", "W", cwd]
    args = process["args"]
    env = ["%s=%s" % kv for kv in _env_dict(process.get("env", [])).items()]
    words += ["Z", args[0], str(len(args))] + list(args) + [str(len(env))] + env
    words.append("i" if wants_init(spec) else "")
    return words


def _plan_takes(launch):
    """Whether sandbox-init's setup mode can set ``launch`` up
    (_native_plan)."""
    spec = launch.spec
    process = spec["process"]
    return not (launch.init_fd is None or launch.debug
                or process.get("rlimits") or process.get("oomScoreAdj") is not None
                or spec.get("annotations", {}).get("io.sandbox.volumes.fill"))


def native_start_possible(launch):
    """Whether C can be sandbox-init's start mode (Starter's ``native``)
    for ``launch``: the kernel overlay, a G that _native_plan takes, no
    direct ports' bind listener, and a PID namespace of the container's
    (--pid host needs the Python C, which ends the container's other
    processes)."""
    return (launch.driver == "overlay" and not launch.direct and _plan_takes(launch)
            and "pid" in namespace_kinds(launch.spec))


def _spawn_g(launch, words, err_w, go_r, pty_w, stdio):
    """Start G as sandbox-init's setup mode, the first process of the new
    PID namespace: posix_spawn (no copy of this Python process), with the
    plan on fd 3, the error pipe on 4, the "go" pipe on 5 and sandbox-init
    itself on 6 (for --init), the container's stdio on 0-2 (what
    _setup_stdio does for the Python G), in a new session.  Returns G's
    pid."""
    plan = _memfd("sandbox-plan", words)
    actions = []
    if pty_w is not None:
        actions += [(os.POSIX_SPAWN_DUP2, pty_w, target) for target in (0, 1, 2)]
    else:
        actions += [(os.POSIX_SPAWN_DUP2, fd, target)
                    for target, fd in enumerate(stdio) if fd is not None]
        if not launch.stdin and stdio[0] is None:
            actions.append((os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDWR, 0))
    try:
        return _spawn_init(["sandbox-init", "setup"], (plan, err_w, go_r, launch.init_fd),
                           actions, setsid=True)
    finally:
        os.close(plan)


def _g_unshare_flags(spec):
    """The namespaces G makes for itself (_child_g says why): mount, and
    cgroup unless --cgroupns host."""
    own_cgroupns = any(n["type"] == "cgroup" for n in spec["linux"]["namespaces"])
    return linux.CLONE_NEWNS | (linux.CLONE_NEWCGROUP if own_cgroupns else 0)


def _hostname_to_set(spec):
    """Whether G names the container's UTS namespace: not the host's, nor
    another container's (--uts container:NAME has its name)."""
    return bool(spec.get("hostname")) and "uts" in namespace_kinds(spec) and \
        "io.sandbox.uts.container" not in spec.get("annotations", {})


def _set_oom_score_adj(value):
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as exc:
        try:
            with open("/proc/self/oom_score_adj") as f:
                now = f.read().strip()
        except OSError:
            now = "?"
        raise HostError("cannot set --oom-score-adj %d: %s" % (value, exc.strerror),
                        hint="an unprivileged user may raise it, not lower it below "
                             "its own (%s)" % now) from None


# Docker's defaults (spec.default_net_sysctls): a kernel without them
# (ip_unprivileged_port_start came with 4.11) goes without.
OPTIONAL_SYSCTLS = (security.UNPRIVILEGED_PORTS, security.PING_GROUPS)


def _write_sysctl(key, value):
    """(setup.c's "Y" step)"""
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        if exc.errno == errno.ENOENT and key in OPTIONAL_SYSCTLS:
            return
        raise HostError("cannot set sysctl %s=%s: %s" % (key, value, exc.strerror),
                        hint="this kernel does not let a user namespace set it") from None


def _set_rlimits(rlimits):
    import resource
    for r in rlimits:
        name = r["type"][len("RLIMIT_"):].lower()
        which = getattr(resource, r["type"])
        soft, hard = (resource.RLIM_INFINITY if v >= (1 << 63) else v
                      for v in (r["soft"], r["hard"]))
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError):
            _, now = resource.getrlimit(which)
            raise UsageError(
                "--ulimit %s=%s:%s: above this user's hard limit (%s)"
                % (name, r["soft"], r["hard"],
                   "unlimited" if now == resource.RLIM_INFINITY else now),
                hint="raising a hard limit needs privilege on the host "
                     "(limits.conf, or ulimit -H in the shell that runs sandbox)") from None


def _hand_bind_listener(notif_w, go_r):
    """Send bind(2) calls of the container's processes to the supervisor:
    a filter with a listener, whose copy P takes (pidfd_getfd) while we
    are still root of the user namespace, with all capabilities (which
    seccomp(2) without no_new_privs needs)."""
    fd = linux.seccomp_set_filter(security.bind_notify_program(),
                                  linux.SECCOMP_FILTER_FLAG_NEW_LISTENER)
    os.write(notif_w, b"%d" % fd)
    os.close(notif_w)
    if os.read(go_r, 1) != b"f":
        os._exit(125)            # P is gone
    os.close(fd)


def _native_init(exe, path, args, env, err_w):
    """--init's PID 1 as sandbox-init (native/init.c, ``exe`` an fd on it
    opened before the pivot): a fresh exec, with an empty environment and
    no argument, so that it holds nothing of the host.  Its command comes
    on fd 3 (a memfd), exec failures go back on fd 4 (``err_w``;
    _decode_failure).  Never returns."""
    command = _memfd("sandbox-init", [path, str(len(args))] + list(args) +
                     ["%s=%s" % kv for kv in env.items()])
    # Above 4 first, so that placing 3 and 4 closes none of the three.
    exe, command, err = (_dup_above(fd, 4) for fd in (exe, command, err_w))
    try:
        os.dup2(command, 3)
        os.dup2(err, 4)
        os.execve(exe, ["sandbox-init"], {})
    except OSError as exc:
        # (err_w may have been 3 or 4: its copy tells P.)
        os._exit(_report(err, SandboxError("--init: sandbox-init did not start: "
                                           + (exc.strerror or str(exc)))))


def _memfd(name, words):
    """A close-on-exec memfd holding ``words``, each NUL-ended, read from
    its start: how sandbox-init gets its plan or command."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    fsutil.write_all(fd, ("\0".join(words) + "\0").encode("utf-8", "surrogateescape"))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _dup_above(fd, floor):
    """A close-on-exec copy of ``fd`` numbered above ``floor``."""
    low = []
    new = os.dup(fd)
    while new <= floor:
        low.append(new)
        new = os.dup(fd)
    for fd in low:
        os.close(fd)
    return new


def _init(path, args, env, err_w):
    """--init: stay as PID 1, a minimal reaper (what tini is to Docker).
    The command runs as our child; the signals PID 1 receives are passed on
    to it, orphans that the kernel reparents to us are reaped, and we exit
    with the command's status.  Nothing here may import: we are past the
    pivot, the host's Python library is out of reach."""
    # Named and ready for signals before the fork: the command may look
    # (ps) or be signalled at once.  The child keeps the name until its
    # exec, which also resets the handlers.
    linux.set_process_name("sandbox-init")
    os.environ.clear()      # the CLI's (the command gets ``env``)
    child = 0

    def forward(signum, _frame):
        if child:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass
    for s in FORWARDED_SIGNALS + (signal.SIGWINCH, signal.SIGCONT):
        signal.signal(s, forward)
    child = os.fork()
    if child == 0:
        try:
            exec_command(path, args, env)
        except OSError as exc:
            os._exit(_report(err_w, _exec_error(exc)))
        os._exit(127)
    os.close(err_w)          # P reads EOF when the command has exec'd
    # Nothing but stdio: the container's root may take this process's fds
    # (/proc/1/fd, pidfd_getfd: same uid), and what G had open (the
    # native monitor's file, the supervisor's pipes and socket, the
    # caller's fds) is the host's.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def _fill_volumes(spec, root, fill):
    from .volumes import fill_from_image
    sources = {m["destination"]: m["source"] for m in spec.get("mounts", [])}
    for dest in jsonfast.loads(fill):
        if dest in sources:
            fill_from_image(root, dest, sources[dest])


def prepare_exec(process, linux_cfg, idmap):
    """The last steps before execve, shared by a container's PID 1 and
    `exec`: security settings, user, working directory, the command's path
    (looked up in the container's PATH) and environment, default signal
    dispositions.  The order is the only one that works: no_new_privs and
    seccomp while we still hold CAP_SYS_ADMIN (seccomp(2) needs it, or
    no_new_privs), the bounding set before setuid (PR_CAPBSET_DROP needs
    CAP_SETPCAP), the user, then the final capability sets."""
    if process.get("noNewPrivileges"):
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    caps = process.get("capabilities", {})
    if "seccomp" in linux_cfg and os.uname().machine == "x86_64":
        linux.seccomp_set_filter(security.seccomp_filter(linux_cfg["seccomp"],
                                                         caps.get("bounding", [])))
    keep = security.cap_mask(caps.get("bounding", []))
    last = linux.cap_last_cap()
    for cap in range(last + 1):
        if not keep & (1 << cap):
            linux.capbset_drop(cap)
    # Inheritable emptied now: setuid to a non-root user clears only the
    # effective and permitted sets, and a non-empty inheritable set lets
    # file capabilities escalate (CVE-2022-24769, fixed the same way in
    # moby and runc).
    everything = (1 << (last + 1)) - 1
    linux.capset(everything, everything, 0)
    _set_user(process.get("user", {}), idmap)
    if process.get("user", {}).get("uid", 0) == 0:
        mask = security.cap_mask(caps.get("effective", []))
        linux.capset(mask, mask, 0)
    linux.cap_ambient_clear()
    os.chdir(process.get("cwd") or "/")
    env = process.get("env", [])
    path = _find_executable(process["args"][0], env)
    for s in range(1, signal.NSIG):
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    return path, _env_dict(env)


def exec_command(path, args, env):
    """execve of the container's command: a failure is the command's
    (126/127 by _exec_error: a program of another platform, a missing
    ELF interpreter), not the setup's."""
    try:
        os.execve(path, args, env)
    except OSError as exc:
        exc.sandbox_exec = True
        exc.filename = path
        raise


def _exec_error(exc):
    """Docker's exit codes: 127 when the command is missing, 126 when it
    exists but cannot run; anything else is a setup failure (125)."""
    if getattr(exc, "sandbox_exec", False):
        name = exc.filename
        if exc.errno == errno.ENOENT:
            return CommandNotFound(
                'exec: "%s": no such file or directory' % name,
                hint="check the command and the image's PATH")
        if exc.errno == errno.ENOEXEC:
            return CannotExecute('exec: "%s": exec format error' % name,
                                 hint="a program for another architecture (sandbox runs "
                                      "them with qemu-user-static, when installed), or a "
                                      "script without #!")
        if exc.errno in (errno.EACCES, errno.EISDIR, errno.EPERM):
            return CannotExecute('exec: "%s": %s' % (name, exc.strerror),
                                 hint="the file is not executable in the container")
    return HostError("container setup failed: " + _oserror_text(exc))


def _env_dict(env):
    out = {}
    for item in env:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def _find_executable(name, env):
    """Resolve the command with the container's PATH, after the pivot (so
    the lookup sees the container's files, never the host's)."""
    if "/" in name:
        if not os.path.exists(name):
            raise _not_runnable(errno.ENOENT, name)
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise _not_runnable(errno.EACCES, name)
        return name
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for item in env:
        if item.startswith("PATH="):
            path = item[5:]
    denied = None
    for d in path.split(":"):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand):
            if os.access(cand, os.X_OK):
                return cand
            denied = cand
    if denied:
        raise _not_runnable(errno.EACCES, denied)
    raise _not_in_path(name)


def _not_runnable(number, path):
    """The command at ``path`` is missing (ENOENT) or not executable
    (EACCES, in Docker's words), for _exec_error."""
    err = OSError(number, "permission denied" if number == errno.EACCES
                  else os.strerror(number), path)
    err.sandbox_exec = True
    return err


def _not_in_path(name):
    return CommandNotFound('exec: "%s": executable file not found in $PATH' % name,
                           hint="check the command name, or the image's PATH")


def take_terminal(slave):
    """In a new session: make the pty slave our controlling terminal and
    our stdin, stdout and stderr."""
    import fcntl
    import termios
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)


def _take_container_terminal(uid):
    """G, after its pivot, with the socket to P as fds 0-2: a pty of the
    container's devpts, its master to P, its slave our terminal and
    /dev/console (setup.c's "P" step)."""
    from . import ptys
    master, slave = ptys.open_in_container(None, uid, hint="run without -t")
    ptys.send_fd(0, master)
    ptys.show_as_console(master)
    os.close(master)
    take_terminal(slave)


def _setup_stdio(launch, pty_w, stdio):
    """A new session, with the container's stdio on fds 0-2 (with a
    terminal: the socket to P, until _take_container_terminal)."""
    os.setsid()
    if pty_w is not None:
        for fd in (0, 1, 2):
            os.dup2(pty_w, fd)
        os.close(pty_w)
        return
    for target, fd in enumerate(stdio):
        if fd is not None:
            os.dup2(fd, target)          # dup2 clears close-on-exec
    for fd in set(stdio) - {None}:
        if fd > 2:
            os.close(fd)
    if not launch.stdin and stdio[0] is None:
        _devnull_onto(0)


def _user_ids(user, idmap):
    """(uid, gid, supplementary gids or None: no setgroups in a single-id
    map) of the process's user, refused if the map lacks them."""
    uid = user.get("uid", 0)
    gid = user.get("gid", 0)
    if not idmap.has_uid(uid) or not idmap.has_gid(gid):
        raise UsageError(
            "user %d:%d is not mapped in this user namespace" % (uid, gid),
            hint="this user has no /etc/subuid range large enough; "
                 "only uid 0 exists in a single-id map")
    if idmap.single:
        return uid, gid, None
    return uid, gid, [g for g in user.get("additionalGids", []) if idmap.has_gid(g)]


def _set_user(user, idmap):
    uid, gid, groups = _user_ids(user, idmap)
    if groups is not None:
        os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _statvfs_flags(path):
    """Per-mount flags to keep on a remount: in a user namespace the kernel
    refuses to clear nosuid/nodev/noexec/atime flags of mounts that came from
    the host (they are locked, see mount_namespaces(7))."""
    f = os.statvfs(path).f_flag
    flags = 0
    for st_bit, ms_bit in ((os.ST_NOSUID, linux.MS_NOSUID),
                           (os.ST_NODEV, linux.MS_NODEV),
                           (os.ST_NOEXEC, linux.MS_NOEXEC),
                           (os.ST_NOATIME, linux.MS_NOATIME),
                           (os.ST_RELATIME, 1 << 21)):
        if f & st_bit:
            flags |= ms_bit
    return flags


def _remount_readonly(path):
    linux.mount(None, path, None, linux.MS_BIND | linux.MS_REMOUNT |
                linux.MS_RDONLY | _statvfs_flags(path))


def _make_readonly(path):
    try:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise
    _remount_readonly(path)


def _mask(path):
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY)
    else:
        linux.mount("/dev/null", path, None, linux.MS_BIND)


# ---------------------------------------------------------------------------
# Filesystem setup as data (house style 4)
# ---------------------------------------------------------------------------
class MountOp:
    """One mount in the container's root: validated and sorted before any
    of them runs; ``--debug`` prints them."""

    def __init__(self, kind, target, source=None, fstype=None, flags=0,
                 data=None, is_file=False, readonly=False):
        self.kind = kind
        self.target = target        # host path inside the new root
        self.source = source
        self.fstype = fstype
        self.flags = flags
        self.data = data
        self.is_file = is_file
        self.readonly = readonly

    def __repr__(self):
        return "%s %s -> %s (%s)" % (self.kind, self.source, self.target,
                                     self.data or "")

    def _make_target(self):
        if self.is_file:
            if not os.path.lexists(self.target):
                os.makedirs(os.path.dirname(self.target), exist_ok=True)
                os.close(os.open(self.target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        elif not os.path.isdir(self.target):
            if os.path.lexists(self.target) and not os.path.islink(self.target):
                raise HostError("cannot mount on %s: not a directory" % self.target)
            os.makedirs(self.target, exist_ok=True)

    def execute(self):
        if self.kind == "symlink":
            if not os.path.lexists(self.target):
                os.symlink(self.source, self.target)
            return
        self._make_target()
        linux.mount(self.source, self.target, self.fstype, self.flags, self.data)
        if self.readonly:
            _remount_readonly(self.target)


def _parse_options(options):
    flags = 0
    data = []
    readonly = False
    for o in options or []:
        if o in _FLAG_OPTS:
            flags |= _FLAG_OPTS[o]
            if o == "ro":
                readonly = True
        elif o in _IGNORED_OPTS:
            continue
        else:
            data.append(o)
    return flags, ",".join(data) or None, readonly


def plan_mounts(spec, root, launch):
    """The list of MountOps for the spec's mounts, in execution order."""
    ops = []
    kinds = namespace_kinds(spec)
    mounts = list(spec.get("mounts", []))
    # Parents before children; stable, so the spec's order holds otherwise.
    mounts.sort(key=lambda m: len([p for p in m["destination"].split("/") if p]))
    for m in mounts:
        dest = m["destination"]
        if not dest.startswith("/") or ".." in dest.split("/"):
            raise UsageError("invalid mount destination %r" % dest)
        target = fsutil.resolve_in_root(root, dest)
        flags, data, readonly = _parse_options(m.get("options"))
        mtype = m.get("type")
        if mtype == "bind" or flags & linux.MS_BIND:
            src = m["source"]
            if not os.path.exists(src):
                raise UsageError("bind source path does not exist: %s" % src,
                                 hint="create it first, or fix the -v HOST part")
            ops.append(MountOp("bind", target, src, None,
                               linux.MS_BIND | (flags & linux.MS_REC),
                               is_file=not os.path.isdir(src), readonly=readonly))
            continue
        if mtype == "sysfs" and not launch.new_net:
            # sysfs can only be mounted by the owner of the network
            # namespace; with the host's network, bind the host's /sys.
            ops.append(MountOp("bind", target, "/sys", None,
                               linux.MS_BIND | linux.MS_REC, readonly=True))
            continue
        # Likewise proc and mqueue for the host's PID and IPC namespaces
        # (--pid/--ipc host), whose /dev/shm is the host's too, as Docker's.
        host_source = None
        if mtype == "proc" and "pid" not in kinds:
            host_source = "/proc"
        elif dest in ("/dev/shm", "/dev/mqueue") and "ipc" not in kinds:
            host_source = dest
        if host_source:
            if os.path.isdir(host_source):
                ops.append(MountOp("bind", target, host_source, None,
                                   linux.MS_BIND | linux.MS_REC))
            continue
        if mtype == "devpts" and not launch.idmap.single:
            data = (data + "," if data else "") + "gid=5"
        if mtype == "tmpfs" and not data:
            data = "mode=1777"
        ops.append(MountOp(mtype, target, m.get("source", mtype), mtype,
                           flags & ~linux.MS_RDONLY if mtype != "sysfs" else flags,
                           data, readonly=readonly and mtype != "sysfs"))
        if dest == "/dev":
            ops.extend(_dev_ops(target))
    for name in ("hosts", "hostname", "resolv.conf"):
        src = os.path.join(launch.cdir, name)
        if os.path.exists(src):
            ops.append(MountOp("bind", fsutil.resolve_in_root(root, "/etc/" + name),
                               src, None, linux.MS_BIND, is_file=True,
                               readonly=bool(spec["root"].get("readonly"))))
    return ops


def _dev_ops(devdir):
    ops = []
    for name in DEVICES:
        ops.append(MountOp("bind", os.path.join(devdir, name), "/dev/" + name,
                           None, linux.MS_BIND, is_file=True))
    for src, name in DEV_SYMLINKS:
        ops.append(MountOp("symlink", os.path.join(devdir, name), src))
    return ops
