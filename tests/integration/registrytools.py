"""Registries for the tests: Debian's docker-registry (distribution v2) on
127.0.0.1, started per test module with a temporary config, and the
helpers around it (run as root, by pytest):

  Registry(tmp, tls=False, htpasswd=None, token=None)  start/stop a registry
  make_ca(dir)                 a test CA and a certificate for 127.0.0.1
  TokenIssuer(dir, users)      a small token server for `auth: token`
                               (RS256 JWTs signed with openssl, x5c header)
  TamperProxy(upstream)        a proxy that corrupts or slows blob downloads,
                               answers 429/5xx, drops connections, delays,
                               and logs every request
  BlobServer(root)             blob storage on another host (127.0.0.2) that
                               a Registry(redirect=...) sends blob GETs to
  skopeo_copy(src, dest, ...)  seed with skopeo, an independent client
  RawPusher(base)              push hand-made manifests, configs and layers
                               (zstd, uncompressed, truncated gzip, indexes)

Nothing here uses sandbox's own code.
"""

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import socket
import socketserver
import struct
import subprocess
import tarfile
import threading
import time
import urllib.parse

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


# --- TLS ------------------------------------------------------------------------
def make_ca(d, name="test"):
    """ca.crt/ca.key and server.crt/server.key for 127.0.0.1 and localhost."""
    os.makedirs(d, exist_ok=True)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    q = dict(check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=%s test CA" % name, "-keyout", ca_key, "-out", ca_crt], **q)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-keyout", key, "-out", csr], **q)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt], **q)
    for p in (ca_crt, crt):
        os.chmod(p, 0o644)
    return {"ca": ca_crt, "cert": crt, "key": key}


# --- the registry -----------------------------------------------------------------
class Registry:
    """``redirect``: a base URL (a BlobServer's) that blob GETs and HEADs
    are answered with a 307 to, by the registry's `redirect` storage
    middleware (as registries backed by S3 do)."""

    def __init__(self, tmp, tls=None, htpasswd=None, token=None, redirect=None):
        self.dir = tmp
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.tls = tls
        os.makedirs(os.path.join(tmp, "data"), exist_ok=True)
        lines = ["version: 0.1", "log: {level: error, accesslog: {disabled: true}}",
                 "storage:", "  filesystem: {rootdirectory: %s/data}" % tmp,
                 "  delete: {enabled: true}", "http:", "  addr: %s" % self.host]
        if tls:
            lines += ["  tls:", "    certificate: %s" % tls["cert"], "    key: %s" % tls["key"]]
        if htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: test", "    path: %s" % htpasswd]
        elif token:
            lines += ["auth:", "  token:", "    realm: %s" % token.realm,
                      "    service: %s" % token.service, "    issuer: %s" % token.issuer,
                      "    rootcertbundle: %s" % token.cert]
        if redirect:
            lines += ["middleware:", "  storage:", "    - name: redirect",
                      "      options: {baseurl: %s}" % redirect]
        self.config = os.path.join(tmp, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(tmp, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port)

    @property
    def base(self):
        return "%s://%s" % ("https" if self.tls else "http", self.host)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def htpasswd(path, user, password):
    subprocess.run(["htpasswd", "-Bbc", path, user, password], check=True,
                   capture_output=True)


def skopeo_copy(src, dest, *extra, creds=None, cert_dir=None):
    argv = ["skopeo", "copy", "-q", "--dest-tls-verify=%s" % ("true" if cert_dir else "false")]
    if creds:
        argv += ["--dest-creds", "%s:%s" % creds]
    if cert_dir:
        argv += ["--dest-cert-dir", cert_dir]
    argv += list(extra) + [src, dest]
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, "skopeo failed: %s\n%s" % (" ".join(argv), r.stderr)


# --- pushing hand-made images (plain HTTP, no auth) --------------------------------
class RawPusher:
    def __init__(self, host):
        self.host = host

    def _req(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def blob(self, repo, data):
        digest = sha256(data)
        resp, _ = self._req("POST", "/v2/%s/blobs/uploads/" % repo)
        assert resp.status == 202, resp.status
        loc = urllib.parse.urlsplit(resp.headers["Location"])
        path = loc.path + "?" + (loc.query + "&" if loc.query else "") + \
            urllib.parse.urlencode({"digest": digest})
        resp, body = self._req("PUT", path, data, {"Content-Type": "application/octet-stream"})
        assert resp.status == 201, (resp.status, body)
        return {"digest": digest, "size": len(data)}

    def manifest(self, repo, ref, doc, media_type):
        data = json.dumps(doc).encode()
        resp, body = self._req("PUT", "/v2/%s/manifests/%s" % (repo, ref), data,
                               {"Content-Type": media_type})
        assert resp.status == 201, (resp.status, body)
        return sha256(data), len(data)

    def get_manifest(self, repo, ref, accept=MT_DOCKER_MANIFEST):
        resp, data = self._req("GET", "/v2/%s/manifests/%s" % (repo, ref), None,
                               {"Accept": accept})
        assert resp.status == 200, resp.status
        return data

    def get_blob(self, repo, digest):
        resp, data = self._req("GET", "/v2/%s/blobs/%s" % (repo, digest))
        assert resp.status == 200
        return data

    def image(self, repo, ref, layers, arch="amd64", oci=True, cmd=None):
        """layers: [(uncompressed tar bytes, blob bytes, media type)]."""
        config = {"architecture": arch, "os": "linux", "created": "2000-01-01T00:00:00Z",
                  "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"]},
                  "rootfs": {"type": "layers",
                             "diff_ids": [sha256(t) for t, _, _ in layers]}}
        cfg = json.dumps(config).encode()
        cdesc = dict(self.blob(repo, cfg), mediaType=MT_OCI_CONFIG if oci else MT_DOCKER_CONFIG)
        ldescs = [dict(self.blob(repo, b), mediaType=mt) for _, b, mt in layers]
        doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST if oci else MT_DOCKER_MANIFEST,
               "config": cdesc, "layers": ldescs}
        digest, size = self.manifest(repo, ref, doc, doc["mediaType"])
        return {"digest": digest, "size": size, "config": sha256(cfg)}


