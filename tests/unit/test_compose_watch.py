"""compose watch's rules (compose/watch.py): what counts as a change of a
rule (its ignore and include lists, the build context's .dockerignore,
.git, editors' scratch files), what a batch of changes asks for, and the
errors in develop.watch, on real files in a temporary project."""

import os
import time

import pytest

from helpers.compose import project, watch
from helpers.compose.project import ComposeError


def make(tmp_path, develop, extra=""):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    build: .\n" + extra + "    develop:\n      watch:\n" +
        "".join("        - " + item + "\n" for item in develop))
    return project.load(workdir=str(tmp_path))


def files(root, names):
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(name)


def test_what_a_sync_rule_counts(tmp_path):
    (tmp_path / ".dockerignore").write_text("src/secret*\n")
    p = make(tmp_path, ["{action: sync, path: ./src, target: /app, ignore: ['*.log', 'cache/']}"])
    files(str(tmp_path / "src"), ["a.py", "pkg/b.py", "x.log", "cache/c", ".git/HEAD",
                                  "secret.txt", "a.py.swp", "notes~"])
    rule, = watch.rules_of(p, ["web"])
    assert sorted(rule.scan()) == ["a.py", "pkg/b.py"]
    assert rule.container_path("pkg/b.py") == "/app/pkg/b.py"


def test_include_and_a_single_file(tmp_path):
    p = make(tmp_path, ["{action: sync+restart, path: ./src, target: /app, include: ['**/*.py']}",
                        "{action: rebuild, path: requirements.txt}"])
    files(str(tmp_path / "src"), ["a.py", "b.txt", "sub/c.py"])
    files(str(tmp_path), ["requirements.txt"])
    sync, rebuild = watch.rules_of(p, ["web"])
    assert sorted(sync.scan()) == ["a.py", "sub/c.py"]
    assert list(rebuild.scan()) == [""]


def test_changes_and_a_batch(tmp_path):
    p = make(tmp_path, ["{action: sync+exec, path: ./src, target: /app, "
                        "exec: {command: make}}", "{action: rebuild, path: Dockerfile}"])
    files(str(tmp_path / "src"), ["a", "b"])
    files(str(tmp_path), ["Dockerfile"])
    sync, rebuild = watch.rules_of(p, ["web"])
    for rule in (sync, rebuild):
        rule.changes()
    os.unlink(str(tmp_path / "src" / "b"))
    files(str(tmp_path / "src"), ["c"])
    with open(str(tmp_path / "src" / "a"), "a") as f:
        f.write("more")
    changed, removed = sync.changes()
    assert (changed, removed) == ({"a", "c"}, {"b"})
    assert sync.changes() == (set(), set())
    batch = watch.Batch()
    batch.add(sync, changed, removed)
    assert batch.copy["web"] == {"/app/a": str(tmp_path / "src" / "a"),
                                 "/app/c": str(tmp_path / "src" / "c")}
    assert batch.delete["web"] == {"/app/b"} and batch.count["web"] == 3
    assert batch.execs["web"] == [{"command": "make"}] and not batch.rebuild
    batch.add(rebuild, {""}, set())
    assert batch.rebuild == {"web"}


def test_a_path_shared_by_a_bind_mount_is_flagged(tmp_path):
    p = make(tmp_path, ["{action: sync, path: ./src/app, target: /app}"],
             extra="    volumes: ['./src:/src']\n")
    rule, = watch.rules_of(p, ["web"])
    assert rule.shared


@pytest.mark.parametrize("item, message", [
    ("{action: copy, path: .}", "action 'copy' is not one of"),
    ("{action: sync, path: ., target: app}", "needs an absolute target"),
    ("{action: sync+exec, path: ., target: /a}", "needs exec.command"),
    ("{action: sync, target: /a}", "needs a path"),
    ("{action: sync, path: ., target: /a, when: now}", "unknown key when"),
])
def test_errors(tmp_path, item, message):
    p = make(tmp_path, [item])
    with pytest.raises(ComposeError, match=message):
        watch.rules_of(p, ["web"])


def test_inotify_wakes_the_watch(tmp_path):
    wake = watch.Wake()
    assert wake.fd is not None
    try:
        sub = tmp_path / "d"
        sub.mkdir()
        wake.add([str(tmp_path), str(sub)])
        assert wake.wait(0.05) is False
        (sub / "f").write_text("x")
        assert wake.wait(5) is True
        assert wake.wait(0.05) is False             # drained
    finally:
        wake.close()


def test_poll_hands_over_one_batch_per_quiet_moment(tmp_path):
    import threading
    p = make(tmp_path, ["{action: sync, path: ./src, target: /app}"])
    files(str(tmp_path / "src"), ["a"])
    rules = watch.rules_of(p, ["web"])
    batches, done = [], threading.Event()

    def on_batch(batch):
        batches.append(batch)
        done.set()
    t = threading.Thread(target=watch.poll, args=(rules, on_batch),
                         kwargs={"stop": lambda: len(batches) >= 1}, daemon=True)
    t.start()
    time.sleep(0.3)                 # (poll has taken its first look)
    files(str(tmp_path / "src"), ["b", "sub/c"])
    assert done.wait(20)
    t.join(20)
    assert batches[0].copy["web"] == {"/app/b": str(tmp_path / "src" / "b"),
                                      "/app/sub/c": str(tmp_path / "src" / "sub" / "c")}
