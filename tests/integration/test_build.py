"""`build`, as the unprivileged test user: a Dockerfile with the common
instructions (ARG before FROM, ENV with a continuation line, LABEL,
WORKDIR, COPY of files, directories, --chown and .dockerignore, RUN with
build args, USER, EXPOSE, CMD), FROM scratch with ADD of a tar, -q, the
failures, which leave no container, no listed image and no tag behind, and
the build cache (steps found again, what invalidates them, --no-cache,
builder prune)."""

import json
import os
import subprocess
import tarfile
import time

import pytest

from test_cp import give, host_dir, user_files

DOCKERFILE = """\
# syntax is not read; comments are skipped
ARG BASE=busybox
FROM ${BASE}
ARG GREETING=hello
ENV APP=/app \\
    MODE=prod
LABEL team="a b" version=1
WORKDIR $APP
COPY hello.txt .
COPY sub/ ./sub/
COPY --chown=1000:1000 hello.txt /owned/h.txt
COPY . /ctx/
RUN echo "$GREETING from $MODE" > greeting && chown 1000:1000 greeting && id -u
USER 1000
EXPOSE 8080/udp 9090
CMD ["cat", "greeting"]
"""


def context(sb, name, dockerfile, files=None):
    return user_files(sb, name, dict(files or {}, Dockerfile=dockerfile))


def leftovers(sb):
    """Build containers still there, and untagged images."""
    names = sb.ok("ps", "-a", "--format", "{{.Names}}").stdout.split()
    images = sb.ok("images", "--format", "{{.Repository}}").stdout.split()
    return [n for n in names if n.startswith("sandbox-build-")], images.count("<none>")


def test_build_a_dockerfile(sb, busybox):
    ctx = context(sb, "build-ctx", DOCKERFILE, {
        "hello.txt": "hi\n", "sub/deep.txt": "deep\n", "secret.key": "no\n",
        "logs/a.log": "no\n", ".dockerignore": "secret.key\nlogs\n"})
    before = leftovers(sb)
    r = sb("build", "-t", "localhost/built:1", "--build-arg", "GREETING=hey", ctx)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[:2] == ["Step 1/14 : ARG BASE=busybox", "Step 2/14 : FROM ${BASE}"]
    assert "0" in out                                  # RUN ran as the container's root
    assert out[-1] == "Successfully tagged localhost/built:1"
    assert sb.ok("run", "--rm", "localhost/built:1").stdout == "hey from prod\n"
    check = sb.ok("run", "--rm", "--entrypoint", "", "localhost/built:1", "sh", "-c",
                  "id -u; pwd; cat /app/hello.txt /app/sub/deep.txt; "
                  "stat -c '%u:%g %n' /owned/h.txt /app/greeting; ls -A /ctx; "
                  "echo \"$APP $MODE [$GREETING]\"").stdout.splitlines()
    assert check == ["1000", "/app", "hi", "deep", "1000:1000 /owned/h.txt",
                     "1000:1000 /app/greeting", ".dockerignore", "Dockerfile",
                     "hello.txt", "sub", "/app prod []"]
    cfg = json.loads(sb.ok("image", "inspect", "localhost/built:1").stdout)[0]["Config"]
    assert cfg["Labels"] == {"team": "a b", "version": "1"}
    assert set(cfg["ExposedPorts"]) == {"8080/udp", "9090/tcp"}
    assert cfg["User"] == "1000" and cfg["WorkingDir"] == "/app"
    assert cfg["Cmd"] == ["cat", "greeting"]
    assert leftovers(sb) == before
    sb.ok("rmi", "localhost/built:1")


def test_build_from_scratch_with_add_of_a_tar_and_quiet(sb, busybox):
    sb("rm", "-f", "scratch-src")
    sb.ok("create", "--name", "scratch-src", busybox, "true")
    ctx = context(sb, "build-scratch", "FROM scratch\nADD rootfs.tar /\n"
                                       'CMD ["/bin/sh", "-c", "echo scratch-ok"]\n')
    sb.ok("export", "-o", os.path.join(ctx, "rootfs.tar"), "scratch-src")
    sb.ok("rm", "scratch-src")
    assert tarfile.is_tarfile(os.path.join(ctx, "rootfs.tar"))
    r = sb.ok("build", "-q", "-t", "localhost/scratch:1", ctx)
    image_id = r.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71 and r.stderr == ""
    assert sb.ok("run", "--rm", "localhost/scratch:1").stdout == "scratch-ok\n"
    layers = json.loads(sb.ok("image", "inspect", image_id).stdout)[0]["RootFS"]["Layers"]
    assert len(layers) == 1
    sb.ok("rmi", "localhost/scratch:1")


