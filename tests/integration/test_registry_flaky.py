"""The registry client against registries that misbehave (issue 4, items 1
and 3): 429 and 5xx answers, connections dropped mid-blob, redirects to
blob storage on another host, bearer tokens reused until they expire.

A TamperProxy of registrytools sits in front of a real docker-registry,
injects the faults and logs what the client sent; a BlobServer on
127.0.0.2 plays the blob storage a redirecting registry sends clients to.
"""

import hashlib
import os
import time

import pytest

from registrytools import (BlobServer, RawPusher, Registry, TamperProxy, TokenIssuer,
                           gzip_bytes, htpasswd, sha256, skopeo_copy, tar_bytes)
from conftest import describe
from test_registry import busybox_layer
from test_registry_auth import user_config_home

LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
RETRIES = 3             # helpers/image/registry.py: attempts after the first
RESUME_TRIES = 3        # helpers/image/pull.py: resumes of one blob
MiB = 1 << 20


@pytest.fixture(scope="module")
def reg(tmp_path_factory, images_dir):
    """A plain registry with busybox, and `three`: busybox's layer, 3 MiB of
    random data (/big) and a small layer (/etc/small) on top; `six`: six
    small layers."""
    r = Registry(str(tmp_path_factory.mktemp("registry")))
    skopeo_copy("docker-archive:" + os.path.join(images_dir, "busybox.tar"),
                "docker://%s/library/busybox:latest" % r.host)
    push = RawPusher(r.host)
    r.big = os.urandom(3 * MiB)
    layers = [busybox_layer(images_dir), tar_bytes({"big": r.big}),
              tar_bytes({"etc/small": b"small\n"})]
    blobs = [gzip_bytes(t) for t in layers]
    push.image("three", "latest", [(t, b, LAYER_GZ) for t, b in zip(layers, blobs)])
    r.base_digest, r.big_digest, r.small_digest = (sha256(b) for b in blobs)
    six = [layers[0]] + [tar_bytes({"etc/six%d" % i: b"%d\n" % i}) for i in range(1, 6)]
    push.image("six", "latest", [(t, gzip_bytes(t), LAYER_GZ) for t in six])
    r.six_digests = [sha256(gzip_bytes(t)) for t in six]
    yield r
    r.stop()


@pytest.fixture(scope="module")
def module_proxy(reg):
    p = TamperProxy(reg.host)
    yield p
    p.stop()


@pytest.fixture
def proxy(module_proxy):
    module_proxy.clear()
    yield module_proxy
    module_proxy.clear()


def statuses(entries):
    return [e[3] for e in entries]


def auth_of(headers):
    return next((v for k, v in headers.items() if k.lower() == "authorization"), None)


def assert_one_clear_line(r, *words):
    lines = r.stderr.strip().splitlines()
    assert lines and lines[0].startswith("sandbox: "), describe(r)
    assert len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("  hint: ")), describe(r)
    for w in words:
        assert w in lines[0], describe(r)


