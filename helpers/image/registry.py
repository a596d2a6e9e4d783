"""A client for the Docker Registry HTTP API v2 / OCI distribution spec.

Standard library only (http.client, ssl): a small connection pool per
registry, shared by the download threads of one pull.  What it does, with
the spec section or Docker behaviour it follows:

- Endpoints: docker.io is served by registry-1.docker.io.  Registries on
  127.0.0.0/8, ::1 and localhost speak plain HTTP (as Docker's default
  insecure registries do) unless a certs.d directory names them; others
  HTTPS with the system CAs plus ``certs.d/HOST[:PORT]/*.crt`` (and client
  certificates ``*.cert``/``*.key``) from ~/.config/sandbox,
  /etc/containers and /etc/docker.  ``--tls-verify=false`` or the
  ``insecure-registries`` list of ~/.config/sandbox/config.json: HTTPS
  without verification, falling back to HTTP.
- Auth (distribution docs, "Token Authentication Specification"): a 401
  carries ``WWW-Authenticate: Bearer realm=..,service=..,scope=..`` (a token
  is fetched, anonymously or with the user's credentials, and reused until
  it expires) or ``Basic`` (the credentials are sent).  Credentials never
  follow a redirect to another host (blob storage on S3 and the like).
- Retries with exponential backoff on 429, 5xx and dropped connections
  (or after the answer's Retry-After, at most 10 s); a connection refused
  three times fails within about two seconds.
"""

import base64
import http.client
import json
import os
import threading
import time
import urllib.parse

from ..errors import SandboxError
from . import auth as authfile

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
              "application/vnd.docker.distribution.manifest.v1+prettyjws")
MANIFEST_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
RETRIES = 3                 # attempts after the first
BACKOFF = 0.25              # seconds, doubled each retry
MAX_RETRY_AFTER = 10.0      # the longest Retry-After we wait for, per retry
CHUNK = 1 << 20
MAX_MANIFEST = 4 << 20      # the spec's recommended limit is 4 MiB


class RegistryError(SandboxError):
    """A registry refused or could not serve a request (Docker exits 1)."""

    exit_code = 1


class Unauthorized(RegistryError):
    pass


class NotFoundError(RegistryError):
    pass


# -- endpoints and TLS --------------------------------------------------------
def api_host(registry):
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def is_loopback(host):
    """host is "name[:port]" or "[v6]:port"."""
    name = host
    if name.startswith("["):
        name = name[1:name.find("]")]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    import ipaddress
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def cert_dirs(host):
    from ..paths import config_dir
    return [os.path.join(base, host) for base in (
        os.path.join(config_dir(), "certs.d"), "/etc/containers/certs.d",
        "/etc/docker/certs.d")]


def _existing_cert_dirs(host):
    return [d for d in cert_dirs(host) if os.path.isdir(d)]


def ssl_context(host, verify=True):
    import ssl
    ctx = ssl.create_default_context()
    for d in _existing_cert_dirs(host):
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if name.endswith(".crt"):
                ctx.load_verify_locations(cafile=path)
            elif name.endswith(".cert"):
                key = path[:-5] + ".key"
                if not os.path.exists(key):
                    raise RegistryError("client certificate %s has no key %s"
                                        % (path, os.path.basename(key)),
                                        exit_code=125)
                ctx.load_cert_chain(path, key)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def insecure_registries():
    from ..paths import config_dir
    try:
        with open(os.path.join(config_dir(), "config.json"), "rb") as f:
            cfg = json.loads(f.read())
    except (OSError, ValueError):
        return []
    return list(cfg.get("insecure-registries") or [])


def transport_for(registry, tls_verify=None):
    """(scheme, verify, fallback_to_http) for a registry host."""
    host = api_host(registry)
    if tls_verify is False or registry in insecure_registries():
        return "https", False, True
    if is_loopback(host) and not _existing_cert_dirs(host) and tls_verify is None:
        return "http", False, False
    return "https", True, False


