"""Docker's reference rules (distribution/reference), pure logic."""

import pytest

from helpers.errors import UsageError
from helpers.image import reference

HEX = "a" * 64


@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox"),
    ("myorg/app", "docker.io/myorg/app:latest", "myorg/app"),
    ("myorg/team/app:v1", "docker.io/myorg/team/app:v1", "myorg/team/app"),
    ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b"),
    ("localhost/x", "localhost/x:latest", "localhost/x"),
    ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x"),
    ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b"),
    ("quay.io/podman/stable", "quay.io/podman/stable:latest", "quay.io/podman/stable"),
    ("[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000/app"),
    ("a__b-d---e/f_g.h", "docker.io/a__b-d---e/f_g.h:latest", "a__b-d---e/f_g.h"),
    ("Registry/app", "Registry/app:latest", "Registry/app"),
])
def test_parse_normalizes(text, full, familiar):
    ref = reference.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_parts():
    ref = reference.parse("127.0.0.1:5000/a/b:t")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == \
        ("127.0.0.1:5000", "a/b", "t", None)
    assert ref.name == "127.0.0.1:5000/a/b"
    assert ref.familiar_string() == "127.0.0.1:5000/a/b:t"


def test_digest_reference_has_no_default_tag():
    ref = reference.parse("busybox@sha256:" + HEX)
    assert ref.tag is None
    assert ref.digest == "sha256:" + HEX
    assert str(ref) == "docker.io/library/busybox@sha256:" + HEX
    assert ref.familiar_string() == "busybox@sha256:" + HEX


def test_tag_and_digest():
    ref = reference.parse("localhost:5000/x:1@sha256:" + HEX)
    assert ref.tag == "1" and ref.digest == "sha256:" + HEX
    assert str(ref) == "localhost:5000/x:1@sha256:" + HEX


def test_no_default_tag_on_request():
    assert reference.parse("busybox", default_tag=False).tag is None


@pytest.mark.parametrize("text", [
    "", "Busybox", "myorg/App", "busybox:", ":tag", "busybox::1",
    "-busybox", "busybox-", "a//b", "/busybox", "busybox/", "a..b",
    "busybox:" + "t" * 129, "busybox:-tag", "busybox@sha256:abc",
    "busybox@sha256:" + "A" * 64, "busybox@", HEX, "bad host!/x",
    "x" * 256, "a b",
])
def test_invalid(text):
    with pytest.raises(UsageError) as exc:
        reference.parse(text)
    assert "invalid reference format" in exc.value.message
    assert exc.value.hint


def test_lowercase_message():
    with pytest.raises(UsageError, match="lowercase"):
        reference.parse("myorg/App")


def test_with_tag_and_equality():
    a = reference.parse("busybox:1")
    assert a.with_tag("2") == reference.parse("busybox:2")
    assert hash(reference.parse("busybox")) == hash(reference.parse("docker.io/library/busybox:latest"))
    assert reference.familiar_name("docker.io/myorg/app:v2") == "myorg/app:v2"


# The grammar is checked by hand (no `re` on the start path); these are the
# regular expressions of Docker's grammar the checks must agree with.
REGEXPS = {
    "_is_path_component": r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z",
    "_is_domain": r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
                  r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
                  r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?\Z",
    "_is_tag": r"[\w][\w.-]{0,127}\Z",
    "_is_digest": r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}\Z",
}
ALPHABETS = {
    "_is_path_component": "a0._-A/é",
    "_is_domain": "aZ0.-:[]f",
    "_is_tag": "a_.-:é٣\n",
    "_is_digest": "aZ0-_+.:",
}


def _samples(alphabet, exhaustive, seed):
    import itertools
    import random
    yield from ("".join(p) for n in range(exhaustive + 1)
                for p in itertools.product(alphabet, repeat=n))
    rng = random.Random(seed)
    for _ in range(20000):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 24)))


@pytest.mark.parametrize("name", sorted(REGEXPS))
def test_grammar_matches_the_regexps(name):
    import re
    pattern = re.compile(REGEXPS[name])
    check = getattr(reference, name)
    for text in _samples(ALPHABETS[name], 5 if name != "_is_domain" else 4, name):
        assert check(text) == bool(pattern.match(text)), text


def test_grammar_edges():
    import re
    tag = re.compile(REGEXPS["_is_tag"])
    digest = re.compile(REGEXPS["_is_digest"])
    for text in ("t" * 128, "t" * 129, "_" + "a" * 127, "x\u0663", "\u0663x"):
        assert reference._is_tag(text) == bool(tag.match(text)), text
    for text in ("sha256:" + "a" * 31, "sha256:" + "a" * 32, "sha256:" + "aB" * 40,
                 "sha256:" + "a" * 31 + ":", "a-b+c.d_e:" + "0" * 32, "a--b:" + "0" * 32):
        assert reference._is_digest(text) == bool(digest.match(text)), text
    assert reference.is_hex(HEX, 64) and reference.is_hex("0a") and \
        not reference.is_hex("") and not reference.is_hex("A" * 64, 64) and \
        not reference.is_hex(HEX[:63], 64)
