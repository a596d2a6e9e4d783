"""Registry credentials: our auth file, and those of Docker and podman.

Ours is ``~/.config/sandbox/auth.json`` (mode 0600), in the format the
others use: {"auths": {"HOST[:PORT]": {"auth": base64("user:password")}}}.
Lookups also read ``$REGISTRY_AUTH_FILE`` and
``$XDG_RUNTIME_DIR/containers/auth.json`` (podman, skopeo) and Docker's
``config.json`` (in ``$DOCKER_CONFIG``, else ~/.docker), first found wins.
In each, as Docker reads its file: a credential helper that
``credHelpers`` names for the registry, else the ``credsStore`` one, else
the ``auths`` entry.  A helper is Docker's ``docker-credential-NAME get``
(the server on stdin, {"Username", "Secret"} on stdout); a Username of
"<token>" makes Secret an identity token (OAuth2 refresh token: the
registry client trades it at the token server).  Docker Hub is keyed
"https://index.docker.io/v1/" by Docker, "docker.io" by podman.
"""

import base64
import json
import os
import sys

from .. import fsutil
from ..errors import UsageError

HUB_KEYS = ("docker.io", "https://index.docker.io/v1/", "index.docker.io",
            "registry-1.docker.io")


def own_file():
    from ..paths import config_dir
    return os.path.join(config_dir(), "auth.json")


IDENTITY_TOKEN = "<token>"      # a helper's Username for an identity token


def search_files():
    files = [own_file()]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(os.environ["REGISTRY_AUTH_FILE"])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        files.append(os.path.join(runtime, "containers", "auth.json"))
    from ..paths import docker_config_file
    files.append(docker_config_file())
    return files


def _keys(registry):
    if registry in HUB_KEYS:
        return HUB_KEYS
    return (registry, "https://" + registry, "http://" + registry,
            "https://%s/v1/" % registry, "https://%s/v2/" % registry)


def _read(path):
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def lookup(registry):
    """(user, password) for ``registry``, or None (user IDENTITY_TOKEN:
    the password is an identity token)."""
    for path in search_files():
        doc = _read(path)
        helper = _helper_for(doc, registry)
        if helper:
            creds = _from_helper(helper, registry, path)
            if creds:
                return creds
            continue
        auths = doc.get("auths") or {}
        for key in _keys(registry):
            entry = auths.get(key)
            if isinstance(entry, dict) and entry.get("auth"):
                try:
                    user, sep, password = base64.b64decode(
                        entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    continue
                if sep:
                    return user, password
    return None


def _helper_for(doc, registry):
    """The credential helper a Docker config names for ``registry``:
    credHelpers' entry, else credsStore (for every registry), else None."""
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        for key in _keys(registry):
            if isinstance(helpers.get(key), str) and helpers[key]:
                return helpers[key]
    store = doc.get("credsStore")
    return store if isinstance(store, str) and store else None


_warned = set()


def _warn(text):
    if text not in _warned:
        _warned.add(text)
        sys.stderr.write("WARNING: %s\n" % text)
        sys.stderr.flush()


def _from_helper(name, registry, path):
    """(user, secret) from ``docker-credential-NAME get``, or None: none
    stored (the helper says "credentials not found"), or the helper is
    missing or failed, which is said on stderr (the pull goes on without
    them: a public image still comes, a private one gets the registry's
    own refusal)."""
    import shutil
    import subprocess
    program = "docker-credential-" + name
    exe = shutil.which(program) if "/" not in name else None
    if exe is None:
        _warn("the credential helper %s (named in %s) is not installed: going on "
              "without credentials for %s" % (program, path, registry))
        return None
    server = "https://index.docker.io/v1/" if registry in HUB_KEYS else registry
    try:
        r = subprocess.run([exe, "get"], input=server.encode(), capture_output=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _warn("the credential helper %s failed (%s): going on without credentials "
              "for %s" % (program, exc, registry))
        return None
    if r.returncode != 0:
        text = (r.stdout or r.stderr).decode("utf-8", "replace").strip()
        if "credentials not found" not in text.lower():
            _warn("the credential helper %s failed: %s" % (program, text.splitlines()[0]
                                                           if text else "exit %d" % r.returncode))
        return None
    try:
        doc = json.loads(r.stdout)
        user, secret = doc.get("Username") or "", doc.get("Secret") or ""
    except (ValueError, AttributeError):
        _warn("the credential helper %s printed no credentials" % program)
        return None
    return (user, secret) if secret else None


def store(registry, user, password):
    """Save credentials in our auth file (0600, atomic)."""
    path = own_file()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with fsutil.locked(path + ".lock"):
        doc = _read(path)
        auths = doc.setdefault("auths", {})
        auths[registry] = {"auth": base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode()}
        fsutil.write_json(path, doc, mode=0o600)
        os.chmod(path, 0o600)


def remove(registry):
    """Forget our credentials for ``registry``; False if there were none."""
    path = own_file()
    if not os.path.exists(path):
        return False
    with fsutil.locked(path + ".lock"):
        doc = _read(path)
        auths = doc.get("auths") or {}
        found = [k for k in _keys(registry) if k in auths]
        for k in found:
            del auths[k]
        if found:
            fsutil.write_json(path, doc, mode=0o600)
    return bool(found)


def normalize_registry(name):
    """`login docker.io`, `login https://index.docker.io/v1/`, `login
    localhost:5000` -> the key we store under."""
    if not name:
        return "docker.io"
    s = name
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.split("/", 1)[0]
    if s in HUB_KEYS or s == "":
        return "docker.io"
    if any(c.isspace() for c in s):
        raise UsageError("invalid registry name %r" % name)
    return s
