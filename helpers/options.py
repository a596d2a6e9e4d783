"""Command-line parsing: the part of argparse's API that the verbs use
(``add_argument``, ``add_subparsers``/``add_parser``, ``set_defaults``,
``parse_args``), with Docker's conventions.

Why not argparse: on the start path of every command it costs about 12 ms
here (argparse imports ``re``, which imports ``enum``, ``functools`` and
``collections``, and ``gettext``), a fifth of `sandbox exec`.  This module
imports nothing but ``sys``.

What it understands:
- options: ``--long VALUE``, ``--long=VALUE``, ``-s VALUE``, ``-sVALUE``,
  clustered short flags (``-it``, ``-itd``, ``-ePATH=x``), and, as in
  Docker, an explicit value for a flag (``--rm=false``, ``-d=true``); actions
  ``store`` (default), ``store_true``, ``append`` (the default list is
  copied, never changed), ``help`` and ``version``; ``type`` (a callable
  that raises ValueError or ArgumentTypeError), ``choices``, ``metavar``,
  ``default``, ``dest``;
- positionals with ``nargs`` None, ``?``, ``*``, ``+`` and ``...``
  (REMAINDER: once the positionals before it are filled, everything after
  is the command and its flags, as Docker's `run IMAGE CMD...`);
- options and positionals may be interleaved (`rm a -f`) except after a
  REMAINDER has started; ``--`` ends the options;
- a value is never taken from a following option (``--name --rm`` is an
  error, as in argparse), but a negative number is a value;
- sub-commands (``add_subparsers(dest=...)``, ``add_parser(name,
  aliases=...)``): the first positional picks one and the rest of the line
  is its own.

Errors print the usage line and ``sandbox: MESSAGE`` with a hint, and exit
125 as Docker does for its own usage errors.
"""

import sys

REMAINDER = "..."
HELP_COLUMN = 28          # where option help starts in --help
COMMAND_COLUMN = 16       # where a sub-command's summary starts


class ArgumentTypeError(Exception):
    """Raised by a ``type=`` callable: its text is the whole message."""


class Namespace:
    """The parsed values, one attribute per dest."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __contains__(self, key):
        return key in self.__dict__

    def __repr__(self):
        return "Namespace(%s)" % ", ".join(
            "%s=%r" % kv for kv in sorted(self.__dict__.items()))


class _Argument:
    __slots__ = ("flags", "dest", "action", "default", "type", "choices",
                 "metavar", "help", "nargs", "version")

    def __init__(self, flags, dest, action, default, type_, choices, metavar,
                 help_, nargs, version):
        self.flags, self.dest, self.action = flags, dest, action
        self.default, self.type, self.choices = default, type_, choices
        self.metavar, self.help, self.nargs = metavar, help_, nargs
        self.version = version

    @property
    def takes_value(self):
        return self.action in ("store", "append")

    @property
    def name(self):
        """How errors name it: "-e/--env", or the positional's metavar."""
        return "/".join(self.flags) if self.flags else self.metavar

    def min_count(self):
        return 1 if self.nargs in (None, "+") else 0


