"""Go text/template subset used by --format (helpers.gotemplate)."""

import pytest

from helpers.errors import UsageError
from helpers.gotemplate import render, split_table, table_header

DATA = {
    "Id": "abc123",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Pid": 4242,
              "ExitCode": 0, "Error": ""},
    "Config": {
        "Env": ["PATH=/usr/bin", "HOME=/root"],
        "Cmd": ["sh", "-c", "echo <hi> & bye"],
        "Labels": {"z.last": "1", "a.first": "2"},
        "Tty": False,
        "Entrypoint": None,
    },
    "Mounts": [{"Source": "/src", "Destination": "/dst"},
               {"Source": "/data", "Destination": "/data"}],
    "Ratio": 0.5,
    "Big": 1000000.0,
    "Empty": [],
    "Nothing": None,
}


def r(template, data=DATA):
    return render(template, data)


@pytest.mark.parametrize("template, out", [
    ("{{.State.Pid}}", "4242"),
    ("{{.Name}}", "/web"),
    ("{{index .Config.Env 0}}", "PATH=/usr/bin"),
    ("{{range .Mounts}}{{.Source}} {{end}}", "/src /data "),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Config.Tty}}up{{else}}down{{end}}", "down"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
     "a.first=2;z.last=1;"),
    ("plain text", "plain text"),
    ("{{.}}", "map[a:1]"),
])
def test_docker_forms(template, out):
    data = {"a": 1} if template == "{{.}}" else DATA
    assert r(template, data) == out


def test_json_keeps_key_order_and_is_compact():
    assert r("{{json .Config}}") == (
        '{"Env":["PATH=/usr/bin","HOME=/root"],'
        '"Cmd":["sh","-c","echo <hi> & bye"],'
        '"Labels":{"z.last":"1","a.first":"2"},"Tty":false,"Entrypoint":null}')
    assert r("{{json .Ratio}} {{json .Big}} {{json .Name}}") == \
        '0.5 1000000 "/web"'
    assert r("{{.Mounts | json}}") == \
        '[{"Source":"/src","Destination":"/dst"},' \
        '{"Source":"/data","Destination":"/data"}]'


def test_default_printing():
    assert r("{{.Config.Env}}") == "[PATH=/usr/bin HOME=/root]"
    assert r("{{.Config.Labels}}") == "map[a.first:2 z.last:1]"
    assert r("{{.Nothing}}|{{.Config.Entrypoint}}") == "<no value>|<no value>"
    assert r("{{.Ratio}} {{.Big}} {{.State.ExitCode}} {{.Config.Tty}}") == \
        "0.5 1e+06 0 false"
    assert r("{{.Empty}}") == "[]"
    assert r("{{.Mounts}}") == \
        "[map[Destination:/dst Source:/src] map[Destination:/data Source:/data]]"


def test_variables_and_dollar():
    assert r("{{$x := .Name}}[{{$x}}]") == "[/web]"
    assert r("{{$x := 1}}{{$x = 2}}{{$x}}") == "2"
    assert r("{{with .State}}{{.Pid}} {{$.Name}}{{end}}") == "4242 /web"
    assert r("{{$s := .State}}{{$s.Status}}") == "running"
    assert r("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}") == \
        "0:PATH=/usr/bin 1:HOME=/root "
    assert r("{{range $e := .Config.Cmd}}<{{$e}}>{{end}}") == \
        "<sh><-c><echo <hi> & bye>"


def test_range_else_break_continue():
    assert r("{{range .Empty}}x{{else}}none{{end}}") == "none"
    assert r("{{range .Nothing}}x{{else}}nil{{end}}") == "nil"
    assert r('{{range .Config.Cmd}}{{if eq . "-c"}}{{break}}{{end}}'
             '{{.}}{{end}}') == "sh"
    assert r('{{range .Config.Cmd}}{{if eq . "-c"}}{{continue}}{{end}}'
             '{{.}},{{end}}') == "sh,echo <hi> & bye,"
    assert r("{{range 3}}{{.}}{{end}}") == "012"


