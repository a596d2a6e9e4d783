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

import json
import re
from collections import namedtuple
from decimal import Decimal

from helpers.errors import UsageError

# ---------------------------------------------------------------- lexer

_ACTION_TOKEN = re.compile(r"""
  (?P<decl>:=) | (?P<assign>=) | (?P<pipe>\|) | (?P<lparen>\() | (?P<rparen>\))
| (?P<comma>,)
| (?P<string>"(?:[^"\\]|\\.)*")
| (?P<raw>`[^`]*`)
| (?P<char>'(?:[^'\\]|\\[^']+)')
| (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+
                     |(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?))
| (?P<field>\.[A-Za-z_]\w*)
| (?P<dot>\.)
| (?P<var>\$\w*)
| (?P<ident>[A-Za-z_]\w*)
""", re.X | re.S)

_SPACE = " \t\r\n"
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue",
             "define", "template", "block"}


class _Tok(namedtuple("_Tok", "kind value pos end spaced", defaults=[True])):
    def __str__(self):
        return {"close": "}}", "eof": "EOF"}.get(self.kind, repr(self.value))


def _parse_error(src, pos, msg, hint=None):
    line = src.count("\n", 0, pos) + 1
    return UsageError(f"template: :{line}: {msg}", hint=hint)


def _lex(src):
    toks, i, n, trim = [], 0, len(src), False
    while i < n:
        j = src.find("{{", i)
        j = n if j < 0 else j
        text = src[i:j]
        if trim:
            text = text.lstrip(_SPACE)
        ltrim = src.startswith("{{-", j) and src[j + 3:j + 4] in tuple(_SPACE)
        if ltrim:
            text = text.rstrip(_SPACE)
        if text:
            toks.append(_Tok("text", text, i, j))
        if j >= n:
            break
        open_pos, i = j, j + (3 if ltrim else 2)
        if ltrim and src.startswith("/*", i + 1):
            i += 1
        if src.startswith("/*", i):                       # {{/* comment */}}
            k = src.find("*/", i + 2)
            if k < 0:
                raise _parse_error(src, open_pos, "unclosed comment")
            i = k + 2
            trim = src.startswith(" -}}", i)
            if not trim and not src.startswith("}}", i):
                raise _parse_error(src, open_pos,
                                   "comment ends before closing delimiter")
            i += 4 if trim else 2
            continue
        toks.append(_Tok("open", "{{", open_pos, i))
        spaced = True
        while True:
            if i >= n:
                raise _parse_error(src, open_pos, "unclosed action",
                                   hint="every {{ needs a matching }}")
            c = src[i]
            if src.startswith("}}", i):
                toks.append(_Tok("close", "}}", i, i + 2))
                i, trim = i + 2, False
                break
            if c in _SPACE:
                if src.startswith("-}}", i + 1):
                    toks.append(_Tok("close", "}}", i, i + 4))
                    i, trim = i + 4, True
                    break
                i, spaced = i + 1, True
                continue
            m = _ACTION_TOKEN.match(src, i)
            if not m and src.startswith("}", i):
                raise _parse_error(src, i, "unclosed action",
                                   hint="close the action with }}, not }")
            if not m:
                what = ("unterminated quoted string" if c in "\"'`" else
                        f"unrecognized character in action: {c!r}")
                raise _parse_error(src, i, what)
            toks.append(_Tok(m.lastgroup, m.group(), i, m.end(), spaced))
            i, spaced = m.end(), False
    toks.append(_Tok("eof", "", n, n))
    return toks


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}"
                     r"|[0-7]{3}|.)", re.S)
_SIMPLE_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
               "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


def _unquote(body, src, pos):
    def sub(m):
        e = m.group(1)
        if e[0] in "xuU" and len(e) > 1:
            return chr(int(e[1:], 16))
        if e[0] in "01234567":
            return chr(int(e, 8))
        if e in _SIMPLE_ESC:
            return _SIMPLE_ESC[e]
        raise _parse_error(src, pos, f"invalid escape sequence \\{e}")
    return _ESCAPE.sub(sub, body)


def _number(text):
    t = text.replace("_", "")
    low = t.lower().lstrip("+-")
    if low.startswith(("0x", "0b", "0o")):
        return int(t, 0)
    if any(c in low for c in ".e"):
        return float(t)
    return int(t)


# ---------------------------------------------------------------- parser

class _Node:
    def __init__(self, kind, pos, **kw):
        self.kind, self.pos = kind, pos
        self.__dict__.update(kw)


