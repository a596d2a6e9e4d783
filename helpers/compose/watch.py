"""`compose watch`: the services' `develop.watch` rules (Compose
Specification, "Develop"), and the file trees they name, polled.

A rule: {action: sync | rebuild | restart | sync+restart | sync+exec,
path (a file or directory on the host, from the project directory), target
(where sync puts it in the container), ignore / include (.dockerignore
patterns, relative to path), initial_sync, exec: {command, user,
privileged, working_dir, environment}}.  As Docker Compose's, a change is
also ignored when the service's build context's .dockerignore excludes
it, when it is under .git/, or when it is an editor's scratch file; a sync
rule whose path a bind mount of the service already shares is skipped
with a warning.

What changed is found by comparing a walk of each tree (every file's
mtime, size and mode) with the last one, so nothing is lost whatever the
filesystem does.  When to walk: at once when inotify(7) says something
happened in a watched directory (Wake), and every FALLBACK seconds anyway
(NFS, FUSE and a VM's shared folders send no events; a full inotify watch
limit makes it plain polling, every POLL seconds).  Idle, a watch costs
one walk per FALLBACK; `ignore` what is large and never synced
(node_modules) all the same.
"""

import errno
import os
import posixpath
import select
import time

from .. import linux
from .project import ComposeError

ACTIONS = ("sync", "rebuild", "restart", "sync+restart", "sync+exec")
SYNCING = ("sync", "sync+restart", "sync+exec")
# Files editors write while saving (Compose's EphemeralPathMatcher's
# idea): never a change worth a sync.
SCRATCH = ("*.swp", "*.swx", "*.swpx", "*~", ".#*", "#*#", "4913", ".DS_Store",
           "*.tmp___jb_old___", "*.tmp___jb_tmp___")
POLL = 0.25             # seconds of quiet that end a batch; polling's period
FALLBACK = 2.0          # seconds between two walks when no event comes


