"""Go templates: the executor that walks a parsed tree."""

from .parse import _Node
from .values import _FUNCS, _HEADER_SAFE, _FuncError, _fmt, _gotype, _truth

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
            method = getattr(type(v), name, None) if name[:1].isupper() else None
            if name not in v and callable(method):        # a row's Label
                try:
                    return method(v, *args)
                except TypeError:
                    raise self.fail(node, f"wrong number of args for {name}: "
                                          f"want 1 got {len(args)}") from None
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


