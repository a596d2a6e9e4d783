"""Test harness: run the sandbox CLI as an unprivileged user.

pytest itself runs as root (scripts/test), because it prepares users and
directories; every `sandbox` command a test runs goes through `sb`, which
drops to the test user with setpriv and a clean environment (DESIGN.md
section 8: integration tests never run sandbox as root).

Fixtures
  test_user, nosub_user   user names ($SANDBOX_TEST_USER, default sandbox-test,
                          with a subuid range; $SANDBOX_TEST_NOSUB_USER,
                          default sandbox-nosub, without one)
  sb                      Runner, one per test module, with its own empty
                          SANDBOX_ROOT / SANDBOX_RUNROOT
  fresh_sb                Runner with its own empty store, per test
  images_dir              directory of scripts/make-test-images' output
  busybox                 "busybox", loaded into sb's store (module scope)

Runner API (see class Runner)
  sb(*args, input=None, timeout=120, user=None, env=None, cwd=None)
        -> CompletedProcess (text stdout/stderr, never raises on exit code)
  sb.ok(*args, ...)      same, but asserts exit code 0 (shows stderr)
  sb.popen(*args, user=None, env=None, cwd=None, **popen_kw) -> Popen
  sb.popen_raw(argv, user=None, env=None, **popen_kw) -> Popen of any command
  sb.argv(*args, user=None, env=None) -> full argv (for pexpect.spawn)
  sb.on_terminal(*args, timeout=30) -> (exit status, output) with stdin,
        stdout and stderr on a pseudo-terminal (pexpect), to the end
  sb.run_raw(argv, input=None, timeout=120, user=None, env=None, cwd=None)
        -> CompletedProcess of any command run as the test user, same env
  sb.env(user=None)      the environment commands get
  sb.root, sb.runroot, sb.user, sb.uid, sb.gid, sb.home, sb.cli

Environment
  SANDBOX_BIN             the CLI to test (dist/sandbox for the frozen binary);
                          default <checkout>/sandbox
  SANDBOX_TEST_IMAGES     make-test-images output (scripts/test sets it)
  SANDBOX_TEST_KEEP=1     keep the per-module data directories
"""

import os
import pwd
import shlex
import signal
import subprocess
import tempfile

import pytest

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# scripts/test gives each checkout its own directory here.
TESTS_TMP = os.environ.get("SANDBOX_TEST_TMP") or "/var/tmp/sandbox-tests"
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def cli_path():
    return os.path.abspath(os.environ.get("SANDBOX_BIN") or os.path.join(CHECKOUT, "sandbox"))


# --- markers -----------------------------------------------------------------

def pytest_collection_modifyitems(config, items):
    """tests/unit/* are `unit`, tests/integration/* are `integration`, so that
    `-m unit` and `-m "integration and not slow"` select by directory too."""
    unit_dir = os.path.join(CHECKOUT, "tests", "unit") + os.sep
    integration_dir = os.path.join(CHECKOUT, "tests", "integration") + os.sep
    for item in items:
        path = str(item.path)
        if path.startswith(unit_dir):
            item.add_marker(pytest.mark.unit)
        elif path.startswith(integration_dir):
            item.add_marker(pytest.mark.integration)


def pytest_report_header(config):
    return ["sandbox CLI: %s" % cli_path(),
            "test users: %s, %s (no subuid range)" % (
                os.environ.get("SANDBOX_TEST_USER", "sandbox-test"),
                os.environ.get("SANDBOX_TEST_NOSUB_USER", "sandbox-nosub")),
            "test images: %s" % (os.environ.get("SANDBOX_TEST_IMAGES") or "(unset)")]


# --- the runner --------------------------------------------------------------

class Account:
    """An unprivileged user the tests run as."""

    def __init__(self, name):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            pytest.skip("test user %r does not exist: run `scripts/setup-host --user %s` "
                        "(or scripts/test, which does)" % (name, name))
        if pw.pw_uid == 0:
            pytest.fail("test user %r is root: the tests must run sandbox unprivileged" % name)
        self.name, self.uid, self.gid, self.home = name, pw.pw_uid, pw.pw_gid, pw.pw_dir


def require_root():
    if os.geteuid() != 0:
        pytest.skip("integration tests run as root (to drop to the test user): "
                    "use scripts/test, or sudo the venv's pytest")


