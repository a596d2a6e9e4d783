"""Container records on disk: containers/<id>/state.json plus a name index.

Names are reserved with ``names/<name>`` symlinks pointing at the id: the
kernel's O_EXCL semantics of symlink(2) make "name already in use" race-free
without a global lock.  state.json is only ever replaced atomically, under
the container's own flock (containers/<id>/lock).
"""

import errno
import os
import time

from .. import fsutil
from ..errors import Conflict, ContainerNotFound, SandboxError, UsageError
from ..pids import alive, proc_start_time  # noqa: F401  (re-exported)

_ADJECTIVES = ("admiring", "bold", "brave", "clever", "dazzling", "eager",
               "elegant", "focused", "gallant", "happy", "jolly", "keen",
               "loving", "modest", "nifty", "quirky", "serene", "sharp",
               "stoic", "tender", "vibrant", "wizardly", "zealous", "quiet")
_NAMES = ("albattani", "babbage", "curie", "dijkstra", "euclid", "feynman",
          "goldberg", "hopper", "hypatia", "knuth", "lamport", "lovelace",
          "mccarthy", "noether", "pascal", "ritchie", "shannon", "thompson",
          "turing", "wozniak", "yalow", "zuse", "kepler", "lamarr")


def names_dir(paths):
    return os.path.join(paths.root, "names")


def new_id():
    return os.urandom(32).hex()


_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _NAME_START | frozenset("_.-")


def valid_name(name):
    """Docker's rule for container (and volume) names,
    [a-zA-Z0-9][a-zA-Z0-9_.-]*, checked without importing re."""
    return bool(name) and name[0] in _NAME_START and _NAME_CHARS.issuperset(name)


def reserve_name(paths, name, cid):
    """Claim ``name`` for ``cid``; Conflict if taken by another container."""
    d = names_dir(paths)
    os.makedirs(d, exist_ok=True)
    try:
        os.symlink(cid, os.path.join(d, name))
    except FileExistsError:
        other = _name_target(paths, name)
        if other is not None and unfinished(paths, other):
            remove_tree(paths, other)       # a killed create's leftover
            other = None
        if other is None:   # stale link of a vanished container
            os.unlink(os.path.join(d, name))
            return reserve_name(paths, name, cid)
        raise Conflict(
            'the container name "/%s" is already in use by container "%s"'
            % (name, other),
            hint="remove (or rename) that container to reuse the name, or "
                 "choose another --name")


# In a container's directory from its mkdir until its record is written:
# the pid and start time of the process making it (mark_creating).
CREATING = "creating"


def mark_creating(paths, cid):
    """create's first act in the container's new directory.  A CLI killed
    before the record is written (SIGKILL: nothing of ours runs) leaves a
    directory without one, invisible to ps and rm but holding its name;
    the marker tells such a leftover (its maker is gone) from a create in
    progress (unfinished, sweep_unfinished)."""
    pid = os.getpid()
    fsutil.write_new(os.path.join(paths.container(cid), CREATING),
                     "%d %d" % (pid, proc_start_time(pid)))


def creation_done(paths, cid):
    try:
        os.unlink(os.path.join(paths.container(cid), CREATING))
    except FileNotFoundError:
        pass


def unfinished(paths, cid):
    """Is ``cid``'s directory the leftover of a create that was killed: no
    record, and its maker gone (without a marker, killed right after the
    mkdir: older than a minute)?"""
    cdir = paths.container(cid)
    if os.path.exists(state_path(paths, cid)):
        return False
    try:
        pid, start = (int(x) for x in fsutil.read_text(os.path.join(cdir, CREATING)).split())
    except FileNotFoundError:
        try:
            return time.time() - os.stat(cdir).st_mtime > 60
        except OSError:
            return False
    except (OSError, ValueError):
        return True         # a marker cut short: its maker was killed writing it
    return not alive(pid, start)


def sweep_unfinished(paths):
    """Remove the leftovers of killed creates (and free their names);
    returns their ids."""
    removed = []
    for cid in list_ids(paths):
        if unfinished(paths, cid):
            name = _name_of(paths, cid)
            try:
                remove_tree(paths, cid)
            except SandboxError:
                continue
            if name:
                release_name(paths, name, cid)
            removed.append(cid)
    return removed


def release_name(paths, name, cid):
    link = os.path.join(names_dir(paths), name)
    try:
        if os.readlink(link) == cid:
            os.unlink(link)
    except OSError:
        pass


def _name_target(paths, name):
    try:
        cid = os.readlink(os.path.join(names_dir(paths), name))
    except OSError:
        return None
    return cid if os.path.isdir(paths.container(cid)) else None


def _pick(words):
    # os.urandom rather than `random`, whose import is slow for one choice.
    return words[int.from_bytes(os.urandom(2), "little") % len(words)]


def generate_name(paths):
    for _ in range(50):
        name = "%s_%s" % (_pick(_ADJECTIVES), _pick(_NAMES))
        if not os.path.lexists(os.path.join(names_dir(paths), name)):
            return name
    return "%s_%s%d" % (_pick(_ADJECTIVES), _pick(_NAMES),
                        int.from_bytes(os.urandom(2), "little") % 1000)


def state_path(paths, cid):
    return os.path.join(paths.container(cid), "state.json")


def write_state(paths, cid, state, durable=True):
    fsutil.write_json(state_path(paths, cid), state, durable=durable)


class DamagedRecord(SandboxError, ValueError):
    """state.json cannot be read (a disk error, a hand edit): one line with
    the way out, not a traceback.  A ValueError too, so that the loops over
    every container (volume and image users) pass it by as before."""


