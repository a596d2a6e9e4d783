"""Record: what ``@dataclasses.dataclass(frozen=True)`` gives a class of
plain fields (keyword or positional construction, defaults, equality, hash,
repr, no assignment), without importing dataclasses.  That import brings
inspect, ast, dis, tokenize and re, and generating each class runs exec():
about 20 ms for cgroups.py, which `run` and `exec` load on every cgroup v2
host."""

REQUIRED = object()     # a field without a default


class Record:
    """Subclasses list ``FIELDS``: (name, default) pairs, in order, with
    REQUIRED as the default of a field that must be given."""

    FIELDS = ()

    def __init__(self, *args, **kwargs):
        cls = type(self).__name__
        if len(args) > len(self.FIELDS):
            raise TypeError("%s() takes %d arguments, %d given"
                            % (cls, len(self.FIELDS), len(args)))
        for i, (name, default) in enumerate(self.FIELDS):
            if i < len(args):
                if name in kwargs:
                    raise TypeError("%s() got multiple values for %r" % (cls, name))
                value = args[i]
            else:
                value = kwargs.pop(name, default)
                if value is REQUIRED:
                    raise TypeError("%s() missing argument %r" % (cls, name))
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError("%s() got unexpected arguments %s" % (cls, ", ".join(kwargs)))

    def __setattr__(self, name, value):
        raise AttributeError("cannot assign to field %r" % name)

    def __delattr__(self, name):
        raise AttributeError("cannot delete field %r" % name)

    def _values(self):
        return tuple(getattr(self, name) for name, _ in self.FIELDS)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        return "%s(%s)" % (type(self).__qualname__, ", ".join(
            "%s=%r" % (name, getattr(self, name)) for name, _ in self.FIELDS))
