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

The trees are polled (a stat of every file, a few times a second), not
watched through inotify: the same on every filesystem (bind mounts, NFS,
a VM's shared folder), no watch limit to raise, and no state to lose;
the price is a walk of the tree per poll, so `ignore` what is large and
never synced (node_modules).
"""

import os
import posixpath
import time

from .project import ComposeError

ACTIONS = ("sync", "rebuild", "restart", "sync+restart", "sync+exec")
SYNCING = ("sync", "sync+restart", "sync+exec")
# Files editors write while saving (Compose's EphemeralPathMatcher's
# idea): never a change worth a sync.
SCRATCH = ("*.swp", "*.swx", "*.swpx", "*~", ".#*", "#*#", "4913", ".DS_Store",
           "*.tmp___jb_old___", "*.tmp___jb_tmp___")
POLL = 0.25             # seconds between two looks at the trees


class Rule:
    """One develop.watch entry of ``service``, checked."""

    def __init__(self, project, service, item, index):
        from ..image.build import ignore_patterns, parse_ignore
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
        self.ignore = parse_ignore(list(SCRATCH) + [str(p) for p in item.get("ignore") or []])
        self.include = parse_ignore([str(p) for p in item.get("include") or []])
        # The build context's .dockerignore, for what lies in the context.
        self.context = build.get("context") if isinstance(build, dict) else None
        self.context_ignore = ignore_patterns(self.context) if self.context else []
        self.shared = self.action in SYNCING and _bind_mounted(svc, self.path,
                                                               project.workdir)
        self.state = {}

    def counts(self, rel, directory=False):
        """Whether a change to ``rel`` (relative to path; "" for the path
        itself) is this rule's (``directory``: whether to look inside it;
        `include` patterns name files)."""
        from ..image.build import ignored
        if rel:
            if ".git" in rel.split("/") or ignored(rel, self.ignore):
                return False
            if self.include and not directory and not ignored(rel, self.include):
                return False
        elif ignored(os.path.basename(self.path), self.ignore):
            return False
        if self.context_ignore:
            full = os.path.join(self.path, rel) if rel else self.path
            inside = os.path.relpath(full, self.context)
            if not inside.startswith("..") and inside != "." and \
                    ignored(inside, self.context_ignore):
                return False
        return True

    def container_path(self, rel):
        return posixpath.join(self.target, rel) if rel else self.target

    def scan(self):
        """{rel: (mtime_ns, size, mode)} of the files (and links) the rule
        counts under its path; {} while the path does not exist."""
        out = {}
        try:
            st = os.lstat(self.path)
        except OSError:
            return out
        if not os.path.isdir(self.path):
            if self.counts(""):
                out[""] = (st.st_mtime_ns, st.st_size, st.st_mode)
            return out
        for top, dirs, files in os.walk(self.path):
            rel_top = os.path.relpath(top, self.path)
            rel_top = "" if rel_top == "." else rel_top
            dirs[:] = [d for d in dirs if self.counts(posixpath.join(rel_top, d), True)]
            for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
                rel = posixpath.join(rel_top, name)
                if not self.counts(rel):
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


def poll(rules, on_batch, stop=lambda: False):
    """Look at the rules' trees every POLL seconds; once changes have
    come and a look finds no more (an editor's save of many files is one
    batch), call ``on_batch(Batch)``.  Returns when ``stop()``."""
    for rule in rules:
        rule.changes()                  # where we start from
    pending = Batch()
    while not stop():
        time.sleep(POLL)
        fresh = False
        for rule in rules:
            changed, removed = rule.changes()
            if changed or removed:
                pending.add(rule, changed, removed)
                fresh = True
        if pending and not fresh:
            on_batch(pending)
            pending = Batch()
