"""The verbs: each module registers its parsers (cli.VERB_MODULES)."""


def write_output(output, produce):
    """`save` and `export`: ``produce(f)`` writes an archive to the binary
    file ``f``, which is -o ``output`` (written aside and renamed, so that a
    failure leaves no half archive under its name) or stdout, refused when
    it is a terminal (Docker's message), before anything is read."""
    import os
    import sys
    from ..errors import UsageError
    if not output:
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal. Use the -o "
                             "flag or redirect")
        produce(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    out = os.path.abspath(output)
    tmp = os.path.join(os.path.dirname(out), ".%s.tmp-%d" % (os.path.basename(out),
                                                              os.getpid()))
    try:
        f = open(tmp, "wb")
    except OSError as exc:
        raise UsageError("cannot write %s: %s" % (output, exc.strerror)) from None
    try:
        with f:
            produce(f)
        try:
            os.rename(tmp, out)
        except OSError as exc:
            raise UsageError("cannot write %s: %s" % (output, exc.strerror)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
