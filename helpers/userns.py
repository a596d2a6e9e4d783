"""User namespaces: the id map from /etc/subuid and /etc/subgid, applying it
with newuidmap/newgidmap, and running a function as root of a fresh user
namespace (used to unpack layers and delete trees owned by mapped ids).

Kernel rules that shape this module (user_namespaces(7)):
- unshare(CLONE_NEWUSER) fails with EINVAL in a multi-threaded process, so
  every namespace is made in a freshly forked, single-threaded child.
- An unprivileged process may only map its own uid unless the setuid helpers
  newuidmap/newgidmap do it from the parent namespace; for the single-id map
  "deny" must be written to /proc/PID/setgroups before gid_map.
"""

import os
import pwd

from . import fsutil, linux
from .pids import alive, proc_start_time
from .errors import HostError, SandboxError, UsageError

NEWUIDMAP = "newuidmap"
NEWGIDMAP = "newgidmap"


class IdMap:
    """uid and gid maps as lists of (inside, outside, count)."""

    def __init__(self, uid_map, gid_map, single):
        self.uid_map = uid_map
        self.gid_map = gid_map
        self.single = single

    @property
    def size(self):
        return sum(c for _, _, c in self.uid_map)

    def describe(self):
        if self.single:
            return "single id (uid %d as root, no /etc/subuid range)" % (
                self.uid_map[0][1])
        return "uid " + ", ".join("%d->%d (%d)" % m for m in self.uid_map) + \
            "; gid " + ", ".join("%d->%d (%d)" % m for m in self.gid_map)

    def to_host_uid(self, uid):
        return _translate(self.uid_map, uid)

    def to_host_gid(self, gid):
        return _translate(self.gid_map, gid)

    def has_uid(self, uid):
        return _translate(self.uid_map, uid) is not None

    def has_gid(self, gid):
        return _translate(self.gid_map, gid) is not None


def _translate(mapping, idv):
    for inside, outside, count in mapping:
        if inside <= idv < inside + count:
            return outside + (idv - inside)
    return None