class _Parser:
    def __init__(self, src):
        self.src, self.toks, self.i = src, _lex(src), 0
        self.vars, self.loops = ["$"], 0

    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def error(self, tok, msg, hint=None):
        return _parse_error(self.src, tok.pos, msg, hint)

    def expect(self, kind, context):
        t = self.next()
        if t.kind != kind:
            if kind == "rparen":
                raise self.error(t, "unclosed left paren")
            raise self.error(t, f"unexpected {t} in {context}")
        return t

    def parse(self):
        nodes, end = self.list()
        if end is not None:
            raise self.error(end, f"unexpected {{{{{end.value}}}}}",
                             hint="it has no matching {{if}}, {{range}} "
                                  "or {{with}}")
        return nodes

    def list(self):
        """Nodes up to EOF or an {{end}}/{{else}} (returned, not consumed
        past the keyword)."""
        nodes = []
        while True:
            t = self.next()
            if t.kind == "eof":
                return nodes, None
            if t.kind == "text":
                nodes.append(_Node("text", t.pos, value=t.value))
                continue
            k = self.peek()
            if k.kind == "ident" and k.value in ("end", "else"):
                self.i += 1
                return nodes, k
            nodes.append(self.action(t))

    def action(self, open_tok):
        t = self.peek()
        if t.kind == "ident" and t.value in ("if", "range", "with"):
            self.i += 1
            return self.control(t)
        if t.kind == "ident" and t.value in ("break", "continue"):
            self.i += 1
            if not self.loops:
                raise self.error(t, f"{{{{{t.value}}}}} outside {{{{range}}}}")
            self.expect("close", t.value)
            return _Node(t.value, t.pos)
        if t.kind == "ident" and t.value in ("define", "template", "block"):
            raise self.error(t, f"{{{{{t.value}}}}} is not supported")
        pipe = self.pipeline("command")
        self.expect("close", "command")
        return _Node("action", open_tok.pos, pipe=pipe)

    def control(self, kw):
        mark = len(self.vars)
        pipe = self.pipeline(kw.value)
        self.expect("close", kw.value)
        self.loops += kw.value == "range"
        body, end = self.list()
        self.loops -= kw.value == "range"
        alt = None
        missing = dict(hint=f"{{{{{kw.value}}}}} on line "
                            f"{self.src.count(chr(10), 0, kw.pos) + 1} "
                            "has no matching {{end}}")
        if end is None:
            raise self.error(self.peek(), "unexpected EOF", **missing)
        if end.value == "else":
            nxt = self.peek()
            if kw.value != "range" and nxt.kind == "ident" and \
                    nxt.value == kw.value:          # else if / else with
                self.i += 1
                alt = [self.control(nxt)]
            else:
                self.expect("close", "else")
                alt, end = self.list()
                if end is None:
                    raise self.error(self.peek(), "unexpected EOF", **missing)
                if end.value != "end":
                    raise self.error(end, "expected end; found {{else}}")
                self.expect("close", "end")
        else:
            self.expect("close", "end")
        del self.vars[mark:]
        return _Node(kw.value, kw.pos, pipe=pipe, body=body, alt=alt)

    def pipeline(self, context):
        decl, assign, t = [], False, self.peek()
        if t.kind == "var":
            if self.peek(1).kind in ("decl", "assign"):
                decl, assign = [t.value], self.peek(1).kind == "assign"
                self.i += 2
            elif (context == "range" and self.peek(1).kind == "comma"
                  and self.peek(2).kind == "var"
                  and self.peek(3).kind in ("decl", "assign")):
                decl = [t.value, self.peek(2).value]
                assign = self.peek(3).kind == "assign"
                self.i += 4
        for name in decl:
            if assign and name not in self.vars:
                raise self.error(t, f'undefined variable "{name}"')
            self.vars.append(name)
        cmds = [self.command(context)]
        while self.peek().kind == "pipe":
            self.i += 1
            cmd = self.command(context)
            if cmd.args[0].kind in ("lit", "dot"):
                raise self.error(cmd, "non executable command in pipeline "
                                      f"stage {len(cmds) + 1}")
            cmds.append(cmd)
        return _Node("pipe", t.pos, decl=decl, assign=assign, cmds=cmds)

    def command(self, context):
        start, args = self.peek().pos, []
        while self.peek().kind not in ("pipe", "close", "rparen", "eof"):
            args.append(self.operand())
        if not args:
            raise self.error(self.peek(), f"missing value for {context}")
        text = self.src[start:self.toks[self.i - 1].end]
        return _Node("cmd", start, args=args, text=text)

    def operand(self):
        t = self.next()
        k, v = t.kind, t.value
        if k == "field":
            node = _Node("field", t.pos, names=[v[1:]])
        elif k == "var":
            if v not in self.vars:
                raise self.error(t, f'undefined variable "{v}"')
            node = _Node("var", t.pos, name=v, names=[])
        elif k == "dot":
            node = _Node("dot", t.pos)
        elif k in ("string", "raw", "char", "number"):
            if k == "string":
                val = _unquote(v[1:-1], self.src, t.pos)
            elif k == "raw":
                val = v[1:-1]
            elif k == "char":
                val = ord(_unquote(v[1:-1], self.src, t.pos)[:1] or "\0")
            else:
                val = _number(v)
            node = _Node("lit", t.pos, value=val)
        elif k == "ident" and v in ("true", "false", "nil"):
            node = _Node("lit", t.pos, value={"true": True, "false": False,
                                              "nil": None}[v])
        elif k == "ident" and v not in _KEYWORDS:
            if v not in _FUNCS:
                raise self.error(t, f'function "{v}" not defined',
                                 hint="functions: " + ", ".join(sorted(_FUNCS)))
            node = _Node("func", t.pos, name=v)
        elif k == "lparen":
            pipe = self.pipeline("parenthesized pipeline")
            self.expect("rparen", "parenthesized pipeline")
            node = _Node("paren", t.pos, pipe=pipe, names=[])
        else:
            raise self.error(t, f"unexpected {t} in operand")
        while self.peek().kind == "field" and not self.peek().spaced:
            if node.kind not in ("field", "var", "paren"):
                raise self.error(self.peek(), f"unexpected . after term {t}")
            node.names.append(self.next().value[1:])
        node.text = self.src[t.pos:self.toks[self.i - 1].end]
        return node


