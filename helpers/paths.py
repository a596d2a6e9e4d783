"""Where things live on disk (DESIGN.md section 3).

Nothing here creates directories at import time; callers ask for the path and
create what they need.  ``--root`` on the command line (or $SANDBOX_ROOT)
overrides the data directory, ``--runroot`` (or $SANDBOX_RUNROOT) the
runtime directory.
"""

import os


class Paths:
    """All on-disk locations of one store.  Cheap to build, no I/O."""

    def __init__(self, root=None, runroot=None):
        self.root = os.path.abspath(root or default_root())
        self.runroot = os.path.abspath(runroot or default_runroot())

    # -- images -----------------------------------------------------------
    @property
    def blobs(self):
        return os.path.join(self.root, "blobs", "sha256")

    def blob(self, digest):
        algo, _, hexpart = digest.partition(":")
        return os.path.join(self.root, "blobs", algo, hexpart)

    @property
    def layers(self):
        return os.path.join(self.root, "layers")

    def layer(self, chain_id):
        return os.path.join(self.layers, chain_id.partition(":")[2] or chain_id)

    @property
    def images(self):
        return os.path.join(self.root, "images")

    def image_config(self, image_id):
        return os.path.join(self.images, image_id.partition(":")[2] + ".json")

    def image_manifest(self, image_id):
        return os.path.join(self.images, image_id.partition(":")[2] + ".manifest")

    @property
    def repositories(self):
        return os.path.join(self.root, "repositories.json")

    # -- containers -------------------------------------------------------
    @property
    def containers(self):
        return os.path.join(self.root, "containers")

    def container(self, cid):
        return os.path.join(self.containers, cid)

    @property
    def volumes(self):
        return os.path.join(self.root, "volumes")

    @property
    def networks(self):
        return os.path.join(self.root, "networks")

    # -- scratch and locks ------------------------------------------------
    @property
    def tmp(self):
        """Staging area on the same filesystem as the store (for renames)."""
        return os.path.join(self.root, "tmp")

    @property
    def store_lock(self):
        return os.path.join(self.root, "store.lock")

    @property
    def settings(self):
        """Choices remembered between runs (the storage driver that works)."""
        return os.path.join(self.root, "settings.json")


def default_root():
    env = os.environ.get("SANDBOX_ROOT")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "sandbox")


def default_runroot():
    env = os.environ.get("SANDBOX_RUNROOT")
    if env:
        return env
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.access(xdg, os.W_OK | os.X_OK):
        return os.path.join(xdg, "sandbox")
    # No login session (su, cron, CI): a private per-user directory in /tmp.
    return os.path.join("/tmp", "sandbox-run-%d" % os.getuid())


def xdg_config_home():
    """$XDG_CONFIG_HOME, else ~/.config (ours, podman's containers/,
    systemd's user units live under it)."""
    return os.environ.get("XDG_CONFIG_HOME") or os.path.join(
        os.path.expanduser("~"), ".config")


def config_dir():
    return os.path.join(xdg_config_home(), "sandbox")


def docker_config_file():
    """Docker's CLI config.json: in $DOCKER_CONFIG, else ~/.docker."""
    return os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.join(
        os.path.expanduser("~"), ".docker"), "config.json")


def cli_setting(key):
    """One of Docker's CLI settings (config.json's psFormat, imagesFormat,
    networksFormat, volumesFormat, statsFormat, detachKeys): from our
    config.json, else from Docker's ($DOCKER_CONFIG, else ~/.docker), so
    that a Docker user's choices hold here too; None when neither sets
    it."""
    value = user_config().get(key)
    if value is None:
        import json
        try:
            with open(docker_config_file(), "rb") as f:
                doc = json.loads(f.read())
            value = doc.get(key) if isinstance(doc, dict) else None
        except (OSError, ValueError):
            value = None
    return value if isinstance(value, str) and value else None


def user_config(path=None):
    """~/.config/sandbox/config.json (or ``path``) as a dict: {} when it is
    missing, exit 125 with the file's name when it cannot be read or is not
    a JSON object (the settings of `run`: "cgroups", "log-driver",
    "log-opts")."""
    from . import jsonfast
    from .errors import UsageError
    path = path or os.path.join(config_dir(), "config.json")
    try:
        with open(path, "rb") as f:
            cfg = jsonfast.loads(f.read())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError("%s: %s" % (path, exc)) from None
    if not isinstance(cfg, dict):
        raise UsageError("%s: not a JSON object" % path)
    return cfg