@pytest.mark.parametrize("dockerfile,message", [
    ("FROM busybox\nRUN echo partial > /p && false\n",
     "The command '/bin/sh -c echo partial > /p && false' returned a non-zero code: 1"),
    ("FROM busybox\nCOPY missing.txt /\n",
     "COPY failed: file not found in build context or excluded by .dockerignore: missing.txt"),
    ("FROM busybox\nCOPY ../outside /\n",
     "COPY failed: forbidden path outside the build context: ../outside"),
    ("FROM busybox\nFROBNICATE now\n", "line 2: unknown instruction: FROBNICATE"),
    ("RUN true\n", "the Dockerfile must begin with FROM"),
])
def test_build_failures_leave_nothing_behind(sb, busybox, dockerfile, message):
    ctx = context(sb, "build-fail", dockerfile)
    before = leftovers(sb)
    r = sb("build", "-t", "localhost/failed:1", ctx)
    assert r.returncode == 1, r.stderr
    assert message in r.stderr
    assert leftovers(sb) == before
    assert sb("image", "inspect", "localhost/failed:1").returncode == 1


def test_build_usage_errors(sb, busybox):
    r = sb("build", "/nonexistent-context")
    assert r.returncode == 125 and "is not a directory" in r.stderr
    ctx = context(sb, "build-usage", "FROM busybox\n")
    r = sb("build", "-t", "Bad/Name", ctx)
    assert r.returncode == 125
    os.unlink(os.path.join(ctx, "Dockerfile"))
    r = sb("build", ctx)
    assert r.returncode == 1 and "cannot read the Dockerfile" in r.stderr


MULTISTAGE = """\
FROM busybox AS builder
WORKDIR /src
RUN mkdir -p out/bin && echo built > out/bin/tool && chmod 750 out/bin/tool \\
    && echo note > /note.txt
FROM busybox AS unused
RUN echo never-copied > /x
FROM scratch
COPY --from=builder /src/out /opt/
COPY --from=builder note.txt /etc/
COPY --from=0 /bin/busybox /bin/sh
COPY --from=busybox /bin/busybox /bin/cat
CMD ["/bin/cat", "/opt/bin/tool"]
"""


def test_build_several_stages_with_copy_from(sb, busybox):
    ctx = context(sb, "build-stages", MULTISTAGE)
    before = leftovers(sb)
    r = sb("build", "-t", "localhost/staged:1", ctx)
    assert r.returncode == 0, r.stderr
    assert sb.ok("run", "--rm", "localhost/staged:1").stdout == "built\n"
    out = sb.ok("run", "--rm", "--entrypoint", "/bin/sh", "localhost/staged:1", "-c",
                "stat -c '%a %u' /opt/bin/tool; /bin/cat /etc/note.txt; "
                "test -e /x || echo no-x").stdout.splitlines()
    assert out == ["750 0", "note", "no-x"]
    # Only the last stage's layers: scratch plus the four COPY layers.
    layers = json.loads(sb.ok("image", "inspect", "localhost/staged:1").stdout)[0]
    assert len(layers["RootFS"]["Layers"]) == 4
    assert leftovers(sb) == before
    r = sb("build", ctx + "/..", "-f", os.path.join(ctx, "Dockerfile"))
    assert r.returncode == 0, r.stderr       # -f outside the context works too
    sb.ok("rmi", "localhost/staged:1")
    r = sb("build", context(sb, "build-nostage", "FROM busybox\nCOPY --from=3 /x /\n"))
    assert r.returncode == 1 and "no build stage 3 before this one" in r.stderr
    r = sb("build", context(sb, "build-nofile", "FROM busybox AS a\nFROM busybox\n"
                                                "COPY --from=a /nonexistent /\n"))
    assert r.returncode == 1 and "COPY --from=a failed" in r.stderr, r.stderr
    assert leftovers(sb)[0] == before[0]