def read_state(paths, cid, damaged_ok=False):
    """The record; a damaged one raises DamagedRecord, or with
    ``damaged_ok`` comes as a stand-in record of status "dead" (what `ps -a`
    lists and `rm` removes, as Docker's dead containers)."""
    path = state_path(paths, cid)
    try:
        st = fsutil.read_json(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ContainerNotFound("No such container: %s" % cid) from None
    except ValueError as exc:
        st, why = None, str(exc)
    else:
        why = "not a JSON object"
    if isinstance(st, dict):
        return st
    if not damaged_ok:
        raise DamagedRecord("the record of container %s is damaged (%s: %s)"
                            % (cid[:12], path, why),
                            hint="sandbox rm %s removes the container" % cid[:12])
    try:
        created = os.stat(paths.container(cid)).st_mtime
    except OSError:
        created = 0
    return {"Id": cid, "Name": _name_of(paths, cid), "Status": "dead", "Damaged": True,
            "Created": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(created)),
            "Error": "the container's record (state.json) is damaged: " + why}


def _name_of(paths, cid):
    """The name reserved for ``cid`` (a scan of the name links)."""
    d = names_dir(paths)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return ""
    for name in names:
        try:
            if os.readlink(os.path.join(d, name)) == cid:
                return name
        except OSError:
            continue
    return ""


def update_state(paths, cid, durable=True, **changes):
    return modify(paths, cid, lambda state: state.update(changes), durable)


class locked(fsutil.locked):
    """The container's lock.  A container whose directory is gone (removed
    meanwhile: rm -f, or --rm after a failed start) is "No such container",
    as for read_state; its directory is not made again."""

    def __init__(self, paths, cid):
        super().__init__(os.path.join(paths.container(cid), "lock"), make_dir=False)
        self.cid = cid

    def __enter__(self):
        try:
            return super().__enter__()
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound("No such container: %s" % self.cid) from None


def modify(paths, cid, change, durable=True):
    """``change(state)`` edits the record in place, under the container's
    lock (for changes that depend on what is there now)."""
    with locked(paths, cid):
        state = read_state(paths, cid)
        change(state)
        write_state(paths, cid, state, durable)
        return state


def list_ids(paths):
    try:
        return sorted(e for e in os.listdir(paths.containers)
                      if len(e) == 64 and not e.startswith("."))
    except FileNotFoundError:
        return []


def resolve(paths, ref):
    """A container by full id, name, or unambiguous id prefix."""
    if not ref:
        raise UsageError("empty container name or id")
    cid = _name_target(paths, ref.lstrip("/"))
    if cid:
        return cid
    if len(ref) == 64 and os.path.isdir(paths.container(ref)):
        return ref
    matches = [c for c in list_ids(paths) if c.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError("multiple containers match id prefix %r" % ref,
                         hint="give more characters of the id")
    raise ContainerNotFound("No such container: %s" % ref)


def image_in_use(paths, image_id):
    """Ids of containers created from ``image_id`` (for rmi)."""
    users = []
    for cid in list_ids(paths):
        try:
            if read_state(paths, cid).get("Image") == image_id:
                users.append(cid)
        except (ContainerNotFound, ValueError):
            continue
    return users


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
        (".%09dZ" % int((t % 1) * 1e9))


def kill_supervisor_of(paths, cid):
    """SIGKILL the processes of ours that hold a file of the container's
    directory open (its supervisor writes the log; the record that held its
    pid is damaged); the container's processes die with it
    (PR_SET_PDEATHSIG)."""
    import signal
    top = paths.container(cid) + "/"
    me, uid = os.getpid(), os.getuid()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fds = "/proc/%s/fd" % pid
        try:
            if int(pid) == me or os.stat("/proc/" + pid).st_uid != uid:
                continue
            if any(os.readlink(os.path.join(fds, fd)).startswith(top)
                   for fd in os.listdir(fds)):
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            continue


def remove_tree(paths, cid):
    """Delete a container's directory."""
    remove_any(paths.container(cid))


def remove_any(path):
    """Delete a tree of ours.  Container upper dirs and volumes hold files
    owned by subordinate ids that the plain user cannot unlink: then the
    deletion runs as root of the user namespace."""
    try:
        fsutil.rmtree(path)
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES, errno.ENOTEMPTY):
            raise
    from ..userns import run_in_userns
    run_in_userns(fsutil.rmtree, path)


ACTIVE = ("running", "paused", "restarting")


def refresh(paths, cid, st=None, damaged_ok=False):
    """The record with reality applied: a container whose supervisor is gone
    (killed, or the machine rebooted) is exited, never running forever.  Its
    processes died with the supervisor (PR_SET_PDEATHSIG chains C and PID 1
    to it), hence Docker's code for a SIGKILL.  ``damaged_ok``: see
    read_state."""
    st = st if st is not None else read_state(paths, cid, damaged_ok)
    if st.get("Status") in ACTIVE and not alive(st.get("MonitorPid"),
                                                st.get("MonitorStart")):
        with locked(paths, cid):
            st = read_state(paths, cid)
            if st.get("Status") in ACTIVE and not alive(st.get("MonitorPid"),
                                                        st.get("MonitorStart")):
                st.update(Status="exited", Pid=0, ExitCode=137,
                          FinishedAt=now_iso(),
                          Error="the container's supervisor ended unexpectedly")
                write_state(paths, cid, st)
    return st


def is_running(st):
    return st.get("Status") in ACTIVE


def stopped(st):
    """Stopped for good, as `wait` means it: not running, not only created."""
    return not is_running(st) and st.get("Status") != "created"
