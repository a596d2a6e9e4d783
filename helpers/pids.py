"""Processes named by pid *and* start time: a pid alone can be reused, so
every record that points at a process keeps both."""

from .fsutil import read_bytes


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (so field 3 of
    proc(5), the state, is [0]; the parent pid [1]; the start time [19]),
    or None when there is no such process."""
    try:
        data = read_bytes("/proc/%d/stat" % pid, 4096)
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def ended(fields):
    """Do these stat fields belong to no process, or to one that has ended
    (a zombie: only its parent has not reaped it yet, an init that reaps
    late, or a parent that is itself stuck)?"""
    return not fields or fields[0] in (b"Z", b"X")


def alive(pid, start):
    """Is the process that had ``pid`` and ``start`` still there?  A zombie
    is not."""
    if not pid or start is None:
        return False
    fields = stat_fields(pid)
    return not ended(fields) and int(fields[19]) == start


def in_namespace(kind, inode):
    """Pids of the processes in the namespace of that kind ("pid", "mnt")
    and inode number (the st_ino of /proc/PID/ns/KIND)."""
    import os
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat("/proc/%s/ns/%s" % (entry, kind)).st_ino == inode:
                    found.append(int(entry))
            except OSError:
                continue
    return sorted(found)