def test_management_command_forms(sb, busybox):
    """`image build` and `container run|diff|export|rm` are the verbs."""
    ctx = context(sb, "build-managed", "FROM busybox\nRUN echo m > /m\n")
    sb.ok("image", "build", "-q", "-t", "localhost/managed:1", ctx)
    sb("container", "rm", "-f", "managed")
    sb.ok("container", "run", "--name", "managed", "localhost/managed:1", "rm", "/m")
    assert sb.ok("container", "diff", "managed").stdout == "D /m\n"
    sb.ok("container", "rm", "managed")
    assert "managed" not in sb.ok("container", "ls", "-a").stdout
    sb.ok("image", "rm", "localhost/managed:1")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_build_interrupted_or_terminated_leaves_nothing(sb, busybox, sig):
    """Ctrl-C, or a `kill` / `timeout` (SIGTERM), in the middle of a RUN:
    its container is removed on the way out (the steps done stay in the
    build cache, unlisted), with Docker's exit codes for the signal."""
    import signal
    import time
    ctx = context(sb, "build-int", "FROM busybox\nENV A=1\nRUN sleep 60\n")
    before = leftovers(sb)
    p = sb.popen("build", "-t", "localhost/interrupted:1", ctx)
    deadline = time.monotonic() + 60
    while not any(n.startswith("sandbox-build-") for n in
                  sb.ok("ps", "--format", "{{.Names}}").stdout.split()):
        assert time.monotonic() < deadline and p.poll() is None, "the RUN step never ran"
        time.sleep(0.1)
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode == {"SIGINT": 130, "SIGTERM": 143}[sig], err
    assert "Traceback" not in err, err
    assert leftovers(sb) == before
    assert sb("image", "inspect", "localhost/interrupted:1").returncode == 1


CACHED = """\
FROM busybox
ARG FLAVOUR=plain
ENV A=1
RUN cat /proc/sys/kernel/random/uuid > /id && echo "$FLAVOUR" > /flavour
COPY f.txt /f.txt
CMD ["cat", "/f.txt"]
"""


def _steps(out):
    """{step number: whether it said "Using cache"} and the final id."""
    lines = out.splitlines()
    hits, step = {}, None
    for line in lines:
        if line.startswith("Step "):
            step = int(line.split()[1].split("/")[0])
            hits[step] = False
        elif line == " ---> Using cache":
            hits[step] = True
    built = [line.split()[-1] for line in lines if line.startswith("Successfully built ")]
    assert len(built) == 1, out
    return hits, built[0]


def _cache_count(sb):
    df = sb.ok("system", "df", "--format", "{{.Type}}={{.TotalCount}}").stdout
    return dict(x.split("=") for x in df.splitlines())["Build Cache"]


