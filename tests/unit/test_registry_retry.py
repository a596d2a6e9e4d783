"""How long the registry client waits before a retry, and how long it
reuses a bearer token: pure logic of helpers/image/registry.py."""

import email.utils
import time

import pytest

from helpers.image import registry


@pytest.mark.parametrize("header, attempt, delay", [
    (None, 0, 0.25), ("", 1, 0.5), (None, 2, 1.0),     # backoff, doubled
    ("3", 0, 3.0), ("0", 2, 0.0),                       # Retry-After: seconds
    ("3600", 0, registry.MAX_RETRY_AFTER),              # capped
    ("soon", 1, 0.5), ("-1", 0, 0.25),                  # not a delay: backoff
])
def test_retry_delay(header, attempt, delay):
    assert registry.retry_delay(header, attempt) == delay


def test_retry_delay_http_date():
    soon = email.utils.formatdate(time.time() + 4, usegmt=True)
    assert 2.5 <= registry.retry_delay(soon, 0) <= 4
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert registry.retry_delay(past, 0) == 0
    far = email.utils.formatdate(time.time() + 86400, usegmt=True)
    assert registry.retry_delay(far, 0) == registry.MAX_RETRY_AFTER


@pytest.mark.parametrize("expires_in, lifetime", [
    (None, 55), (0, 55), ("garbage", 55),   # the spec's default: 60 s
    (300, 295), (60, 55), (3, 2.25), (1, 1.0),
])
def test_token_lifetime(expires_in, lifetime):
    assert registry.token_lifetime(expires_in) == lifetime