# ---------------------------------------------------------------- values

def _gotype(v):
    if v is None:
        return "<nil>"
    return {bool: "bool", int: "int", float: "float64", str: "string",
            list: "[]interface {}", tuple: "[]interface {}",
            dict: "map[string]interface {}"}.get(type(v), type(v).__name__)


def _go_float(f, for_json=False):
    if f != f or f in (float("inf"), float("-inf")):
        return "NaN" if f != f else ("+Inf" if f > 0 else "-Inf")
    if f == 0:
        return "0"
    sign = "-" if f < 0 else ""
    t = Decimal(repr(abs(f))).normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    exp = len(digits) + t.exponent - 1
    # Go's %v switches to an exponent from 1e+06 (%g, shortest), its JSON
    # encoder from 1e21 down and below 1e-6.
    if (exp < -6 or exp >= 21) if for_json else (exp < -4 or exp >= 6):
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        e = f"{abs(exp)}" if for_json and exp < 0 else f"{abs(exp):02d}"
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{e}"
    if exp >= len(digits) - 1:
        return sign + digits + "0" * (exp - len(digits) + 1)
    if exp >= 0:
        return f"{sign}{digits[:exp + 1]}.{digits[exp + 1:]}"
    return f"{sign}0.{'0' * (-exp - 1)}{digits}"


def _fmt(v, top=False):
    """Go's %v (and, at top level, text/template's printing of nil)."""
    if v is None:
        return "<no value>" if top else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{_fmt(k)}:{_fmt(v[k])}"
                                 for k in sorted(v, key=str)) + "]"
    return str(v)


def _truth(v):
    if isinstance(v, (bool, int, float, str, list, tuple, dict)) or v is None:
        return bool(v)
    return True


def _json_value(v):
    if v is None or isinstance(v, (bool, str)):
        return json.dumps(v, ensure_ascii=False) \
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise _FuncError(f"json: unsupported value: {_go_float(v)}")
        return _go_float(v, for_json=True)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_json_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(_json_value(str(k)) + ":" + _json_value(x)
                              for k, x in v.items()) + "}"
    raise _FuncError(f"json: unsupported type: {type(v).__name__}")


