"""Container and volume names: Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]*."""

import itertools
import re

from helpers.container.state import valid_name


def test_valid_name_is_the_docker_rule():
    pattern = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
    for n in range(5):
        for chars in itertools.product("aZ0_.-/:\n é", repeat=n):
            name = "".join(chars)
            assert valid_name(name) == bool(pattern.fullmatch(name)), repr(name)
    assert valid_name("web-1.prod_db") and not valid_name("-web") and not valid_name("")
