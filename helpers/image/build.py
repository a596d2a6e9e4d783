"""`build`: an image from a Dockerfile, as Docker's classic builder makes it.

Each RUN runs in a container of the image so far (a `sandbox run` of its
own: the same isolation as any container, the default network unless
--network), and `commit` makes the next image of its changes; each COPY or
ADD writes a tar of the files from the build context (placed by the
Dockerfile's rules, owners root or --chown) into a created container of the
image so far, through cp's extraction inside the container's root, and
commits it; the other instructions change the image config.  The
containers are removed at the end, whether the build succeeded or not.

Every image a step makes stays in the build cache (image/buildcache.py):
a step whose key (the steps before it, and what it runs or copies) is
found there takes the cached image instead of running again (" ---> Using
cache"), unless --no-cache.

Supported: FROM (an image, scratch, or an earlier stage; ARGs before it;
several stages, AS NAME), RUN, COPY (--chown; --from=STAGE|INDEX|IMAGE:
the paths are copied out of a created container of it, as `cp` does, then
placed as the context's files are), ADD (local files, directories and
wildcards; a local tar archive is extracted), ENV, ARG (--build-arg),
LABEL, WORKDIR, USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, STOPSIGNAL, SHELL,
ONBUILD (recorded; an image's triggers run after the FROM that uses it),
MAINTAINER, COPY/ADD --chmod (octal), ADD from an http(s) URL (fetched on
the host, not extracted), HEALTHCHECK, and .dockerignore.
"""

import functools
import json
import os
import posixpath
import re
import stat
import subprocess
import sys
import tarfile
import uuid

from ..container.runtime import _env_dict
from ..errors import SandboxError, UsageError
from .. import platforms
from . import archive
from .buildcache import BuildCache, key

NOP = "/bin/sh -c #(nop) "
METADATA = ("ENV", "LABEL", "WORKDIR", "USER", "EXPOSE", "VOLUME", "CMD",
            "ENTRYPOINT", "STOPSIGNAL", "SHELL", "ONBUILD", "MAINTAINER", "HEALTHCHECK")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class BuildError(SandboxError):
    """A build that fails: Docker's CLI exits 1."""

    exit_code = 1


# ---------------------------------------------------------------------------
# The Dockerfile
# ---------------------------------------------------------------------------
HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def parse(text):
    """[(line number, INSTRUCTION, arguments)]: comments and empty lines
    dropped, continuation lines (a trailing backslash, or the character of
    an ``# escape=`` directive) joined.  RUN, COPY and ADD may have here-
    documents (BuildKit's ``<<EOF`` ... ``EOF``): their lines follow the
    instruction's first line in its arguments, newline-separated, with the
    terminators (heredocs() takes them apart)."""
    escape = "\\"
    lines = text.splitlines()
    for line in lines:              # parser directives: only at the very top
        m = re.match(r"^#\s*(\w+)\s*=\s*(\S+)\s*$", line.strip())
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
    out, buf, start = [], [], None
    n = 0
    while n < len(lines):
        line = lines[n]
        n += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if start is None:
            start = n
        if stripped.endswith(escape):
            buf.append(line.rstrip()[:-1])
            continue
        buf.append(line)
        joined = " ".join(b.strip() for b in buf)
        if joined.split(None, 1)[0].upper() in ("RUN", "COPY", "ADD"):
            for dash, _, word in HEREDOC.findall(joined):
                body = []
                while n < len(lines):
                    raw = lines[n]
                    n += 1
                    if (raw.lstrip("\t") if dash else raw) == word:
                        break
                    body.append(raw)
                else:
                    raise BuildError("line %d: the here-document <<%s has no end "
                                     "(a line %s)" % (start, word, word))
                joined += "\n" + "\n".join(body + [word])
        out.append(_instruction(start, joined))
        buf, start = [], None
    if buf:
        out.append(_instruction(start, " ".join(b.strip() for b in buf)))
    return out


def heredocs(rest):
    """(the instruction's first line, {word: body}) of arguments that parse()
    gave here-documents; a body ends with a newline, as the shell's."""
    first, _, tail = rest.partition("\n")
    bodies = {}
    lines = tail.split("\n") if tail else []
    for dash, _, word in HEREDOC.findall(first):
        end = lines.index(word)
        body = lines[:end]
        if dash:
            body = [b.lstrip("\t") for b in body]
        bodies[word] = "".join(b + "\n" for b in body)
        lines = lines[end + 1:]
    return first, bodies


def _instruction(lineno, text):
    word, _, rest = text.strip().partition(" ")
    rest = rest.strip(" \t")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = (more + " " + rest).strip()
    return lineno, word.upper(), rest


def expand(word, env):
    """$VAR, ${VAR}, ${VAR:-default}, ${VAR:+alternative}; "\\$" is a
    dollar (the Dockerfile's variable rules for ENV, COPY, WORKDIR, ...)."""
    def sub(m):
        if m.group(0).startswith("\\"):
            return "$"
        name = m.group(1) or m.group(2)
        if name:
            return env.get(name, "")
        name, op, arg = m.group(3), m.group(4), m.group(5)
        value = env.get(name, "")
        if op == ":-":
            return value or expand(arg, env)
        return expand(arg, env) if value else ""
    return re.sub(r"\\\$|\$(\w+)|\$\{(\w+)\}|\$\{(\w+)(:-|:\+)([^}]*)\}", sub, word)


def _json_or_shell(rest, shell):
    """(argv, whether it is the shell form) of RUN, CMD, ENTRYPOINT."""
    form = archive.json_list(rest)
    if form is not None:
        return form, False
    return list(shell) + [rest], True


# ---------------------------------------------------------------------------
# .dockerignore
# ---------------------------------------------------------------------------
def ignore_patterns(context):
    try:
        with open(os.path.join(context, ".dockerignore")) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    return parse_ignore(lines)


def parse_ignore(lines):
    """.dockerignore lines (also compose's watch `ignore:` lists) as
    [(negated, pattern)] for ignored()."""
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = posixpath.normpath(line[1:] if neg else line).lstrip("/")
        out.append((neg, pat))
    return out