_QUOTE_ESC = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b",
              "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote(s):
    out = []
    for ch in s:
        o = ord(ch)
        if ch in _QUOTE_ESC:
            out.append(_QUOTE_ESC[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{o:02x}" if o < 0x80 else
                       f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------- functions

class _FuncError(Exception):
    pass


def _want_str(v):
    if not isinstance(v, str):
        raise _FuncError(f"wrong type for value; expected string; "
                         f"got {_gotype(v)}")
    return v


def _want_int(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise _FuncError(f"wrong type for value; expected int; "
                         f"got {_gotype(v)}")
    return v


def _want_list(v):
    if v is not None and not isinstance(v, (list, tuple)):
        raise _FuncError(f"wrong type for value; expected []string; "
                         f"got {_gotype(v)}")
    return v or []


def _index(item, *keys):
    for key in keys:
        if isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise _FuncError(f"cannot index slice/array with type "
                                 f"{_gotype(key)}")
            if isinstance(item, str):
                item = item.encode()
            if not 0 <= key < len(item):
                raise _FuncError(f"index out of range: {key}")
            item = item[key]
        elif isinstance(item, dict):
            zero = "" if all(isinstance(x, str) for x in item.values()) \
                else None
            item = item.get(key, zero)
        elif item is None:
            raise _FuncError("index of untyped nil")
        else:
            raise _FuncError(f"can't index item of type {_gotype(item)}")
    return item


def _slice(item, *idx):
    if not isinstance(item, (list, tuple, str)):
        raise _FuncError(f"can't slice item of type {_gotype(item)}")
    idx = [_want_int(i) for i in idx]
    if len(idx) > (2 if isinstance(item, str) else 3):
        raise _FuncError("too many slice indexes")
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise _FuncError(f"index out of range: [{lo}:{hi}]")
    return item[lo:hi]


def _len(v):
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (list, tuple, dict)):
        return len(v)
    raise _FuncError(f"len of type {_gotype(v)}")


def _eq1(a, b):
    num = (int, float)
    if a is None or b is None:
        return a is b
    if isinstance(a, (list, tuple, dict)) or isinstance(b, (list, tuple, dict)):
        raise _FuncError("invalid type for comparison")
    if isinstance(a, bool) or isinstance(b, bool) or \
            not (isinstance(a, num) and isinstance(b, num)):
        if type(a) is not type(b):
            raise _FuncError("incompatible types for comparison")
    return a == b


def _lt(a, b):
    num = (int, float)
    ok = (isinstance(a, str) and isinstance(b, str)) or (
        isinstance(a, num) and isinstance(b, num)
        and not isinstance(a, bool) and not isinstance(b, bool))
    if not ok:
        raise _FuncError("incompatible types for comparison")
    return a < b


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?(.)?", re.S)


def _fmt_verb(verb, flags, width, prec, a):
    isnum = isinstance(a, (int, float)) and not isinstance(a, bool)
    isint = isnum and (isinstance(a, int) or a.is_integer())
    spec = ("+" if "+" in flags else " " if " " in flags else "") + \
        ("#" if "#" in flags else "")
    if "0" in flags and "-" not in flags and width:     # zero padding
        spec += f"0{width}"
    if verb in "sv" and isinstance(a, str) or verb == "v":
        s = a if isinstance(a, str) else _fmt(a)
        s = s[:prec] if prec is not None and verb == "s" else s
    elif verb == "q" and isinstance(a, str):
        s = _go_quote(a)
    elif verb == "q" and isint:
        s = "'" + _go_quote(chr(int(a)))[1:-1].replace("\\\"", '"') + "'"
    elif verb == "t" and isinstance(a, bool):
        s = "true" if a else "false"
    elif verb == "c" and isint:
        s = chr(int(a))
    elif verb in "dboxX" and isint:
        s = format(int(a), spec + verb.replace("d", ""))
    elif verb in "xX" and isinstance(a, str):
        s = a.encode().hex()
        s = s.upper() if verb == "X" else s
    elif verb in "eEfFgG" and isnum:
        if verb in "gG" and prec is None:
            s = _go_float(float(a))
            s = s.upper() if verb == "G" else s
        else:
            p = 6 if prec is None else prec
            s = format(float(a), f"{spec}.{p}{verb}")
    else:
        return f"%!{verb}({_gotype(a)}={_fmt(a)})"
    if width and len(s) < width:
        s = s.ljust(width) if "-" in flags else s.rjust(width)
    return s


def _sprintf(fmt, *args):
    fmt, args, out, pos = _want_str(fmt), list(args), [], 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb is None:
            out.append("%!(NOVERB)")
            continue
        if verb == "%":
            out.append("%")
            continue
        width = (_want_int(args.pop(0)) if args else 0) if width == "*" \
            else int(width) if width else None
        prec = (_want_int(args.pop(0)) if args else 0) if prec == "*" \
            else int(prec) if prec else (0 if "." in m.group() else None)
        if not args:
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_fmt_verb(verb, flags, width, prec, args.pop(0)))
    out.append(fmt[pos:])
    if args:
        out.append("%!(EXTRA " + ", ".join(f"{_gotype(a)}={_fmt(a)}"
                                           for a in args) + ")")
    return "".join(out)


def _sprint(*args):
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_fmt(a))
    return "".join(out)


