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
    """Is the process that had ``pid`` and ``start`` still there?"""
    return bool(pid) and start is not None and proc_start_time(pid) == start
