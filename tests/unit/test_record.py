"""helpers.record.Record behaves as the frozen dataclasses it replaces."""

import dataclasses

import pytest

from helpers.record import REQUIRED, Record


class Point(Record):
    FIELDS = (("x", REQUIRED), ("y", REQUIRED), ("tags", ()), ("note", None))


@dataclasses.dataclass(frozen=True)
class DataPoint:
    x: int
    y: int
    tags: tuple = ()
    note: str | None = None


@pytest.mark.parametrize("args, kwargs", [
    ((1, 2), {}), ((1,), {"y": 2}), ((), {"x": 1, "y": 2, "note": "n"}),
    ((1, 2, ("a",), "n"), {}),
])
def test_like_a_frozen_dataclass(args, kwargs):
    p, d = Point(*args, **kwargs), DataPoint(*args, **kwargs)
    assert (p.x, p.y, p.tags, p.note) == (d.x, d.y, d.tags, d.note)
    assert repr(p) == repr(d).replace("DataPoint", "Point")
    assert p == Point(*args, **kwargs) and hash(p) == hash(Point(*args, **kwargs))
    assert p != Point(p.x + 1, p.y) and p != d
    with pytest.raises(AttributeError):
        p.x = 5
    with pytest.raises(AttributeError):
        del p.y


@pytest.mark.parametrize("args, kwargs", [
    ((), {"x": 1}), ((1, 2, 3, 4, 5), {}), ((1, 2), {"x": 1}), ((1, 2), {"z": 3}),
])
def test_bad_arguments_are_type_errors(args, kwargs):
    with pytest.raises(TypeError):
        DataPoint(*args, **kwargs)
    with pytest.raises(TypeError):
        Point(*args, **kwargs)
