"""helpers/options.py: the command-line parser that replaced argparse."""

import subprocess
import sys

import pytest

from helpers.options import REMAINDER, ArgumentTypeError, Parser


def run_parser():
    p = Parser("sandbox run", add_help=False)
    p.add_argument("--help", action="help", help="show this help")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-h", "--hostname")
    p.add_argument("--name")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--pull", choices=("missing", "always", "never"), default="missing")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=REMAINDER, metavar="CMD")
    return p


def fails(parser, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(argv)
    assert exc.value.code == 125
    err = capsys.readouterr().err
    assert err.startswith("usage: "), err
    assert "hint: see '%s --help'" % parser.prog in err
    return err


def test_flags_values_and_remainder():
    a = run_parser().parse_args(
        ["-it", "--name=web", "-eA=1", "-e", "B=2", "-e=C=3", "-h", "box",
         "--stop-timeout", "5", "busybox", "sh", "-c", "echo -e --name x"])
    assert (a.interactive, a.tty, a.detach) == (True, True, False)
    assert a.name == "web" and a.hostname == "box" and a.stop_timeout == 5
    assert a.env == ["A=1", "B=2", "C=3"]
    assert a.image == "busybox"
    assert a.command == ["sh", "-c", "echo -e --name x"]
    assert a.pull == "missing"


def test_flags_take_docker_booleans():
    a = run_parser().parse_args(["--detach=false", "-i=true", "-t=1", "img"])
    assert (a.detach, a.interactive, a.tty) == (False, True, True)
    a = run_parser().parse_args(["-d", "--detach=False", "img"])
    assert a.detach is False


def test_remainder_keeps_flags_after_the_image():
    a = run_parser().parse_args(["busybox", "-d", "--", "x"])
    assert not a.detach and a.command == ["-d", "--", "x"]
    a = run_parser().parse_args(["-d", "busybox"])
    assert a.detach and a.command == []


def test_append_default_is_not_shared():
    p = run_parser()
    p.parse_args(["-e", "X=1", "img"])
    assert p.parse_args(["img"]).env == []


def test_errors_exit_125_with_usage(capsys):
    p = run_parser()
    assert "unknown flag: --nope" in fails(p, ["--nope", "img"], capsys)
    assert "unknown flag: -z" in fails(p, ["-iz", "img"], capsys)
    assert "required: IMAGE" in fails(p, ["-d"], capsys)
    assert "flag needs an argument: --name" in fails(p, ["--name"], capsys)
    assert "flag needs an argument: --name" in fails(p, ["--name", "--rm", "img"], capsys)
    assert "invalid int value: 'soon'" in fails(p, ["--stop-timeout", "soon", "i"], capsys)
    assert "invalid choice: 'sometimes'" in fails(p, ["--pull", "sometimes", "i"], capsys)
    assert "a flag is true or false" in fails(p, ["--detach=yes", "img"], capsys)


def test_negative_numbers_are_values():
    p = Parser("sandbox logs")
    p.add_argument("-n", "--tail", type=int, default=-1)
    p.add_argument("things", nargs="*")
    a = p.parse_args(["--tail", "-5", "-3"])
    assert a.tail == -5 and a.things == ["-3"]


def test_positionals_interleave_and_share_out():
    p = Parser("sandbox cp")
    p.add_argument("-a", "--archive", action="store_true")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("last", metavar="LAST")
    p.add_argument("opt", nargs="?", metavar="OPT")
    a = p.parse_args(["x", "-a", "y", "z"])
    assert a.archive and a.names == ["x", "y"] and a.last == "z" and a.opt is None
    a = p.parse_args(["x", "-", "--", "-a"])
    assert not a.archive and a.names == ["x", "-"] and a.last == "-a"


def test_too_many_positionals(capsys):
    p = Parser("sandbox rename")
    p.add_argument("old")
    p.add_argument("new")
    assert "unexpected arguments: c" in fails(p, ["a", "b", "c"], capsys)


def test_type_error_message(capsys):
    def when(s):
        raise ArgumentTypeError("%r is not a time" % s)
    p = Parser("sandbox logs")
    p.add_argument("--since", type=when)
    assert "argument --since: 'x' is not a time" in fails(p, ["--since", "x"], capsys)


def test_subcommands_aliases_and_defaults(capsys):
    top = Parser("sandbox")
    top.add_argument("--root")
    sub = top.add_subparsers(dest="verb")
    net = sub.add_parser("network", help="manage networks")
    nsub = net.add_subparsers(dest="network_verb")
    ls = nsub.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true")
    ls.set_defaults(func="ls")
    a = top.parse_args(["--root", "/r", "network", "list", "-q"])
    assert (a.root, a.verb, a.network_verb, a.quiet, a.func) == (
        "/r", "network", "list", True, "ls")
    assert a._parser is ls
    a = top.parse_args(["network"])
    assert a.verb == "network" and a.network_verb is None and "func" not in a
    assert a._parser is net
    assert "unknown command: 'bogus'" in fails(net, ["bogus"], capsys)
    out = net.format_help()
    assert "ls, list" in out and "list networks" in out and "Commands:" in out


def test_help_and_version_exit_0():
    code = ("import sys; from helpers.options import Parser\n"
            "p = Parser('sandbox', description='Containers.')\n"
            "p.add_argument('--version', action='version', version='sandbox 9')\n"
            "p.add_argument('-e', '--env', action='append', metavar='K=V', help='set a var')\n"
            "p.parse_args(sys.argv[1:])\n")
    for argv, want in ((["--version"], "sandbox 9\n"), (["-h"], "-e, --env K=V")):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                           text=True, cwd=__file__.rsplit("/tests/", 1)[0])
        assert r.returncode == 0, r.stderr
        assert want in r.stdout


def test_a_known_but_unsupported_flag_says_why(capsys):
    """Docker's flags that sandbox refuses (run's UNSUPPORTED_FLAGS) get
    their reason and a hint, not "unknown flag"; others stay unknown."""
    from helpers.commands.run import add_create_flags
    p = Parser("sandbox run")
    add_create_flags(p)
    p.add_argument("image")
    for argv in (["--gpus", "all", "img"], ["--gpus=all", "img"], ["--link=db", "img"]):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(argv)
        assert exc.value.code == 125
        err = capsys.readouterr().err
        flag = argv[0].split("=")[0]
        assert err.startswith("sandbox: %s is not supported: " % flag) and "\n  hint: " in err
    assert "unknown flag: --bogus" in fails(p, ["--bogus", "img"], capsys)
