"""--log-driver and --log-opt: where a container's output is kept.

Two of Docker's drivers: ``json-file`` (the default: <id>-json.log, one
JSON object a line) with its rotation options ``max-size`` and
``max-file`` and its attribute options ``labels``, ``labels-regex``,
``env`` and ``env-regex`` (the container's labels and environment
variables they name, written with each line as "attrs", for log shippers,
and shown by `logs --details`), and ``none`` (nothing kept; `logs` refuses, the terminal and
`attach` still see the output).  ~/.config/sandbox/config.json may give
the defaults as Docker's daemon.json does: ``"log-driver"`` and
``"log-opts"`` (merged under the flags when the driver is the same).

Rotation is Docker's: once the file holds max-size bytes, the next write
first moves it to <log>.1 (.1 to .2, ..., the oldest beyond max-file
removed); with max-file 1 the file is emptied instead.  `logs` reads the
rotated files, oldest first, then the live one.  Both writers follow it:
LogWriter (monitor.py) and native/monitor.c's log_rotate.
"""

import os

from ..errors import UsageError

DRIVERS = ("json-file", "none")
JSON_FILE_OPTS = ("max-size", "max-file", "labels", "labels-regex", "env", "env-regex")
# Docker's options of every driver (compose files set them): "mode" and
# its "max-buffer-size" are taken and checked as Docker does; the
# supervisor reads the output as it comes and drops nothing either way.
DELIVERY_OPTS = ("mode", "max-buffer-size")
DEFAULT = {"Type": "json-file", "Config": {}}


def parse(driver, opts, defaults=None):
    """The record's LogConfig ({"Type", "Config"}) from --log-driver and the
    --log-opt K=V list, over ``defaults`` (config.json's): checked now,
    before any side effect."""
    if defaults is None:
        defaults = _config_defaults()
    base_type = defaults.get("log-driver") or "json-file"
    kind = driver or base_type
    if kind not in DRIVERS:
        raise UsageError("unsupported log driver %r" % kind,
                         hint="supported: %s" % ", ".join(DRIVERS))
    config = {}
    if kind == base_type:
        config.update(defaults.get("log-opts") or {})
    for opt in opts or []:
        key, sep, value = opt.partition("=")
        if not sep or not key:
            raise UsageError("invalid --log-opt %r: expected KEY=VALUE" % opt)
        config[key] = value
    for key in config:
        if kind == "none" or key not in JSON_FILE_OPTS + DELIVERY_OPTS:
            raise UsageError("unknown log opt '%s' for %s log driver" % (key, kind),
                             hint="json-file takes max-size and max-file; "
                                  "none takes no option" if kind == "none" else
                                  "json-file takes max-size, max-file, labels, "
                                  "labels-regex, env, env-regex (and mode, "
                                  "max-buffer-size)")
    for key in ("labels-regex", "env-regex"):
        if config.get(key):
            import re
            try:
                re.compile(config[key])
            except re.error as exc:
                raise UsageError("invalid %s %r: %s" % (key, config[key], exc)) from None
    mode = config.get("mode", "blocking")
    if mode not in ("blocking", "non-blocking"):
        raise UsageError("logger: unknown mode %r" % mode,
                         hint="blocking or non-blocking")
    if "max-buffer-size" in config:
        if mode != "non-blocking":
            raise UsageError("logger: max-buffer-size option is only supported "
                             "with 'mode=non-blocking'")
        from ..cgroups import ram_in_bytes
        try:
            ram_in_bytes(config["max-buffer-size"])
        except ValueError:
            raise UsageError("invalid max-buffer-size %r" % config["max-buffer-size"],
                             hint="a size such as 4m") from None
    return {"Type": kind, "Config": {k: str(v) for k, v in config.items()}}


def _config_defaults():
    from ..paths import config_dir, user_config
    cfg = user_config()
    if not isinstance(cfg.get("log-opts") or {}, dict):
        raise UsageError("%s: \"log-opts\" must be an object of strings"
                         % os.path.join(config_dir(), "config.json"))
    return cfg


def limits(config):
    """(max_size in bytes, 0 for no limit; max_files >= 1) of a json-file
    LogConfig's Config, as Docker reads them."""
    max_size = 0
    if "max-size" in config:
        from ..cgroups import ram_in_bytes
        try:
            max_size = ram_in_bytes(config["max-size"])
        except ValueError:
            raise UsageError("invalid max-size %r" % config["max-size"],
                             hint="a size such as 10m or 512k") from None
        if max_size <= 0:
            raise UsageError("max-size must be a positive number")
    max_files = 1
    if "max-file" in config:
        try:
            max_files = int(config["max-file"])
        except ValueError:
            raise UsageError("invalid max-file %r: not a number" % config["max-file"]) from None
        if max_files < 1:
            raise UsageError("max-file cannot be less than 1")
    return max_size, max_files


def attrs(config, labels, env):
    """Docker's extra attributes of each log line: {key: value} of the
    container's labels (a dict) and environment (K=V strings) that the
    LogConfig's Config names (labels=, env=: comma-separated keys) or
    matches (labels-regex=, env-regex=: a search, as Go's MatchString)."""
    import re
    extra = {}
    labels = labels or {}
    envmap = dict(e.split("=", 1) for e in env or () if "=" in e)
    for source, names, pattern in ((labels, "labels", "labels-regex"),
                                   (envmap, "env", "env-regex")):
        for key in (config.get(names) or "").split(","):
            if key in source:
                extra[key] = source[key]
        if config.get(pattern):
            rx = re.compile(config[pattern])
            extra.update((k, v) for k, v in source.items() if rx.search(k))
    return extra


def of(record):
    """A container record's LogConfig (records of older versions: json-file)."""
    return (record or {}).get("LogConfig") or DEFAULT


def writer_limits(record):
    """None for the none driver, else (max_size, max_files): from the
    record's LogLimits, parsed at create (a supervisor imports nothing it
    can do without: see monitor.preload)."""
    if of(record)["Type"] == "none":
        return None
    return tuple(record.get("LogLimits") or (0, 1))


def rotated(path, max_files):
    """The rotated files' names, newest first: <log>.1 .. <log>.(N-1)."""
    return ["%s.%d" % (path, i) for i in range(1, max_files)]


def files(path):
    """The log's files to read, oldest first: <log>.N ... <log>.1, <log>
    (those that exist; the live one last even when missing)."""
    old = []
    i = 1
    while os.path.exists("%s.%d" % (path, i)):
        old.append("%s.%d" % (path, i))
        i += 1
    return old[::-1] + [path]


def next_file(path, st):
    """For a reader of the rotated file ``st`` (an os.stat_result): the
    file written after it (a rotated one when the writer has rotated more
    than once since, else the live log; also when ``st`` is gone)."""
    names = files(path)
    for i, name in enumerate(names[:-1]):
        try:
            other = os.stat(name)
        except FileNotFoundError:
            continue
        if (other.st_ino, other.st_dev) == (st.st_ino, st.st_dev):
            return names[i + 1]
    return path


def rotate(fd, path, max_files):
    """Docker's rotation of the live log, open as ``fd`` (O_APPEND): the
    new fd to write to.  max-file 1 empties the file in place."""
    if max_files <= 1:
        os.ftruncate(fd, 0)
        return fd
    names = rotated(path, max_files)
    try:
        os.unlink(names[-1])
    except FileNotFoundError:
        pass
    for older, newer in zip(reversed(names), reversed([path] + names[:-1])):
        try:
            os.rename(newer, older)
        except FileNotFoundError:
            pass
    new = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    os.close(fd)
    return new