def test_the_build_cache(sb, busybox):
    ctx = context(sb, "build-cache", CACHED, {"f.txt": "one\n"})
    f = os.path.join(ctx, "f.txt")

    def build(*flags):
        r = sb("build", "-t", "localhost/cached:1", *flags, ctx)
        assert r.returncode == 0, r.stderr
        hits, short = _steps(r.stdout)
        got = sb.ok("run", "--rm", "--entrypoint", "", "localhost/cached:1", "cat", "/id",
                    "/flavour", "/f.txt").stdout.split()
        return hits, short, got

    before = leftovers(sb)
    hits, first, (uuid, flavour, text) = build()
    # (ENV A=1 on busybox: maybe cached by an earlier test of this module)
    assert not any(hits[n] for n in (4, 5, 6)) and (flavour, text) == ("plain", "one")
    # The same again: every step after FROM and ARG from the cache, the
    # same image, and RUN did not run again (the same random id).
    hits, again, got = build()
    assert hits == {1: False, 2: False, 3: True, 4: True, 5: True, 6: True}
    assert again == first and got == [uuid, "plain", "one"]
    # Intermediate images are not listed (but with -a), nor pruned as
    # dangling images.
    assert leftovers(sb) == before
    every = sb.ok("images", "-a", "--format", "{{.Repository}}").stdout.split()
    assert every.count("<none>") >= 3
    sb.ok("image", "prune", "-f")
    assert build()[0][4] is True
    # A file's modification time is not its content; its content is.
    os.utime(f, (1, 1))
    assert build()[0] == {1: False, 2: False, 3: True, 4: True, 5: True, 6: True}
    with open(f, "w") as fh:
        fh.write("two\n")
    hits, changed, got = build()
    assert hits == {1: False, 2: False, 3: True, 4: True, 5: False, 6: False}
    assert changed != first and got == [uuid, "plain", "two"]
    # A build arg the RUN sees is part of its key.
    hits, _, got = build("--build-arg", "FLAVOUR=spicy")
    assert hits == {1: False, 2: False, 3: True, 4: False, 5: False, 6: False}
    assert got[0] != uuid and got[1:] == ["spicy", "two"]
    # --no-cache runs everything; the images it replaced are not left
    # behind as <none>.
    hits, fresh, got = build("--no-cache")
    assert not any(hits.values()) and got[0] != uuid and fresh != changed
    assert leftovers(sb) == before
    assert int(_cache_count(sb)) >= 4
    # builder prune empties the cache; the named image stays.
    r = sb.ok("builder", "prune", "-f")
    assert r.stdout.startswith("Deleted build cache objects:\n"), r.stdout
    every = sb.ok("images", "-a", "--format", "{{.Repository}}").stdout.split()
    assert every.count("<none>") == before[1]
    assert sb.ok("run", "--rm", "localhost/cached:1").stdout == "two\n"
    assert _cache_count(sb) == "0"
    hits, _, got = build()
    assert not any(hits.values()) and got[1:] == ["plain", "two"]
    sb.ok("rmi", "localhost/cached:1")
    sb.ok("builder", "prune", "-f")


def test_pruning_waits_for_no_build(sb, busybox):
    """`builder prune` while a build runs leaves the cache (the build may
    have just found an image there) and says so."""
    import time
    ctx = context(sb, "build-prune-busy", "FROM busybox\nENV B=1\nRUN sleep 60\n")
    p = sb.popen("build", ctx)
    try:
        deadline = time.monotonic() + 60
        while not any(n.startswith("sandbox-build-") for n in
                      sb.ok("ps", "--format", "{{.Names}}").stdout.split()):
            assert time.monotonic() < deadline and p.poll() is None, "the RUN never ran"
            time.sleep(0.1)
        r = sb.ok("builder", "prune", "-f")
        assert "a build is running" in r.stderr and "Total reclaimed space: 0B" in r.stdout
    finally:
        p.terminate()
        p.communicate(timeout=60)
    assert p.returncode == 143
    assert "Deleted build cache objects" in sb.ok("builder", "prune", "-f").stdout


def test_target_label_iidfile_and_a_dockerfile_on_stdin(sb, busybox):
    ctx = context(sb, "build-target", MULTISTAGE)
    iid = os.path.join(ctx, "iid")
    r = sb("build", "--target", "builder", "--label", "stage=first", "--label", "k=v",
           "--iidfile", iid, "-t", "localhost/target:1", ctx)
    assert r.returncode == 0, r.stderr
    assert "Step 3/3 : RUN" in r.stdout         # stopped after the stage "builder"
    with open(iid) as f:
        image_id = f.read()
    info = json.loads(sb.ok("image", "inspect", "localhost/target:1").stdout)[0]
    assert info["Id"] == image_id
    assert info["Config"]["Labels"] == {"stage": "first", "k": "v"}
    assert sb.ok("run", "--rm", "localhost/target:1", "cat", "/src/out/bin/tool").stdout \
        == "built\n"
    r = sb("build", "--target", "nowhere", ctx)
    assert r.returncode == 1 and "failed to reach build target nowhere" in r.stderr
    # `build -`: the Dockerfile on stdin and no context; `-f -` with one.
    r = sb("build", "-q", "-", input="FROM busybox\nRUN echo piped > /p\n")
    assert r.returncode == 0, r.stderr
    assert sb.ok("run", "--rm", r.stdout.strip(), "cat", "/p").stdout == "piped\n"
    r = sb("build", "-", input="FROM busybox\nCOPY x /\n")
    assert r.returncode == 1 and "file not found in build context" in r.stderr
    ctx2 = context(sb, "build-stdin-f", "", {"data.txt": "d\n"})
    r = sb("build", "-q", "-f", "-", ctx2, input="FROM busybox\nCOPY data.txt /\n")
    assert r.returncode == 0, r.stderr
    assert sb.ok("run", "--rm", r.stdout.strip(), "cat", "/data.txt").stdout == "d\n"
    r = sb("build", "-", input="x" * 257 + "ustar\0" + "x" * 300)
    assert r.returncode == 125 and "tar archive on stdin" in r.stderr
    sb.ok("rmi", "localhost/target:1")