def tar_bytes(files):
    """An uncompressed layer tar: {name: bytes}, root-owned, fixed mtime."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 946684800
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data):
    return gzip.compress(data, mtime=0)


def zstd_bytes(data):
    r = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True)
    return r.stdout


# --- token issuer -------------------------------------------------------------------
def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Issues distribution-compatible bearer tokens.  users: {name: password};
    anonymous requests get pull access to repositories under ``public/``."""

    service = "test-registry"
    issuer = "test-issuer"

    def __init__(self, d, users, ttl=60):
        os.makedirs(d, exist_ok=True)
        self.key = os.path.join(d, "token.key")
        self.cert = os.path.join(d, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=token", "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)
        os.chmod(self.cert, 0o644)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.users, self.ttl = users, ttl
        self.issued = []            # (user, scope) of every token
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                issuer._handle(self)

            def do_POST(self):
                issuer._handle_post(self)

        self.refresh_tokens = {}    # identity token -> user (the OAuth2 grant)
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.realm = "http://127.0.0.1:%d/token" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, h):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        user = None
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(u) != p:
                h.send_response(401)
                h.end_headers()
                return
            user = u
        self._issue(h, user, q, "token")

    def _handle_post(self, h):
        """The distribution spec's OAuth2 form (oauth.md): grant_type
        refresh_token with an identity token this issuer knows."""
        length = int(h.headers.get("Content-Length") or 0)
        q = urllib.parse.parse_qs(h.rfile.read(length).decode())
        user = self.refresh_tokens.get((q.get("refresh_token") or [""])[0])
        if q.get("grant_type") != ["refresh_token"] or user is None:
            h.send_response(401)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        self._issue(h, user, q, "access_token")

    def _issue(self, h, user, q, key):
        access = []
        for scope in q.get("scope", []):
            typ, name, actions = scope.split(":")
            allowed = actions.split(",") if user else (
                ["pull"] if name.startswith("public/") else [])
            allowed = [a for a in actions.split(",") if a in allowed]
            access.append({"type": typ, "name": name, "actions": allowed})
        self.issued.append((user, q.get("scope")))
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service,
                  "exp": now + self.ttl, "nbf": now - 10, "iat": now,
                  "jti": os.urandom(8).hex(), "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing = (_b64url(json.dumps(header).encode()) + "." +
                   _b64url(json.dumps(claims).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing.encode(), capture_output=True, check=True).stdout
        body = json.dumps({key: signing + "." + _b64url(sig),
                           "expires_in": self.ttl}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- small HTTP servers ------------------------------------------------------------------
def serve_http(address, handle):
    """A running threaded HTTP/1.1 server on ``address`` and a free port
    that calls ``handle(handler, method)`` for each GET and HEAD."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            handle(self, "GET")

        def do_HEAD(self):
            handle(self, "HEAD")

    server = socketserver.ThreadingTCPServer((address, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- tampering proxy --------------------------------------------------------------------
class TamperProxy:
    """Forwards to a plain-HTTP registry.  ``mode``: None (pass through),
    "corrupt" (flip one byte of every blob body larger than 1 kB),
    "slow" (blob bodies trickle at ``rate`` bytes/s).

    Faults for the requests whose path contains ``match``, the next
    ``times`` of them (None: all):
      fail(match, status, times, retry_after)  answer ``status`` instead
      drop(match, at, times, reset)   close the connection once the body
                                      reaches byte ``at`` of the blob (a FIN,
                                      or a RST with reset=True)
      delay(match, seconds, times)    wait before forwarding
    ``log``: (method, path, headers, status) of every request answered."""

    def __init__(self, upstream, mode=None, rate=200_000):
        self.upstream, self.mode, self.rate = upstream, mode, rate
        self.log = []
        self._faults = []
        self._lock = threading.Lock()
        self.server = serve_http("127.0.0.1", self._forward)
        self.port = self.server.server_address[1]
        self.host = "127.0.0.1:%d" % self.port

    def fail(self, match, status, times=1, retry_after=None):
        self._faults.append({"kind": "fail", "match": match, "times": times,
                             "status": status, "retry_after": retry_after})

    def drop(self, match, at, times=1, reset=False):
        self._faults.append({"kind": "drop", "match": match, "times": times,
                             "at": at, "reset": reset})

    def delay(self, match, seconds, times=None):
        self._faults.append({"kind": "delay", "match": match, "times": times,
                             "seconds": seconds})

    def clear(self):
        self._faults.clear()
        self.log.clear()

    def requests(self, match, status=None):
        """The logged requests whose path contains ``match``."""
        return [e for e in self.log if match in e[1] and status in (None, e[3])]

    def _take(self, kind, path):
        with self._lock:
            for f in self._faults:
                if f["kind"] == kind and f["match"] in path and f["times"] != 0:
                    if f["times"] is not None:
                        f["times"] -= 1
                    return f
        return None

    def _forward(self, h, method):
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection")}
        delay = self._take("delay", h.path)
        if delay:
            time.sleep(delay["seconds"])
        fail = self._take("fail", h.path)
        if fail:
            self.log.append((method, h.path, headers, fail["status"]))
            body = json.dumps({"errors": [{"code": "UNAVAILABLE",
                                           "message": "injected by the test"}]}).encode()
            h.send_response(fail["status"])
            if fail["retry_after"] is not None:
                h.send_header("Retry-After", str(fail["retry_after"]))
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        conn.request(method, h.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        self.log.append((method, h.path, headers, resp.status))
        is_blob = "/blobs/sha256:" in h.path and len(body) > 1024
        if is_blob and self.mode == "corrupt":
            i = len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if method == "HEAD":
            return
        drop = self._take("drop", h.path) if resp.status in (200, 206) else None
        try:
            if drop:
                # Content-Range: bytes START-END/SIZE on a 206.
                start = int((resp.getheader("Content-Range") or "bytes 0-").split()[1]
                            .split("-")[0])
                h.wfile.write(body[:max(0, drop["at"] - start)])
                h.wfile.flush()
                if drop["reset"]:
                    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                            struct.pack("ii", 1, 0))
                h.connection.close()
                h.close_connection = True
            elif is_blob and self.mode == "slow":
                step = max(1, self.rate // 20)
                for i in range(0, len(body), step):
                    h.wfile.write(body[i:i + step])
                    h.wfile.flush()
                    time.sleep(0.05)
            else:
                h.wfile.write(body)
        except OSError:
            pass

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- blob storage on another host --------------------------------------------------------
class BlobServer:
    """Serves the files of a registry's filesystem storage (``root``, the
    Registry's data dir) at the paths its redirect middleware sends
    clients to, from 127.0.0.2: another host than the registry's
    127.0.0.1.  Honours ``Range: bytes=N-``.  ``log``: (method, path,
    headers) of every request."""

    def __init__(self, root):
        self.root = root
        self.log = []
        self.server = serve_http("127.0.0.2", self._serve)
        self.base = "http://127.0.0.2:%d" % self.server.server_address[1]

    def _serve(self, h, method):
        path = urllib.parse.urlsplit(h.path).path
        self.log.append((method, path, dict(h.headers.items())))
        try:
            with open(os.path.join(self.root, path.lstrip("/")), "rb") as f:
                data = f.read()
        except OSError:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        rng = h.headers.get("Range", "")
        start = int(rng[6:].split("-")[0]) if rng.startswith("bytes=") else 0
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        h.send_header("Content-Length", str(len(data) - start))
        h.end_headers()
        if method == "GET":
            h.wfile.write(data[start:])

    def requests(self, digest):
        """The logged requests for the blob ``digest``."""
        return [e for e in self.log if digest.partition(":")[2] in e[1]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
