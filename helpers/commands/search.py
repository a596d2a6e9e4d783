"""`search [--limit N] [--filter stars=N|is-official=BOOL] [--format F]
[--no-trunc] TERM`: images in a registry, as Docker's columns (NAME,
DESCRIPTION, STARS, OFFICIAL).

Docker Hub (a TERM with no registry) and registries that have it answer
the index's search API (GET /v1/search?q=TERM&n=LIMIT, which Docker's
search uses); a registry without it (the distribution registry has none)
is listed from its catalog (GET /v2/_catalog, token scope
registry:catalog:*), keeping the repositories whose name holds TERM, as
podman's search does."""

import json
import urllib.parse

from ..errors import SandboxError, UsageError
from ..formatting import print_rows, tabulate
from .registry import parse_bool

HUB_INDEX = "index.docker.io"


def register(sub):
    p = sub.add_parser("search", help="search a registry for images")
    p.add_argument("--limit", type=int, default=25, metavar="N",
                   help="at most N results (default 25)")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="stars=N, is-official=true|false")
    p.add_argument("--format", help="a Go template, 'table TEMPLATE' or 'json'")
    p.add_argument("--no-trunc", action="store_true", help="whole descriptions")
    p.add_argument("--tls-verify", type=parse_bool, default=None, metavar="BOOL")
    p.add_argument("term", metavar="TERM")
    p.set_defaults(func=cmd_search)


def split_term(term):
    """(registry, query): "localhost:5000/busy" -> ("localhost:5000",
    "busy"); "busybox" -> ("docker.io", "busybox"), as Docker splits a
    name (a first part with a dot or a colon, or localhost, is a host)."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", term


def _filters(values):
    out = {"stars": 0, "is-official": None}
    for item in values:
        key, sep, value = item.partition("=")
        if key == "stars" and sep and value.isdigit():
            out["stars"] = int(value)
        elif key == "is-official" and value.lower() in ("true", "false"):
            out["is-official"] = value.lower() == "true"
        else:
            raise UsageError("invalid filter %r" % item,
                             hint="stars=N or is-official=true|false")
    return out


def _index_search(client, query, limit):
    """The /v1/search answer as result dicts, or None where the registry
    has no such API (404, 405)."""
    resp = client.request("GET", "/v1/search?" + urllib.parse.urlencode(
        {"q": query, "n": limit}), ok=(404, 405))
    body = resp.read()
    resp.release()
    if resp.status in (404, 405):
        return None
    if resp.status != 200:
        raise client.check(resp, "search results for %r" % query, body)
    try:
        return list(json.loads(body).get("results") or [])
    except (ValueError, AttributeError):
        raise SandboxError("%s sent search results that are not JSON" % client.registry,
                           exit_code=1) from None


def _catalog_search(client, query, limit):
    """Repositories of /v2/_catalog whose name holds ``query`` (following
    its Link pages)."""
    names, path = [], "/v2/_catalog?n=1000"
    for _ in range(100):
        resp = client.request("GET", path)
        body = resp.read()
        resp.release()
        if resp.status != 200:
            raise client.check(resp, "the catalog of %s" % client.registry, body)
        try:
            names += json.loads(body).get("repositories") or []
        except (ValueError, AttributeError):
            break
        link = resp.headers.get("Link") or ""
        if "<" not in link or 'rel="next"' not in link:
            break
        path = link[link.index("<") + 1:link.index(">")]
    hits = [n for n in names if query.lower() in n.lower()]
    return [{"name": n, "description": "", "star_count": 0, "is_official": False}
            for n in hits[:limit]]


def cmd_search(args, paths):
    from ..image import registry
    if not 1 <= args.limit <= 100:
        raise UsageError("limit %d is outside the range of [1, 100]" % args.limit)
    filters = _filters(args.filter)
    where, query = split_term(args.term)
    host = HUB_INDEX if where == "docker.io" else where
    client = registry.Client(host, None, args.tls_verify)
    client.scope = "registry:catalog:*"
    try:
        results = _index_search(client, query, args.limit)
        if results is None:
            results = _catalog_search(client, query, args.limit)
    finally:
        client.close()
    prefix = "" if where == "docker.io" else where + "/"
    rows = []
    for r in results:
        if not isinstance(r, dict) or not r.get("name"):
            continue
        stars = int(r.get("star_count") or 0)
        official = bool(r.get("is_official"))
        if stars < filters["stars"] or (filters["is-official"] is not None
                                        and official != filters["is-official"]):
            continue
        description = " ".join(str(r.get("description") or "").split())
        if not args.no_trunc and len(description) > 45:
            description = description[:44] + "…"
        name = r["name"]
        rows.append({"Name": name if name.startswith(prefix) else prefix + name,
                     "Description": description, "StarCount": str(stars),
                     "IsOfficial": "[OK]" if official else "",
                     "IsAutomated": ""})
    if print_rows(args.format, rows, {"StarCount": "STARS", "IsOfficial": "OFFICIAL"}):
        return 0
    table = [("NAME", "DESCRIPTION", "STARS", "OFFICIAL")]
    table += [(r["Name"], r["Description"], r["StarCount"], r["IsOfficial"]) for r in rows]
    print(tabulate(table))
    return 0