def test_copy_chmod_and_add_from_a_url(sb, busybox):
    import functools
    import http.server
    import threading
    served = host_dir(sb, "build-served")
    payload = os.path.join(served, "payload.tar.gz")
    with tarfile.open(payload, "w:gz") as tf:
        data = os.path.join(served, "inner.txt")
        with open(data, "w") as f:
            f.write("inner\n")
        tf.add(data, "inner.txt")
    os.utime(payload, (1500000000, 1500000000))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=served)
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        ctx = context(sb, "build-chmod", (
            "FROM busybox\n"
            "COPY --chmod=751 tool /bin/tool\n"
            "COPY --chmod=0640 dir /dir\n"
            "ADD %s/payload.tar.gz /dl/\n"
            "ADD %s/payload.tar.gz /named.tgz\n") % (base, base),
            {"tool": "#!/bin/sh\necho tool\n", "dir/a": "a\n", "dir/sub/b": "b\n"})
        r = sb("build", "-q", ctx)
        assert r.returncode == 0, r.stderr
        out = sb.ok("run", "--rm", r.stdout.strip(), "sh", "-c",
                    "stat -c '%a %n' /bin/tool /dir/a /dir/sub /dl/payload.tar.gz "
                    "/named.tgz; stat -c %Y /dl/payload.tar.gz; ls /dl").stdout.splitlines()
        assert out == ["751 /bin/tool", "640 /dir/a", "640 /dir/sub",
                       "600 /dl/payload.tar.gz", "600 /named.tgz", "1500000000",
                       "payload.tar.gz"]          # a URL's archive is not extracted
        import hashlib
        with open(payload, "rb") as f:
            digest = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        r = sb("build", "-q", context(sb, "build-sum", (
            "FROM busybox\nADD --checksum=%s %s/payload.tar.gz /p.tgz\n"
            "COPY --link --chmod=600 tool /t\n") % (digest, base), {"tool": "x"}))
        assert r.returncode == 0, r.stderr
        r = sb("build", context(sb, "build-badsum", "FROM busybox\nADD --checksum=sha256:%s "
                                "%s/payload.tar.gz /p.tgz\n" % ("0" * 64, base)))
        assert r.returncode == 1 and "digest mismatch" in r.stderr, r.stderr
        r = sb("build", context(sb, "build-404", "FROM busybox\nADD %s/missing /\n" % base))
        assert r.returncode == 1 and "ADD failed: GET %s/missing: 404" % base in r.stderr
        r = sb("build", context(sb, "build-copyurl", "FROM busybox\nCOPY %s/x /\n" % base))
        assert r.returncode == 1 and "source can't be a URL for COPY" in r.stderr
        r = sb("build", context(sb, "build-badmode", "FROM busybox\nCOPY --chmod=u+x a /\n",
                                {"a": ""}))
        assert r.returncode == 1 and "--chmod=u+x: not an octal mode" in r.stderr
    finally:
        server.shutdown()


BUILDKIT = """\
FROM busybox AS base
RUN echo base > /base.txt
FROM busybox
ARG WHO=world
RUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/runs; wc -l < /cache/runs > /runs-seen'
RUN --mount=type=bind,source=src,target=/src cat /src/data.txt > /copied.txt
RUN --mount=type=bind,source=src,target=/src,rw sh -c 'echo scribble > /src/new.txt; ls /src > /rwlist'
RUN --mount=type=bind,from=base,source=/base.txt,target=/b.txt cp /b.txt /from-base.txt
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /secret-len
RUN --mount=type=tmpfs,target=/scratch --network=none sh -c 'echo x > /scratch/x; ls /sys/class/net > /nets'
RUN <<EOF
echo "heredoc $WHO" > /heredoc.txt
echo second >> /heredoc.txt
EOF
RUN cat > /cat.txt <<DOC
via cat
DOC
COPY <<NOTE /note.txt
note for $WHO
NOTE
RUN <<'PY'
#!/bin/sh
echo "shebang script" > /shebang.txt
PY
"""


