"""`pull`: manifest -> platform -> config -> layers -> image, as one line.

Layers are fetched in parallel and unpacked while they stream: for each
layer to fetch, an unpacker child is forked *first* (it joins the user's
shared user namespace, which a multi-threaded process could not do: see
DESIGN.md section 4) and reads the compressed stream from a pipe; only then
do download threads start, each copying one blob from the registry into
its child's pipe and into ``blobs/`` while hashing it.

What becomes visible, and when (DESIGN.md section 3):
- a blob, under ``blobs/sha256/`` once its sha256 and size match the
  manifest's descriptor;
- a layer, under ``layers/<chain id>/`` once its blob checked out *and* the
  child's sha256 of the uncompressed tar equals the config's diff_id; each
  layer is committed as soon as it is complete, so that a pull killed
  half-way keeps what it finished and the next pull reuses it;
- the image (config, manifest, tag, repo digest) last, under the store lock.
Anything else lives in ``paths.tmp`` under a name with our pid, which gc
removes once we are gone.
"""

import hashlib
import json
import os
import pickle
import signal
import struct
import threading
import time

from ..errors import SandboxError, StoreError, UsageError
from ..fsutil import write_all
from . import reference, registry
from .registry import RegistryError
from .store import PendingLayer, chain_ids, digest_of
from ..platforms import text

MAX_PARALLEL = 4            # concurrent blob downloads (Docker: 3)
PIPE_SIZE = 1 << 20
RESUME_TRIES = 3

LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
}


# -- platforms ----------------------------------------------------------------
def parse_platform(s):
    """"linux/arm64/v8" -> ("linux", "arm64", "v8"); None -> this host;
    as containerd reads one word: "linux" -> that OS with this host's
    architecture, "arm64" -> linux/arm64."""
    from .archive import host_arch
    if not s:
        arch = host_arch()
        variant = None
        if arch == "arm":
            import platform
            m = platform.machine()
            variant = "v7" if m.startswith("armv7") else "v6" if m.startswith("armv6") else None
        return "linux", arch, variant
    parts = s.lower().split("/")
    if len(parts) == 1:
        from ..platforms import VALID_PLATFORMS
        if parts[0] in VALID_PLATFORMS:         # "linux": this host's architecture
            return (parts[0],) + parse_platform(None)[1:]
        if any(parts[0] in arches for arches in VALID_PLATFORMS.values()):
            return "linux", parts[0], None      # "arm64": linux's
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError("invalid platform %r" % s, hint="--platform OS/ARCH[/VARIANT], "
                         "e.g. linux/amd64 or linux/arm64/v8")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def select_platform(index, want):
    """The descriptor of ``index`` for platform ``want`` (os, arch, variant)."""
    os_, arch, variant = want
    matches = []
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        if p.get("os") != os_ or p.get("architecture") != arch:
            continue
        v = p.get("variant")
        if variant and v != variant and not (arch == "arm64" and {v, variant} <= {None, "v8"}):
            continue
        matches.append(desc)
    if not matches:
        have = sorted({text((d.get("platform") or {}).get("os"),
                            (d.get("platform") or {}).get("architecture"),
                            (d.get("platform") or {}).get("variant"))
                       for d in index.get("manifests") or []})
        raise RegistryError("no matching manifest for %s in the manifest list entries"
                            % text(*want),
                            hint="the image has: %s; choose one with --platform"
                                 % (", ".join(have) or "nothing"))
    return matches[0]


