"""sandbox: a rootless, daemonless container runner."""

__version__ = "0.1.0"


def collect_garbage_from_now_on():
    """sandbox.py starts with the cyclic garbage collector off: a `run`
    allocates tens of thousands of objects (its imports, the parsers) that
    live to the end, and collecting among them cost 2-4 ms of every start.
    Whatever may live long (a container's supervisor, `logs -f`, a
    foreground container once it runs, every verb but run and exec) turns
    it on here, with what exists so far frozen out of its reach."""
    import gc
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