def test_buildkit_syntax_mounts_secrets_and_heredocs(sb, busybox):
    """RUN --mount (cache, bind from the context or a stage, tmpfs,
    secret), RUN --network, here-documents in RUN and COPY: what they leave
    in the image, and what they do not (mount points, the secret, writes
    to an rw bind of the context)."""
    ctx = context(sb, "build-buildkit", BUILDKIT, {"src/data.txt": "hello from ctx\n"})
    secret = os.path.join(ctx, "..", "token")
    with open(secret, "w") as f:
        f.write("s3cret\n")
    give(sb, secret)

    def build(*flags):
        r = sb("build", "--secret", "id=tok,src=" + secret, "-t", "localhost/bk:1", *flags, ctx)
        assert r.returncode == 0, r.stderr
        return r.stdout
    build()
    out = sb.ok("run", "--rm", "localhost/bk:1", "sh", "-c",
                "cat /runs-seen /copied.txt /rwlist /from-base.txt /secret-len /nets "
                "/heredoc.txt /cat.txt /note.txt /shebang.txt; "
                "for p in /run/secrets /scratch /cache /src /b.txt; do "
                "test -e $p && echo left $p; done; true").stdout
    assert out.splitlines() == [
        "1", "hello from ctx", "data.txt", "new.txt", "base", "7", "lo",
        "heredoc world", "second", "via cat", "note for world", "shebang script"], out
    assert os.listdir(os.path.join(ctx, "src")) == ["data.txt"]   # rw: a copy
    sb.ok("save", "localhost/bk:1", "-o", os.path.join(ctx, "..", "bk.tar"))
    with tarfile.open(os.path.join(ctx, "..", "bk.tar")) as outer:
        for member in outer:
            if member.name.endswith((".tar", "/layer.tar")) or "blobs" in member.name:
                data = outer.extractfile(member)
                if data is not None:
                    assert b"s3cret" not in data.read(), member.name
    # Cached the second time; the cache mount persists across --no-cache builds.
    assert build().count(" ---> Using cache") == 11     # all but FROM, FROM, ARG
    build("--no-cache")
    assert sb.ok("run", "--rm", "localhost/bk:1", "cat", "/runs-seen").stdout == "2\n"
    volumes = sb.ok("volume", "ls", "-q").stdout.split()
    assert any(v.startswith("sandbox-buildcache-") for v in volumes)
    r = sb.ok("builder", "prune", "-f")
    assert not any(v.startswith("sandbox-buildcache-")
                   for v in sb.ok("volume", "ls", "-q").stdout.split()), r.stdout
    for dockerfile, message in (
            ("FROM busybox\nRUN --mount=type=secret,id=nope,required true\n",
             "secret nope is required but not given"),
            ("FROM busybox\nRUN --mount=type=npipe true\n", "type=npipe is not supported"),
            ("FROM busybox\nRUN --privileged true\n", "RUN: unknown flag --privileged"),
            ("FROM busybox\nRUN <<EOF\ntrue\n", "has no end")):
        r = sb("build", context(sb, "build-bk-bad", dockerfile))
        assert r.returncode == 1 and message in r.stderr, (dockerfile, r.stderr)
    r = sb("build", "--secret", "id=x,src=/nonexistent", ctx)
    assert r.returncode == 125 and "not a readable file" in r.stderr
    sb.ok("rmi", "localhost/bk:1")


def test_from_platform_and_the_platform_args(sb, busybox):
    """FROM --platform=$BUILDPLATFORM and BuildKit's TARGETARCH & co. (the
    host's without --platform); FROM --platform of another architecture
    wants that platform's image: the stored busybox (this host's) does not
    count.  (Builds for other platforms: test_emulation.py.)"""
    from helpers.image.archive import host_arch
    ctx = context(sb, "build-platform", (
        "ARG BUILDPLATFORM\n"
        "FROM --platform=$BUILDPLATFORM busybox AS build\n"
        "ARG TARGETARCH\nARG TARGETOS\n"
        "RUN echo \"$TARGETOS/$TARGETARCH\" > /target\n"
        "FROM --platform=linux busybox\n"
        "COPY --from=build /target /target\n"))
    r = sb("build", "-q", ctx)
    assert r.returncode == 0, r.stderr
    assert sb.ok("run", "--rm", r.stdout.strip(), "cat", "/target").stdout == \
        "linux/%s\n" % host_arch()
    other = "linux/arm64" if host_arch() != "arm64" else "linux/amd64"
    r = sb("build", context(sb, "build-platform-other",
                            "FROM --platform=%s busybox\n" % other))
    assert r.returncode != 0 and \
        "Unable to find image 'docker.io/library/busybox:latest' locally" in r.stderr