def make_data_dir(account, label):
    """A fresh directory under /var/tmp/sandbox-tests owned by the account,
    holding root/ (SANDBOX_ROOT) and run/ (SANDBOX_RUNROOT)."""
    os.makedirs(TESTS_TMP, exist_ok=True)
    os.chmod(TESTS_TMP, 0o755)
    label = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[-40:]
    path = tempfile.mkdtemp(prefix=label + "-", dir=TESTS_TMP)
    for sub in ("", "root", "run"):
        d = os.path.join(path, sub)
        os.makedirs(d, exist_ok=True)
        os.chown(d, account.uid, account.gid)
        os.chmod(d, 0o700)
    return path


def kill_leftovers(path):
    """SIGKILL, by pid, every process whose environment points into path
    (CLIs and monitors a failed test left behind, user namespace keepers),
    so that the next module and the next CI run start clean.  Containers
    die with their monitor."""
    # SANDBOX_ROOT or SANDBOX_RUNROOT inside path: a test with a store of
    # its own elsewhere (test_full_disk) still runs in this run root, and
    # its user namespace keeper must not outlive it.
    needles = (("SANDBOX_ROOT=" + path + "/").encode(),
               ("SANDBOX_RUNROOT=" + path + "/").encode())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if any(v.startswith(needles) for v in f.read().split(b"\0")):
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def remove_data_dir(path):
    kill_leftovers(path)
    if os.environ.get("SANDBOX_TEST_KEEP") == "1":
        return
    # Layers hold files owned by subordinate ids and read-only directories;
    # root removes them all.  Skip anything still mounted (a leaked container).
    subprocess.run(["rm", "-rf", "--one-file-system", path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Runner:
    """Runs the sandbox CLI (or any command) as an unprivileged user, with a
    clean environment and a store of its own.  Call it like
    ``sb("run", "--rm", "busybox", "true")``."""

    def __init__(self, user, label, env=None):
        self._default = Account(user)
        self._label = label
        self._env = dict(env or {})   # added to every command's environment
        self._dirs = {}          # user name -> data dir (one store per user)
        self.cli = cli_path()
        self.user = self._default.name
        self.uid, self.gid, self.home = self._default.uid, self._default.gid, self._default.home
        self.root = self.data_dir()[0]
        self.runroot = self.data_dir()[1]

    # -- environment --------------------------------------------------------
    def _account(self, user):
        return self._default if user is None or user == self.user else Account(user)

    def data_dir(self, user=None):
        """(SANDBOX_ROOT, SANDBOX_RUNROOT) for user (default the test user)."""
        account = self._account(user)
        if account.name not in self._dirs:
            self._dirs[account.name] = make_data_dir(account, "%s-%s" % (self._label, account.name))
        path = self._dirs[account.name]
        return os.path.join(path, "root"), os.path.join(path, "run")

    def env(self, user=None, env=None):
        account = self._account(user)
        root, runroot = self.data_dir(account.name)
        result = {
            "HOME": account.home,
            "USER": account.name,
            "LOGNAME": account.name,
            "PATH": CLEAN_PATH,
            "LANG": "C.UTF-8",
            "SANDBOX_ROOT": root,
            "SANDBOX_RUNROOT": runroot,
        }
        if os.environ.get("SANDBOX_VENV"):
            result["SANDBOX_VENV"] = os.environ["SANDBOX_VENV"]    # (helpers/deps.py)
        for key, value in {**self._env, **(env or {})}.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = str(value)
        return result

    def _wrap(self, argv, user=None, env=None):
        """argv run as the user: setpriv drops uid/gid and supplementary
        groups, env -i leaves nothing of root's environment behind."""
        account = self._account(user)
        environment = self.env(account.name, env)
        return (["setpriv", "--reuid=%d" % account.uid, "--regid=%d" % account.gid,
                 "--init-groups", "--reset-env", "--",
                 "/usr/bin/env", "-i"]
                + ["%s=%s" % kv for kv in sorted(environment.items())]
                + [str(a) for a in argv])

    def argv(self, *args, user=None, env=None):
        """The full argv of `sandbox ARGS` as the user (e.g. for pexpect)."""
        return self._wrap([self.cli, *args], user, env)

    def _cwd(self, user, cwd):
        return cwd or self.data_dir(user)[0].rsplit("/", 1)[0]

    # -- running --------------------------------------------------------------
    def run_raw(self, argv, input=None, timeout=120, user=None, env=None, cwd=None):
        """Run any command as the user; returns CompletedProcess (text)."""
        return self._run(self._wrap(argv, user, env), input, timeout, self._cwd(user, cwd))

    def __call__(self, *args, input=None, timeout=120, user=None, env=None, cwd=None):
        """Run `sandbox ARGS` as the user; returns CompletedProcess (text)."""
        return self._run(self.argv(*args, user=user, env=env), input, timeout,
                         self._cwd(user, cwd))

    def ok(self, *args, **kw):
        """Like calling the runner, but the command must exit 0."""
        result = self(*args, **kw)
        assert result.returncode == 0, describe(result)
        return result

    def on_terminal(self, *args, timeout=30):
        """Run `sandbox ARGS` on a pseudo-terminal to its end: (exit status,
        everything it wrote)."""
        import pexpect
        argv = self.argv(*args)
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=timeout)
        child.expect(pexpect.EOF)
        child.close()
        return child.exitstatus, child.before

    def popen(self, *args, user=None, env=None, cwd=None, **kw):
        """Start `sandbox ARGS` as the user.  The Popen's pid is sandbox's own
        (setpriv and env exec), so signals sent to it reach the CLI.
        Defaults: stdin/stdout/stderr pipes, text mode, own session."""
        kw.setdefault("stdin", subprocess.PIPE)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        kw.setdefault("start_new_session", True)
        return subprocess.Popen(self.argv(*args, user=user, env=env),
                                cwd=self._cwd(user, cwd), **kw)

    def popen_raw(self, argv, user=None, env=None, **kw):
        """Start any command as the user (a helper such as ssh-agent)."""
        return subprocess.Popen(self._wrap(argv, user, env), cwd=self._cwd(user, None), **kw)

    @staticmethod
    def _run(argv, input, timeout, cwd):
        proc = subprocess.Popen(argv, cwd=cwd, text=True, start_new_session=True,
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            # The whole session: sandbox and whatever it left in the group.
            with_suppressed(os.killpg, proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise AssertionError("timed out after %ss: %s\nstdout:\n%s\nstderr:\n%s"
                                 % (timeout, shlex.join(argv), stdout, stderr)) from None
        return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)

    def close(self):
        for path in self._dirs.values():
            remove_data_dir(path)
        self._dirs.clear()


def with_suppressed(func, *args):
    try:
        func(*args)
    except OSError:
        pass


def host_http_server(address, body):
    """An HTTP server on the host at ``address`` (port chosen), answering
    every GET with ``body``, serving in a thread; shutdown() and
    server_close() it."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    server = http.server.HTTPServer((address, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def describe(result):
    """A failed command, readable in an assertion message."""
    args = list(result.args)
    cli = cli_path()
    shown = args[args.index(cli):] if cli in args else args  # not the env=... part
    return "exit %s: %s\nstdout:\n%s\nstderr:\n%s" % (
        result.returncode, shlex.join(shown), result.stdout, result.stderr)


# --- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="session")
def test_user():
    return os.environ.get("SANDBOX_TEST_USER", "sandbox-test")


@pytest.fixture(scope="session")
def nosub_user():
    return os.environ.get("SANDBOX_TEST_NOSUB_USER", "sandbox-nosub")


@pytest.fixture(scope="session")
def _cli_reachable(test_user):
    """Fail early and clearly when the test user cannot run the CLI (a
    checkout under /root, say): scripts/test copies it somewhere readable."""
    require_root()
    account = Account(test_user)
    cli = cli_path()
    check = subprocess.run(["setpriv", "--reuid=%d" % account.uid, "--regid=%d" % account.gid,
                            "--init-groups", "--", "test", "-x", cli], cwd="/")
    if check.returncode != 0:
        pytest.fail("%s cannot execute %s: run the tests through scripts/test, which "
                    "copies the checkout where every user can read it" % (test_user, cli))


@pytest.fixture(scope="module")
def sb(request, test_user, _cli_reachable):
    runner = Runner(test_user, request.module.__name__.rsplit(".", 1)[-1])
    yield runner
    runner.close()


@pytest.fixture
def fresh_sb(request, test_user, _cli_reachable):
    runner = Runner(test_user, request.node.name)
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def images_dir():
    path = os.environ.get("SANDBOX_TEST_IMAGES")
    if not path:
        pytest.skip("SANDBOX_TEST_IMAGES is unset: build the images with "
                    "`scripts/make-test-images DIR` and export SANDBOX_TEST_IMAGES=DIR "
                    "(scripts/test does both)")
    if not os.path.isfile(os.path.join(path, "busybox.tar")):
        pytest.fail("SANDBOX_TEST_IMAGES=%s holds no busybox.tar" % path)
    return path


@pytest.fixture(scope="module")
def busybox(sb, images_dir):
    """The busybox test image, loaded into the module's store."""
    result = sb("load", "-i", os.path.join(images_dir, "busybox.tar"))
    assert result.returncode == 0, "sandbox load busybox.tar failed: " + describe(result)
    return "busybox"
