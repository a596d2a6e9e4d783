"""Go templates: how values print and compare, and the functions."""

import json
import re
from decimal import Decimal

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


