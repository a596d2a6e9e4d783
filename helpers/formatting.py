"""Docker's ways of showing things: tables aligned as Go's tabwriter, sizes
and durations as go-units, RFC 3339 times."""

import datetime


def tabulate(rows, minwidth=10, padding=3):
    """Like Go's tabwriter as the docker CLI sets it up (minwidth 10,
    padding 3): every column but the last is padded."""
    widths = [max(minwidth, max(len(r[i]) for r in rows) + padding)
              for i in range(len(rows[0]) - 1)]
    return "\n".join("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1]
                     for r in rows)


def _scaled(size, base, units, digits):
    """go-units' CustomSize: ``size`` in the largest unit below it."""
    size = float(size)
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return "%.*g%s" % (digits, size, units[i])


def human_size(size):
    """go-units HumanSizeWithPrecision(size, 3): decimal units."""
    return _scaled(size, 1000, ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"], 3)


def human_binary_size(size):
    """go-units BytesSize: binary units, as `docker stats` prints memory."""
    return _scaled(size, 1024, ["B", "KiB", "MiB", "GiB", "TiB"], 4)


def parse_time(s):
    if not s or not isinstance(s, str):
        return None
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    main, plus, tz = s.partition("+")
    if not plus and s.count("-") > 2:
        main, tz = s[:s.rfind("-")], s[s.rfind("-"):]
        plus = ""
    if "." in main:
        head, _, frac = main.partition(".")
        main = head + "." + frac[:6]      # Python takes microseconds at most
    try:
        return datetime.datetime.fromisoformat(main + (("+" + tz) if plus else tz))
    except ValueError:
        return None


def human_duration(seconds):
    """go-units HumanDuration."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return "%d seconds" % seconds
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return "%d minutes" % minutes
    hours = int(round(seconds / 3600))
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return "%d hours" % hours
    if hours < 24 * 7 * 2:
        return "%d days" % (hours // 24)
    if hours < 24 * 30 * 2:
        return "%d weeks" % (hours // 24 // 7)
    if hours < 24 * 365 * 2:
        return "%d months" % (hours // 24 // 30)
    return "%d years" % (int(seconds // 3600) // 24 // 365)


def created_since(created, now=None):
    if created is None or created.year < 2:
        return "N/A"
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return human_duration((now - created).total_seconds()) + " ago"


class Row(dict):
    """A listing's row for --format: its columns as a dict (what "json"
    prints), plus Docker's ``{{.Label "KEY"}}`` method over the object's
    labels (an absent key gives "", as in Docker)."""

    def __init__(self, columns, labels=None):
        labels = labels or {}
        super().__init__(columns, Labels=",".join("%s=%s" % kv for kv in sorted(labels.items())))
        self._labels = labels

    def Label(self, key):
        return self._labels.get(key, "")


def format_rows(fmt, rows, headers=None):
    """A listing's --format (ps, images, history): "json" (one object a
    line), "table TEMPLATE" (a header row, columns aligned) or a template
    per row, each rendered with a row dict as dot.  Returns the text, or
    None for no format or a bare "table" (the command's default columns)."""
    if not fmt:
        return None
    if fmt == "json":
        import json
        return "\n".join(json.dumps(r, separators=(",", ":")) for r in rows)
    from .gotemplate import render, split_table, table_header
    is_table, body = split_table(fmt)
    if not is_table:
        return "\n".join(render(body, r) for r in rows)
    if not body:
        return None
    lines = [table_header(body, headers).split("\t")]
    lines += [render(body, r).split("\t") for r in rows]
    width = max(len(line) for line in lines)
    return tabulate([line + [""] * (width - len(line)) for line in lines])


def print_objects(fmt, objects):
    """What every `inspect` prints: each object through the Go template
    ``fmt`` (-f), or all of them as one indented JSON list."""
    if fmt:
        from .gotemplate import render
        for obj in objects:
            print(render(fmt, obj), flush=True)
    else:
        import json
        print(json.dumps(objects, indent=4), flush=True)


def print_rows(fmt, rows, headers=None):
    """Print ``rows`` as --format ``fmt`` asks (see format_rows); False
    when the command should print its default table instead."""
    text = format_rows(fmt, rows, headers)
    if text is None:
        return False
    if text:
        print(text)
    return True
