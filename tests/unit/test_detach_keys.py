"""attach's detach keys: Docker's --detach-keys syntax, and the escape
watcher that passes on what only began like the sequence."""

import pytest


def test_detach_keys():
    from helpers.container.attach import _Escape, parse_detach_keys
    from helpers.errors import UsageError
    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,d") == b"\x01d"
    assert parse_detach_keys("ctrl-[,ctrl-@") == b"\x1b\x00"
    with pytest.raises(UsageError):
        parse_detach_keys("ctrl-pp")
    e = _Escape(b"\x10\x11")
    assert e.feed(b"ab\x10") == (b"ab", False)      # held: maybe the start
    assert e.feed(b"c") == (b"\x10c", False)        # it was not
    assert e.feed(b"\x10\x10") == (b"\x10", False)
    assert e.feed(b"\x11rest") == (b"", True)
