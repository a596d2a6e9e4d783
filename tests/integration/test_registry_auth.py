"""TLS with a test CA, htpasswd basic auth, and token auth (a token issuer
of the fixtures), against Debian's docker-registry on 127.0.0.1."""

import os
import stat

import pytest

from registrytools import Registry, TokenIssuer, htpasswd, make_ca, skopeo_copy


def user_config_home(runner):
    """XDG_CONFIG_HOME of the test user (certs.d, auth.json), beside the
    runner's store, where that user can reach it."""
    d = os.path.join(os.path.dirname(runner.root), "config")
    os.makedirs(d, exist_ok=True)
    os.chown(d, runner.uid, runner.gid)
    return d


@pytest.fixture(scope="module")
def config_home(sb):
    return user_config_home(sb)


def cfg(config_home):
    return {"XDG_CONFIG_HOME": config_home}


@pytest.fixture(scope="module")
def tls_reg(tmp_path_factory, images_dir):
    d = str(tmp_path_factory.mktemp("tlsreg"))
    ca = make_ca(os.path.join(d, "ca"))
    pw = os.path.join(d, "htpasswd")
    htpasswd(pw, "alice", "s3cret")
    r = Registry(os.path.join(d, "reg"), tls=ca, htpasswd=pw)
    certdir = os.path.join(d, "skopeo-certs")
    os.makedirs(certdir)
    os.symlink(ca["ca"], os.path.join(certdir, "ca.crt"))
    skopeo_copy("docker-archive:" + os.path.join(images_dir, "busybox.tar"),
                "docker://%s/busybox:latest" % r.host, creds=("alice", "s3cret"),
                cert_dir=certdir)
    r.ca = ca
    yield r
    r.stop()


def install_ca(sb, config_home, host, ca_file):
    d = os.path.join(config_home, "sandbox", "certs.d", host)
    os.makedirs(d, exist_ok=True)
    with open(ca_file, "rb") as src, open(os.path.join(d, "ca.crt"), "wb") as dst:
        dst.write(src.read())
    for p in (os.path.join(config_home, "sandbox"), os.path.dirname(d), d):
        os.chown(p, sb.uid, sb.gid)
        os.chmod(p, 0o755)
    os.chmod(os.path.join(d, "ca.crt"), 0o644)
    return d


def test_tls_and_basic_auth(sb, tls_reg, config_home, tmp_path):
    env = cfg(config_home)
    name = "%s/busybox" % tls_reg.host
    # Loopback speaks plain HTTP unless certs.d names the registry.
    r = sb("pull", name, env=env)
    assert r.returncode == 1
    # A certs.d dir with the wrong CA: verification fails, clearly.
    other = make_ca(str(tmp_path / "other"), "other")
    d = install_ca(sb, config_home, tls_reg.host, other["ca"])
    r = sb("pull", name, env=env)
    assert r.returncode == 1
    assert "cannot verify the TLS certificate of %s" % tls_reg.host in r.stderr, r.stderr
    # The right CA; no credentials yet.
    install_ca(sb, config_home, tls_reg.host, tls_reg.ca["ca"])
    r = sb("pull", name, env=env)
    assert r.returncode == 1
    assert "requires authentication" in r.stderr and "sandbox login" in r.stderr
    r = sb("login", "-u", "alice", "--password-stdin", tls_reg.host, input="wrong\n", env=env)
    assert r.returncode == 1 and "incorrect username or password" in r.stderr, r.stderr
    r = sb.ok("login", "-u", "alice", "--password-stdin", tls_reg.host, input="s3cret\n", env=env)
    assert r.stdout == "Login Succeeded\n"
    authfile = os.path.join(config_home, "sandbox", "auth.json")
    assert stat.S_IMODE(os.stat(authfile).st_mode) == 0o600
    sb.ok("pull", name, env=env)
    assert sb.ok("run", "--rm", name, "echo", "tls").stdout == "tls\n"
    r = sb.ok("logout", tls_reg.host, env=env)
    assert r.stdout == "Removing login credentials for %s\n" % tls_reg.host
    r = sb("pull", name, env=env)
    assert r.returncode == 1 and "requires authentication" in r.stderr
    assert os.path.isdir(d)


@pytest.fixture(scope="module")
def token_reg(tmp_path_factory, images_dir):
    d = str(tmp_path_factory.mktemp("tokenreg"))
    issuer = TokenIssuer(os.path.join(d, "issuer"), {"bob": "hunter2"})
    r = Registry(os.path.join(d, "reg"), token=issuer)
    src = "docker-archive:" + os.path.join(images_dir, "busybox.tar")
    for repo in ("public/busybox", "private/busybox"):
        skopeo_copy(src, "docker://%s/%s:latest" % (r.host, repo), creds=("bob", "hunter2"))
    r.issuer = issuer
    yield r
    r.stop()
    issuer.stop()


def test_token_auth(fresh_sb, token_reg, tmp_path):
    config_home = user_config_home(fresh_sb)
    env = cfg(config_home)
    issued = token_reg.issuer.issued
    # Anonymous: a token for public/, one for the whole pull.
    before = len(issued)
    fresh_sb.ok("pull", "%s/public/busybox" % token_reg.host, env=env)
    assert issued[before:] == [(None, ["repository:public/busybox:pull"])]
    # Anonymous access to private/ is refused, clearly.
    r = fresh_sb("pull", "%s/private/busybox" % token_reg.host, env=env)
    assert r.returncode == 1
    assert "private/busybox" in r.stderr and ("unauthorized" in r.stderr or
                                             "denied" in r.stderr), r.stderr
    r = fresh_sb("login", "-u", "bob", "--password-stdin", token_reg.host,
                 input="nope\n", env=env)
    assert r.returncode == 1 and "incorrect username or password" in r.stderr, r.stderr
    fresh_sb.ok("login", "-u", "bob", "--password-stdin", token_reg.host,
                input="hunter2\n", env=env)
    before = len(issued)
    fresh_sb.ok("pull", "%s/private/busybox" % token_reg.host, env=env)
    assert issued[before:] == [("bob", ["repository:private/busybox:pull"])]
    out = fresh_sb.ok("run", "--rm", "%s/private/busybox" % token_reg.host,
                      "echo", "token").stdout
    assert out == "token\n"