def test_onbuild_triggers_run_in_the_child_build_only(sb, busybox):
    """Docker's ONBUILD: recorded in the base image, run right after the
    FROM of a build that uses it (RUN, ENV, COPY from the child's context),
    and not passed on to the child's own image."""
    base = context(sb, "onbuild-base", "FROM %s\n"
                   "ONBUILD COPY app.txt /app.txt\n"
                   "ONBUILD RUN echo triggered > /trig\n"
                   "ONBUILD ENV FROM_TRIGGER=yes\n"
                   "CMD [\"true\"]\n" % busybox)
    sb.ok("build", "-q", "-t", "localhost/onbase", base)
    cfg = json.loads(sb.ok("image", "inspect", "localhost/onbase").stdout)[0]["Config"]
    assert cfg["OnBuild"] == ["COPY app.txt /app.txt", "RUN echo triggered > /trig",
                              "ENV FROM_TRIGGER=yes"]
    child = context(sb, "onbuild-child", "FROM localhost/onbase\nRUN cat /trig /app.txt\n",
                    {"app.txt": "the child's\n"})
    r = sb("build", "-t", "localhost/onchild", child)
    assert r.returncode == 0, r.stderr
    assert "# Executing 3 build triggers" in r.stdout
    assert "triggered\nthe child's\n" in r.stdout
    out = sb.ok("run", "--rm", "localhost/onchild", "sh", "-c",
                "cat /trig /app.txt; echo $FROM_TRIGGER").stdout
    assert out == "triggered\nthe child's\nyes\n"
    cfg = json.loads(sb.ok("image", "inspect", "localhost/onchild").stdout)[0]["Config"]
    assert not cfg.get("OnBuild")
    grandchild = context(sb, "onbuild-grandchild", "FROM localhost/onchild\nRUN true\n")
    r = sb.ok("build", "-t", "localhost/ongrand", grandchild)
    assert "build trigger" not in r.stdout
    sb.ok("rmi", "localhost/ongrand", "localhost/onchild", "localhost/onbase")