# -- challenges -------------------------------------------------------------
def parse_challenge(header):
    """'Bearer realm="x",service="y"' -> ("bearer", {"realm": "x", ...})."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            j = i + 1
            val = []
            while j < n and rest[j] != '"':
                if rest[j] == "\\" and j + 1 < n:
                    j += 1
                val.append(rest[j])
                j += 1
            params[key] = "".join(val)
            i = j + 1
        else:
            j = rest.find(",", i)
            j = n if j < 0 else j
            params[key] = rest[i:j].strip()
            i = j
    return scheme.lower(), params


def error_detail(body):
    """The registry's {"errors": [{"code", "message"}]} as one string."""
    try:
        errs = json.loads(body).get("errors") or []
        parts = []
        for e in errs:
            code = (e.get("code") or "").lower().replace("_", " ")
            msg = e.get("message") or ""
            parts.append(code if not msg or msg == code else
                         "%s: %s" % (code, msg) if code else msg)
        return "; ".join(parts), [e.get("code") for e in errs]
    except (ValueError, AttributeError, TypeError):
        text = body[:200].decode(errors="replace").strip() if body else ""
        return text, []


# -- the client ---------------------------------------------------------------
class Response:
    """A response whose body is read by the caller; ``release()`` puts the
    connection back into the pool once the body was read to the end."""

    def __init__(self, client, key, conn, resp):
        self._client, self._key, self._conn, self.raw = client, key, conn, resp
        self.status = resp.status
        self.headers = resp.headers

    def read(self, n=-1):
        return self.raw.read() if n is None or n < 0 else self.raw.read(n)

    def readinto(self, buf):
        return self.raw.readinto(buf)

    def release(self):
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        # Pooled only when the body came to its end: a connection that
        # dropped half-way (length left over) is dead.
        if self.raw.isclosed() and not self.raw.will_close and not self.raw.length:
            self._client._put_conn(self._key, conn)
        else:
            conn.close()

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Client:
    """One registry, one repository (the scope of its tokens)."""

    def __init__(self, registry, repository, tls_verify=None, actions="pull",
                 credentials=None, scheme=None):
        """``scheme``: "http" to speak plain HTTP to this host whatever it
        is (a mirror configured so), else chosen by transport_for."""
        self.registry = registry
        self.repository = repository
        self.host = api_host(registry)
        self.scheme, self.verify, self.fallback = ("http", False, False) \
            if scheme == "http" else transport_for(registry, tls_verify)
        self.actions = actions
        self.scope = None               # a token scope without a repository
        self._creds = credentials
        self._creds_loaded = credentials is not None
        self._auth_header = None        # "Bearer ..." or "Basic ..."
        self._auth_expires = None
        self._challenge = None
        self._auth_lock = threading.Lock()
        self._pool = {}
        self._pool_lock = threading.Lock()
        self._ssl = {}

    # -- connections ----------------------------------------------------------
    def _new_conn(self, scheme, netloc):
        if scheme == "https":
            host = netloc
            ctx = self._ssl.get(host)
            if ctx is None:
                ctx = self._ssl[host] = ssl_context(
                    host, self.verify if host == self.host else True)
            conn = http.client.HTTPSConnection(netloc, timeout=CONNECT_TIMEOUT,
                                               context=ctx, blocksize=CHUNK)
        else:
            conn = http.client.HTTPConnection(netloc, timeout=CONNECT_TIMEOUT,
                                              blocksize=CHUNK)
        return conn

    def _get_conn(self, key):
        with self._pool_lock:
            idle = self._pool.get(key)
            if idle:
                return idle.pop()
        return self._new_conn(*key)

    def _put_conn(self, key, conn):
        with self._pool_lock:
            self._pool.setdefault(key, []).append(conn)

    def close(self):
        with self._pool_lock:
            for conns in self._pool.values():
                for c in conns:
                    c.close()
            self._pool.clear()

    # -- credentials ------------------------------------------------------------
    def credentials(self):
        if not self._creds_loaded:
            self._creds = authfile.lookup(self.registry)
            self._creds_loaded = True
        return self._creds

    def url(self, path):
        return "%s://%s%s" % (self.scheme, self.host, path)

    # -- requests ---------------------------------------------------------------
    def request(self, method, path_or_url, headers=None, body=None, ok=None):
        """Send a request with auth, redirects and retries; returns a
        Response with the body unread.  ``body``: bytes, or a callable
        returning a fresh readable file (retries re-open it)."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        tried_auth = False
        redirects = 0
        attempt = 0
        while True:
            parts = urllib.parse.urlsplit(url)
            same_host = parts.netloc == self.host
            hdrs = {"User-Agent": "sandbox", "Host": parts.netloc}
            hdrs.update(headers or {})
            if same_host:
                auth = self._current_auth()
                if auth:
                    hdrs["Authorization"] = auth
            target = parts.path + ("?" + parts.query if parts.query else "")
            try:
                resp = self._send(parts.scheme, parts.netloc, method, target,
                                  hdrs, body)
            except (OSError, http.client.HTTPException) as exc:
                if same_host and self._maybe_fall_back(exc):
                    url = self.url(parts.path) + ("?" + parts.query if parts.query else "")
                    continue
                if attempt < RETRIES:
                    time.sleep(BACKOFF * (2 ** attempt))
                    attempt += 1
                    continue
                raise self._unreachable(parts.netloc, exc) from None
            status = resp.status
            if status in (301, 302, 303, 307, 308) and redirects < 10:
                location = resp.headers.get("Location")
                resp.read()
                resp.release()
                if not location:
                    raise RegistryError("%s redirected without a Location" % parts.netloc)
                url = urllib.parse.urljoin(url, location)
                redirects += 1
                if status == 303:
                    method, body = "GET", None
                continue
            if status == 401 and same_host and not tried_auth:
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.read()
                resp.release()
                tried_auth = True
                self._authenticate(challenge, stale=hdrs.get("Authorization"))
                continue
            if (status == 429 or status >= 500) and attempt < RETRIES and \
                    (ok is None or status not in ok):
                delay = retry_delay(resp.headers.get("Retry-After"), attempt)
                resp.read()
                resp.release()
                time.sleep(delay)
                attempt += 1
                continue
            return resp

    def _send(self, scheme, netloc, method, target, hdrs, body):
        key = (scheme, netloc)
        for fresh in (False, True):
            conn = self._new_conn(scheme, netloc) if fresh else self._get_conn(key)
            data = body() if callable(body) else body
            try:
                conn.timeout = CONNECT_TIMEOUT
                if conn.sock is None:
                    conn.connect()
                conn.sock.settimeout(READ_TIMEOUT)
                if data is not None and "Content-Length" not in hdrs and \
                        isinstance(data, (bytes, bytearray)):
                    hdrs = dict(hdrs, **{"Content-Length": str(len(data))})
                conn.request(method, target, body=data, headers=hdrs)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError):
                conn.close()
                if fresh:
                    raise
                continue          # a pooled keep-alive connection went stale
            except BaseException:
                conn.close()
                raise
            finally:
                if callable(body) and hasattr(data, "close"):
                    data.close()
            return Response(self, key, conn, resp)
        raise AssertionError("unreachable")

    def _maybe_fall_back(self, exc):
        import ssl
        if self.fallback and self.scheme == "https" and isinstance(exc, ssl.SSLError):
            self.scheme = "http"
            return True
        return False

    def _unreachable(self, netloc, exc):
        import ssl
        if isinstance(exc, ssl.SSLCertVerificationError):
            return RegistryError(
                "cannot verify the TLS certificate of %s: %s"
                % (netloc, exc.verify_message or exc),
                hint="put the registry's CA certificate in ~/.config/sandbox/"
                     "certs.d/%s/ca.crt, or use --tls-verify=false" % netloc)
        if isinstance(exc, ssl.SSLError):
            return RegistryError("TLS handshake with %s failed: %s" % (netloc, exc),
                                 hint="does the registry speak HTTPS? for a "
                                      "plain HTTP registry use --tls-verify=false")
        what = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return RegistryError("cannot reach registry %s: %s" % (netloc, what),
                             hint="is the registry running, and the name and "
                                  "port right?")

    # -- auth -------------------------------------------------------------------
    def _current_auth(self):
        with self._auth_lock:
            if self._auth_expires and time.monotonic() > self._auth_expires:
                self._auth_header = None
                if self._challenge:
                    self._fetch_token(self._challenge)
            return self._auth_header

    def _authenticate(self, header, stale=None):
        with self._auth_lock:
            if self._auth_header and self._auth_header != stale:
                return        # another thread authenticated meanwhile
            scheme, params = parse_challenge(header)
            if scheme == "bearer" and params.get("realm"):
                self._challenge = params
                self._fetch_token(params)
            elif scheme == "basic":
                creds = self.credentials()
                if not creds:
                    raise Unauthorized(
                        "%s requires authentication" % self.registry,
                        hint="sandbox login %s" % self.registry)
                if stale and stale.startswith("Basic "):
                    raise self._bad_credentials()
                if creds[0] == authfile.IDENTITY_TOKEN:
                    raise Unauthorized("%s asks for a password, and the credential "
                                       "helper gave an identity token" % self.registry,
                                       hint="sandbox login %s" % self.registry)
                self._auth_header = "Basic " + _basic(*creds)
            else:
                raise Unauthorized("%s answered 401 with an unsupported challenge %r"
                                   % (self.registry, header))

    def _fetch_token(self, params):
        query = {}
        if self.repository:      # login asks for a token without a scope
            query["scope"] = "repository:%s:%s" % (self.repository, self.actions)
        elif self.scope:
            query["scope"] = self.scope
        if params.get("service"):
            query["service"] = params["service"]
        creds = self.credentials()
        realm = params["realm"]
        method, form = "GET", None
        if creds and creds[0] == authfile.IDENTITY_TOKEN:
            # An identity token (a credential helper's): the OAuth2 refresh
            # token grant, a form POSTed to the realm (the distribution
            # spec's token authentication, oauth.md).
            method = "POST"
            form = urllib.parse.urlencode(dict(query, grant_type="refresh_token",
                                               refresh_token=creds[1],
                                               client_id="sandbox")).encode()
            url = realm
        else:
            url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        parts = urllib.parse.urlsplit(url)
        hdrs = {"User-Agent": "sandbox", "Host": parts.netloc}
        if form is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif creds:
            hdrs["Authorization"] = "Basic " + _basic(*creds)
        target = parts.path + ("?" + parts.query if parts.query else "")
        last = None
        for attempt in range(RETRIES + 1):
            try:
                resp = self._send(parts.scheme, parts.netloc, method, target, hdrs, form)
                body = resp.read()
                resp.release()
            except (OSError, http.client.HTTPException) as exc:
                last = exc
                time.sleep(BACKOFF * (2 ** attempt))
                continue
            if resp.status in (401, 403):
                raise self._bad_credentials() if creds else Unauthorized(
                    "the token server of %s refused anonymous access" % self.registry,
                    hint="sandbox login %s" % self.registry)
            if resp.status >= 500 or resp.status == 429:
                last = RegistryError("token server answered %d" % resp.status)
                time.sleep(BACKOFF * (2 ** attempt))
                continue
            if resp.status != 200:
                raise RegistryError("the token server of %s answered %d: %s"
                                    % (self.registry, resp.status,
                                       error_detail(body)[0]))
            try:
                doc = json.loads(body)
                token = doc.get("token") or doc.get("access_token")
            except ValueError:
                token, doc = None, {}
            if not token:
                raise RegistryError("the token server of %s sent no token"
                                    % self.registry)
            self._auth_header = "Bearer " + token
            self._auth_expires = time.monotonic() + token_lifetime(doc.get("expires_in"))
            return
        raise self._unreachable(parts.netloc, last) if isinstance(last, OSError) \
            else last

    def _bad_credentials(self):
        return Unauthorized("unauthorized: incorrect username or password for %s"
                            % self.registry,
                            hint="sandbox login %s" % self.registry)

    # -- API calls --------------------------------------------------------------
    def check(self, resp, what, body=None):
        """Raise a clear error for a failed response; ``what`` names the
        object ("manifest for x:y")."""
        if body is None:
            body = resp.read(64 << 10)
        resp.release() if resp.raw.isclosed() else resp.close()
        detail, codes = error_detail(body)
        ref = "%s/%s" % (self.registry, self.repository)
        if resp.status == 404 or "MANIFEST_UNKNOWN" in codes or "NAME_UNKNOWN" in codes:
            if "NAME_UNKNOWN" in codes:
                return NotFoundError("repository %s not found: %s" % (ref, detail),
                                     hint="check the name, or sandbox login %s"
                                          % self.registry)
            return NotFoundError("%s not found%s" % (what, ": " + detail if detail else ""))
        if resp.status == 401:
            return Unauthorized("unauthorized to access %s: %s" % (ref, detail or "401"),
                                hint="sandbox login %s" % self.registry)
        if resp.status == 403:
            return Unauthorized("access to %s denied: %s" % (ref, detail or "403"),
                                hint="check your permissions on the registry")
        if resp.status == 400 and "HTTPS server" in detail:
            return RegistryError(
                "%s: registry %s speaks HTTPS, and loopback registries are "
                "reached over plain HTTP" % (what, self.registry),
                hint="put its CA certificate in ~/.config/sandbox/certs.d/%s/"
                     "ca.crt (or use --tls-verify=false)" % self.registry)
        hint = None
        if resp.status == 429 or resp.status >= 500:
            hint = "still %d after %d retries; try again later" % (resp.status, RETRIES)
        return RegistryError("%s: registry %s answered %d%s"
                             % (what, self.registry, resp.status,
                                ": " + detail if detail else ""), hint=hint)

    def get_manifest(self, ref_str, what):
        """(bytes, media type, digest header or None) of a manifest."""
        resp = self.request("GET", "/v2/%s/manifests/%s" % (self.repository, ref_str),
                            {"Accept": ", ".join(MANIFEST_TYPES + MT_SCHEMA1)})
        if resp.status != 200:
            raise self.check(resp, what)
        body = resp.read(MAX_MANIFEST + 1)
        if len(body) > MAX_MANIFEST:
            resp.close()
            raise RegistryError("%s is larger than %d bytes" % (what, MAX_MANIFEST))
        resp.read()
        resp.release()
        mt = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        return body, mt, resp.headers.get("Docker-Content-Digest")

    def get_blob(self, digest, offset=0):
        """A Response streaming the blob from ``offset`` (status 200 or 206)."""
        hdrs = {"Range": "bytes=%d-" % offset} if offset else {}
        resp = self.request("GET", "/v2/%s/blobs/%s" % (self.repository, digest), hdrs)
        if resp.status not in (200, 206):
            raise self.check(resp, "blob %s" % digest)
        return resp

    def fetch_blob(self, digest, limit=64 << 20):
        resp = self.get_blob(digest)
        data = resp.read(limit + 1)
        if len(data) > limit:
            resp.close()
            raise RegistryError("blob %s is too large" % digest)
        resp.read()
        resp.release()
        return data


def retry_delay(retry_after, attempt):
    """Seconds to wait before retry ``attempt`` (0-based) of a 429 or 5xx:
    the answer's Retry-After (seconds or an HTTP-date, RFC 9110 section
    10.2.3), at most MAX_RETRY_AFTER, else exponential backoff."""
    value = (retry_after or "").strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    if value:
        import email.utils
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is not None:
            return min(max(when - time.time(), 0.0), MAX_RETRY_AFTER)
    return BACKOFF * (2 ** attempt)


def token_lifetime(expires_in):
    """Seconds a bearer token is reused: its ``expires_in`` (the spec's
    default 60 when absent), less a margin so that no request carries a
    token that expires on its way; at least one second."""
    try:
        lifetime = float(expires_in) if expires_in else 60.0
    except (TypeError, ValueError):
        lifetime = 60.0
    return max(lifetime - min(5.0, lifetime / 4), 1.0)


def _basic(user, password):
    return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
