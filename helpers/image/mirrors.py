"""Registry mirrors for pulls: where to try first, before the registry an
image names (a pull-through cache on CI machines spares Docker Hub's rate
limits).  Two sources, as the tools people come from configure them:

- Docker's daemon.json key ``"registry-mirrors"`` in
  ~/.config/sandbox/config.json: URLs ("https://mirror.gcr.io",
  "http://10.0.0.5:5000"), for Docker Hub only, as Docker uses them;
- podman's registries.conf (~/.config/containers/registries.conf, else
  /etc/containers/registries.conf): a ``[[registry]]`` whose ``prefix``
  (or ``location``) matches the image, with its ``[[registry.mirror]]``
  entries, for any registry; a mirror's location may carry a namespace
  ("mirror.example.com/hub": library/busybox is pulled as
  hub/library/busybox there) and ``insecure = true`` (plain HTTP).

Each mirror is tried in order and the registry itself last: a mirror that
cannot be reached, or lacks the image, or refuses it, is passed over (as
Docker does); pushes never go to a mirror.
"""

import os
import urllib.parse

from .registry import DOCKER_HUB


class Mirror:
    def __init__(self, host, namespace="", scheme=None):
        self.host = host                # [name][:port]
        self.namespace = namespace      # a path the repositories sit under
        self.scheme = scheme            # "http"/"https", or None: as for any host

    def repository(self, repository):
        return "%s/%s" % (self.namespace, repository) if self.namespace else repository

    def __repr__(self):
        return "Mirror(%r, %r, %r)" % (self.host, self.namespace, self.scheme)


def mirrors_for(registry, repository):
    """The mirrors to try, in order, for ``registry``/``repository``."""
    out = []
    if registry == DOCKER_HUB:
        from ..paths import user_config
        for url in user_config().get("registry-mirrors") or []:
            if isinstance(url, str) and url:
                parts = urllib.parse.urlsplit(url if "://" in url else "https://" + url)
                if parts.netloc:
                    out.append(Mirror(parts.netloc, parts.path.strip("/"), parts.scheme))
    out += _from_registries_conf(registry, repository)
    return out


def registries_conf():
    """The registries.conf podman reads: the user's, else the system's."""
    from ..paths import xdg_config_home
    for path in (os.path.join(xdg_config_home(), "containers", "registries.conf"),
                 "/etc/containers/registries.conf"):
        if os.path.exists(path):
            return path
    return None


def _from_registries_conf(registry, repository):
    path = registries_conf()
    if path is None:
        return []
    try:
        with open(path, "rb") as f:
            data = f.read()
        # A file whose only mirrors are in comments (Debian's) costs one
        # read, not a TOML parser (as network's containers.conf).
        if not any(b"mirror" in line for line in data.splitlines()
                   if not line.lstrip().startswith(b"#")):
            return []
        import tomllib
        doc = tomllib.loads(data.decode("utf-8"))
    except (OSError, ValueError) as exc:
        from ..errors import UsageError
        raise UsageError("cannot read %s: %s" % (path, exc),
                         hint="fix or remove the file (podman's registries.conf)") from None
    name = "%s/%s" % (registry, repository)
    best, best_len = None, -1
    for entry in doc.get("registry") or []:
        if not isinstance(entry, dict):
            continue
        prefix = entry.get("prefix") or entry.get("location") or ""
        if prefix and (name == prefix or name.startswith(prefix.rstrip("/") + "/")
                       or registry == prefix) and len(prefix) > best_len:
            best, best_len = entry, len(prefix)
    out = []
    for m in (best or {}).get("mirror") or []:
        location = m.get("location") if isinstance(m, dict) else None
        if not location:
            continue
        host, _, namespace = location.partition("/")
        out.append(Mirror(host, namespace.strip("/"), "http" if m.get("insecure") else None))
    return out
