"""sandbox: a rootless, daemonless container runner."""

__version__ = "0.1.0"
