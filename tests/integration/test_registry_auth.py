"""TLS with a test CA, htpasswd basic auth, and token auth (a token issuer
of the fixtures), against Debian's docker-registry on 127.0.0.1."""

import json
import os
import stat
import subprocess

import pytest

from conftest import CLEAN_PATH
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


HELPER = """#!/bin/sh
# docker-credential-sbtest: Docker's credential helper protocol, from a table
read server
echo "$1 $server" >> "$(dirname "$0")/asked"
case "$server" in
%s
  *) echo "credentials not found in native keychain"; exit 1;;
esac
"""


def test_credential_helpers_of_docker_config(fresh_sb, token_reg, tmp_path_factory,
                                            images_dir):
    """Docker's config.json (in $DOCKER_CONFIG) with credHelpers and
    credsStore: `docker-credential-NAME get` is asked with the registry's
    name, for a password (a basic-auth registry) or an identity token (a
    token registry: traded with the OAuth2 refresh-token grant); a helper
    that has nothing gives an anonymous pull; a missing one is warned
    about, and the pull goes on without it."""
    sb = fresh_sb
    d = str(tmp_path_factory.mktemp("basicreg"))
    pw = os.path.join(d, "htpasswd")
    htpasswd(pw, "carol", "pa55")
    basic = Registry(os.path.join(d, "reg"), htpasswd=pw)
    try:
        skopeo_copy("docker-archive:" + os.path.join(images_dir, "busybox.tar"),
                    "docker://%s/busybox:latest" % basic.host, creds=("carol", "pa55"))
        token_reg.issuer.refresh_tokens["idtoken-of-bob"] = "bob"
        home = os.path.join(os.path.dirname(sb.root), "helpers")
        bindir, dockercfg = os.path.join(home, "bin"), os.path.join(home, "docker")
        os.makedirs(bindir, exist_ok=True)
        os.makedirs(dockercfg, exist_ok=True)
        table = ('  %s) echo \'{"ServerURL":"%s","Username":"carol","Secret":"pa55"}\';;\n'
                 '  %s) echo \'{"ServerURL":"%s","Username":"<token>",'
                 '"Secret":"idtoken-of-bob"}\';;') % (basic.host, basic.host,
                                                      token_reg.host, token_reg.host)
        helper = os.path.join(bindir, "docker-credential-sbtest")
        with open(helper, "w") as f:
            f.write(HELPER % table)
        os.chmod(helper, 0o755)
        config = os.path.join(dockercfg, "config.json")
        with open(config, "w") as f:
            json.dump({"auths": {basic.host: {}},
                       "credHelpers": {basic.host: "sbtest", token_reg.host: "sbtest"}}, f)
        subprocess.run(["chown", "-R", "%d:%d" % (sb.uid, sb.gid), home], check=True)
        env = {"DOCKER_CONFIG": dockercfg, "PATH": bindir + ":" + CLEAN_PATH,
               "XDG_CONFIG_HOME": user_config_home(sb)}

        out = sb.ok("run", "--rm", "%s/busybox" % basic.host, "echo", "basic", env=env)
        assert out.stdout.endswith("basic\n")
        issued = token_reg.issuer.issued
        before = len(issued)
        sb.ok("pull", "-q", "%s/private/busybox" % token_reg.host, env=env)
        assert issued[before:] == [("bob", ["repository:private/busybox:pull"])]
        with open(os.path.join(bindir, "asked")) as f:
            asked = f.read().split("\n")
        assert "get %s" % basic.host in asked and "get %s" % token_reg.host in asked

        # credsStore for every other registry: a helper with nothing
        # stored leaves the pull anonymous (public/ is open to all).
        with open(config, "w") as f:
            json.dump({"credsStore": "sbtest"}, f)
        token_reg.issuer.refresh_tokens.clear()
        sb.ok("rmi", "%s/busybox" % basic.host)
        r = sb("pull", "%s/busybox" % basic.host, env=dict(env, DOCKER_CONFIG=dockercfg))
        assert r.returncode == 0, r.stderr         # (carol's, from the table)
        r = sb("pull", "%s/private/busybox:other" % token_reg.host, env=env)
        assert r.returncode == 1 and "incorrect username or password" in r.stderr, r.stderr

        # A helper that is not installed (Docker Desktop's config copied
        # over): said once, and public images still come.
        with open(config, "w") as f:
            json.dump({"credsStore": "desktop"}, f)
        r = sb("pull", "-q", "%s/public/busybox" % token_reg.host, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("docker-credential-desktop") == 1
        assert "is not installed" in r.stderr
    finally:
        basic.stop()
