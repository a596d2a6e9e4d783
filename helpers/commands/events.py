"""`events`: Docker's, from the log every command appends to (events.py)."""

import datetime
import os
import time

from ..errors import UsageError

FILTERS = ("container", "event", "image", "label", "type", "volume", "network")
TYPES = ("container", "image", "volume", "network")


def register(sub):
    p = sub.add_parser("events", help="show what happens to containers, images, "
                                      "volumes and networks",
                       description="Print events as they happen (from now, or from "
                                   "--since), until interrupted or --until.")
    p.add_argument("--since", help="from this time: RFC 3339, Unix seconds, or a "
                                   "duration ago (10m)")
    p.add_argument("--until", help="up to this time (then exit)")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="container=, event=, image=, label=K[=V], type=, volume=, "
                        "network= (the same key twice: either)")
    p.add_argument("--format", help="a Go template (e.g. '{{json .}}') or 'json'")
    p.set_defaults(func=cmd_events)


class Event(dict):
    """An event for --format: the message's JSON (what {{json .}} prints),
    whose older lowercase fields are also Docker's Go names ({{.Status}},
    {{.ID}}, {{.From}}, {{.Scope}}, {{.Time}}, {{.TimeNano}})."""
    ALIASES = {"Status": "status", "ID": "id", "From": "from", "Scope": "scope",
               "Time": "time", "TimeNano": "timeNano"}

    def __contains__(self, key):
        return dict.__contains__(self, key) or (
            key in self.ALIASES and dict.__contains__(self, self.ALIASES[key]))

    def __missing__(self, key):
        return dict.__getitem__(self, self.ALIASES[key])


def parse_filters(values):
    """--filter K=V -> a predicate on an event message (filters.py: bad
    filters are refused before anything is read)."""
    from ..filters import group, matches as all_keys
    from ..options import has_label

    def check(key, value):
        if key == "type" and value not in TYPES:
            raise UsageError("invalid filter 'type=%s'" % value,
                             hint="type=" + "|".join(TYPES))
        return value
    wanted = group(values, FILTERS, check)

    def matches(msg):
        actor = msg.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        names = {actor.get("ID", ""), attributes.get("name", "")}

        def one(key, value):
            if key == "type":
                return msg.get("Type") == value
            if key == "event":
                # "health_status: healthy" is event=health_status too
                return msg.get("Action") == value or \
                    msg.get("Action", "").split(":")[0] == value
            if key == "label":
                return has_label(attributes, value)
            if key == "image" and msg.get("Type") == "container":
                return attributes.get("image") == value
            return msg.get("Type") == key and (
                value in names or (len(value) >= 3 and actor.get("ID", "").startswith(value)))
        return all_keys(wanted, one)
    return matches


def _line(msg):
    """Docker's default line: local time with nanoseconds, type, action,
    id, (attributes)."""
    stamp = rfc3339(message_nanos(msg))
    actor = msg.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    text = "%s %s %s %s" % (stamp, msg.get("Type"), msg.get("Action"), actor.get("ID"))
    if attributes:
        text += " (%s)" % ", ".join("%s=%s" % kv for kv in sorted(attributes.items()))
    return text


def message_nanos(msg):
    """An event message's time in nanoseconds."""
    return msg.get("timeNano") or msg.get("time", 0) * 1000000000


def rfc3339(nanos, trim=False):
    """Local time as Go prints RFC 3339 with nanoseconds (Z for UTC, else
    +01:00); ``trim``: without the fraction's trailing zeros, as Go's
    RFC3339Nano (its JSON form of a time)."""
    when = datetime.datetime.fromtimestamp(nanos // 1000000000).astimezone()
    zone = when.strftime("%z")
    fraction = ".%09d" % (nanos % 1000000000)
    if trim:
        fraction = fraction.rstrip("0").rstrip(".")
    return when.strftime("%Y-%m-%dT%H:%M:%S") + fraction + \
        ("Z" if zone in ("+0000", "") else zone[:3] + ":" + zone[3:])


def _printer(fmt):
    if not fmt:
        return _line
    if fmt == "json":
        import json
        return lambda msg: json.dumps(msg, separators=(",", ":"))
    from ..gotemplate import render
    return lambda msg: render(fmt, Event(msg))


def cmd_events(args, paths):
    matches = parse_filters(args.filter)
    show = _printer(args.format)

    def handle(msg):
        if matches(msg):
            print(show(msg), flush=True)
    follow(paths, args.since, args.until, handle)
    return 0


def follow(paths, since, until, handle):
    """Call ``handle(message)`` for each event from ``since`` (the
    --since text; None: now) on, until ``until`` (--until; None: until
    interrupted).  Also for `compose events`."""
    from .. import events, jsonfast
    from .containers import parse_when
    now = time.time()
    since = parse_when(since, now) if since is not None else now
    until = parse_when(until, now) if until is not None else None
    path = events.log_path(paths)

    def one(line):
        try:
            msg = jsonfast.loads(line)
        except ValueError:
            return                    # a line cut short by a full disk
        t = msg.get("timeNano", 0) / 1e9
        if t < since or (until is not None and t > until):
            return
        handle(msg)

    follower = _Follower(path)
    for line in follower.backlog():
        one(line)
    delay = 0.05
    while until is None or time.time() <= until:
        lines = follower.read()
        for line in lines:
            one(line)
        if lines:
            delay = 0.05
            continue
        time.sleep(delay if until is None else max(0.0, min(delay, until - time.time())))
        delay = min(delay * 1.5, 0.25)
    for line in follower.read():     # what came in the last moment
        one(line)


class _Follower:
    """The log's lines: those written already (its rotated file first),
    then the new ones, across rotations (events.jsonl becomes .1 and a new
    file starts: the old one is read to its end first)."""

    def __init__(self, path):
        self.path = path
        self.f = None
        self.pending = b""

    def backlog(self):
        lines = []
        try:
            with open(self.path + ".1", "rb") as old:
                lines += old.read().splitlines()
        except FileNotFoundError:
            pass
        self._open()
        return lines + self.read()

    def _open(self):
        try:
            self.f = open(self.path, "rb")
        except FileNotFoundError:
            self.f = None
        self.pending = b""

    def read(self):
        if self.f is None:
            self._open()
            if self.f is None:
                return []
        data = self.pending + self.f.read()
        lines = data.split(b"\n")
        self.pending = lines.pop()
        if not lines and not self.pending:
            try:
                current = os.stat(self.path)
                mine = os.fstat(self.f.fileno())
                if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
                    self.f.close()
                    self._open()        # rotated (this one was drained above)
                    return self.read()
            except FileNotFoundError:
                pass
        return [line for line in lines if line]
