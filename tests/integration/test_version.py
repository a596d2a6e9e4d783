"""`version`, as Docker's templates use it: there is no daemon, so Server is
this same program."""

import json

from helpers import __version__


def test_version_plain_format_and_json(sb):
    text = sb.ok("version").stdout
    assert "Version:        %s" % __version__ in text and "OS/Arch:        linux/" in text
    out = sb.ok("version", "--format", "{{.Client.Version}} {{.Server.Version}}").stdout
    assert out == "%s %s\n" % (__version__, __version__)
    data = json.loads(sb.ok("version", "-f", "json").stdout)
    assert data["Client"]["Os"] == "linux" and data["Server"]["Version"] == __version__
    r = sb("version", "-f", "{{.NoSuchField}}")
    assert r.returncode == 125 and "NoSuchField" in r.stderr
