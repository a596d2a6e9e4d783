"""helpers.jsonfast gives what json.loads and json.dumps give, errors included."""

import json
import math

import pytest

from helpers import jsonfast

DATA = [
    {},
    [],
    "",
    0,
    -0.0,
    None,
    True,
    False,
    "plain",
    12345678901234567890123456789,          # bigger than 64 bits
    -7,
    1.5,
    1e300,
    5e-324,
    0.1 + 0.2,
    float("inf"),
    float("-inf"),
    {"nested": {"deeper": [1, [2, [3, {}]], {"e": []}]}, "n": None},
    ["é", "日本語", "\U0001F600", "\x00\x1f\x7f", "quote\"back\\slash/",
     "tab\tnew\nline\r", "\u2028\u2029", "\ud800"],        # a lone surrogate too
    {"é": "ü", "\n": 1, "": ""},
    ("tuple", 1),
    {"Id": "a" * 64, "Pid": 4242, "PidStart": 123456789, "Status": "running",
     "Labels": {"k": "v=w"}, "Cmd": ["sh", "-c", "echo 'hi' > /dev/null"],
     "ExitCode": 137, "StartedAt": None, "Env": ["PATH=/usr/bin:/bin"]},
]


@pytest.mark.parametrize("obj", DATA, ids=range(len(DATA)))
def test_dumps_matches_json(obj):
    assert jsonfast.dumps(obj) == json.dumps(obj)
    assert jsonfast.dumps(obj, separators=(",", ":")) == \
        json.dumps(obj, separators=(",", ":"))


@pytest.mark.parametrize("obj", DATA, ids=range(len(DATA)))
def test_loads_matches_json(obj):
    for text in (json.dumps(obj), json.dumps(obj, indent=2),
                 json.dumps(obj, ensure_ascii=False)):
        raw = text.encode("utf-8", "surrogatepass")     # as json.loads decodes
        for doc in (text, " \n\t" + text + "\r\n ", raw, bytearray(raw)):
            got, want = jsonfast.loads(doc), json.loads(doc)
            assert type(got) is type(want)
            if isinstance(want, float) and math.isnan(want):
                assert math.isnan(got)
            else:
                assert got == want


def test_constants_and_numbers():
    assert jsonfast.loads("[NaN, Infinity, -Infinity, 1E2, -0, 10.0]")[1:] == \
        [float("inf"), float("-inf"), 100.0, 0, 10.0]
    assert math.isnan(jsonfast.loads("NaN"))
    assert jsonfast.dumps(float("nan")) == "NaN"
    assert type(jsonfast.loads("3")) is int and type(jsonfast.loads("3.0")) is float


def test_other_encodings_like_json():
    doc = {"a": ["é", 1]}
    for data in (json.dumps(doc).encode("utf-8-sig"), json.dumps(doc).encode("utf-16"),
                 json.dumps(doc).encode("utf-16-le"), json.dumps(doc).encode("utf-32"),
                 json.dumps(doc).encode("utf-32-be")):
        assert jsonfast.loads(data) == json.loads(data) == doc


def _error(func, *args, **kw):
    try:
        func(*args, **kw)
    except Exception as exc:          # noqa: BLE001 - compared below
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("doc", [
    "", " ", "{", "}", "[1,]", "[1 2]", '{"a" 1}', '{"a": 1,}', "{'a': 1}",
    '"unterminated', '"bad \\x escape"', '"control \x01 char"', "tru", "nul",
    "01", "1.", "-", "[1] x", "1 2", "{} {}", "\ufeff{}", "[" * 10 + "]" * 9,
    b"\xff\xfe", b'{"a": "\xff"}', b"", b"   ", "[1]\x00",
])
def test_errors_like_json(doc):
    want = _error(json.loads, doc)
    assert want is not None
    assert _error(jsonfast.loads, doc) == want
    assert issubclass(want[0], ValueError)


def test_non_string_input():
    for doc in (None, 1, ["[]"]):
        assert _error(jsonfast.loads, doc) == _error(json.loads, doc)


def test_dumps_errors_like_json():
    cyclic = []
    cyclic.append(cyclic)
    cyclic_dict = {}
    cyclic_dict["self"] = cyclic_dict
    for obj in (object(), {"a": {1, 2}}, cyclic, cyclic_dict, {("t",): 1}, b"bytes"):
        want = _error(json.dumps, obj)
        assert want is not None
        assert _error(jsonfast.dumps, obj) == want


def test_non_string_keys_like_json():
    obj = {1: "int", 2.5: "float", False: "bool", None: "null", "s": {3: []}}
    assert jsonfast.dumps(obj) == json.dumps(obj)


def test_shared_but_not_cyclic():
    shared = {"x": [1]}
    obj = {"a": shared, "b": shared, "c": [shared, shared]}
    assert jsonfast.dumps(obj) == json.dumps(obj)


def test_round_trip():
    for obj in DATA:
        if isinstance(obj, float) and math.isnan(obj):
            continue
        want = json.loads(json.dumps(obj))
        assert jsonfast.loads(jsonfast.dumps(obj)) == want


def test_errors_before_the_json_package_is_loaded():
    """In a `sandbox` process the json package is not loaded, and
    CPython's _json then fails with a SystemError instead of its decode
    error (it looks json.decoder up in sys.modules): a damaged line in a
    container's log once crashed `logs` so.  A fresh interpreter, as the
    CLI starts."""
    import os
    import subprocess
    import sys
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys\n"
            "from helpers import jsonfast\n"
            "assert 'json.decoder' not in sys.modules\n"
            "for doc in ['{\"log\":\"a\\\\n\",\"{\"log\":\"b\"}', '[1 2]', '{\"a\" 1}']:\n"
            "    try:\n"
            "        jsonfast.loads(doc)\n"
            "    except ValueError as exc:\n"
            "        print(type(exc).__name__)\n")
    out = subprocess.run([sys.executable, "-E", "-s", "-S", "-c", code], cwd=checkout,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["JSONDecodeError"] * 3
