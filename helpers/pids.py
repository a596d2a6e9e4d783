"""Processes named by pid *and* start time: a pid alone can be reused, so
every record that points at a process keeps both."""


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def alive(pid, start):
    """Is the process that had ``pid`` and ``start`` still there?  A zombie
    is not: it has ended, only its parent has not reaped it yet (an init
    that reaps late, or a parent that is itself stuck)."""
    if not pid or start is None:
        return False
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return False
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == start