def store_files(sb, sub):
    d = os.path.join(sb.root, sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def assert_big_image_right(sb, name, big):
    out = sb.ok("run", "--rm", name, "sh", "-c", "cat /etc/small; sha256sum /big").stdout
    assert out.split() == ["small", hashlib.sha256(big).hexdigest(), "/big"], out


# --- 429 and 5xx ----------------------------------------------------------------------
def busybox_layer_digest(reg):
    import json
    doc = json.loads(RawPusher(reg.host).get_manifest("library/busybox", "latest"))
    return doc["layers"][0]["digest"]


@pytest.mark.parametrize("status,retry_after", [(429, 1), (503, None), (502, 1)])
def test_429_and_5xx_are_retried_with_backoff(fresh_sb, reg, proxy, status, retry_after):
    layer = busybox_layer_digest(reg)
    proxy.fail("/manifests/", status, times=2, retry_after=retry_after)
    proxy.fail(layer, status, times=2, retry_after=retry_after)
    name = "%s/library/busybox" % proxy.host
    start = time.monotonic()
    fresh_sb.ok("pull", name)
    elapsed = time.monotonic() - start
    assert statuses(proxy.requests("/manifests/")) == [status, status, 200]
    assert statuses(proxy.requests(layer)) == [status, status, 200]
    # Two waits before each of the two: Retry-After (1 s) when the answer
    # has one, else the backoff (0.25 s, then 0.5 s).
    least = 4 * retry_after if retry_after else 2 * (0.25 + 0.5)
    assert elapsed >= least, elapsed
    if retry_after:
        assert elapsed < least + 5, elapsed
    assert fresh_sb.ok("run", "--rm", name, "echo", "ok").stdout == "ok\n"


@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_503_forever_fails_clearly_and_soon(fresh_sb, reg, proxy, what):
    match = "/manifests/" if what == "manifest" else busybox_layer_digest(reg)
    proxy.fail(match, 503, times=None)
    name = "%s/library/busybox" % proxy.host
    start = time.monotonic()
    r = fresh_sb("pull", name)
    assert time.monotonic() - start < 15
    assert r.returncode == 1, describe(r)    # pull's registry errors exit 1, as Docker's
    assert_one_clear_line(r, "answered 503", what)
    assert "try again later" in r.stderr
    assert statuses(proxy.requests(match)) == [503] * (RETRIES + 1)
    # run reports the same failure with exit 125 (an error before the
    # container starts).
    r = fresh_sb("run", "--rm", name, "true")
    assert r.returncode == 125, describe(r)
    assert "answered 503" in r.stderr
    assert "busybox" not in fresh_sb.ok("images").stdout
    assert store_files(fresh_sb, "tmp") == []
    proxy.clear()
    fresh_sb.ok("pull", "-q", name)
    assert fresh_sb.ok("run", "--rm", name, "echo", "ok").stdout == "ok\n"


# --- dropped connections -----------------------------------------------------------------
@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_connection_dropped_mid_blob_resumes(fresh_sb, reg, proxy, reset):
    proxy.drop(reg.big_digest, at=MiB, reset=reset)
    name = "%s/three" % proxy.host
    fresh_sb.ok("pull", name)
    asked = proxy.requests(reg.big_digest)
    assert statuses(asked) == [200, 206], asked
    assert "Range" not in asked[0][2]
    if reset:
        # A reset may lose what was in flight: it resumes from what arrived.
        offset = int(asked[1][2].get("Range", "bytes=0-").partition("=")[2].rstrip("-"))
        assert 0 < offset <= MiB
    else:
        assert asked[1][2]["Range"] == "bytes=%d-" % MiB
    assert_big_image_right(fresh_sb, name, reg.big)


@pytest.mark.slow
def test_connection_always_dropping_keeps_store_consistent(fresh_sb, reg, proxy):
    proxy.drop(reg.big_digest, at=MiB, times=None)
    name = "%s/three" % proxy.host
    start = time.monotonic()
    r = fresh_sb("pull", name)
    assert time.monotonic() - start < 20
    assert r.returncode == 1, describe(r)
    assert_one_clear_line(r, reg.big_digest, "dropped %d times" % (RESUME_TRIES + 1))
    asked = proxy.requests(reg.big_digest)
    assert len(asked) == RESUME_TRIES + 1
    assert all(e[2].get("Range") == "bytes=%d-" % MiB for e in asked[1:]), asked
    # Nothing of the big blob is visible; the two layers that completed are.
    assert "three" not in fresh_sb.ok("images").stdout
    assert store_files(fresh_sb, "tmp") == []
    assert reg.big_digest[7:] not in store_files(fresh_sb, "blobs/sha256")
    assert sorted(store_files(fresh_sb, "blobs/sha256")) == sorted(
        d[7:] for d in (reg.base_digest, reg.small_digest))
    assert len(store_files(fresh_sb, "layers")) == 2
    # Through a healthy path: only the big blob is fetched.
    proxy.clear()
    out = fresh_sb.ok("pull", name).stdout
    assert out.count("Already exists") == 2 and out.count("Pull complete") == 1, out
    assert statuses(proxy.requests(reg.big_digest)) == [200]
    assert proxy.requests(reg.base_digest) == proxy.requests(reg.small_digest) == []
    assert_big_image_right(fresh_sb, name, reg.big)


# --- redirects to blob storage on another host -------------------------------------------
@pytest.fixture(scope="module")
def basic_reg(tmp_path_factory, images_dir):
    """htpasswd auth (alice), blobs redirected to a BlobServer."""
    d = str(tmp_path_factory.mktemp("basicreg"))
    pw = os.path.join(d, "htpasswd")
    htpasswd(pw, "alice", "s3cret")
    blobs = BlobServer(os.path.join(d, "reg", "data"))
    r = Registry(os.path.join(d, "reg"), htpasswd=pw, redirect=blobs.base)
    skopeo_copy("docker-archive:" + os.path.join(images_dir, "busybox.tar"),
                "docker://%s/busybox:latest" % r.host, creds=("alice", "s3cret"))
    r.blobs = blobs
    yield r
    r.stop()
    blobs.stop()


@pytest.fixture(scope="module")
def token_reg(tmp_path_factory, images_dir, reg):
    """Token auth (anonymous pull of public/), blobs redirected to a
    BlobServer; public/layers (skopeo's layers.tar) and public/six."""
    d = str(tmp_path_factory.mktemp("tokenreg"))
    issuer = TokenIssuer(os.path.join(d, "issuer"), {"bob": "hunter2"})
    blobs = BlobServer(os.path.join(d, "reg", "data"))
    r = Registry(os.path.join(d, "reg"), token=issuer, redirect=blobs.base)
    skopeo_copy("docker-archive:" + os.path.join(images_dir, "layers.tar"),
                "docker://%s/public/layers:latest" % r.host, creds=("bob", "hunter2"))
    skopeo_copy("docker://%s/six:latest" % reg.host, "docker://%s/public/six:latest" % r.host,
                "--src-tls-verify=false", creds=("bob", "hunter2"))
    r.issuer, r.blobs = issuer, blobs
    yield r
    r.stop()
    blobs.stop()
    issuer.stop()


def assert_redirected_without_credentials(blobs, proxy, scheme):
    """Every blob came from the blob server, which never saw an
    Authorization header; the registry saw one on every blob request."""
    assert blobs.log, "the registry redirected nothing"
    assert [e for e in blobs.log if auth_of(e[2])] == []
    redirected = proxy.requests("/blobs/", status=307)
    assert len(redirected) >= 2, proxy.log
    assert len(redirected) == len([e for e in blobs.log if e[0] == "GET"])
    assert all((auth_of(e[2]) or "").startswith(scheme + " ") for e in redirected), redirected


def test_redirect_on_basic_auth_registry(fresh_sb, basic_reg):
    env = {"XDG_CONFIG_HOME": user_config_home(fresh_sb)}
    proxy = TamperProxy(basic_reg.host)
    try:
        fresh_sb.ok("login", "-u", "alice", "--password-stdin", proxy.host,
                    input="s3cret\n", env=env)
        basic_reg.blobs.log.clear()
        name = "%s/busybox" % proxy.host
        fresh_sb.ok("pull", name, env=env)
    finally:
        proxy.stop()
    assert_redirected_without_credentials(basic_reg.blobs, proxy, "Basic")
    assert fresh_sb.ok("run", "--rm", name, "echo", "redirected").stdout == "redirected\n"


def test_redirect_on_token_registry_one_token_per_pull(fresh_sb, token_reg):
    issued = token_reg.issuer.issued
    proxy = TamperProxy(token_reg.host)
    token_reg.blobs.log.clear()
    before = len(issued)
    try:
        fresh_sb.ok("pull", "%s/public/layers" % proxy.host)
    finally:
        proxy.stop()
    # One token for the manifest, the config and every layer.
    assert issued[before:] == [(None, ["repository:public/layers:pull"])]
    assert statuses(proxy.log).count(401) == 1 and proxy.log[0][3] == 401, proxy.log
    assert all(auth_of(e[2]) for e in proxy.log[1:]), proxy.log
    assert len(proxy.requests("/blobs/", status=307)) >= 3      # config + layers
    assert_redirected_without_credentials(token_reg.blobs, proxy, "Bearer")
    out = fresh_sb.ok("run", "--rm", "%s/public/layers" % proxy.host, "ls", "/data").stdout
    assert "owned1000" in out.split()


@pytest.mark.slow
def test_token_renewed_once_it_expires(fresh_sb, token_reg, reg):
    """Six layers, four downloads at a time: the last two ask the registry
    after the token's lifetime (3 s), with a token fetched anew."""
    issued = token_reg.issuer.issued
    proxy = TamperProxy(token_reg.host)
    for digest in reg.six_digests:
        proxy.delay(digest, 3.5)
    token_reg.issuer.ttl = 3
    before = len(issued)
    try:
        fresh_sb.ok("pull", "%s/public/six" % proxy.host)
    finally:
        token_reg.issuer.ttl = 60
        proxy.stop()
    tokens = issued[before:]
    assert 2 <= len(tokens) <= 3, tokens
    assert set(scope for _, [scope] in tokens) == {"repository:public/six:pull"}
    # Renewed before it expired: no request was refused on the way.
    assert statuses(proxy.log).count(401) == 1, proxy.log
    layer_gets = [e for d in reg.six_digests for e in proxy.requests(d)]
    assert len(layer_gets) == 6 and all(auth_of(e[2]) for e in layer_gets)
    # The last layers went out with another token than the first.
    assert len({auth_of(e[2]) for e in layer_gets}) >= 2
    out = fresh_sb.ok("run", "--rm", "%s/public/six" % proxy.host, "cat", "/etc/six5").stdout
    assert out == "5\n"