# -- unpacker children ----------------------------------------------------------
class Unpacker:
    """A forked child, root of the shared user namespace, extracting one
    layer into a fresh temp dir, from a pipe we feed (``source=None``) or
    from a blob file already in the store."""

    def __init__(self, store, nsfd, idmap, source=None):
        self.store = store
        self.tmpdir = store._tmpdir("layer")
        self.pid = None
        self.w = None
        r = None
        if source is None:
            r, self.w = os.pipe2(os.O_CLOEXEC)
            try:
                import fcntl
                fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass
        res_r, res_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            _child(nsfd, r, source, res_w, os.path.join(self.tmpdir, "diff"), idmap)
        self.pid = pid
        os.close(res_w)
        if r is not None:
            os.close(r)
        self.res = res_r

    def feed(self, data):
        write_all(self.w, data)

    def close_input(self):
        if self.w is not None:
            os.close(self.w)
            self.w = None

    def result(self):
        """Wait for the child; a PendingLayer, or the child's error."""
        from .. import fsutil
        self.close_input()
        try:
            data = fsutil.read_all(self.res)
        finally:
            os.close(self.res)
            os.waitpid(self.pid, 0)
            self.pid = None
        if len(data) < 8:
            raise StoreError("the layer unpacker died")
        ok, value = pickle.loads(data[8:])
        if not ok:
            raise value
        _warn_skipped(value)
        return PendingLayer(self.tmpdir, value["diff_id"], value["size"])

    def kill(self):
        self.close_input()
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None
            os.close(self.res)


