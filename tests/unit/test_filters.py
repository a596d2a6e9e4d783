"""helpers/filters.py: Docker's --filter rule for every listing."""

import pytest

from helpers.errors import UsageError
from helpers.filters import group, matches


def test_same_key_either_value_other_keys_all():
    g = group(["status=exited", "status=running", "name=web"], ("status", "name"))
    assert g == {"status": ["exited", "running"], "name": ["web"]}
    row = {"status": "running", "name": "web-1"}
    one = lambda k, v: v in row[k]          # noqa: E731
    assert matches(g, one)
    assert not matches(group(["status=exited", "name=web"], ("status", "name")), one)
    assert matches({}, one)


def test_bad_keys_and_values_are_refused_and_values_converted():
    with pytest.raises(UsageError, match="invalid filter 'colour'"):
        group(["colour=red"], ("name",))
    with pytest.raises(UsageError, match="bad filter 'name'"):
        group(["name"], ("name",))
    assert group(["n=3"], ("n",), lambda k, v: int(v)) == {"n": [3]}
