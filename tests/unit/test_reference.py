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
