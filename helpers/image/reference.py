"""Image references with Docker's rules (distribution/reference).

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [domain "/"] path-component ["/" path-component]*

``busybox`` is ``docker.io/library/busybox:latest``; the first component is a
registry only when it contains "." or ":", is "localhost", or has an upper-
case letter (the rule of ``splitDockerDomain``), so ``myorg/app`` stays on
Docker Hub and ``localhost:5000/x`` does not.  Pure logic, no I/O.
"""

from ..errors import UsageError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
OFFICIAL_PREFIX = "library/"
NAME_MAX = 255   # distribution/reference NameTotalLengthMax

# Docker's grammar (distribution/reference regexp.go), checked by hand:
# `re` and what it imports (enum, functools, collections) would cost
# milliseconds on the path of every `run` (tests/unit/test_reference.py
# holds these functions against the regular expressions they replace).
_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_LETTERS = _LOWER | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER_ALNUM = _LOWER | _DIGITS
_ALNUM = _LETTERS | _DIGITS
_LOWER_HEX = frozenset("0123456789abcdef")
_HEX = _LOWER_HEX | frozenset("ABCDEF")
_DOMAIN_CHARS = _ALNUM | {"-"}
_IPV6_CHARS = _HEX | {":"}


def is_hex(s, length=None):
    """``s`` is lowercase hexadecimal (of ``length`` digits, if given)."""
    return bool(s) and (length is None or len(s) == length) and _LOWER_HEX.issuperset(s)


def _is_path_component(comp):
    """[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"""
    if not comp or comp[0] not in _LOWER_ALNUM or comp[-1] not in _LOWER_ALNUM:
        return False
    sep = ""
    for c in comp:
        if c not in _LOWER_ALNUM:
            sep += c
            continue
        if sep and sep not in (".", "_", "__") and sep.strip("-"):
            return False
        sep = ""
    return True


def _is_domain(domain):
    r"""(?:C(?:\.C)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)? where a component C is
    [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]"""
    if domain.startswith("["):
        host, bracket, port = domain[1:].partition("]")
        if not bracket or not host or not _IPV6_CHARS.issuperset(host):
            return False
        if port:
            colon, port = port[:1], port[1:]
            if colon != ":" or not port:
                return False
    else:
        host, colon, port = domain.partition(":")
        if colon and not port:
            return False
        for comp in host.split("."):
            if not comp or not _DOMAIN_CHARS.issuperset(comp) or \
                    comp[0] == "-" or comp[-1] == "-":
                return False
    return _DIGITS.issuperset(port)


def _is_tag(tag):
    r"""[\w][\w.-]{0,127} (\w of a str pattern: isalnum() or "_")"""
    return 0 < len(tag) <= 128 and (tag[0].isalnum() or tag[0] == "_") and \
        all(c.isalnum() or c in "_.-" for c in tag)


def _is_digest(digest):
    """[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"""
    algo, colon, hexpart = digest.partition(":")
    if not colon or len(hexpart) < 32 or not _HEX.issuperset(hexpart):
        return False
    for part in algo.replace("-", ".").replace("_", ".").replace("+", ".").split("."):
        if not part or part[0] not in _LETTERS or not _ALNUM.issuperset(part):
            return False
    return True


_HINT = ("a reference is [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST], lowercase, "
         "e.g. busybox, myorg/app:1.0, localhost:5000/app")


class Reference:
    """A parsed reference.  ``tag`` is "latest" unless a tag or a digest
    was given; ``digest`` is "sha256:<hex>" or None."""

    __slots__ = ("registry", "repository", "tag", "digest")

    def __init__(self, registry, repository, tag=None, digest=None):
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @property
    def name(self):
        """Full repository name: docker.io/library/busybox."""
        return self.registry + "/" + self.repository

    def __str__(self):
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def __repr__(self):
        return "Reference(%r)" % str(self)

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def familiar(self):
        """The name as `docker images` shows it in REPOSITORY: Docker Hub's
        domain and the "library/" of official images are dropped."""
        if self.registry != DEFAULT_REGISTRY:
            return self.name
        repo = self.repository
        if repo.startswith(OFFICIAL_PREFIX) and "/" not in repo[len(OFFICIAL_PREFIX):]:
            return repo[len(OFFICIAL_PREFIX):]
        return repo

    def familiar_string(self):
        """Short name with tag/digest, as `docker load` and `docker rmi`
        print it ("busybox:latest")."""
        s = self.familiar()
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def with_tag(self, tag):
        return Reference(self.registry, self.repository, tag, None)


def _invalid(s, why):
    return UsageError("invalid reference format: %s: %r" % (why, s), hint=_HINT)


def split_domain(name):
    """(domain, remainder) by Docker's rule (splitDockerDomain)."""
    i = name.find("/")
    first = name[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost"
                   and first.lower() == first):
        domain, remainder = DEFAULT_REGISTRY, name
    else:
        domain, remainder = first, name[i + 1:]
    if domain == "index.docker.io":
        domain = DEFAULT_REGISTRY
    if domain == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(s, default_tag=True):
    """Parse ``s`` into a Reference (normalized like ParseNormalizedNamed).
    With ``default_tag`` a reference without tag and digest gets "latest".
    Raises UsageError for anything Docker would reject."""
    if not isinstance(s, str) or not s:
        raise _invalid(s, "empty reference")
    if is_hex(s, 64):
        # Docker refuses these so that an image id is never taken for a name.
        raise _invalid(s, "cannot specify 64-byte hexadecimal strings")
    rest, digest = s, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _is_digest(digest):
            raise _invalid(s, "invalid digest")
        algo, _, hexpart = digest.partition(":")
        if algo == "sha256" and not is_hex(hexpart, 64):
            raise _invalid(s, "a sha256 digest is 64 lowercase hex characters")
    tag = None
    # A tag follows the last ":" that comes after the last "/"; an earlier
    # ":" belongs to the registry's port.
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _is_tag(tag):
            raise _invalid(s, "invalid tag")
    if not rest:
        raise _invalid(s, "missing repository name")
    domain, remainder = split_domain(rest)
    if domain != DEFAULT_REGISTRY and not _is_domain(domain):
        raise _invalid(s, "invalid registry %r" % domain)
    for comp in remainder.split("/"):
        if not _is_path_component(comp):
            if comp.lower() != comp and _is_path_component(comp.lower()):
                raise _invalid(s, "repository name must be lowercase")
            raise _invalid(s, "invalid repository name component %r" % comp)
    if len(domain) + 1 + len(remainder) > NAME_MAX:
        raise _invalid(s, "repository name longer than %d characters" % NAME_MAX)
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, remainder, tag, digest)


def familiar_name(full):
    """Familiar form of a stored "name:tag" string (for display)."""
    return parse(full).familiar_string()


def is_reference(s):
    try:
        parse(s)
        return True
    except UsageError:
        return False