class Rule:
    """One develop.watch entry of ``service``, checked."""

    def __init__(self, project, service, item, index):
        from ..image.build import ignore_matcher, ignore_patterns, parse_ignore
        svc = project.service(service)
        where = "service %s: develop.watch[%d]" % (service, index)
        if not isinstance(item, dict):
            raise ComposeError("%s must be a mapping" % where)
        unknown = sorted(set(item) - {"action", "path", "target", "ignore", "include",
                                      "initial_sync", "exec"} - {
                             k for k in item if str(k).startswith("x-")})
        if unknown:
            raise ComposeError("%s: unknown key %s" % (where, ", ".join(unknown)))
        self.service = service
        self.action = item.get("action")
        if self.action not in ACTIONS:
            raise ComposeError("%s: action %r is not one of %s" % (
                where, self.action, ", ".join(ACTIONS)))
        if not item.get("path"):
            raise ComposeError("%s needs a path" % where)
        self.path = os.path.normpath(os.path.join(project.workdir, os.path.expanduser(
            str(item["path"]))))
        self.target = item.get("target")
        if self.action in SYNCING and not str(self.target or "").startswith("/"):
            raise ComposeError("%s: action %s needs an absolute target" % (where, self.action))
        build = svc.get("build")
        if self.action == "rebuild" and not build:
            raise ComposeError("%s: service %s has no build section to rebuild from"
                               % (where, service))
        self.exec = item.get("exec")
        if self.action == "sync+exec" and not (self.exec or {}).get("command"):
            raise ComposeError("%s: action sync+exec needs exec.command" % where)
        self.initial_sync = bool(item.get("initial_sync")) and self.action in SYNCING
        self.ignore = ignore_matcher(parse_ignore(
            list(SCRATCH) + [str(p) for p in item.get("ignore") or []]))
        include = parse_ignore([str(p) for p in item.get("include") or []])
        self.include = ignore_matcher(include) if include else None
        # The build context's .dockerignore, for what lies in the context:
        # (its path from the context, "" for the context itself; None
        # outside it)
        context = build.get("context") if isinstance(build, dict) else None
        self.context_ignore = ignore_matcher(ignore_patterns(context)) if context else None
        self.in_context = None
        if context:
            inside = os.path.relpath(self.path, context)
            if not inside.startswith(".."):
                self.in_context = "" if inside == "." else inside
        self.shared = self.action in SYNCING and _bind_mounted(svc, self.path,
                                                               project.workdir)
        self.state = {}
        self.dirs = []          # the directories the last scan walked (Wake)

    def counts(self, rel, directory=False, above=True):
        """Whether a change to ``rel`` (relative to path; "" for the path
        itself) is this rule's (``directory``: whether to look inside it;
        `include` patterns name files).  ``above=False``: the directories
        from the path down to rel's count already (scan walks down only
        into those), so rel alone is tried."""
        if rel:
            git = ".git" in rel.split("/") if above else rel.rpartition("/")[2] == ".git"
            if git or self.ignore(rel, above):
                return False
            if self.include and not directory and not self.include(rel):
                return False
        elif self.ignore(os.path.basename(self.path)):
            return False
        if self.in_context is not None and self.context_ignore is not None:
            inside = posixpath.join(self.in_context, rel) if rel else self.in_context
            # (with above=False, the path itself still gets its full test
            # in scan, once)
            if inside and self.context_ignore(inside, above):
                return False
        return True

    def container_path(self, rel):
        return posixpath.join(self.target, rel) if rel else self.target

    def scan(self):
        """{rel: (mtime_ns, size, mode)} of the files (and links) the rule
        counts under its path; {} while the path does not exist."""
        out = {}
        # (a file is watched through its directory: editors replace it)
        self.dirs = [os.path.dirname(self.path)]
        try:
            st = os.lstat(self.path)
        except OSError:
            return out
        if not os.path.isdir(self.path):
            if self.counts(""):
                out[""] = (st.st_mtime_ns, st.st_size, st.st_mode)
            return out
        if not self.counts(""):
            return out          # (the context's .dockerignore excludes it all)
        for top, dirs, files in os.walk(self.path):
            self.dirs.append(top)
            rel_top = os.path.relpath(top, self.path)
            rel_top = "" if rel_top == "." else rel_top
            dirs[:] = [d for d in dirs
                       if self.counts(posixpath.join(rel_top, d), True, above=False)]
            for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
                rel = posixpath.join(rel_top, name)
                if not self.counts(rel, above=False):
                    continue
                try:
                    st = os.lstat(os.path.join(top, name))
                except OSError:
                    continue            # gone between the listing and the stat
                out[rel] = (st.st_mtime_ns, st.st_size, st.st_mode)
        return out

    def changes(self):
        """(changed or new, removed) rel paths since the last look."""
        now = self.scan()
        changed = {rel for rel, sig in now.items() if self.state.get(rel) != sig}
        removed = set(self.state) - set(now)
        self.state = now
        return changed, removed


def _bind_mounted(svc, path, workdir):
    for v in svc.get("volumes") or []:
        source = None
        if isinstance(v, str) and ":" in v and v[:1] in "/.~":
            source = os.path.expanduser(v.split(":", 1)[0])
        elif isinstance(v, dict) and v.get("type") == "bind":
            source = v.get("source")
        if source:
            rel = os.path.relpath(path, os.path.join(workdir, source))
            if not rel.startswith(".."):
                return True
    return False


def rules_of(project, services):
    """The develop.watch rules of ``services``; an error when none has
    one, as Docker Compose's."""
    out = []
    for name in services:
        develop = project.service(name).get("develop") or {}
        if not isinstance(develop, dict):
            raise ComposeError("service %s: develop must be a mapping" % name)
        for i, item in enumerate(develop.get("watch") or []):
            out.append(Rule(project, name, item, i))
    if not out:
        raise ComposeError("none of the selected services is configured for watch",
                           hint="give a service a develop.watch section (see the "
                                "Compose Specification's Develop)")
    return out