@pytest.mark.parametrize("trigger, message", [
    ("ONBUILD RUN true", "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM busybox", "FROM isn't allowed as an ONBUILD trigger"),
    ("MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
])
def test_onbuild_refuses_what_docker_refuses(sb, busybox, trigger, message):
    ctx = context(sb, "onbuild-bad", "FROM %s\nONBUILD %s\n" % (busybox, trigger))
    r = sb("build", ctx)
    assert r.returncode == 1 and message in r.stderr, r.stderr


@pytest.fixture(scope="module")
def debian(sb, images_dir):
    sb.ok("load", "-i", os.path.join(images_dir, "debian.tar"), timeout=300)
    return "localhost/debian:bookworm"


def test_run_mount_ssh_reaches_the_users_agent(sb, busybox, debian):
    """build --ssh default: the user's ssh-agent, bound at BuildKit's
    /run/buildkit/ssh_agent.0 with SSH_AUTH_SOCK set; a request for its
    identities answered (perl of the Debian image speaks the protocol);
    the socket is in no layer.  Without --ssh, a required mount fails."""
    agent_dir = os.path.join(os.path.dirname(sb.root), "agent")
    os.makedirs(agent_dir, exist_ok=True)
    os.chown(agent_dir, sb.uid, sb.gid)
    os.chmod(agent_dir, 0o700)
    sock = os.path.join(agent_dir, "sock")
    if os.path.exists(sock):
        os.unlink(sock)
    agent = sb.popen_raw(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert time.monotonic() < deadline and agent.poll() is None, "no ssh-agent"
            time.sleep(0.05)
        probe = ("perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => "
                 "$ENV{SSH_AUTH_SOCK}) or die qq(no agent: $!\\n); print $s pack(q(NC), 1, 11); "
                 "read($s, $b, 5) == 5 or die qq(no answer\\n); "
                 "printf qq(agent answered %d at %s\\n), (unpack q(NC), $b)[1], $ENV{SSH_AUTH_SOCK}'")
        ctx = context(sb, "ssh-ctx", "FROM %s\nRUN --mount=type=ssh %s\n" % (debian, probe))
        r = sb("build", "--ssh", "default", "-t", "localhost/sshed", ctx,
               env={"SSH_AUTH_SOCK": sock}, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "agent answered 12 at /run/buildkit/ssh_agent.0" in r.stdout
        r = sb.ok("run", "--rm", "localhost/sshed", "ls", "-A", "/run")
        assert "buildkit" not in r.stdout
        sb.ok("rmi", "localhost/sshed")
        ctx = context(sb, "ssh-req", "FROM %s\nRUN --mount=type=ssh,required true\n" % busybox)
        r = sb("build", ctx)
        assert r.returncode == 1 and "no SSH agent default was given" in r.stderr, r.stderr
        r = sb("build", "--ssh", "default", ctx, env={"SSH_AUTH_SOCK": None})
        assert r.returncode == 125 and "SSH_AUTH_SOCK is not set" in r.stderr
        r = sb("build", "--ssh", "k=" + os.path.join(agent_dir), ctx)
        assert r.returncode == 125 and "is not an SSH agent's socket" in r.stderr
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_the_flags_ci_scripts_pass_and_build_outputs(sb, busybox):
    """Docker's and BuildKit's build flags: --rm/--force-rm/--load/
    --cache-from/--progress accepted, --add-host and --ulimit reach the RUN
    steps, --platform (this host's) accepted, and -o writes the image's
    files: into a directory (the user's, symlinks kept), into a tar file, or
    as a tar on stdout (the steps then on stderr)."""
    from helpers.image.archive import host_arch
    ctx = context(sb, "build-flags", (
        "FROM busybox\n"
        "RUN grep myhost /etc/hosts > /hosts && ulimit -n > /nofile\n"
        "RUN ln -s /etc/passwd /link && mkdir -p /d && echo deep > /d/f\n"))
    out_dir = host_dir(sb, "build-flags-out")
    give(sb, out_dir)
    r = sb("buildx", "build", "--rm", "--force-rm=true", "--progress=plain", "--load",
           "--cache-from", "nothing:here", "--cache-to", "type=inline",
           "--provenance=false", "--sbom=false", "--platform", "linux/" + host_arch(),
           "--add-host", "myhost:10.1.2.3", "--ulimit", "nofile=512:512",
           "-t", "build-flags", "-o", "type=local,dest=" + out_dir, ctx)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(out_dir, "hosts")) as f:
        assert f.read().split() == ["10.1.2.3", "myhost"]
    with open(os.path.join(out_dir, "nofile")) as f:
        assert f.read() == "512\n"
    assert os.readlink(os.path.join(out_dir, "link")) == "/etc/passwd"
    st = os.stat(os.path.join(out_dir, "d", "f"))
    assert (st.st_uid, st.st_gid) == (sb.uid, sb.gid)
    tar_path = os.path.join(out_dir, "image.tar")
    sb.ok("build", "-q", "-o", "type=tar,dest=" + tar_path, ctx)
    with tarfile.open(tar_path) as tf:
        assert {"d/f", "hosts", "bin/sh"} <= set(tf.getnames())
    r = sb.run_raw(["sh", "-c", "%s build -o - %s | tar -t" % (sb.cli, ctx)])
    assert r.returncode == 0 and "d/f" in r.stdout.split(), r.stderr
    assert "Successfully built" in r.stderr
    for flags, message, code in (
            (["--platform", "windows/amd64"], "sandbox cannot build for it", 125),
            (["--progress=fancy"], "invalid choice: 'fancy'", 125),
            (["-o", "type=registry"], "invalid --output 'type=registry'", 125),
            (["--push"], "--push needs a name to push", 125),
            (["--add-host", "nocolon"], "add-host", 125)):
        r = sb("build", *flags, ctx)
        assert r.returncode == code and message in r.stderr, (flags, r.stderr)
    assert leftovers(sb)[0] == []          # (the -o builds' containers too)