@functools.lru_cache(maxsize=512)
def _pattern(pat):
    """A .dockerignore pattern as a regex, Go's filepath.Match rules plus
    Docker's "**": "*" and "?" stop at "/", "**/" is any number of
    directories, a trailing "**" anything."""
    out, i = [], 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "[" and "]" in pat[i + 2:]:
            end = pat.index("]", i + 2)
            body = pat[i + 1:end].replace("\\", "\\\\")    # ranges ("a-z") kept
            if body[:1] == "!":
                body = "^" + body[1:]
            out.append("[" + body + "]")
            i = end + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def ignored(rel, patterns):
    """Is ``rel`` (or a directory above it) excluded?  The last pattern
    that matches decides ("!" re-includes), as Docker's fileutils."""
    result = False
    parts = rel.split("/")
    for neg, pat in patterns:
        regex = _pattern(pat)
        if any(regex.match("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            result = not neg
    return result


def ignore_matcher(patterns):
    """ignored() for one list, made once: ``match(rel, above=True)``;
    ``above=False`` when the directories above ``rel`` are known not to
    be excluded (a walk that went down only into those), which, without a
    "!" pattern, leaves one match of one regex of them all."""
    if not patterns:
        return lambda rel, above=True: False
    if any(neg for neg, _ in patterns):
        return lambda rel, above=True: ignored(rel, patterns)
    regex = re.compile("|".join("(?:%s)" % _pattern(pat).pattern for _, pat in patterns))

    def match(rel, above=True):
        if not above:
            return regex.match(rel) is not None
        parts = rel.split("/")
        return any(regex.match("/".join(parts[:i])) for i in range(1, len(parts) + 1))
    return match


# ---------------------------------------------------------------------------
# COPY and ADD: a tar of the context's files at their destination
# ---------------------------------------------------------------------------
class Placer:
    """The tar a COPY or ADD writes into the container, entry names
    relative to "/"."""

    def __init__(self, out, owner, missing_dirs, mtimes=True, mode=None):
        """``mtimes``: False writes every modification time as 0 (the tar
        the build cache's key hashes).  ``mode``: the permission bits of
        every file and directory copied (--chmod), else their own."""
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.uid, self.gid = owner
        self.mtimes = mtimes
        self.mode = mode
        self.made = set()
        self.missing_dirs = missing_dirs

    def parents(self, rel):
        """Directories above ``rel`` that the image lacks (root-owned 0755)."""
        parent = posixpath.dirname(rel)
        chain = []
        while parent and parent not in self.made:
            chain.append(parent)
            parent = posixpath.dirname(parent)
        for d in reversed(chain):
            self.made.add(d)
            if d in self.missing_dirs:
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                self.tf.addfile(ti)

    def add_path(self, host, rel):
        st = os.lstat(host)
        self.parents(rel)
        ti = tarfile.TarInfo(rel)
        ti.uid, ti.gid = self.uid, self.gid
        ti.mode = stat.S_IMODE(st.st_mode) if self.mode is None or \
            stat.S_ISLNK(st.st_mode) else self.mode
        ti.mtime = int(st.st_mtime) if self.mtimes else 0
        if stat.S_ISDIR(st.st_mode):
            ti.type = tarfile.DIRTYPE
            self.made.add(rel)
            self.tf.addfile(ti)
        elif stat.S_ISLNK(st.st_mode):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(host)
            self.tf.addfile(ti)
        elif stat.S_ISREG(st.st_mode):
            ti.size = st.st_size
            with open(host, "rb") as f:
                self.tf.addfile(ti, f)

    def add_tree(self, host, rel, context, patterns):
        """A directory's contents below ``rel`` (COPY copies the contents,
        not the directory itself)."""
        if rel and rel not in self.made:
            self.add_path(host, rel)
        for name in sorted(os.listdir(host)):
            child = os.path.join(host, name)
            crel = posixpath.join(rel, name) if rel else name
            if patterns and ignored(os.path.relpath(child, context), patterns):
                continue
            if stat.S_ISDIR(os.lstat(child).st_mode):
                self.add_tree(child, crel, context, patterns)
            else:
                self.add_path(child, crel)

    def add_archive(self, host, rel):
        """ADD of a local tar archive: its members below ``rel``."""
        with tarfile.open(host, mode="r:*") as src:
            for member in src:
                name = posixpath.normpath(member.name.lstrip("/"))
                if name in (".", "") or name.startswith("../"):
                    continue
                target = posixpath.join(rel, name) if rel else name
                self.parents(target)
                member.name = target
                if not self.mtimes:
                    member.mtime = 0
                if member.islnk():
                    member.linkname = posixpath.join(rel, member.linkname.lstrip("/"))
                data = src.extractfile(member) if member.isreg() else None
                self.tf.addfile(member, data)
                if member.isdir():
                    self.made.add(target)

    def close(self):
        self.tf.close()


# ---------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------
class Builder:
    def __init__(self, paths, context, dockerfile, tags=(), build_args=None, quiet=False,
                 network=None, out=None, no_cache=False, target=None, labels=None,
                 dockerfile_text=None, secrets=None, ssh=None, pull=False,
                 run_options=(), platform=None):
        """``dockerfile_text``: the Dockerfile itself (read from stdin),
        instead of the file ``dockerfile``; ``target``: the stage to stop
        after; ``labels``: set on the final image (--label); ``secrets``:
        {id: file} for RUN --mount=type=secret (--secret); ``ssh``: {id:
        agent socket} for RUN --mount=type=ssh (--ssh); ``pull``: FROM
        images are pulled even when stored (--pull); ``run_options``: more
        flags of every RUN's `sandbox run` (--add-host, --ulimit, ...);
        ``platform``: (os, arch, variant) to build for (--platform; another
        architecture's RUN steps run emulated, container/emulation.py)."""
        self.paths = paths
        self.platform = platform or host_platform()
        self.stage_platform = self.platform
        self.context = context
        self.dockerfile = dockerfile
        self.tags = list(tags)
        self.build_args = dict(build_args or {})
        self.quiet = quiet
        self.network = network
        self.out = out or sys.stdout
        self.target = target
        self.labels = dict(labels or {})
        self.dockerfile_text = dockerfile_text
        self.secrets = dict(secrets or {})
        self.ssh = dict(ssh or {})
        self.pull = pull
        self.pulled = {}          # name -> image id: --pull pulls each once
        self.run_options = list(run_options)
        from .store import Store
        self.store = Store(paths)
        self.cache = BuildCache(paths)
        self.use_cache = not no_cache
        self.key = None           # the build cache's key of self.image_id
        self.hit = False          # the last step came from the cache
        self.replaced = []        # images whose cache entries this build took
        self.containers = []
        self.not_archives = set()  # ADD never extracts these (URLs, here-documents)
        self.image_id = None
        self.dirty = False
        self.author = None
        self.cmd_set = False
        self.stage_name = None
        self.stages = []          # earlier stages' images, by index
        self.named = {}           # ... and by their AS name
        self.cfg = {}
        self.args = {}
        self.patterns = ignore_patterns(context)

    # -- output -------------------------------------------------------------
    def say(self, text):
        if not self.quiet:
            self.out.write(text + "\n")
            self.out.flush()

    # -- the steps ----------------------------------------------------------
    def run(self):
        text = self.dockerfile_text
        if text is None:
            try:
                with open(self.dockerfile) as f:
                    text = f.read()
            except OSError as exc:
                raise BuildError("cannot read the Dockerfile %s: %s"
                                 % (self.dockerfile, exc.strerror),
                                 hint="give one with -f, or put a Dockerfile in the "
                                      "context") from None
        steps = parse(text)
        if not steps:
            raise BuildError("the Dockerfile %s has no instructions" % self.dockerfile)
        first = next((instr for _, instr, _ in steps if instr != "ARG"), None)
        if first != "FROM":
            raise BuildError("the Dockerfile must begin with FROM (after ARGs)",
                             hint="e.g. FROM busybox")
        if self.target:
            steps = up_to_stage(steps, self.target)
        globals_ = {}         # ARGs before FROM: for FROM, and as defaults
        total = len(steps)
        lock = self.cache.hold()        # no pruning of the cache meanwhile
        try:
            for i, (lineno, instr, rest) in enumerate(steps, 1):
                self.say("Step %d/%d : %s %s" % (i, total, instr, rest))
                self.do(lineno, instr, rest, globals_)
            if self.labels:
                labels = dict(self.cfg.get("Labels") or {})
                labels.update(self.labels)
                self.cfg["Labels"] = labels
                self.dirty = True
                self.materialize(NOP + "LABEL " + " ".join(
                    "%s=%s" % kv for kv in sorted(self.labels.items())))
            self.materialize()
            final = self.image_id
            for tag in self.tags:
                self.store.tag(final, tag)
        finally:
            try:
                self.cleanup(lock)
            finally:
                os.close(lock)
        self.say("Successfully built %s" % final[7:19])
        for tag in self.tags:
            self.say("Successfully tagged %s" % tag)
        return final

    def do(self, lineno, instr, rest, globals_):
        """One instruction (of the Dockerfile, or an ONBUILD trigger) and
        its image."""
        self.hit = False
        self.step(lineno, instr, rest, globals_)
        if instr in METADATA:
            self.dirty = True
            self.materialize(NOP + "%s %s" % (instr, rest))
        if self.hit:
            self.say(" ---> Using cache")
        if self.image_id is not None:
            self.say(" ---> %s" % self.image_id[7:19])
        if instr == "FROM":
            self.triggers(lineno, globals_)

    def triggers(self, lineno, globals_):
        """Docker's ONBUILD: the new stage's image's triggers run now, as
        if written right after its FROM; the stage's image keeps none (they
        are not passed on to images built from it)."""
        triggers = self.cfg.get("OnBuild") or []
        if not triggers:
            return
        self.cfg["OnBuild"] = None
        self.dirty = True
        self.say("# Executing %d build trigger%s" % (len(triggers),
                                                    "s" if len(triggers) > 1 else ""))
        for text in triggers:
            for _, instr, rest in parse(text):
                check_trigger(lineno, instr)
                self.say(" ---> Trigger: %s %s" % (instr, rest))
                self.do(lineno, instr, rest, globals_)

    def step(self, lineno, instr, rest, globals_):
        env = dict(self.args)
        env.update(_env_dict(self.cfg.get("Env") or []))
        if instr == "FROM":
            return self.from_(expand(rest, dict(platform_args(self.platform), **globals_)))
        if instr == "ARG":
            name, eq, default = rest.partition("=")
            name = name.strip()
            auto = platform_args(self.platform).get(name)   # BuildKit's TARGETARCH, ...
            if self.image_id is None:
                value = self.build_args.get(name, expand(default, globals_) if eq else auto)
                if value is not None:
                    globals_[name] = value
                return None
            value = self.build_args.get(name, globals_.get(name, auto) if not eq
                                        else expand(default, env))
            if value is not None:
                self.args[name] = value
            return None
        if instr == "RUN":
            return self.run_step(rest)
        if instr in ("COPY", "ADD"):
            return self.copy_step(instr, rest, env)
        if instr == "SHELL":
            form = archive._exec_form(rest, shell=False)
            if not rest.startswith("["):
                raise BuildError("line %d: SHELL takes a JSON array" % lineno,
                                 hint='e.g. SHELL ["/bin/bash", "-c"]')
            self.cfg["Shell"] = form
            self.dirty = True
            return None
        if instr == "MAINTAINER":
            self.author = rest
            return None
        if instr in ("CMD", "ENTRYPOINT"):
            form, _ = _json_or_shell(rest, self.cfg.get("Shell") or ["/bin/sh", "-c"])
            if instr == "ENTRYPOINT":
                self.cfg["Entrypoint"] = form
                if not self.cmd_set:
                    self.cfg["Cmd"] = None     # an inherited CMD goes with a new ENTRYPOINT
            else:
                self.cfg["Cmd"] = form
                self.cmd_set = True
            return None
        if instr == "ONBUILD":
            trigger = parse(rest)
            if len(trigger) != 1:
                raise BuildError("line %d: ONBUILD takes one instruction" % lineno)
            check_trigger(lineno, trigger[0][1])
        if instr in ("ENV", "LABEL", "WORKDIR", "USER", "EXPOSE", "VOLUME", "STOPSIGNAL",
                     "ONBUILD"):
            value = rest if instr == "ONBUILD" else expand(rest, env)
            if instr in ("ENV", "LABEL"):
                value = " ".join(_quote_pairs(rest, env))
            archive.apply_changes(self.cfg, ["%s %s" % (instr, value)])
            return None
        if instr == "HEALTHCHECK":
            from ..container import health
            try:
                self.cfg["Healthcheck"] = health.from_dockerfile(expand(rest, env))
            except UsageError as exc:
                raise BuildError("line %d: %s" % (lineno, exc.message), hint=exc.hint) from None
            return None
        raise BuildError("line %d: unknown instruction: %s" % (lineno, instr),
                         hint="see the Dockerfile reference")

    def from_(self, ref):
        """A new stage: the one before (if any) is kept for FROM NAME and
        COPY --from=NAME (by its name or its index)."""
        words = ref.split()
        plat = self.platform
        while words and words[0].startswith("--platform="):
            from .pull import parse_platform
            try:
                plat = parse_platform(words.pop(0)[11:])
            except UsageError as exc:
                raise BuildError("FROM --platform: " + exc.message, hint=exc.hint) from None
        if len(words) == 3 and words[1].upper() == "AS":
            stage_name = words[2].lower()
        elif len(words) == 1:
            stage_name = None
        else:
            raise BuildError("FROM takes an image (and AS NAME): %r" % ref)
        if self.image_id is not None:
            self.end_stage()
        self.cmd_set = False
        self.author = None
        self.dirty = False
        self.args = {}
        self.stage_name = stage_name
        self.stage_platform = plat
        self.image_id = self.source_image(words[0])
        self.key = key("FROM", self.image_id)
        self.hit = False            # (FROM scratch: not a step of its own)
        self.cfg = dict(self.store.config(self.image_id).get("config") or {})

    def end_stage(self):
        self.materialize()
        self.stages.append(self.image_id)
        if self.stage_name:
            self.named[self.stage_name] = self.image_id

    def source_image(self, name):
        """A stage's image (by name or index), scratch, or an image of the
        store (pulled when missing)."""
        if name.lower() in self.named:
            return self.named[name.lower()]
        if name.isdigit():
            if int(name) >= len(self.stages):
                raise BuildError("no build stage %s before this one" % name)
            return self.stages[int(name)]
        if name == "scratch":
            return self.scratch()
        from .store import ImageNotFound
        from ..commands.registry import pull_for_run
        plat = self.stage_platform
        # Another platform's: that platform's image (a stored one of
        # another platform counts as missing, as for `run --platform`).
        other = platforms.text(*plat) if plat != host_platform() else None
        if self.pull:
            if (name, other) not in self.pulled:
                self.pulled[name, other] = pull_for_run(self.paths, name, missing=False,
                                                        quiet=self.quiet, platform=other)
            return self.pulled[name, other]
        try:
            image_id = self.store.lookup(name)
            if other is None or _is_for(self.store.config(image_id), plat):
                return image_id
        except ImageNotFound:
            pass
        return pull_for_run(self.paths, name, platform=other)

    def scratch(self):
        os_, arch, variant = self.stage_platform
        k = key("FROM", "scratch") if self.stage_platform == host_platform() else \
            key("FROM", "scratch", os_, arch, variant or "")
        cached = self.cached(k)
        if cached:
            return cached
        config = {"architecture": arch, "os": os_, "config": {},
                  "created": archive.now_rfc3339(),
                  "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
        if variant:
            config["variant"] = variant
        data = json.dumps(config, separators=(",", ":")).encode()
        image_id, _ = self.store.add_image(data, [], archive.docker_manifest(data, []))
        self.remember(k, image_id)
        return image_id

    # -- the build cache ----------------------------------------------------
    def cached(self, k):
        """The image cached for key ``k`` (None: not there, or --no-cache)."""
        image_id = self.cache.get(self.store, k) if self.use_cache else None
        if image_id:
            self.hit = True
        return image_id

    def remember(self, k, image_id):
        old = self.cache.get(self.store, k)
        if old and old != image_id:
            self.replaced.append(old)
        self.cache.put(k, image_id)

    def materialize(self, created_by=None):
        """The config changed since the last image: an image with the same
        layers and the new config."""
        if not self.dirty:
            return
        k = key(self.key, "config", json.dumps(self.cfg, sort_keys=True), created_by or "",
                self.author or "")
        self.dirty = False
        cached = self.cached(k)
        if cached:
            self.image_id, self.key = cached, k
            return
        parent = self.store.config(self.image_id)
        config = dict(parent)
        config["config"] = dict(self.cfg)
        created = archive.now_rfc3339()
        config["created"] = created
        if self.author:
            config["author"] = self.author
        config["history"] = list(parent.get("history") or []) + [
            {"created": created, "created_by": created_by or NOP + "config",
             "empty_layer": True}]
        data = json.dumps(config, separators=(",", ":")).encode()
        pm = self.store.manifest(self.image_id)
        manifest = None if pm is None else archive.docker_manifest(data, pm["layers"])
        n = len(config["rootfs"]["diff_ids"])
        self.image_id, _ = self.store.add_image(data, [None] * n, manifest)
        self.key = k
        self.remember(k, self.image_id)

    def sandbox(self, *args, **kw):
        return run_self(self.paths, *args, **kw)

    def container(self, verb, argv, materialize=True, extra=()):
        """`sandbox run` or `create` of the image so far -> the container's
        id; ``extra``: more flags of it (a RUN's mounts and network)."""
        if materialize:
            self.materialize()
        name = "sandbox-build-" + uuid.uuid4().hex[:12]
        self.containers.append(name)
        opts = ["--name", name, "--entrypoint", "", "--no-healthcheck"]
        for k, v in self.run_args():
            opts += ["-e", "%s=%s" % (k, v)]
        if self.network and verb == "run" and "--network" not in extra:
            opts += ["--network", self.network]
        if verb == "run":
            opts += self.run_options
        opts += list(extra)
        quiet = self.quiet
        res = self.sandbox(verb, *opts, self.image_id, *argv,
                           stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE if quiet or verb == "create" else None,
                           stderr=subprocess.PIPE if quiet else None)
        return name, res

    def run_step(self, rest):
        flags, rest = _run_flags(rest)
        first, bodies = heredocs(rest)
        shell_cmd = self.cfg.get("Shell") or ["/bin/sh", "-c"]
        if bodies and first.startswith("<<") and len(bodies) == 1:
            # RUN <<EOF: the document is the script (with a #! line: its
            # own interpreter, from a file that goes again at the end).
            body = next(iter(bodies.values()))
            if body.startswith("#!"):
                body = ('f=$(mktemp) && cat > "$f" <<\'SANDBOX_HEREDOC\'\n%s'
                        'SANDBOX_HEREDOC\nchmod +x "$f"; "$f"; rc=$?; rm -f "$f"; exit $rc'
                        % body)
            argv, shell = list(shell_cmd) + [body], True
        else:
            argv, shell = _json_or_shell(rest, shell_cmd)
        network = flags.get("network", [self.network])[-1]
        if network not in (None, "default", "none", "host"):
            raise BuildError("RUN --network=%s: not supported" % network,
                             hint="default, none or host")
        self.materialize()
        self.hit = False
        mounts = []
        for text in flags.get("mount", []):
            mounts.append(RunMount.parse(text, sum(m.type == "ssh" for m in mounts)))
        temps = []
        try:
            keys = []
            for m in mounts:
                m.prepare(self, temps)
                keys.append(m.key)
            k = key(self.key, "RUN", json.dumps(argv), json.dumps(self.run_args()),
                    json.dumps(keys), "" if network in (None, "default") else network)
            if self.use_cached(k):
                return
            opts = [o for m in mounts for o in m.options]
            agents = [m.target for m in mounts if m.type == "ssh" and m.target]
            if agents:
                opts += ["-e", "SSH_AUTH_SOCK=" + agents[0]]      # BuildKit's
            if network not in (None, "default"):
                opts += ["--network", network]
            made = self.missing_paths([m.target for m in mounts if m.target])
            name, res = self.container("run", argv, extra=opts)
            if res.returncode != 0:
                if self.quiet:
                    sys.stderr.write((res.stdout or b"").decode(errors="replace") +
                                     (res.stderr or b"").decode(errors="replace"))
                shown = " ".join(argv) if not shell else "%s %s" % (" ".join(argv[:-1]),
                                                                     argv[-1])
                raise BuildError("The command '%s' returned a non-zero code: %d"
                                 % (shown, res.returncode))
            self.remove_mountpoints(name, made)
            self.commit(name, ("/bin/sh -c " + rest) if shell else json.dumps(argv), k)
        finally:
            import shutil
            for d in temps:
                shutil.rmtree(d, ignore_errors=True)

    def missing_paths(self, targets):
        """The mount targets, and the directories above them, that the image
        so far lacks (the container makes them as mount points), deepest
        first."""
        layers = self.store.layer_dirs(self.image_id)
        out = set()
        for t in targets:
            rel = posixpath.normpath(t).lstrip("/")
            out.update(p for p, kind in lookup_paths(layers, rel).items() if kind is None)
        return sorted(out, key=lambda p: -p.count("/"))

    def remove_mountpoints(self, name, made):
        """A RUN's mount points are not part of its layer (an empty secret
        file, a cache directory): removed from the container's writable
        layer if they are still empty there."""
        if not made:
            return
        from ..container import state
        from ..userns import run_in_userns
        cid = state.resolve(self.paths, name)
        st = state.read_state(self.paths, cid)
        top = os.path.join(self.paths.container(cid),
                           "rootfs" if st.get("Driver") == "vfs" else "upper")
        run_in_userns(_remove_empty, top, made)

    def use_cached(self, k):
        cached = self.cached(k)
        if cached:
            self.image_id, self.key = cached, k
        return bool(cached)

    def run_args(self):
        """The build args a RUN gets as environment variables (ENV wins
        over ARG, as in Docker)."""
        image_env = _env_dict(self.cfg.get("Env") or [])
        return sorted((k, v) for k, v in self.args.items() if k not in image_env)

    def commit(self, name, created_by, k):
        from ..container import commit, state
        cid = state.resolve(self.paths, name)
        st = state.refresh(self.paths, cid)
        cfg = dict(self.cfg)
        self.image_id = commit.commit(self.paths, cid, st, config=cfg,
                                      created_by=created_by, author=self.author)
        self.key = k
        self.remember(k, self.image_id)
        self.sandbox("rm", "-f", name, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.containers.remove(name)

    def copy_step(self, instr, rest, env):
        rest, bodies = heredocs(rest)
        words = archive._exec_form(rest, shell=False)     # JSON or words
        chown = chmod = source = checksum = None
        while words and words[0].startswith("--"):
            flag = words.pop(0)
            if flag.startswith("--chown="):
                chown = expand(flag[8:], env)
            elif flag.startswith("--from=") and instr == "COPY":
                source = expand(flag[7:], env)
            elif flag.startswith("--chmod="):
                chmod = _octal_mode(expand(flag[8:], env), instr)
            elif flag in ("--link", "--link=true", "--link=false"):
                pass            # BuildKit's layer trick: the same files here
            elif flag.startswith("--checksum=") and instr == "ADD":
                checksum = expand(flag[11:], env)
                if not re.fullmatch(r"sha256:[0-9a-f]{64}", checksum):
                    raise BuildError("ADD --checksum=%s: not sha256:HEX" % checksum)
            else:
                raise BuildError("unknown flag %s for %s" % (flag, instr))
        words = [expand(w, env) for w in words]
        if len(words) < 2:
            raise BuildError("%s needs a source and a destination" % instr,
                             hint="%s SRC... DEST" % instr)
        sources, dest = words[:-1], words[-1]
        names_dir = dest.endswith("/") or dest == "." or dest.endswith("/.")
        if not dest.startswith("/"):
            dest = posixpath.join(self.cfg.get("WorkingDir") or "/", dest)
        found = []
        staging = k = None
        self.materialize()
        self.hit = False
        if source is not None:
            # Keyed by the image the files come from (its id says all).
            image_id = self.source_image(source)
            k = key(self.key, instr, _copy_words(sources, dest, chown, chmod), "from",
                    image_id)
            if self.use_cached(k):
                return
            staging = self.from_image(image_id, source, sources)
            for i, src in enumerate(sources):
                got = os.path.join(staging, str(i))
                # cp put SRC in as its own name; "/" came as its contents.
                found.append(got if _stage_path(src) == "/"
                             else os.path.join(got, os.listdir(got)[0]))
        try:
            for i, src in enumerate(sources if source is None else ()):
                doc = HEREDOC.fullmatch(src)
                if doc:
                    # COPY <<NAME: a file NAME holding the document
                    # (variables expanded unless the word was quoted).
                    staging = staging or self.staging_dir()
                    os.makedirs(os.path.join(staging, "doc-%d" % i))
                    path = os.path.join(staging, "doc-%d" % i, doc.group(3))
                    body = bodies[doc.group(3)]
                    with open(path, "w") as f:
                        f.write(body if doc.group(2) else expand(body, env))
                    os.chmod(path, 0o644)
                    found.append(path)
                    self.not_archives.add(path)
                elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", src):
                    if instr != "ADD" or not src.lower().startswith(("http://", "https://")):
                        raise BuildError("%s failed: source can't be a URL for %s: %s"
                                         % (instr, instr, src),
                                         hint="ADD takes http:// and https:// URLs")
                    staging = staging or self.staging_dir()
                    found.append(download(src, os.path.join(staging, "url-%d" % i)))
                    self.not_archives.add(found[-1])
                    if checksum:
                        _check_digest(found[-1], checksum, src)
                else:
                    found += self.context_matches(src, instr)
            self.place(instr, found, dest, names_dir, (chown, chmod), sources,
                       self.context if source is None else staging,
                       self.patterns if source is None else [], k)
        finally:
            if staging is not None:
                import shutil
                shutil.rmtree(staging, ignore_errors=True)

    def staging_dir(self):
        return staging_dir(self.paths)

    def place(self, instr, found, dest, names_dir, owner_mode, sources, base, patterns, k):
        """Write ``found`` (host paths below ``base``, less what
        ``patterns`` exclude) at ``dest`` in a container of the image so
        far, owned and moded as ``owner_mode`` says (--chown, --chmod), and
        commit it.  ``k``: the step's cache key; None: the key is made
        here, of the step's words and the tar's digest (the files are read twice on
        a miss, once to hash, once to copy)."""
        as_dir = names_dir or len(found) > 1 or any(
            os.path.isdir(p) and not os.path.islink(p) for p in found)
        rel_dest = posixpath.normpath(dest).lstrip("/")
        if rel_dest == ".":
            rel_dest = ""
        self.materialize()
        layers = self.store.layer_dirs(self.image_id)
        info = lookup_paths(layers, rel_dest)
        if info.get(rel_dest) == "dir":
            as_dir = True
        chown, chmod = owner_mode
        owner = (0, 0)
        if chown:
            from ..container.spec import resolve_user
            user, _ = resolve_user(chown, layers)
            owner = user["uid"], user["gid"]
        missing = {p for p, kind in info.items() if kind is None}

        def produce(out, mtimes=True):
            # Streamed into the container as it is read from the context.
            placer = Placer(out, owner, missing, mtimes, chmod)
            for host in found:
                if os.path.isdir(host) and not os.path.islink(host):
                    placer.add_tree(host, rel_dest, base, patterns)
                elif instr == "ADD" and host.endswith(ARCHIVE_SUFFIXES) and \
                        host not in self.not_archives and tarfile.is_tarfile(host):
                    placer.add_archive(host, rel_dest)
                else:
                    target = posixpath.join(rel_dest, os.path.basename(host)) if as_dir \
                        else rel_dest
                    placer.add_path(host, target)
            placer.close()
        if k is None:
            digest = _Digest()
            produce(digest, mtimes=False)
            k = key(self.key, instr, _copy_words(sources, dest, chown, chmod),
                    digest.hexdigest())
            if self.use_cached(k):
                return
        name, res = self.container("create", ["true"])
        if res.returncode != 0:
            raise BuildError("cannot create the container for %s: %s"
                             % (instr, (res.stderr or b"").decode(errors="replace").strip()))
        from ..commands.cp import copy_produced_in
        from ..container import state
        cid = state.resolve(self.paths, name)
        copy_produced_in(self.paths, cid, state.refresh(self.paths, cid), name, produce, "/")
        self.commit(name, NOP + "%s %s in %s" % (instr, " ".join(sources), dest), k)

    def from_image(self, image_id, source, sources):
        """COPY --from: each source path of the stage or image ``source``
        copied out (as `cp` does, from a created container of it) into
        STAGING/INDEX/ on the host; returns STAGING.  Owners become root or
        --chown, as for the context's files."""
        from ..commands.cp import copy_out
        from ..container import state
        saved, self.image_id = self.image_id, image_id
        try:
            name, res = self.container("create", ["true"], materialize=False)
        finally:
            self.image_id = saved
        if res.returncode != 0:
            raise BuildError("cannot read stage %s: %s"
                             % (source, (res.stderr or b"").decode(errors="replace").strip()))
        staging = self.staging_dir()
        try:
            cid = state.resolve(self.paths, name)
            st = state.refresh(self.paths, cid)
            for i, src in enumerate(sources):
                os.mkdir(os.path.join(staging, str(i)))
                path = _stage_path(src)
                try:
                    copy_out(self.paths, cid, st, name, path, os.path.join(staging, str(i)),
                             False)
                except SandboxError as exc:
                    text = exc.message
                    if text.startswith("Could not find the file"):
                        text = "%s: no such file or directory" % path
                    raise BuildError("COPY --from=%s failed: %s" % (source, text)) from None
        except BaseException:
            import shutil
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            self.sandbox("rm", "-f", name, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.containers.remove(name)
        return staging

    def context_matches(self, src, instr):
        """Context paths for a COPY source (wildcards allowed), never
        outside the context."""
        import glob
        rel = posixpath.normpath(src.lstrip("/"))
        if rel == ".." or rel.startswith("../"):
            raise BuildError("%s failed: forbidden path outside the build context: %s"
                             % (instr, src))
        pattern = os.path.join(self.context, rel)
        paths = sorted(glob.glob(pattern)) if any(c in rel for c in "*?[") else \
            ([pattern] if os.path.lexists(pattern) else [])
        context = os.path.realpath(self.context)
        out = []
        for p in paths:
            relp = os.path.relpath(p, self.context)
            if relp != "." and ignored(relp, self.patterns):
                continue
            real = os.path.realpath(p)
            if real != context and not real.startswith(context + os.sep):
                raise BuildError("%s failed: forbidden path outside the build context: %s"
                                 % (instr, src))
            out.append(p)
        if not out:
            raise BuildError("%s failed: file not found in build context or excluded by "
                             ".dockerignore: %s" % (instr, src))
        return out

    def cleanup(self, lock):
        """The build's containers; the images whose cache entries this
        build took over (--no-cache), when nothing else holds them (a name,
        another entry, a container, another build running now: ``lock``,
        our shared hold of the cache, cannot become exclusive); then what
        only they used (store gc)."""
        import fcntl
        for name in list(self.containers):
            self.sandbox("rm", "-f", name, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not self.replaced:
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return      # another build may be using them: `image prune` takes them later
        from ..commands.image_admin import containers_by_image
        try:
            keep = set(self.cache.entries().values()) | set(containers_by_image(self.paths))
            for image_id in self.replaced:
                if image_id not in keep and not self.store.names(image_id):
                    self.store.delete_image(image_id)
            self.store.gc()
        except SandboxError:
            pass


def _copy_words(sources, dest, chown, chmod):
    """What a COPY/ADD step's cache key takes of its words."""
    return json.dumps([sources, dest, chown, chmod])


def _run_flags(rest):
    """RUN's BuildKit flags (--mount=..., --network=..., --security=...)
    before the command -> ({name: [values]}, the command)."""
    flags = {}
    while rest.startswith("--"):
        word, _, tail = rest.partition(" ")
        name, eq, value = word[2:].partition("=")
        if name not in ("mount", "network") or not eq:
            raise BuildError("RUN: unknown flag %s" % word,
                             hint="RUN takes --mount=... and --network=...")
        flags.setdefault(name, []).append(value)
        rest = tail.lstrip(" ")
    return flags, rest


def _remove_empty(top, rels):
    """(in the user namespace) Remove each path below ``top`` that is an
    empty file or an empty directory."""
    for rel in rels:
        path = os.path.join(top, rel)
        try:
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(path)
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(path)
        except OSError:
            pass


class RunMount:
    """One RUN --mount (BuildKit's): type=cache (a volume of the user's
    that outlives the build, `builder prune` removes it), bind (from the
    context, read-only unless rw, when a copy is bound; or from= a stage or
    image), tmpfs, secret (a file given with build --secret, read-only, in
    no layer and no cache key), ssh (the agent socket given with build
    --ssh, bound at /run/buildkit/ssh_agent.N, SSH_AUTH_SOCK set)."""

    KEYS = {"type", "target", "dst", "destination", "source", "src", "from", "id",
            "ro", "readonly", "rw", "readwrite", "uid", "gid", "mode", "sharing",
            "required", "size"}

    def __init__(self, fields):
        self.f = fields
        self.type = fields.get("type", "bind")
        self.target = fields.get("target") or fields.get("dst") or fields.get("destination")
        self.options = []
        self.key = None

    @classmethod
    def parse(cls, text, ssh_index=0):
        """``ssh_index``: how many ssh mounts the RUN had before this one."""
        fields = {}
        for item in text.split(","):
            k, eq, v = item.partition("=")
            k = k.strip().lower()
            if k not in cls.KEYS:
                raise BuildError("RUN --mount: unknown field %r" % k,
                                 hint="type=cache|bind|tmpfs|secret,target=PATH,...")
            fields[k] = v if eq else "true"
        m = cls(fields)
        if m.type not in ("cache", "bind", "tmpfs", "secret", "ssh"):
            raise BuildError("RUN --mount type=%s is not supported" % m.type,
                             hint="cache, bind, tmpfs, secret or ssh")
        if m.type == "secret" and not m.target:
            m.target = "/run/secrets/" + fields.get("id", "")
        if m.type == "ssh" and not m.target:
            m.target = "/run/buildkit/ssh_agent.%d" % ssh_index
        if m.type == "ssh" and "id" not in fields:
            m.f["id"] = "default"
        if not m.target or not m.target.startswith("/"):
            raise BuildError("RUN --mount needs an absolute target=",
                             hint="e.g. --mount=type=cache,target=/root/.cache")
        return m

    def absent(self, sid, message, hint):
        """A secret or SSH agent the build was not given: an error if the
        mount is required, else the RUN goes without it (and says so in its
        cache key)."""
        if self.flag("required"):
            raise BuildError(message, hint=hint)
        self.key, self.target = [self.type, sid, None], None

    def flag(self, name):
        return self.f.get(name, "false").lower() in ("true", "1", "")

    def prepare(self, builder, temps):
        """Work out the flags of `sandbox run` and the cache key part; a
        directory made for it (a copy, a stage's files) goes into
        ``temps`` (removed after the RUN)."""
        f, target = self.f, self.target
        ro = self.flag("ro") or self.flag("readonly")
        if self.type == "tmpfs":
            self.options = ["--tmpfs", target + (":size=" + f["size"] if "size" in f else "")]
            self.key = ["tmpfs", target, f.get("size")]
        elif self.type == "cache":
            cache_id = f.get("id") or target
            name = cache_volume(builder.paths, cache_id, f.get("uid"), f.get("gid"),
                                f.get("mode"))
            self.options = ["--mount", "type=volume,source=%s,target=%s,volume-nocopy%s"
                            % (name, target, ",readonly" if ro else "")]
            self.key = ["cache", cache_id, target, ro]
        elif self.type == "ssh":
            sid = f["id"]
            sock = builder.ssh.get(sid)
            if sock is None:
                self.absent(sid, "RUN --mount=type=ssh: no SSH agent %s was given" % sid,
                            "sandbox build --ssh %s (with ssh-agent running: its "
                            "$SSH_AUTH_SOCK) or --ssh %s=SOCKET" % (sid, sid))
                return
            self.options = ["--mount", "type=bind,source=%s,target=%s" % (sock, target)]
            self.key = ["ssh", sid, target]          # not the agent's keys
        elif self.type == "secret":
            sid = f.get("id") or posixpath.basename(target)
            src = builder.secrets.get(sid)
            if src is None:
                self.absent(sid, "RUN --mount=type=secret: secret %s is required but "
                            "not given" % sid, "sandbox build --secret id=%s,src=FILE" % sid)
                return
            self.options = ["--mount", "type=bind,source=%s,target=%s,readonly" % (src, target)]
            self.key = ["secret", sid, target]       # not its content
        else:
            source = f.get("source") or f.get("src") or "."
            if "from" in f:
                image_id = builder.source_image(f["from"])
                staged = builder.from_image(image_id, f["from"], [source])
                temps.append(staged)
                got = os.path.join(staged, "0")
                host = got if _stage_path(source) == "/" else \
                    os.path.join(got, os.listdir(got)[0])
                self.key = ["bind", "from", image_id, source, target, ro]
            else:
                host = builder.context_matches(source, "RUN --mount")[0]
                digest = _Digest()
                placer = Placer(digest, (0, 0), set(), mtimes=False)
                if os.path.isdir(host) and not os.path.islink(host):
                    placer.add_tree(host, "", builder.context, builder.patterns)
                else:
                    placer.add_path(host, posixpath.basename(host))
                placer.close()
                self.key = ["bind", source, target, ro, digest.hexdigest()]
                if ro or not (self.flag("rw") or self.flag("readwrite")):
                    ro = True           # the context is never written
                else:
                    # Writes to a bind mount are thrown away: to a copy.
                    import shutil
                    temps.append(builder.staging_dir())
                    copy = os.path.join(temps[-1], "bind")
                    if os.path.isdir(host):
                        shutil.copytree(host, copy, symlinks=True)
                    else:
                        shutil.copy2(host, copy)
                    host = copy
            self.options = ["--mount", "type=bind,source=%s,target=%s%s"
                            % (host, target, ",readonly" if ro else "")]


CACHE_VOLUME_PREFIX = "sandbox-buildcache-"


def cache_volume(paths, cache_id, uid=None, gid=None, mode=None):
    """The volume of a RUN --mount=type=cache (by its id), made on first
    use, owned and moded as the mount asks."""
    from ..container import volumes
    from .store import digest_of
    name = CACHE_VOLUME_PREFIX + digest_of(cache_id.encode())[7:23]
    if not volumes.exists(paths, name):
        volumes.create(paths, name, labels={"io.sandbox.build-cache": cache_id})
        if uid or gid or mode:
            from ..userns import run_in_userns
            try:
                run_in_userns(_own, volumes.data_dir(paths, name), int(uid or 0),
                              int(gid or 0), int(mode, 8) if mode else None)
            except ValueError:
                raise BuildError("RUN --mount=type=cache: uid, gid and mode are "
                                 "numbers (mode in octal)") from None
    return name


def _own(path, uid, gid, mode):
    """(in the user namespace)"""
    os.chown(path, uid, gid)
    if mode is not None:
        os.chmod(path, mode)


def _check_digest(path, checksum, url):
    from .store import _sha256
    h = _sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if "sha256:" + h.hexdigest() != checksum:
        raise BuildError("ADD failed: %s: digest mismatch: got sha256:%s, wanted %s"
                         % (url, h.hexdigest(), checksum))


def _octal_mode(text, instr):
    """--chmod's value: octal permission bits (as Docker's classic builder;
    not the symbolic forms)."""
    if not text or any(c not in "01234567" for c in text) or int(text, 8) > 0o7777:
        raise BuildError("%s --chmod=%s: not an octal mode" % (instr, text),
                         hint="e.g. --chmod=755 or --chmod=0640")
    return int(text, 8)


def download(url, where):
    """ADD of a URL: the file, fetched on the host into the directory
    ``where`` under the URL's last path component, mode 0600 and the
    server's Last-Modified as its mtime (as Docker's builder)."""
    import email.utils
    import shutil
    import urllib.error
    import urllib.parse
    import urllib.request
    name = posixpath.basename(urllib.parse.urlsplit(url).path) or "index.html"
    os.makedirs(where, exist_ok=True)
    path = os.path.join(where, name)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, \
                open(path, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
            shutil.copyfileobj(resp, out, 1 << 20)
            modified = resp.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        raise BuildError("ADD failed: GET %s: %d %s" % (url, exc.code, exc.reason)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise BuildError("ADD failed: GET %s: %s" % (url, reason)) from None
    if modified:
        try:
            t = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (t, t))
        except (TypeError, ValueError, OverflowError):
            pass
    return path


class _Digest:
    """A file object that hashes what is written to it."""

    def __init__(self):
        from .store import _sha256
        self.h = _sha256()

    def write(self, data):
        self.h.update(data)
        return len(data)

    def hexdigest(self):
        return self.h.hexdigest()


def check_trigger(lineno, instr):
    """What ONBUILD may not hold (Docker's rules)."""
    if instr == "ONBUILD":
        raise BuildError("line %d: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
                         % lineno)
    if instr in ("FROM", "MAINTAINER"):
        raise BuildError("line %d: %s isn't allowed as an ONBUILD trigger" % (lineno, instr))


def host_platform():
    from .pull import parse_platform
    return parse_platform(None)


def _is_for(config, plat):
    """Whether an image's config is for platform ``plat`` (os, arch, variant)."""
    os_, arch, variant = plat
    return config.get("os", "linux") == os_ and config.get("architecture") == arch and \
        (not variant or config.get("variant") in (None, "", variant))


def platform_args(target):
    """BuildKit's predefined platform ARGs: TARGET* the platform built for
    (--platform), BUILD* this host's."""
    out = {}
    for side, (os_, arch, variant) in (("TARGET", target), ("BUILD", host_platform())):
        out.update({side + "PLATFORM": platforms.text(os_, arch, variant),
                    side + "OS": os_, side + "ARCH": arch, side + "VARIANT": variant or ""})
    return out


def staging_dir(paths):
    """A new directory of the build's in the store's tmp ("build-PID-":
    store gc clears it if the build dies before its end)."""
    import tempfile
    os.makedirs(paths.tmp, exist_ok=True)
    return tempfile.mkdtemp(prefix="build-%d-" % os.getpid(), dir=paths.tmp)


def up_to_stage(steps, target):
    """The steps up to the end of the stage named ``target`` (--target)."""
    start = None
    for i, (_, instr, rest) in enumerate(steps):
        if instr != "FROM":
            continue
        if start is not None:
            return steps[:i]
        words = [w for w in rest.split() if not w.startswith("--platform=")]
        if len(words) == 3 and words[1].upper() == "AS" and words[2].lower() == target.lower():
            start = i
    if start is None:
        raise BuildError("failed to reach build target %s in Dockerfile" % target,
                         hint="--target names a stage: FROM IMAGE AS NAME")
    return steps


def lookup_paths(layers, rel_dest):
    """{path: "dir" | "other" | None} for ``rel_dest`` and the directories
    above it, in the image of ``layers``."""
    from ..container.layerview import LowerView
    from ..userns import run_in_userns
    chain = []
    p = rel_dest
    while p:
        chain.append(p)
        p = posixpath.dirname(p)

    def look(layers, chain):
        view = LowerView(layers)
        out = {}
        for p in chain:
            st = view.lstat(p)
            out[p] = None if st is None else ("dir" if stat.S_ISDIR(st.st_mode) else "other")
        return out
    return run_in_userns(look, layers, chain) if chain else {}


def _stage_path(src):
    """COPY --from's source, from the stage's root ("x" -> "/x")."""
    return posixpath.normpath("/" + src.lstrip("/"))


def _quote_pairs(rest, env):
    """ENV and LABEL arguments with variables expanded, each pair quoted
    again for apply_changes."""
    import shlex
    pairs = archive._pairs(rest)
    return ["%s=%s" % (k, shlex.quote(expand(v, env))) for k, v in pairs]


def parse_output(text):
    """build -o: ("local", DIR) or ("tar", FILE|"-"), as BuildKit reads
    type=local,dest=DIR / type=tar,dest=FILE, or a bare path (a
    directory; "-": a tar on stdout)."""
    if "=" not in text:
        return ("tar", "-") if text == "-" else ("local", text)
    fields = {}
    for item in text.split(","):
        k, eq, v = item.partition("=")
        if not eq:
            raise UsageError("invalid --output %r" % text,
                             hint="type=local,dest=DIR or type=tar,dest=FILE")
        fields[k.strip()] = v.strip()
    kind = fields.pop("type", "local")
    dest = fields.pop("dest", None)
    if kind not in ("local", "tar") or not dest or fields:
        raise UsageError("invalid --output %r" % text,
                         hint="type=local,dest=DIR or type=tar,dest=FILE (the image "
                              "itself is always stored: registry and docker types "
                              "are -t with --push, or nothing)")
    return kind, dest


def export_image(paths, image_id, kind, dest):
    """build -o: the image's files into the directory ``dest`` (as `cp
    CTR:/. DEST`: yours, symlinks kept, nothing written outside) or as a
    tar archive (as `export`), through a container that never runs."""
    name = "sandbox-build-" + uuid.uuid4().hex[:12]
    made = run_self(paths, "create", "--name", name, "--entrypoint", "",
                    "--network", "none", image_id, "true",
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if made.returncode != 0:
        raise BuildError("--output: %s" % made.stderr.decode(errors="replace").strip())
    try:
        if kind == "local":
            os.makedirs(dest, exist_ok=True)
            res = run_self(paths, "cp", name + ":/.", dest, stderr=subprocess.PIPE)
        else:
            res = run_self(paths, *(["export", "-o", dest, name] if dest != "-"
                                    else ["export", name]), stderr=subprocess.PIPE)
        if res.returncode != 0:
            raise BuildError("--output %s: %s" % (
                dest, res.stderr.decode(errors="replace").strip()))
    finally:
        run_self(paths, "rm", "-f", name, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)


def run_self(paths, *args, **kw):
    """`sandbox ARGS` as a child process (subprocess.run's ``kw``), with
    this store: its place and driver go along (--root, --runroot;
    --storage-driver through SANDBOX_STORAGE_DRIVER)."""
    from ..container.monitor import self_argv
    return subprocess.run(self_argv(paths, *args), **kw)


def build(paths, context, dockerfile=None, **kw):
    """``context`` "-": the Dockerfile comes on stdin and there is no
    context (as `docker build - < Dockerfile`); ``dockerfile`` "-": the
    Dockerfile on stdin, the context a directory."""
    if context == "-" or dockerfile == "-":
        data = sys.stdin.buffer.read()
        if data[:2] == b"\x1f\x8b" or data[257:262] == b"ustar":
            raise UsageError("a tar archive on stdin as the build context is not supported",
                             hint="extract it and give its directory: sandbox build DIR")
        kw["dockerfile_text"] = data.decode(errors="replace")
        dockerfile = "-"
    if context == "-":
        import shutil
        empty = staging_dir(paths)
        try:
            return Builder(paths, empty, "-", **kw).run()
        finally:
            shutil.rmtree(empty, ignore_errors=True)
    if not os.path.isdir(context):
        raise UsageError("unable to prepare context: %s is not a directory" % context,
                         hint="sandbox build [-t NAME] DIR (the directory holds the Dockerfile)")
    dockerfile = dockerfile or os.path.join(context, "Dockerfile")
    if dockerfile != "-" and not os.path.isabs(dockerfile) and not os.path.exists(dockerfile):
        dockerfile = os.path.join(context, dockerfile)
    return Builder(paths, context, dockerfile, **kw).run()
