"""cli.py's verb finding: global options skipped, and Docker's management
commands (`container rm`, `image build`) taken as the top-level verbs."""

import contextlib

import pytest

from helpers import cli


@pytest.mark.parametrize("argv,verb", [
    (["run", "busybox"], "run"),
    (["--root", "/r", "--debug", "ps", "-a"], "ps"),
    (["--storage-driver", "vfs", "images"], "images"),
    (["--version"], None),
    ([], None),
])
def test_find_verb(argv, verb):
    assert cli.find_verb(argv) == verb


@pytest.mark.parametrize("argv,expected", [
    (["container", "rm", "-f", "x"], ["rm", "-f", "x"]),
    (["--root", "/r", "container", "run", "--rm", "busybox"],
     ["--root", "/r", "run", "--rm", "busybox"]),
    (["image", "build", "-t", "a", "."], ["build", "-t", "a", "."]),
    (["image", "pull", "busybox"], ["pull", "busybox"]),
    (["builder", "build", "."], ["build", "."]),
    (["system", "info", "-f", "json"], ["info", "-f", "json"]),
    (["buildx", "build", "--push", "-t", "r/x", "."], ["build", "--push", "-t", "r/x", "."]),
    (["system", "df"], ["system", "df"]),
    # The management commands' own subcommands stay theirs.
    (["container", "ls", "-a"], ["container", "ls", "-a"]),
    (["container", "prune", "-f"], ["container", "prune", "-f"]),
    (["image", "rm", "busybox"], ["image", "rm", "busybox"]),
    (["image", "inspect", "busybox"], ["image", "inspect", "busybox"]),
    # Only right after the management command.
    (["run", "container", "rm"], ["run", "container", "rm"]),
    (["container"], ["container"]),
])
def test_management_commands(argv, expected):
    assert cli.unmanaged(argv) == expected


@pytest.mark.parametrize("argv", [["image", "--help"], ["container", "-h"], ["image"],
                                  ["system", "--help"]])
def test_management_help_lists_the_top_level_verbs_it_takes(argv, capsys):
    # (--help exits as argparse does; the bare group prints its help)
    with pytest.raises(SystemExit) if argv[-1] != "image" else contextlib.nullcontext():
        cli.main(argv)
    out = capsys.readouterr()
    text = out.out + out.err
    for verb in cli.MANAGED[argv[0]]:
        assert "\n  %s " % verb in text, text



def test_disable_content_trust_is_accepted_and_false_is_refused(capsys):
    for verb in (["pull"], ["push"], ["run"], ["create"], ["build"]):
        args = cli.build_parser(verb[0]).parse_args(verb + ["--disable-content-trust", "x"])
        assert args.disable_content_trust is True
    assert cli.main(["pull", "--disable-content-trust=false", "busybox"]) == 125
    assert "content trust (image signing) is not supported" in capsys.readouterr().err


def test_accepted_and_refused_legacy_flags(capsys):
    assert cli.build_parser("rmi").parse_args(["rmi", "--no-prune", "x"]).no_prune
    with pytest.raises(SystemExit):
        cli.build_parser("rm").parse_args(["rm", "--link", "x"])
    assert "--link is not supported: legacy links are gone" in capsys.readouterr().err