def _title(s):
    return re.sub(r"(^|[^\w'])([^\W_])",
                  lambda m: m.group(1) + m.group(2).upper(), _want_str(s))


def _truncate(s, n):
    s, n = _want_str(s), _want_int(n)
    return s if len(s) < n else s[:n]


def _pad(s, prefix, suffix):
    s = _want_str(s)
    return " " * _want_int(prefix) + s + " " * _want_int(suffix) if s else s


# name -> (function, min args, max args or -1); "and"/"or" are evaluated
# lazily by _Exec.call.
_FUNCS = {
    "and": (None, 1, -1), "or": (None, 1, -1),
    "not": (lambda v: not _truth(v), 1, 1),
    "eq": (lambda a, *bs: any(_eq1(a, b) for b in bs), 2, -1),
    "ne": (lambda a, b: not _eq1(a, b), 2, 2),
    "lt": (_lt, 2, 2), "le": (lambda a, b: _lt(a, b) or _eq1(a, b), 2, 2),
    "gt": (lambda a, b: not (_lt(a, b) or _eq1(a, b)), 2, 2),
    "ge": (lambda a, b: not _lt(a, b), 2, 2),
    "index": (_index, 1, -1), "slice": (_slice, 1, 4), "len": (_len, 1, 1),
    "print": (_sprint, 0, -1), "printf": (_sprintf, 1, -1),
    "println": (lambda *a: " ".join(_fmt(x) for x in a) + "\n", 0, -1),
    "json": (_json_value, 1, 1),
    "join": (lambda items, sep: _want_str(sep).join(
        x if isinstance(x, str) else _fmt(x) for x in _want_list(items)), 2, 2),
    "split": (lambda s, sep: list(_want_str(s)) if sep == "" else
              _want_str(s).split(_want_str(sep)), 2, 2),
    "lower": (lambda s: _want_str(s).lower(), 1, 1),
    "upper": (lambda s: _want_str(s).upper(), 1, 1),
    "title": (_title, 1, 1), "truncate": (_truncate, 2, 2),
    "pad": (_pad, 3, 3),
}
# Docker's HeaderFunctions: these pass the header text through.
_HEADER_SAFE = {"json", "join", "split", "lower", "upper", "title",
                "truncate", "pad"}


# ---------------------------------------------------------------- executor

class _ExecError(Exception):
    def __init__(self, message, hint=None):
        super().__init__(message)
        self.message, self.hint = message, hint


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NOFINAL = object()


class _HeaderStr(str):
    """A header cell: field access on it gives the next field's header."""


_HEADER_ROOT = _HeaderStr("")