class Parser:
    def __init__(self, prog, description=None, add_help=True, help=None):
        self.prog = prog
        self.description = description
        self.summary = help               # one line in the parent's list
        self.options = []
        self.by_flag = {}
        self.positionals = []
        self.defaults = {}
        self.commands = None
        self.also = []                    # [(name, summary)]: more commands to list
        # Docker's flags that sandbox knows and refuses: {flag: (why, hint)},
        # for an error that says so (looked up only for an unknown flag).
        self.unsupported = {}
        if add_help:
            self.add_argument("-h", "--help", action="help", help="show this help")

    # -- building -----------------------------------------------------------
    def add_argument(self, *flags, action="store", dest=None, default=None,
                     type=None, choices=None, metavar=None, help=None,
                     nargs=None, version=None):
        if flags[0].startswith("-"):
            if dest is None:
                longs = [f for f in flags if f.startswith("--")]
                dest = (longs or flags)[0].lstrip("-").replace("-", "_")
            if action == "store_true" and default is None:
                default = False
            if metavar is None and action in ("store", "append"):
                metavar = dest.upper()
            arg = _Argument(flags, dest, action, default, type, choices,
                            metavar, help, nargs, version)
            self.options.append(arg)
            for flag in flags:
                self.by_flag[flag] = arg
        else:
            if nargs == REMAINDER and any(p.nargs is not None for p in self.positionals):
                raise ValueError("only single positionals may precede a REMAINDER")
            arg = _Argument((), flags[0], "store", default, type, choices,
                            metavar or flags[0], help, nargs, version)
            self.positionals.append(arg)
        return arg

    def set_defaults(self, **values):
        self.defaults.update(values)

    def add_subparsers(self, dest, metavar="COMMAND"):
        self.commands = _Commands(self, dest, metavar)
        return self.commands

    # -- parsing ------------------------------------------------------------
    def parse_args(self, argv):
        ns = Namespace()
        self._parse(list(argv), ns)
        return ns

    def _parse(self, argv, ns):
        for arg in self.options:
            if arg.action in ("store", "append", "store_true"):
                setattr(ns, arg.dest, arg.default)
        for arg in self.positionals:
            setattr(ns, arg.dest, arg.default)
        if self.commands is not None:
            setattr(ns, self.commands.dest, None)
        for key, value in self.defaults.items():
            setattr(ns, key, value)
        words = []
        remainder_after = self._remainder_after()
        i = 0
        while i < len(argv):
            arg = argv[i]
            i += 1
            if arg == "--":
                words.extend(argv[i:])
                break
            if arg.startswith("--"):
                flag, eq, value = arg.partition("=")
                i = self._take(self._option(flag), flag, value if eq else None,
                               argv, i, ns)
            elif arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
                for j in range(1, len(arg)):
                    flag = "-" + arg[j]
                    option = self._option(flag)
                    attached = arg[j + 1:]
                    if option.takes_value or attached.startswith("="):
                        if attached.startswith("="):      # -e=K=V, -d=false
                            attached = attached[1:]
                        i = self._take(option, flag, attached or None, argv, i, ns)
                        break
                    self._take(option, flag, None, argv, i, ns)
            elif self.commands is not None:
                self.commands.dispatch(arg, argv[i:], ns)
                return
            else:
                words.append(arg)
                if remainder_after is not None and len(words) == remainder_after:
                    words.extend(argv[i:])
                    break
        self._assign(words, ns)

    def _remainder_after(self):
        """How many positionals come before a REMAINDER one (None: none)."""
        for n, arg in enumerate(self.positionals):
            if arg.nargs == REMAINDER:
                return n
        return None

    def _option(self, flag):
        option = self.by_flag.get(flag)
        if option is None:
            if flag in self.unsupported:
                why, hint = self.unsupported[flag]
                sys.stderr.write("sandbox: %s is not supported: %s\n  hint: %s\n"
                                 % (flag, why, hint))
                sys.exit(125)
            self.error("unknown flag: %s" % flag)
        return option

    def _take(self, option, flag, value, argv, i, ns):
        """Apply one option; returns the index of the next word."""
        action = option.action
        if action == "help":
            sys.stdout.write(self.format_help())
            sys.exit(0)
        if action == "version":
            sys.stdout.write(option.version + "\n")
            sys.exit(0)
        if action == "store_true":
            if value is None:
                setattr(ns, option.dest, True)
            elif value in _TRUE or value in _FALSE:
                setattr(ns, option.dest, value in _TRUE)
            else:
                self.error("invalid argument %r for %s: a flag is true or false"
                           % (value, flag))
            return i
        if value is None:
            if i >= len(argv) or (argv[i].startswith("-") and len(argv[i]) > 1
                                  and not _is_number(argv[i])):
                self.error("flag needs an argument: %s" % option.name)
            value = argv[i]
            i += 1
        value = self._convert(option, value)
        if action == "append":
            value = list(getattr(ns, option.dest) or ()) + [value]
        setattr(ns, option.dest, value)
        return i

    def _convert(self, arg, value):
        if arg.type is not None:
            try:
                value = arg.type(value)
            except ArgumentTypeError as exc:
                self.error("argument %s: %s" % (arg.name, exc))
            except (TypeError, ValueError):
                self.error("argument %s: invalid %s value: %r" % (
                    arg.name, getattr(arg.type, "__name__", "typed"), value))
        if arg.choices is not None and value not in arg.choices:
            self.error("argument %s: invalid choice: %r (choose from %s)" % (
                arg.name, value, ", ".join(repr(c) for c in arg.choices)))
        return value

    def _assign(self, words, ns):
        """Hand the positional words out in order; each takes what it may
        while leaving enough for the required ones after it."""
        specs = self.positionals
        at = 0
        missing = []
        for n, arg in enumerate(specs):
            left = len(words) - at - sum(s.min_count() for s in specs[n + 1:])
            if arg.nargs is None:
                if left < 1:
                    missing.append(arg.metavar)
                    continue
                setattr(ns, arg.dest, self._convert(arg, words[at]))
                at += 1
            elif arg.nargs == "?":
                if left >= 1:
                    setattr(ns, arg.dest, self._convert(arg, words[at]))
                    at += 1
            else:
                take = max(left, 0)
                if arg.nargs == "+" and take < 1:
                    missing.append(arg.metavar)
                    continue
                setattr(ns, arg.dest, [self._convert(arg, w) for w in words[at:at + take]])
                at += take
        if missing:
            self.error("the following arguments are required: %s" % ", ".join(missing))
        if at < len(words):
            self.error("unexpected arguments: %s" % " ".join(words[at:]))

    # -- output -------------------------------------------------------------
    def format_usage(self):
        parts = [self.prog]
        if self.options:
            parts.append("[OPTIONS]")
        for arg in self.positionals:
            m = arg.metavar
            parts.append({None: m, "?": "[%s]" % m, "+": "%s [%s...]" % (m, m)}.get(
                arg.nargs, "[%s...]" % m))
        if self.commands is not None:
            parts.append(self.commands.metavar)
        return "usage: %s\n" % " ".join(parts)

    def format_help(self):
        out = [self.format_usage()]
        if self.description:
            out.append("\n%s\n" % self.description)
        if self.commands is not None:
            out.append("\nCommands:\n")
            for names, parser in self.commands.names:
                out.append(_help_line(", ".join(names), parser.summary, COMMAND_COLUMN))
            for name, summary in self.also:
                out.append(_help_line(name, summary, COMMAND_COLUMN))
        if self.options:
            out.append("\nOptions:\n")
            for arg in self.options:
                label = ", ".join(arg.flags)
                if arg.takes_value:
                    label += " " + arg.metavar
                out.append(_help_line(label, arg.help))
        return "".join(out)

    def print_help(self, file=None):
        (file or sys.stdout).write(self.format_help())

    def error(self, message):
        sys.stderr.write(self.format_usage())
        sys.stderr.write("sandbox: %s\n  hint: see '%s --help'\n" % (message, self.prog))
        sys.exit(125)


