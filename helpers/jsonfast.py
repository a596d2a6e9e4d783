"""json.loads and json.dumps for the start path, on CPython's C accelerators.

The ``json`` package imports ``re`` (json.decoder, json.scanner and
json.encoder each compile patterns at import), and ``re`` pulls enum,
functools and collections: ~10 ms before a container record is read.  The
C module ``_json`` under it does the actual parsing and encoding and
imports nothing, so these functions drive it directly.  They return what
``json.loads(s)`` and ``json.dumps(obj, indent=..., separators=...)`` return
(tests/unit/test_jsonfast.py checks it); anything unusual (a BOM or UTF-16
input, malformed JSON, a non-str dict key with indent, a cycle, a Python
without ``_json``) is handed to the ``json`` package itself, so errors are
its exact exceptions (json.JSONDecodeError, a ValueError, and TypeError).
"""

try:
    import _json
except ImportError:       # not CPython: the json package does it all
    _json = None

_WHITESPACE = " \t\n\r"          # what json.decoder.WHITESPACE matches


def _json_package():
    import json
    return json


class _DecoderContext:
    """The attributes _json.make_scanner reads from a json.JSONDecoder,
    with JSONDecoder()'s defaults."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__
    memo = {}


def _default(obj):
    # json.JSONEncoder.default: raises json's own TypeError for ``obj``.
    return _json_package().JSONEncoder().default(obj)


if _json is not None:
    _scan_once = _json.make_scanner(_DecoderContext())
    # The encoder for scalars (the leaves of an indented document).
    _encode_leaf = _json.make_encoder(None, _default, _json.encode_basestring_ascii,
                                      None, ": ", ", ", False, False, True)


class _Fallback(Exception):
    """Raised inside dumps for input the json package must handle."""


def loads(s):
    """json.loads(s) for ``s`` a str, bytes or bytearray."""
    if _json is None:
        return _json_package().loads(s)
    if isinstance(s, (bytes, bytearray)):
        # UTF-8 without BOM is all we write; json.loads detects the rest.
        if b"\0" in s[:4] or s.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
            return _json_package().loads(s)
        s = s.decode("utf-8", "surrogatepass")
    elif not isinstance(s, str):
        return _json_package().loads(s)         # its TypeError
    start = len(s) - len(s.lstrip(_WHITESPACE))
    try:
        obj, end = _scan_once(s, start)
    except StopIteration:
        return _json_package().loads(s)         # "Expecting value" at start
    if end != len(s) and s[end:].strip(_WHITESPACE):
        return _json_package().loads(s)         # "Extra data"
    return obj


def dumps(obj, indent=None, separators=None):
    """json.dumps(obj, indent=indent, separators=separators), ASCII output.
    ``indent`` is a number of spaces or None."""
    if _json is None:
        return _json_package().dumps(obj, indent=indent, separators=separators)
    if indent is None:
        item_sep, key_sep = separators or (", ", ": ")
        encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii,
                                    None, key_sep, item_sep, False, False, True)
        return "".join(encode(obj, 0))
    # _json's encoder has no indentation (json.dumps switches to its pure
    # Python encoder for it): containers here, scalars through _json.
    item_sep, key_sep = separators or (",", ": ")
    out = []
    try:
        _indented(obj, " " * indent, "\n", item_sep, key_sep, out, set())
    except _Fallback:
        return _json_package().dumps(obj, indent=indent, separators=separators)
    return "".join(out)


def _indented(obj, step, newline, item_sep, key_sep, out, open_ids):
    """Append json.dumps(obj, indent=len(step)) to ``out``; ``newline`` is
    "\\n" plus the current indentation, ``open_ids`` the containers we are
    inside (a cycle goes to the json package, for its ValueError)."""
    if isinstance(obj, (list, tuple, dict)):
        if not obj:
            out.append("{}" if isinstance(obj, dict) else "[]")
            return
        if id(obj) in open_ids:
            raise _Fallback
        open_ids.add(id(obj))
        inner = newline + step
        if isinstance(obj, dict):
            out.append("{")
            for i, (key, value) in enumerate(obj.items()):
                if not isinstance(key, str):
                    raise _Fallback           # json's own key conversions
                out.append((item_sep + inner if i else inner) +
                           _json.encode_basestring_ascii(key) + key_sep)
                _indented(value, step, inner, item_sep, key_sep, out, open_ids)
            out.append(newline + "}")
        else:
            out.append("[")
            for i, value in enumerate(obj):
                out.append(item_sep + inner if i else inner)
                _indented(value, step, inner, item_sep, key_sep, out, open_ids)
            out.append(newline + "]")
        open_ids.discard(id(obj))
    else:
        out.extend(_encode_leaf(obj, 0))