def _subid_ranges(path, name, uid):
    ranges = []
    try:
        lines = fsutil.read_text(path, "replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or line.startswith("#"):
            continue
        if fields[0] in (name, str(uid)):
            try:
                start, count = int(fields[1]), int(fields[2])
            except ValueError:
                continue
            if count > 0:
                ranges.append((start, count))
    # Overlapping ranges (a range added by hand over one useradd assigned)
    # would make the kernel reject the whole map: merge them.
    merged = []
    for start, count in sorted(ranges):
        if merged and start <= merged[-1][0] + merged[-1][1]:
            last_start, last_count = merged[-1]
            merged[-1] = (last_start, max(last_count, start + count - last_start))
        else:
            merged.append((start, count))
    return merged


def _have_helper(name):
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/usr/local/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


_cached = None


def current_id_map():
    """The map for the calling user: root -> the user's own id, then the
    user's subordinate ranges from 1 upwards; the single-id map when there is
    no range or no newuidmap/newgidmap."""
    global _cached
    if _cached is not None:
        return _cached
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    subuids = _subid_ranges("/etc/subuid", name, uid)
    subgids = _subid_ranges("/etc/subgid", name, uid)
    if subuids and subgids and _have_helper(NEWUIDMAP) and _have_helper(NEWGIDMAP):
        uid_map, gid_map = [(0, uid, 1)], [(0, gid, 1)]
        nxt = 1
        for start, count in subuids:
            uid_map.append((nxt, start, count))
            nxt += count
        nxt = 1
        for start, count in subgids:
            gid_map.append((nxt, start, count))
            nxt += count
        _cached = IdMap(uid_map, gid_map, single=False)
    else:
        _cached = IdMap([(0, uid, 1)], [(0, gid, 1)], single=True)
    return _cached


# ---------------------------------------------------------------------------
# --userns keep-id: a user namespace of the container's own
# ---------------------------------------------------------------------------
# Nested in the shared one (S: 0 is the user, 1..n the subordinate ids), as
# podman's: container uid KEEP is S's 0 (the user: what it writes to a bind
# mount is the user's, under the user's own number), container uids below
# KEEP are S's 1..KEEP, those above it S's own.  The image's files keep
# S's numbering on disk (0 is root); fuse-overlayfs shows them to the
# container through the same map (rootfs.mount_fuse_overlayfs's
# ``idmapping``), so they look the same as in any other container.
KEEP_ID = "keep-id"


def parse_userns(mode):
    """--userns MODE -> None (the shared namespace: "", "host") or
    {"uid": U, "gid": G} for keep-id[:uid=U,gid=G] (default: our own ids)."""
    if mode in (None, "", "host"):
        return None
    name, _, opts = mode.partition(":")
    if name != KEEP_ID:
        raise UsageError(
            "--userns %s is not supported" % mode,
            hint="host (the default: your uid is root inside, your subordinate ids "
                 "the other users) or keep-id[:uid=UID,gid=GID] (your uid is UID "
                 "inside, default your own)")
    keep = {"uid": os.getuid(), "gid": os.getgid()}
    for opt in filter(None, opts.split(",")):
        key, eq, value = opt.partition("=")
        if key not in keep or not eq or not value.isdigit() or int(value) >= 0xfffffffe:
            raise UsageError("invalid --userns %s: %r" % (mode, opt),
                             hint="keep-id:uid=UID,gid=GID with numbers")
        keep[key] = int(value)
    return keep


def keep_id_maps(idmap, keep):
    """(uid map, gid map) of a keep-id container's namespace (``keep`` from
    parse_userns), relative to the shared one: [(inside, S id, count)]."""
    return (_keep_one(idmap.uid_map, keep["uid"]), _keep_one(idmap.gid_map, keep["gid"]))


def _keep_one(shared_map, keep):
    n = sum(c for _, _, c in shared_map) - 1        # S's subordinate ids 1..n
    if keep == 0:
        return [(0, 0, n + 1)]
    mapping = [(0, 1, min(keep, n))] if n else []
    mapping.append((keep, 0, 1))
    if n > keep:
        mapping.append((keep + 1, keep + 1, n - keep))
    return mapping


def keep_id_user_map(idmap, keep):
    """The ids that exist inside a keep-id container (``keep`` from
    parse_userns), as an IdMap to host ids."""
    return container_id_map(idmap, keep_id_maps(idmap, keep))


def container_id_map(idmap, nested):
    """The IdMap from a nested namespace's ids to host ids (``nested``:
    keep_id_maps's pair), for what checks that an id exists inside."""
    def compose(inner, outer):
        out = []
        for inside, mid, count in inner:
            for o_in, o_host, o_count in outer:
                lo, hi = max(mid, o_in), min(mid + count, o_in + o_count)
                if lo < hi:
                    out.append((inside + lo - mid, o_host + lo - o_in, hi - lo))
        return sorted(out)
    return IdMap(compose(nested[0], idmap.uid_map), compose(nested[1], idmap.gid_map),
                 single=False)


def single_map_hint():
    return ("add a range for this user to /etc/subuid and /etc/subgid "
            "(as root: usermod --add-subuids 100000-165535 --add-subgids "
            "100000-165535 $USER) and install the uidmap package")


def _spawn(argv):
    # posix_spawn keeps `subprocess` (20 ms of imports and a slower fork) off
    # the start path; both helpers run in parallel (DESIGN.md section 5).
    with open(os.devnull, "rb") as devnull:
        return os.posix_spawn(argv[0], argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                              file_actions=[(os.POSIX_SPAWN_DUP2, devnull.fileno(), 0)])


def apply_id_map(pid, idmap):
    """From the parent namespace: write the maps of ``pid``'s user namespace
    (newuidmap and newgidmap run in parallel)."""
    if idmap.single:
        # An unprivileged writer may map only its own id, after denying
        # setgroups (user_namespaces(7), "Interaction with setgroups").
        with open("/proc/%d/setgroups" % pid, "w") as f:
            f.write("deny")
        with open("/proc/%d/uid_map" % pid, "w") as f:
            f.write("%d %d %d\n" % idmap.uid_map[0])
        with open("/proc/%d/gid_map" % pid, "w") as f:
            f.write("%d %d %d\n" % idmap.gid_map[0])
        return
    handles = []
    for helper, mapping in ((NEWUIDMAP, idmap.uid_map), (NEWGIDMAP, idmap.gid_map)):
        argv = [_have_helper(helper), str(pid)]
        for entry in mapping:
            argv.extend(str(x) for x in entry)
        handles.append((_spawn(argv), argv))
    failed = []
    for child, argv in handles:
        _, status = os.waitpid(child, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            failed.append(argv)
    if failed:
        import shlex
        raise HostError("cannot set up the user namespace id map: %s failed"
                        % shlex.join(failed[0]),
                        hint="check /etc/subuid and /etc/subgid for this user "
                             "and that newuidmap/newgidmap are setuid root "
                             "(package uidmap)")


def unshare_error(exc):
    """Turn an unshare(CLONE_NEWUSER) failure into an error with a fix."""
    if exc.errno in (1, 28):   # EPERM, ENOSPC
        return HostError(
            "cannot create a user namespace: %s" % exc.strerror,
            hint="unprivileged user namespaces are disabled: sysctl "
                 "kernel.unprivileged_userns_clone=1, raise "
                 "user.max_user_namespaces, or lift the AppArmor restriction "
                 "(kernel.apparmor_restrict_unprivileged_userns=0)")
    return HostError("cannot create a user namespace: %s" % exc)


class Sync:
    """A pair of pipes between parent and child: each side can send one
    small message and wait for the other's.  Closing releases a waiter, so
    neither side can hang when the other dies."""

    def __init__(self):
        self.c_r, self.p_w = os.pipe2(os.O_CLOEXEC)   # parent -> child
        self.p_r, self.c_w = os.pipe2(os.O_CLOEXEC)   # child -> parent

    def in_child(self):
        os.close(self.p_w)
        os.close(self.p_r)

    def in_parent(self):
        os.close(self.c_w)
        os.close(self.c_r)

    def child_send(self, data=b"."):
        os.write(self.c_w, data)

    def child_wait(self):
        return os.read(self.c_r, 1)

    def parent_send(self, data=b"."):
        os.write(self.p_w, data)

    def parent_wait(self):
        return os.read(self.p_r, 1)

    def close_child(self):
        for fd in (self.c_r, self.c_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def close_parent(self):
        for fd in (self.p_r, self.p_w):
            try:
                os.close(fd)
            except OSError:
                pass


def enter_new_userns(sync):
    """Child side: unshare the user namespace, let the parent write the maps,
    become root in it.  Raises OSError on failure."""
    linux.unshare(linux.CLONE_NEWUSER)
    sync.child_send(b"u")
    if sync.child_wait() != b"m":
        raise OSError(1, "parent could not write the id map")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def parent_map_child(sync, pid, idmap):
    """Parent side of ``enter_new_userns``."""
    if sync.parent_wait() != b"u":
        return False       # the child failed before unshare; it reports why
    try:
        apply_id_map(pid, idmap)
    except BaseException:
        sync.parent_send(b"x")
        raise
    sync.parent_send(b"m")
    return True


# ---------------------------------------------------------------------------
# The shared user namespace
# ---------------------------------------------------------------------------
# Mapping a new user namespace costs two setuid helpers (newuidmap and
# newgidmap: ~5 ms of exec and PAM-free parsing each, on every container).
# Like podman's rootless "pause" process, one small process per user holds a
# mapped user namespace; containers and store helpers join it with setns(2)
# (allowed: its owner has every capability in it) and then make their own
# mount, PID, network, IPC, UTS and cgroup namespaces inside it.  It is not a
# daemon: it serves no requests, holds no state but the namespace, and is
# made again by the next command when it is gone (reboot, kill) or when the
# user's /etc/subuid range changed.
KEEPER_NAME = "sandbox-userns"


def _keeper_file():
    from .paths import default_runroot
    return os.path.join(default_runroot(), "userns.json")


def _valid_keeper(record, idmap):
    if not record or record.get("uid_map") != [list(m) for m in idmap.uid_map] \
            or record.get("gid_map") != [list(m) for m in idmap.gid_map]:
        return None
    pid = record.get("pid", 0)
    if not alive(pid, record.get("start")):
        return None
    try:
        fd = os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    # The holder must still be in its own namespace, not in ours (a pid
    # reused by another process of this user would be).
    if os.fstat(fd).st_ino == os.stat("/proc/self/ns/user").st_ino:
        os.close(fd)
        return None
    return fd


def shared_userns_fd(idmap=None):
    """An O_RDONLY fd of the user's shared user namespace (made if needed)."""
    idmap = idmap or current_id_map()
    path = _keeper_file()
    try:
        fd = _valid_keeper(fsutil.read_json(path, default={}), idmap)
    except (ValueError, OSError):
        fd = None
    if fd is not None:
        return fd
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with fsutil.locked(path + ".lock"):
        try:
            fd = _valid_keeper(fsutil.read_json(path, default={}), idmap)
        except (ValueError, OSError):
            fd = None
        if fd is None:
            pid = _start_keeper(idmap)
            fsutil.write_json(path, {
                "pid": pid, "start": proc_start_time(pid),
                "uid_map": [list(m) for m in idmap.uid_map],
                "gid_map": [list(m) for m in idmap.gid_map]}, mode=0o600)
            fd = os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    return fd


def _start_keeper(idmap):
    """The holder: it unshares a user namespace and waits for the maps."""
    sync = Sync()

    def enter():
        sync.in_child()
        try:
            enter_new_userns(sync)
        except OSError as exc:
            raise unshare_error(exc) if exc.errno in (1, 28, 22) else exc

    def map_it(pid):
        sync.in_parent()
        try:
            parent_map_child(sync, pid, idmap)
        finally:
            sync.close_parent()

    return spawn_keeper(KEEPER_NAME, enter, map_it,
                        what="cannot create the user namespace")


def spawn_keeper(name, enter, in_parent=None, what="cannot start a keeper",
                 command=None):
    """Fork a process that holds namespaces and nothing else: it leaves the
    terminal's session, runs ``enter()`` (which makes or joins them), and
    execs `sleep infinity` named ``name``, so nothing of Python stays
    resident.  ``in_parent(pid)`` runs here meanwhile (the id maps); if it
    fails, the child is killed.  A failure in the child is raised here as a
    HostError that starts with ``what``.  Returns the pid.
    ``command``: a program (argv) to exec instead of sleep, with fd 3 the fd
    that ``enter()`` returned; sleep all the same if it cannot be exec'd."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(err_r)
            os.setsid()                  # no terminal signals reach it
            os.chdir("/")
            nul = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(nul, fd)
            kept = enter()
            if command and kept is not None:
                import fcntl
                high = fcntl.fcntl(err_w, fcntl.F_DUPFD_CLOEXEC, 10)
                os.close(err_w)
                err_w = high
                if kept != 3:
                    os.dup2(kept, 3)
                    os.close(kept)
                os.set_inheritable(3, True)  # (dup2 onto itself keeps CLOEXEC)
                first = 4
            else:
                command, first = None, 3
            # Nothing inherited stays open for the keeper's whole life (a
            # caller's lock, such as scripts/test's, would be held forever).
            os.closerange(first, err_w)
            os.closerange(err_w + 1, 1 << 16)
            if command:
                try:
                    os.execv(command[0], [name] + list(command[1:]))
                except OSError:
                    os.close(3)
            for sleeper in ("/usr/bin/sleep", "/bin/sleep"):
                if os.access(sleeper, os.X_OK):
                    os.execv(sleeper, [name, "infinity"])
            import signal
            while True:
                signal.pause()
        except BaseException as exc:   # noqa: BLE001 - reported to the parent
            msg = exc.message if isinstance(exc, SandboxError) else str(exc)
            hint = getattr(exc, "hint", None) or ""
            try:
                os.write(err_w, ("%s\0%s" % (msg or "failed", hint)).encode())
            except OSError:
                pass
        os._exit(1)
    os.close(err_w)
    if in_parent is not None:
        try:
            in_parent(pid)
        except BaseException:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(err_r)
            raise
    failure = fsutil.read_all(err_r)          # EOF at the exec of sleep
    os.close(err_r)
    if failure:
        os.waitpid(pid, 0)
        msg, _, hint = failure.decode(errors="replace").partition("\0")
        raise HostError("%s: %s" % (what, msg), hint=hint or None)
    return pid


def join_userns(fd):
    """In a forked child: enter the shared user namespace as its root."""
    linux.setns(fd, linux.CLONE_NEWUSER)
    os.close(fd)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def run_in_userns(func, *args, extra_flags=0, idmap=None):
    """Run ``func(*args)`` as root of the user's shared user namespace in a
    forked child and return its result.  SandboxErrors raised by ``func``
    are raised again here; other exceptions become HostErrors with their
    text."""
    import pickle
    import struct
    nsfd = shared_userns_fd(idmap)
    res_r, res_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(res_r)
            join_userns(nsfd)
            if extra_flags:
                linux.unshare(extra_flags)
            try:
                payload = pickle.dumps((True, func(*args)))
            except SandboxError as exc:
                payload = pickle.dumps((False, exc))
                code = 1
            except BaseException as exc:   # noqa: BLE001 - reported to parent
                payload = pickle.dumps((False, HostError(
                    "%s: %s" % (type(exc).__name__, exc))))
                code = 1
        except BaseException as exc:   # noqa: BLE001
            try:
                payload = pickle.dumps((False, exc if isinstance(exc, SandboxError)
                                        else HostError(str(exc))))
            except Exception:
                payload = pickle.dumps((False, HostError(repr(exc))))
            code = 1
        try:
            fsutil.write_all(res_w, struct.pack("!Q", len(payload)) + payload)
        finally:
            os._exit(code)
    os.close(res_w)
    os.close(nsfd)
    try:
        data = fsutil.read_all(res_r)
    finally:
        os.close(res_r)
        os.waitpid(pid, 0)
    if len(data) < 8:
        raise HostError("helper process in the user namespace died")
    ok, value = pickle.loads(data[8:])
    if ok:
        return value
    raise value