class _Exec:
    def __init__(self, src, data, header=None):
        self.src, self.out, self.header = src, [], header
        self.vars = [("$", data)]

    def fail(self, node, msg, hint=None):
        line = self.src.count("\n", 0, node.pos) + 1
        col = node.pos - (self.src.rfind("\n", 0, node.pos) + 1)
        return _ExecError(f'template: :{line}:{col}: executing "" at '
                          f"<{node.text}>: {msg}", hint)

    def walk(self, nodes, dot):
        for n in nodes:
            k = n.kind
            if k == "text":
                self.out.append(n.value)
            elif k == "action":
                v = self.pipe(n.pipe, dot)
                if not n.pipe.decl:
                    self.out.append(_fmt(v, top=True))
            elif k in ("if", "with"):
                mark = len(self.vars)
                v = self.pipe(n.pipe, dot)
                if _truth(v):
                    self.walk(n.body, v if k == "with" else dot)
                elif n.alt:
                    self.walk(n.alt, dot)
                del self.vars[mark:]
            elif k == "range":
                self.range(n, dot)
            elif k == "break":
                raise _Break
            elif k == "continue":
                raise _Continue

    def range(self, n, dot):
        v = self.pipe(n.pipe, dot, declare=False)
        if v is None:
            items = []
        elif isinstance(v, dict):
            items = [(key, v[key]) for key in sorted(v, key=str)]
        elif isinstance(v, (list, tuple)):
            items = list(enumerate(v))
        elif isinstance(v, int) and not isinstance(v, bool):
            items = [(i, i) for i in range(v)]
        else:
            raise self.fail(n.pipe.cmds[-1],
                            f"range can't iterate over {_fmt(v)}")
        if not items and n.alt:
            self.walk(n.alt, dot)
        for key, elem in items:
            mark = len(self.vars)
            decl = n.pipe.decl
            if len(decl) == 1:
                self.setvar(decl[0], elem, n.pipe.assign)
            elif len(decl) == 2:
                self.setvar(decl[0], key, n.pipe.assign)
                self.setvar(decl[1], elem, n.pipe.assign)
            try:
                self.walk(n.body, elem)
            except _Break:
                break
            except _Continue:
                pass
            finally:
                del self.vars[mark:]

    def setvar(self, name, value, assign):
        if not assign:
            self.vars.append((name, value))
            return
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return

    def lookup(self, name):
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise _ExecError(f'undefined variable "{name}"')

    def pipe(self, p, dot, declare=True):
        v = _NOFINAL
        for cmd in p.cmds:
            v = self.command(cmd, dot, v)
        if declare and p.decl:
            self.setvar(p.decl[0], v, p.assign)
        return v

    def command(self, cmd, dot, final):
        first, rest = cmd.args[0], cmd.args[1:]
        if first.kind == "func":
            return self.call(first.name, cmd, rest, dot, final)
        extra = [self.arg(a, dot) for a in rest]
        extra += [] if final is _NOFINAL else [final]
        if first.kind in ("field", "var", "paren") and first.names:
            return self.chain(self.base(first, dot), first.names, first, extra)
        if extra:
            raise self.fail(first, "can't give argument to non-function "
                                   f"{first.text}")
        return self.arg(first, dot)

    def arg(self, n, dot):
        k = n.kind
        if k == "lit":
            return n.value
        if k == "dot":
            return dot
        if k == "func":
            return self.call(n.name, n, [], dot, _NOFINAL)
        return self.chain(self.base(n, dot), n.names, n)

    def base(self, n, dot):
        """What a field chain starts from: dot, a variable or a pipeline."""
        if n.kind == "field":
            return dot
        return self.lookup(n.name) if n.kind == "var" else self.pipe(n.pipe, dot)

    def chain(self, v, names, node, args=()):
        for i, name in enumerate(names):
            v = self.field(v, name, node, args if i == len(names) - 1 else ())
        return v

    def field(self, v, name, node, args):
        if self.header is not None and isinstance(v, _HeaderStr):
            return _HeaderStr(self.header(name))
        if isinstance(v, dict):
            if name not in v:
                keys = ", ".join(list(map(str, v))[:15])
                raise self.fail(node, f'map has no entry for key "{name}"',
                                hint="field names are case-sensitive" +
                                (f"; here there are: {keys}" if keys else ""))
            if args:
                raise self.fail(node, f"{name} is not a method but has "
                                      "arguments")
            return v[name]
        if v is None:
            raise self.fail(node, f"nil pointer evaluating interface {{}}."
                                  f"{name}")
        attr = getattr(v, name, _NOFINAL) if not name.startswith("_") \
            and not isinstance(v, (str, int, float, list, tuple)) \
            else _NOFINAL
        if attr is _NOFINAL:
            raise self.fail(node, f"can't evaluate field {name} in type "
                                  f"{_gotype(v)}")
        if callable(attr):
            return attr(*args)
        if args:
            raise self.fail(node, f"{name} is not a method but has arguments")
        return attr

    def call(self, name, cmd, argnodes, dot, final):
        fn, lo, hi = _FUNCS[name]
        n = len(argnodes) + (final is not _NOFINAL)
        if n < lo or 0 <= hi < n:
            want = lo if lo == hi else f"at least {lo}" if n < lo \
                else f"at most {hi}"
            raise self.fail(cmd, f"wrong number of args for {name}: "
                                 f"want {want} got {n}")
        if fn is None:                                    # and / or
            v = None
            for a in argnodes + [final]:
                if a is not _NOFINAL:
                    v = self.arg(a, dot) if isinstance(a, _Node) else a
                    if _truth(v) == (name == "or"):
                        return v
            return v
        args = [self.arg(a, dot) for a in argnodes]
        args += [] if final is _NOFINAL else [final]
        if self.header is not None and name in _HEADER_SAFE:
            return args[0]
        try:
            return fn(*args)
        except _FuncError as e:
            raise self.fail(cmd, f"error calling {name}: {e}") from None


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