class _Commands:
    """What add_subparsers returns: the table of sub-commands."""

    def __init__(self, parent, dest, metavar):
        self.parent, self.dest, self.metavar = parent, dest, metavar
        self.parsers = {}
        self.names = []              # [((name, *aliases), parser)] in order

    def add_parser(self, name, aliases=(), help=None, description=None,
                   add_help=True):
        parser = Parser("%s %s" % (self.parent.prog, name),
                        description=description or _sentence(help),
                        add_help=add_help, help=help)
        for n in (name, *aliases):
            self.parsers[n] = parser
        self.names.append(((name, *aliases), parser))
        return parser

    def dispatch(self, word, rest, ns):
        parser = self.parsers.get(word)
        if parser is None:
            self.parent.error("unknown command: %r" % word)
        setattr(ns, self.dest, word)
        ns._parser = parser
        parser._parse(rest, ns)


def _help_line(label, text, column=HELP_COLUMN):
    label = "  " + label
    if not text:
        return label + "\n"
    if len(label) >= column - 1:
        return "%s\n%s%s\n" % (label, " " * column, text)
    return "%s%s\n" % (label.ljust(column), text)


def _sentence(text):
    return text[:1].upper() + text[1:] + "." if text else None


# Go's strconv.ParseBool, as Docker reads --rm=false or -d=true.
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _is_number(word):
    """-1, -2.5: a value, not a flag."""
    try:
        float(word)
    except ValueError:
        return False
    return True


def add_content_trust_flag(p):
    """Docker's --disable-content-trust (true by default there too): image
    signatures are never checked here, so it is accepted, and =false is
    refused (cli.main)."""
    p.add_argument("--disable-content-trust", action="store_true", default=True,
                   help="accepted (image signatures are not checked)")


def labels(items, flag="--label"):
    """KEY=VALUE words (-l, --label) -> {KEY: VALUE}; a missing KEY is
    refused (a missing "=" gives an empty value, as Docker)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            from .errors import UsageError
            raise UsageError("invalid %s %r" % (flag, item), hint="use %s KEY=VALUE" % flag)
        out[key] = value
    return out


def has_label(labels, item):
    """A label=K[=V] filter: ``labels`` has K (with the value V if given)."""
    key, has_value, value = item.partition("=")
    return key in labels and (not has_value or labels[key] == value)
