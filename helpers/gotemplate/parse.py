"""Go templates: the lexer and the parser (a tree of _Node)."""

import re
from collections import namedtuple

from helpers.errors import UsageError

from .values import _FUNCS

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


