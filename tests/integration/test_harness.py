"""The harness itself: commands run unprivileged, in a clean environment,
with a store of their own; and smoke tests that scripts/test also runs
against the frozen binary (marker `binary`)."""

import os
import pwd

import pytest


def test_runs_as_the_unprivileged_test_user(sb, test_user):
    result = sb.run_raw(["id", "-u"])
    assert result.returncode == 0, result.stderr
    uid = int(result.stdout)
    assert uid != 0
    assert uid == pwd.getpwnam(test_user).pw_uid == sb.uid
    # No capabilities left over from root.
    status = sb.run_raw(["grep", "^CapEff:", "/proc/self/status"]).stdout
    assert status.split()[1] == "0000000000000000", status


def test_environment_is_clean(sb):
    env = dict(line.split("=", 1) for line in sb.run_raw(["env"]).stdout.splitlines())
    assert env["HOME"] == sb.home
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    assert env["LANG"] == "C.UTF-8"
    assert env["SANDBOX_ROOT"] == sb.root
    assert env["SANDBOX_RUNROOT"] == sb.runroot
    assert "XDG_RUNTIME_DIR" not in env
    assert not any(k.startswith(("PYTEST", "SANDBOX_TEST", "PYTHON")) for k in env), env


def test_store_belongs_to_the_user(sb):
    for path in (sb.root, sb.runroot):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (sb.uid, sb.gid)
        assert path.startswith("/var/tmp/sandbox-tests/")
    assert sb.run_raw(["touch", os.path.join(sb.root, "probe")]).returncode == 0


def test_fresh_sb_has_its_own_store(sb, fresh_sb):
    assert fresh_sb.root != sb.root
    assert os.listdir(fresh_sb.root) == []


def test_other_user_gets_its_own_store(sb, nosub_user):
    result = sb.run_raw(["sh", "-c", 'id -un; echo "$SANDBOX_ROOT"'], user=nosub_user)
    assert result.returncode == 0, result.stderr
    name, root = result.stdout.split()
    assert name == nosub_user
    assert root != sb.root
    assert os.stat(root).st_uid == pwd.getpwnam(nosub_user).pw_uid


def test_nosub_user_has_no_subordinate_ids(nosub_user):
    uid = str(pwd.getpwnam(nosub_user).pw_uid)
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path) as f:
            owners = {line.split(":")[0] for line in f if ":" in line}
        assert nosub_user not in owners and uid not in owners, path


def test_test_user_has_subordinate_ids(test_user):
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path) as f:
            ranges = [line.strip().split(":") for line in f if line.startswith(test_user + ":")]
        assert ranges and int(ranges[0][2]) >= 65536, path


def test_timeout_kills_and_reports(sb):
    with pytest.raises(AssertionError, match="timed out"):
        sb.run_raw(["sleep", "30"], timeout=1)


@pytest.mark.binary
def test_cli_version(sb):
    result = sb.ok("--version")
    assert result.stdout.startswith("sandbox "), result.stdout


@pytest.mark.binary
def test_cli_help_lists_verbs(sb):
    result = sb.ok("--help")
    for verb in ("run", "images", "load"):
        assert verb in result.stdout


@pytest.mark.binary
def test_load_and_run_busybox(sb, busybox):
    """The smoke test of the whole path: load an archive, run a container."""
    result = sb.ok("run", "--rm", busybox, "sh", "-c", "echo hello from $(id -u)")
    assert result.stdout == "hello from 0\n"