def test_if_else_if_and_with():
    t = "{{if .Nothing}}a{{else if .Empty}}b{{else if .Ratio}}c{{else}}d{{end}}"
    assert r(t) == "c"
    assert r("{{if .State.Error}}err{{else}}ok{{end}}") == "ok"
    assert r("{{if 0}}a{{else}}b{{end}}{{if .Config.Labels}}c{{end}}") == "bc"
    assert r("{{with .Config.Entrypoint}}x{{else}}none{{end}}") == "none"
    assert r("{{with .Nothing}}x{{else with .State}}{{.Status}}{{end}}") == \
        "running"
    assert r("{{if $p := .State.Pid}}{{$p}}{{end}}") == "4242"


def test_trim_markers_and_comments():
    assert r("a  {{- .Name -}}  \n b") == "a/webb"
    assert r("{{- /* a comment */ -}}  x") == "x"
    assert r("x {{/* c */}} y") == "x  y"
    assert r("{{-3}}") == "-3"


def test_backslash_t_and_n_become_tab_and_newline():
    assert r(r"{{.Name}}\t{{.State.Pid}}\n") == "/web\t4242\n"


@pytest.mark.parametrize("template, out", [
    ('{{"a\\tb"}}', "a\tb"),
    ("{{`raw\\n`}}", "raw\n"),          # \n typed in --format becomes newline
    ("{{`raw`}}", "raw"),
    ("{{42}} {{1.5}} {{1e3}} {{0x10}} {{'a'}}", "42 1.5 1000 16 97"),
    ("{{true}} {{false}} {{nil}}", "true false <no value>"),
])
def test_literals(template, out):
    assert r(template) == out


@pytest.mark.parametrize("template, out", [
    ("{{index .Config.Labels \"a.first\"}}", "2"),
    ("{{index .Config.Labels \"missing\"}}", ""),
    ("{{index .Mounts 1 \"Source\"}}", "/data"),
    ("{{(index .Mounts 1).Destination}}", "/data"),
    ("{{len .Config.Env}} {{len .Name}} {{len .Config.Labels}}", "2 4 2"),
    ("{{join .Config.Cmd \",\"}}", "sh,-c,echo <hi> & bye"),
    ("{{split \"a:b:c\" \":\"}}", "[a b c]"),
    ("{{index (split .Name \"/\") 1}}", "web"),
    ("{{lower \"AbC\"}} {{upper .Name}} {{title \"hello big world\"}}",
     "abc /WEB Hello Big World"),
    ("{{.Name | upper | lower}}", "/web"),
    ("{{truncate .Id 3}} {{truncate \"ab\" 5}}", "abc ab"),
    ("{{pad .Name 1 2}}|", " /web  |"),
    ("{{slice .Id 1 3}} {{slice .Config.Env 1}}", "bc [HOME=/root]"),
    ("{{print 1 2 \"a\" \"b\" 3}}", "1 2ab3"),
    ("{{println .Name 1}}", "/web 1\n"),
    ("{{printf \"%s=%d\" .Name .State.Pid}}", "/web=4242"),
    ("{{printf \"%-6s|%6s|%03d|%5.2f\" \"ab\" \"cd\" 7 3.14159}}",
     "ab    |    cd|007| 3.14"),
    ("{{printf \"%q %v %t %x %%\" .Name .Config.Env true 255}}",
     "\"/web\" [PATH=/usr/bin HOME=/root] true ff %"),
    ("{{printf \"%d\" .Name}} {{printf \"%s %s\" 1}}",
     "%!d(string=/web) %!s(int=1) %!s(MISSING)"),
    ("{{.Name | printf \"<%s>\"}}", "</web>"),
])
def test_functions(template, out):
    assert r(template) == out


@pytest.mark.parametrize("template, out", [
    ("{{eq .State.Pid 4242}}", "true"),
    ("{{eq .State.Status \"exited\" \"running\"}}", "true"),
    ("{{ne .Name \"/web\"}}", "false"),
    ("{{lt 1 2}} {{le 2 2}} {{gt 1 2.5}} {{ge \"b\" \"a\"}}",
     "true true false true"),
    ("{{and 1 0}} {{and 1 \"x\"}} {{or 0 \"\"}} {{or .Nothing .Name}}",
     "0 x  /web"),
    ("{{not .Empty}} {{not .Name}}", "true false"),
    ("{{if and .State.Running (eq .State.ExitCode 0)}}ok{{end}}", "ok"),
    ("{{eq .Nothing nil}}", "true"),
])
def test_comparisons_and_logic(template, out):
    assert r(template) == out