def _child(nsfd, r, source, res_w, dest, idmap):
    """Body of an unpacker child; leaves only through os._exit."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        keep = {0, 1, 2, nsfd, res_w} | ({r} if r is not None else set())
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        from .. import userns
        from . import unpack
        userns.join_userns(nsfd)
        raw = open(source, "rb") if source else os.fdopen(r, "rb", buffering=PIPE_SIZE)
        try:
            payload = (True, unpack.extract(raw, dest, idmap))
            # zstd and gzip readers stop at the end of their frame: take the
            # rest, so that our feeder never sees a broken pipe on success.
            while raw.read(PIPE_SIZE):
                pass
        except SandboxError as exc:
            payload, code = (False, exc), 1
        except BaseException as exc:    # noqa: BLE001 - reported to the parent
            payload, code = (False, StoreError("%s: %s" % (type(exc).__name__, exc))), 1
    except BaseException as exc:        # noqa: BLE001
        payload, code = (False, StoreError(str(exc) or type(exc).__name__)), 1
    try:
        data = pickle.dumps(payload)
        write_all(res_w, struct.pack("!Q", len(data)) + data)
    finally:
        os._exit(code)


def _warn_skipped(result):
    from ..errors import warn
    if result.get("devices"):
        warn("skipped %d device node(s) in an image layer (e.g. /%s): an "
             "unprivileged user cannot create them"
             % (len(result["devices"]), result["devices"][0]), once_key="unpack-devices")
    if result.get("remapped"):
        from .. import userns
        warn("this user has no subordinate id range; files are owned by root "
             "inside the container", hint=userns.single_map_hint(),
             once_key="unpack-remapped")


# -- the pull -------------------------------------------------------------------
class Job:
    def __init__(self, index, desc, diff_id, chain_id, parent):
        self.index = index
        self.digest = desc.get("digest") or ""
        self.size = desc.get("size")
        self.media_type = desc.get("mediaType") or ""
        self.diff_id = diff_id
        self.chain_id = chain_id
        self.parent = parent
        self.short = self.digest.partition(":")[2][:12]
        self.unpacker = None
        self.from_blob = False
        self.error = None
        self.thread = None


class Puller:
    def __init__(self, store, ref, platform=None, tls_verify=None, progress=None,
                 default_tag=False):
        from .progress import Progress
        self.default_tag = default_tag
        self.store = store
        self.ref = ref
        self.want = parse_platform(platform)
        self.explicit_platform = bool(platform)
        self.client = registry.Client(ref.registry, ref.repository, tls_verify)
        from .mirrors import mirrors_for
        self.mirrors = mirrors_for(ref.registry, ref.repository)
        self.progress = progress or Progress("quiet")
        self.cancel = threading.Event()

    def what(self):
        return "manifest for %s" % self.ref.familiar_string()

    # -- manifests ----------------------------------------------------------------
    def resolve(self):
        """(manifest bytes, manifest dict, digest that names the image in
        this repository)."""
        top_ref = self.ref.digest or self.ref.tag
        body, mt, _ = self.client.get_manifest(top_ref, self.what())
        top_digest = digest_of(body)
        if self.ref.digest and top_digest != self.ref.digest:
            raise RegistryError("manifest digest mismatch for %s: the registry "
                                "served %s" % (self.ref.familiar_string(), top_digest),
                                hint="the registry or a proxy is corrupting data")
        doc = _parse_manifest(body, self.what())
        mt = doc.get("mediaType") or mt
        if mt in registry.INDEX_TYPES or "manifests" in doc:
            desc = select_platform(doc, self.want)
            body, _, _ = self.client.get_manifest(desc["digest"], self.what())
            if digest_of(body) != desc["digest"]:
                raise RegistryError("manifest %s does not match its digest"
                                    % desc["digest"],
                                    hint="the registry or a proxy is corrupting data")
            doc = _parse_manifest(body, self.what())
            if "manifests" in doc:
                raise RegistryError("%s: nested manifest lists are not supported"
                                    % self.what())
        if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers"), list):
            raise RegistryError("%s: not an image manifest" % self.what())
        return body, doc, top_digest

    def _resolve_anywhere(self):
        """resolve() at each mirror in turn (mirrors.py), the registry
        itself last; the one that answers serves the config and layers
        too.  A mirror that fails in any way is passed over, as Docker
        does."""
        own = self.client
        for mirror in self.mirrors:
            self.client = registry.Client(mirror.host, mirror.repository(self.ref.repository),
                                          scheme=mirror.scheme)
            try:
                found = self.resolve()
                own.close()
                return found
            except SandboxError:
                self.client.close()
        self.client = own
        return self.resolve()

    def fetch_config(self, manifest):
        desc = manifest["config"]
        digest = desc.get("digest") or ""
        image_id = digest
        if self.store.exists(image_id):
            return self.store.config_bytes(image_id)
        data = self.client.fetch_blob(digest)
        if digest_of(data) != digest:
            raise RegistryError("image config %s does not match its digest" % digest,
                                hint="the registry or a proxy is corrupting data")
        return data

    # -- the whole pull ----------------------------------------------------------
    def run(self):
        """Pull; returns (image_id, digest, changed)."""
        ref = self.ref
        if self.default_tag:
            self.progress.line("Using default tag: latest")
        self.progress.line("%s: Pulling from %s" % (ref.digest or ref.tag, _repo_display(ref)))
        manifest_bytes, manifest, top_digest = self._resolve_anywhere()
        config_bytes = self.fetch_config(manifest)
        try:
            config = json.loads(config_bytes)
            diff_ids = list(config["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise RegistryError("%s: the image config has no rootfs.diff_ids"
                                % self.what()) from None
        if self.explicit_platform:
            got = (config.get("os"), config.get("architecture"))
            if got != self.want[:2]:
                raise RegistryError("image %s was found but does not match the "
                                    "specified platform: wanted %s, actual: %s"
                                    % (ref.familiar_string(), "/".join(self.want[:2]),
                                       "/".join(str(x) for x in got)))
        layers = manifest["layers"]
        if len(layers) != len(diff_ids):
            raise RegistryError("%s lists %d layers, its config %d"
                                % (self.what(), len(layers), len(diff_ids)))
        for desc in layers:
            mt = desc.get("mediaType") or ""
            if mt not in LAYER_TYPES:
                raise RegistryError("unsupported layer media type %r in %s"
                                    % (mt, self.what()),
                                    hint="layers are tar, tar+gzip or tar+zstd")
            if not isinstance(desc.get("size"), int) or not str(
                    desc.get("digest", "")).startswith("sha256:"):
                raise RegistryError("%s: a layer descriptor lacks a size or a "
                                    "sha256 digest" % self.what())
        cids = chain_ids(diff_ids)
        jobs = [Job(i, d, diff_ids[i], cids[i], cids[i - 1] if i else None)
                for i, d in enumerate(layers)]
        self.fetch_layers(jobs)
        image_id = digest_of(config_bytes)
        if ref.tag:
            changed = self.store.repositories().get(str(ref)) != image_id
        else:
            changed = not self.store.exists(image_id)
        tags = [ref.with_tag(ref.tag)] if ref.tag else []
        self.store.add_image(config_bytes, [None] * len(jobs), manifest_bytes, tags)
        self.store.record_digest(image_id, ref.name, top_digest)
        return image_id, top_digest, changed

    def fetch_layers(self, jobs):
        todo, seen = [], set()
        for job in jobs:
            if self.store.has_layer(job.chain_id):
                continue
            job.from_blob = self.store.has_blob(job.digest) or job.digest in seen
            seen.add(job.digest)
            todo.append(job)
        if not todo:
            return
        for job in jobs:
            if self.store.has_layer(job.chain_id):
                self.progress.layer(job.short, "Already exists")
        from .. import userns
        idmap = userns.current_id_map()
        nsfd = userns.shared_userns_fd(idmap)
        started = []
        try:
            # Every child is forked before the first thread exists.
            for job in todo:
                if not job.from_blob:
                    job.unpacker = Unpacker(self.store, nsfd, idmap)
                    started.append(job)
                    self.progress.layer(job.short, "Pulling fs layer")
        except BaseException:
            for job in started:
                job.unpacker.kill()
                self.store.discard([job.unpacker.tmpdir])
            raise
        finally:
            os.close(nsfd)
        for job in todo:
            if job.from_blob:
                self.progress.layer(job.short, "Waiting")
        self.progress.start()
        gate = threading.Semaphore(MAX_PARALLEL)
        try:
            for job in started:
                job.thread = threading.Thread(target=self._job_thread, args=(job, gate),
                                              daemon=True)
                job.thread.start()
            for job in started:
                while job.thread.is_alive():
                    job.thread.join(0.2)
            # Blobs the store already had (an earlier, interrupted pull)
            # or that this image uses twice: unpacked from the file.
            for job in todo:
                if job.from_blob and not self.cancel.is_set() and \
                        not any(j.error for j in started):
                    self._unpack_from_blob(job)
        except BaseException:
            self.cancel.set()
            for job in started:
                if job.thread is not None:
                    job.thread.join(5)
            raise
        finally:
            self.progress.stop()
            for job in todo:
                if job.unpacker is not None and job.unpacker.pid:
                    job.unpacker.kill()
                    self.store.discard([job.unpacker.tmpdir])
        errors = [j.error for j in started if j.error]
        if errors:
            # The first real cause, not the cancellations it triggered.
            raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])

    def _job_thread(self, job, gate):
        try:
            with gate:
                if self.cancel.is_set():
                    raise _Cancelled("cancelled")
                self._download(job)
                self.progress.layer(job.short, "Extracting")
                pending = job.unpacker.result()
                self._commit(job, pending)
        except BaseException as exc:     # noqa: BLE001 - collected by the caller
            if not isinstance(exc, SandboxError):
                exc = StoreError("%s: %s" % (type(exc).__name__, exc))
            job.error = exc
            self.cancel.set()
            if job.unpacker is not None and job.unpacker.pid:
                job.unpacker.kill()
            if job.unpacker is not None:
                self.store.discard([job.unpacker.tmpdir])

    def _commit(self, job, pending):
        if pending.diff_id != job.diff_id:
            self.store.discard([pending.tmpdir])
            raise StoreError("layer %s does not match the image config: diff_id is "
                             "%s, expected %s" % (job.short, pending.diff_id, job.diff_id),
                             hint="the registry served a corrupt or tampered layer")
        self.store.commit_layer(pending, job.chain_id, job.parent)
        self.progress.layer(job.short, "Pull complete")

    def _unpack_from_blob(self, job):
        if self.store.has_layer(job.chain_id):
            self.progress.layer(job.short, "Already exists")
            return
        from .. import userns
        idmap = userns.current_id_map()
        self.progress.layer(job.short, "Extracting")
        # Single-threaded again here (the download threads are done), so
        # the plain helper can fork and join the namespace.
        nsfd = userns.shared_userns_fd(idmap)
        try:
            job.unpacker = Unpacker(self.store, nsfd, idmap,
                                    source=self.store.paths.blob(job.digest))
        finally:
            os.close(nsfd)
        pending = job.unpacker.result()
        self._commit(job, pending)

    def _download(self, job):
        """Stream one blob into the child's pipe and a temp blob file;
        resume with a Range request, after a backoff, when the connection
        drops (reset, or closed before the end of the body)."""
        sha = hashlib.sha256()
        got = 0
        tmp = self.store.blob_tmp(job.digest)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self.progress.layer(job.short, "Downloading", 0, job.size)
        try:
            drops = 0
            while True:
                resp = self.client.get_blob(job.digest, got)
                if got and resp.status == 200:
                    skip = got               # no Range support: skip what we have
                    while skip:
                        chunk = resp.read(min(skip, registry.CHUNK))
                        if not chunk:
                            break
                        skip -= len(chunk)
                got = self._copy_body(job, resp, got, sha, fd)
                if got == job.size:
                    break
                drops += 1
                if drops > RESUME_TRIES:
                    raise RegistryError(
                        "blob %s: the download from %s dropped %d times, the last "
                        "at byte %d of %d" % (job.digest, self.client.registry,
                                              drops, got, job.size),
                        hint="the network or a proxy cuts the connection; layers "
                             "already complete are kept for the next pull")
                time.sleep(registry.BACKOFF * 2 ** drops)
            self.progress.layer(job.short, "Verifying Checksum")
            if "sha256:" + sha.hexdigest() != job.digest:
                raise RegistryError("blob %s does not match its digest (got sha256:%s)"
                                    % (job.digest, sha.hexdigest()),
                                    hint="the registry or a proxy is corrupting data; "
                                         "nothing of it was kept")
            os.close(fd)
            fd = None
            self.store.add_blob_file(tmp, job.digest)
            self.progress.layer(job.short, "Download complete")
        finally:
            if fd is not None:
                os.close(fd)
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def _copy_body(self, job, resp, got, sha, fd):
        """Copy ``resp``'s body into the temp blob ``fd``, the hash and the
        unpacker until it ends or the connection drops; returns the bytes
        of the blob had so far."""
        while True:
            if self.cancel.is_set():
                resp.close()
                raise _Cancelled("cancelled")
            try:
                chunk = resp.raw.read1(registry.CHUNK)
            except (OSError, registry.http.client.HTTPException):
                resp.close()        # a reset: the caller resumes
                return got
            if not chunk:
                resp.release()      # the end, or a close before it
                return got
            got += len(chunk)
            if got > job.size:
                resp.close()
                raise RegistryError(
                    "blob %s is larger than its manifest says (%d bytes)"
                    % (job.digest, job.size),
                    hint="the registry or a proxy is corrupting data")
            sha.update(chunk)
            write_all(fd, chunk)
            try:
                job.unpacker.feed(chunk)
            except BrokenPipeError:
                # The child gave up: its error says why.
                resp.close()
                job.unpacker.result()
                raise StoreError("the layer unpacker stopped early") from None
            self.progress.layer(job.short, "Downloading", got)


class _Cancelled(StoreError):
    pass


def _parse_manifest(body, what):
    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryError("%s is not valid JSON" % what) from None
    if not isinstance(doc, dict):
        raise RegistryError("%s is not a JSON object" % what)
    if doc.get("schemaVersion") == 1 or doc.get("mediaType") in registry.MT_SCHEMA1:
        raise RegistryError("%s uses the Docker image manifest schema 1, which is "
                            "not supported" % what,
                            hint="push the image again with a current client "
                                 "(schema 2 or OCI)")
    if "manifests" in doc and doc.get("mediaType", "") not in ("",) + registry.INDEX_TYPES:
        raise RegistryError("%s: unknown manifest type %r" % (what, doc.get("mediaType")))
    return doc


def _repo_display(ref):
    """What Docker prints after "Pulling from": library/busybox on the Hub,
    the repository path elsewhere."""
    return ref.repository


def pull(store, name, platform=None, tls_verify=None, progress=None):
    """Pull ``name``; prints Docker's closing lines through ``progress``;
    returns (image_id, Reference)."""
    ref = reference.parse(name)
    if ref.tag and ref.digest:
        ref = reference.Reference(ref.registry, ref.repository, None, ref.digest)
    default_tag = ":" not in name.rsplit("/", 1)[-1] and "@" not in name
    puller = Puller(store, ref, platform, tls_verify, progress, default_tag)
    try:
        image_id, digest, changed = puller.run()
    finally:
        puller.client.close()
    p = puller.progress
    p.line("Digest: " + digest)
    shown = ref.familiar_string()
    if changed:
        p.line("Status: Downloaded newer image for " + shown)
    else:
        p.line("Status: Image is up to date for " + shown)
    return image_id, ref
