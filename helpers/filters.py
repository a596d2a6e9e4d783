"""Docker's --filter KEY=VALUE, for every listing that takes it (ps,
volume ls, network ls, events): a key given twice matches either value,
different keys must all match, and every key and value is checked before
anything is listed (so a bad filter is refused even when there is
nothing to list)."""

from .errors import UsageError


def group(filters, keys, check=None):
    """The --filter words -> {key: [values]}.  ``keys``: the known ones;
    ``check(key, value)``: refuses a bad value, or returns the value to
    match with (a time, a set of ports, ...)."""
    groups = {}
    for f in filters:
        key, eq, value = f.partition("=")
        if not eq:
            raise UsageError("bad filter %r" % f, hint="use KEY=VALUE")
        if key not in keys:
            raise UsageError("invalid filter %r" % key, hint=", ".join(keys))
        groups.setdefault(key, []).append(check(key, value) if check else value)
    return groups


def matches(groups, one):
    """Whether ``one(key, value)`` holds for a value of every key."""
    return all(any(one(key, value) for value in values) for key, values in groups.items())