def test_objects_with_attributes_and_methods():
    class Row:
        ID = "abc"

        def Label(self, key):
            return {"k": "v"}.get(key, "")

    assert r('{{.ID}} {{.Label "k"}}', Row()) == "abc v"


@pytest.mark.parametrize("template, message", [
    ("{{.Foo}}",
     'template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"'),
    ("{{.State.Nope}}",
     'template: :1:2: executing "" at <.State.Nope>: '
     'map has no entry for key "Nope"'),
    ("ab\n  {{.name}}",
     'template: :2:4: executing "" at <.name>: map has no entry for key "name"'),
    ("{{.Name.X}}", "can't evaluate field X in type string"),
    ("{{.Nothing.X}}", "nil pointer evaluating interface {}.X"),
    ("{{index .Config.Env 5}}",
     'template: :1:2: executing "" at <index .Config.Env 5>: '
     "error calling index: index out of range: 5"),
    ("{{lower .State.Pid}}", "expected string; got int"),
    ("{{len}}", "wrong number of args for len: want 1 got 0"),
    ("{{eq .Name 1}}", "incompatible types for comparison"),
    ("{{range .Name}}{{end}}", "range can't iterate over /web"),
])
def test_execution_errors(template, message):
    with pytest.raises(UsageError) as e:
        r(template)
    assert message in e.value.message
    assert e.value.exit_code == 125


def test_missing_key_hint_lists_keys():
    with pytest.raises(UsageError) as e:
        r("{{.State.pid}}")
    assert "Pid" in e.value.hint


@pytest.mark.parametrize("template, message", [
    ("{{.Name", "template: :1: unclosed action"),
    ("{{.Name}", "template: :1: unclosed action"),
    ("{{nope .Name}}", 'template: :1: function "nope" not defined'),
    ("{{if .Name}}x", "template: :1: unexpected EOF"),
    ("{{range .Mounts}}x{{else}}y", "template: :1: unexpected EOF"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{}}", "missing value for command"),
    ("{{if}}x{{end}}", "missing value for if"),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{(.Name}}", "unclosed left paren"),
    ("{{.Name @}}", "unrecognized character in action"),
    ("{{/* open", "unclosed comment"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ('{{template "x"}}', "{{template}} is not supported"),
    ("{{.Name | 3}}", "non executable command in pipeline stage 2"),
])
def test_parse_errors(template, message):
    with pytest.raises(UsageError) as e:
        r(template)
    assert message in e.value.message


def test_missing_end_hint_names_the_block():
    with pytest.raises(UsageError) as e:
        r("x\n{{range .Mounts}}{{.Source}}")
    assert e.value.hint == "{{range}} on line 2 has no matching {{end}}"


def test_unknown_function_hint_lists_functions():
    with pytest.raises(UsageError) as e:
        r("{{jsn .}}")
    assert "json" in e.value.hint


@pytest.mark.parametrize("template, header", [
    (r"table {{.ID}}\t{{.Names}}", "CONTAINER ID\tNAMES"),
    ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}"
     "\t{{.Ports}}\t{{.Names}}",
     "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES"),
    ("{{.CreatedAt}} {{.Size}} {{.Labels}} {{.Mounts}} {{.Networks}}",
     "CREATED AT SIZE LABELS MOUNTS NETWORKS"),
    ("{{.Repository}}:{{.Tag}}\t{{.Digest}}\t{{.CreatedSince}}\t{{.State}}",
     "REPOSITORY:TAG\tDIGEST\tCREATED\tSTATE"),
    ("{{.LocalVolumes}}|{{.IPAddress}}|{{.Platform}}",
     "LOCAL VOLUMES|IP ADDRESS|PLATFORM"),
    ("{{json .Labels}} {{.Names | upper}} {{truncate .ID 3}}",
     "LABELS NAMES CONTAINER ID"),
    ('{{.Label "com.example"}}', "LABEL"),
    ("table", ""),
])
def test_table_header(template, header):
    assert table_header(template) == header


def test_table_header_overrides():
    assert table_header("table {{.ID}}\t{{.Size}}", {"ID": "IMAGE ID"}) == \
        "IMAGE ID\tSIZE"


def test_split_table():
    assert split_table("table {{.ID}} ") == (True, "{{.ID}}")
    assert split_table("{{.ID}}") == (False, "{{.ID}}")
    assert split_table("table") == (True, "")