class Batch:
    """What one quiet moment after some changes asks for: per service,
    the files to copy in and to delete (container paths, with their host
    paths), and whether to rebuild, restart, run exec commands."""

    def __init__(self):
        self.copy = {}          # service -> {container path: host path}
        self.delete = {}        # service -> set of container paths
        self.rebuild, self.restart = set(), set()
        self.execs = {}         # service -> [exec dicts]
        self.count = {}         # service -> changes synced

    def add(self, rule, changed, removed):
        if rule.action == "rebuild":
            self.rebuild.add(rule.service)
            return
        if rule.action == "restart":
            self.restart.add(rule.service)
            return
        copy = self.copy.setdefault(rule.service, {})
        delete = self.delete.setdefault(rule.service, set())
        for rel in changed:
            copy[rule.container_path(rel)] = os.path.join(rule.path, rel) if rel else rule.path
            delete.discard(rule.container_path(rel))
        for rel in removed:
            delete.add(rule.container_path(rel))
            copy.pop(rule.container_path(rel), None)
        self.count[rule.service] = self.count.get(rule.service, 0) + len(changed) + len(removed)
        if rule.action == "sync+restart":
            self.restart.add(rule.service)
        elif rule.action == "sync+exec":
            execs = self.execs.setdefault(rule.service, [])
            if rule.exec not in execs:
                execs.append(rule.exec)

    def __bool__(self):
        return bool(self.rebuild or self.restart or any(self.count.values()))


class Wake:
    """inotify(7) on the trees' directories, as a reason to walk them
    again (the walk says what changed).  ``fd`` None: plain polling (no
    inotify, or its watch limit reached)."""

    MASK = (linux.IN_MODIFY | linux.IN_ATTRIB | linux.IN_CLOSE_WRITE | linux.IN_MOVED_FROM
            | linux.IN_MOVED_TO | linux.IN_CREATE | linux.IN_DELETE | linux.IN_DELETE_SELF
            | linux.IN_MOVE_SELF | linux.IN_ONLYDIR | linux.IN_DONT_FOLLOW)

    def __init__(self):
        self.wds = set()
        try:
            self.fd = linux.inotify_init1()
        except OSError:
            self.fd = None

    def add(self, dirs):
        """Watch ``dirs`` (every time: a directory made anew is another
        inode; one watched already costs a syscall and keeps its watch).
        Whether a watch is new: what was written into that directory
        before it sent no event."""
        new = False
        for d in dirs:
            if self.fd is None:
                return False
            try:
                wd = linux.inotify_add_watch(self.fd, d, self.MASK)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:       # fs.inotify.max_user_watches
                    self.close()
                continue
            if wd not in self.wds:
                self.wds.add(wd)
                new = True
        return new

    def wait(self, timeout):
        """Whether something happened within ``timeout`` seconds."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return False
        while True:
            try:
                if not os.read(self.fd, 65536):
                    break
            except BlockingIOError:
                break
        return True

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def poll(rules, on_batch, stop=lambda: False):
    """Walk the rules' trees when inotify says something happened (and
    every FALLBACK seconds; every POLL seconds without inotify); once
    changes have come and POLL seconds pass without more (an editor's
    save of many files is one batch), call ``on_batch(Batch)``.  Returns
    when ``stop()``."""
    wake = Wake()
    for rule in rules:
        rule.changes()                  # where we start from
        wake.add(rule.dirs)
    pending = Batch()
    walked = time.monotonic()
    again = False
    try:
        while not stop():
            # fresh: something happened (an event, even one that changed
            # nothing we list yet, such as a new directory about to be
            # filled), so the batch is not over.
            if again:
                # New directories got their watches after the walk that
                # found them (Wake.add): walk once more at once.
                fresh = look = True
            elif wake.fd is None:
                time.sleep(POLL)
                fresh, look = False, True
            else:
                fresh = wake.wait(POLL if pending else FALLBACK)
                look = fresh or time.monotonic() - walked >= FALLBACK
            again = False
            if look:
                walked = time.monotonic()
                for rule in rules:
                    changed, removed = rule.changes()
                    if wake.add(rule.dirs):
                        again = True
                    if changed or removed:
                        pending.add(rule, changed, removed)
                        fresh = True
            if pending and not fresh:
                on_batch(pending)
                pending = Batch()
    finally:
        wake.close()
