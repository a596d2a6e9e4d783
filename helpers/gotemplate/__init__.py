"""Go's text/template, the part people type in ``docker inspect -f`` and
``docker ps/images --format``.

API
  render(template, data) -> str      execute ``template`` with ``data`` as dot
  table_header(template, headers=None) -> str
                                     the header row of a "table ..." format
  split_table(fmt) -> (is_table, template)
                                     Docker's handling of the "table" prefix
  header_name(field, headers=None)   the column title of one field

Errors (bad syntax, unknown functions, missing fields, bad arguments) raise
``UsageError`` with Go's wording, e.g.
``template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"``.

Supported
  text, ``{{- `` / `` -}}`` trim markers, ``{{/* comments */}}``;
  ``{{.}}``, ``{{.A.B}}`` (dict keys; a missing key is an error, as for
  Docker's structs; other objects: attributes, callables are called with
  the command's arguments, so ``{{.Label "k"}}`` works), ``$``,
  ``{{$x := ...}}``, ``{{$x = ...}}``, ``$x.A``, ``(pipeline).A``;
  literals: "strings" with Go escapes, `raw`, 'c', numbers, true/false/nil;
  pipelines ``a | b``; ``if`` / ``else if`` / ``else``, ``with`` /
  ``else with``, ``range`` (lists, dicts with sorted keys, ints, nil) with
  ``$e :=`` / ``$i, $e :=`` and ``else``, ``break``, ``continue``;
  functions: and or not eq ne lt le gt ge index slice len print printf
  println, and Docker's json join split lower upper title truncate pad.
  Values print as Go's %v does: nil -> <no value>, lists [a b], dicts
  map[k:v] (sorted keys), floats like Go (0.5, 1e+06).
  Before parsing, the two-character sequences \\t and \\n become a tab and a
  newline, as Docker does for --format.

Not supported
  define / template / block, html / js / urlquery / call, complex numbers,
  Go's exact %v for structs, printf's %T / %p / %U / argument indexes, and
  Go's stricter typing (join takes any list, numbers compare across int and
  float).  ``index`` on a dict with a missing key gives "" when the dict's
  values are strings (Go's zero value for map[string]string), else nil.
"""


import re

from helpers.errors import UsageError

from .execute import _HEADER_ROOT, _Break, _Continue, _Exec, _ExecError
from .parse import _Parser

# ---------------------------------------------------------------- API

def _prepare(template):
    # Docker (cli/command/formatter) turns a typed backslash-t / backslash-n
    # into a real tab / newline before parsing.
    return re.sub(r"\\([tn])", lambda m: "\t" if m.group(1) == "t" else "\n",
                  template)


def render(template, data):
    """Execute Go template ``template`` with ``data`` as dot; return text."""
    src = _prepare(template)
    tree = _Parser(src).parse()
    ex = _Exec(src, data)
    try:
        ex.walk(tree, data)
    except _ExecError as e:
        raise UsageError(e.message, hint=e.hint) from None
    return "".join(ex.out)


_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
    "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
    "Status": "STATUS", "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS",
    "Mounts": "MOUNTS", "Networks": "NETWORKS", "State": "STATE",
    "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
    "CreatedSince": "CREATED",
}


def header_name(field, headers=None):
    """The column title Docker shows for ``{{.field}}``."""
    if headers and field in headers:
        return headers[field]
    if field in _HEADERS:
        return _HEADERS[field]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ",
                  field).upper()


def split_table(fmt):
    """Docker's preFormat: ("table {{.ID}}") -> (True, "{{.ID}}"); spaces
    around the template are dropped.  An empty template after "table" means
    the command's default columns."""
    if fmt.startswith("table"):
        return True, fmt[len("table"):].strip(" ")
    return False, fmt.strip(" ")


def table_header(template, headers=None):
    """The header row for a table format, made as Docker makes it: the
    template runs with every field giving its column title (``headers``
    overrides titles, e.g. {"ID": "IMAGE ID"} for images) and Docker's
    string functions passing text through.  Literal text stays; execution
    errors end the row early, as Docker ignores them."""
    if template.startswith("table"):
        template = split_table(template)[1]
    src = _prepare(template)
    tree = _Parser(src).parse()
    ex = _Exec(src, _HEADER_ROOT, header=lambda f: header_name(f, headers))
    try:
        ex.walk(tree, _HEADER_ROOT)
    except (_ExecError, _Break, _Continue):
        pass
    return "".join(ex.out)

