"""Registry credentials: our auth file, and those of Docker and podman.

Ours is ``~/.config/sandbox/auth.json`` (mode 0600), in the format the
others use: {"auths": {"HOST[:PORT]": {"auth": base64("user:password")}}}.
Lookups also read ``$XDG_RUNTIME_DIR/containers/auth.json`` (podman,
skopeo) and ``~/.docker/config.json`` (plain ``auth`` entries only;
credential helpers are not run).  Docker Hub is keyed
"https://index.docker.io/v1/" by Docker, "docker.io" by podman.
"""

import base64
import json
import os

from .. import fsutil
from ..errors import UsageError

HUB_KEYS = ("docker.io", "https://index.docker.io/v1/", "index.docker.io",
            "registry-1.docker.io")


def own_file():
    from ..paths import config_dir
    return os.path.join(config_dir(), "auth.json")


def search_files():
    files = [own_file()]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        files.append(os.path.join(runtime, "containers", "auth.json"))
    files.append(os.path.join(os.path.expanduser("~"), ".docker", "config.json"))
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
    """(user, password) for ``registry``, or None."""
    for path in search_files():
        auths = _read(path).get("auths") or {}
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
