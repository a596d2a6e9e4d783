"""json.loads and json.dumps for the start path, on CPython's C accelerators.

The ``json`` package imports ``re`` (json.decoder, json.scanner and
json.encoder each compile patterns at import), and ``re`` pulls enum,
functools and collections: ~10 ms before a container record is read.  The
C module ``_json`` under it does the actual parsing and encoding and
imports nothing, so these functions drive it directly.  They return what
``json.loads(s)`` and ``json.dumps(obj, separators=...)`` return
(tests/unit/test_jsonfast.py checks it); anything unusual (a BOM or UTF-16
input, malformed JSON, a Python without ``_json``) is handed to the ``json`` package itself, so errors are
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
    except (StopIteration, SystemError):
        # "Expecting value" at the start; or malformed further on, where
        # _json raises json.decoder's error only when that module is
        # loaded (CPython 3.11 looks it up in sys.modules: otherwise a
        # SystemError).  json.loads raises the real error either way.
        return _json_package().loads(s)
    if end != len(s) and s[end:].strip(_WHITESPACE):
        return _json_package().loads(s)         # "Extra data"
    return obj


def dumps(obj, separators=None):
    """json.dumps(obj, separators=separators), ASCII output.  No indent:
    the files we write for ourselves are compact, as Docker's are; pretty
    output for people (inspect) uses the json package."""
    if _json is None:
        return _json_package().dumps(obj, separators=separators)
    item_sep, key_sep = separators or (", ", ": ")
    encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii,
                                None, key_sep, item_sep, False, False, True)
    return "".join(encode(obj, 0))
