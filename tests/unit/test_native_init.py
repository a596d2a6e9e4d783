"""sandbox-init (native/init.c), --init's PID 1, run for real outside a
container: the command from fd 3, its status as the exit code, signals
passed on, exec failures reported on fd 4 in the form the CLI decodes into
Docker's messages (runtime._decode_failure).  Runs the binary
scripts/setup-host builds."""

import os
import signal
import subprocess
import time

import pytest

from helpers.container import monitor, runtime
from helpers.errors import CannotExecute, CommandNotFound


def binary():
    path = monitor.native_path(monitor.INIT_NAME)
    if path is None:
        pytest.fail("sandbox-init is not built: run scripts/setup-host (as root)")
    return path


def start(path, args, env=(), argv=("sandbox-init",)):
    """sandbox-init with the command on fd 3 and fd 4 for its report:
    (pid, stdout reader, report reader)."""
    data = "\0".join([path, str(len(args))] + list(args) + list(env)) + "\0"
    cmd_r, cmd_w = os.pipe()
    os.write(cmd_w, data.encode())
    os.close(cmd_w)
    rep_r, rep_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.posix_spawn(binary(), list(argv), {}, file_actions=[
        (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, cmd_r, 3),
        (os.POSIX_SPAWN_DUP2, rep_w, 4)])
    for fd in (cmd_r, rep_w, out_w):
        os.close(fd)
    return pid, out_r, rep_r


def finish(pid, out_r, rep_r):
    """(exit code, stdout, report)."""
    with os.fdopen(out_r, "rb") as out, os.fdopen(rep_r, "rb") as rep:
        output, report = out.read(), rep.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output, report


def run(path, args, env=(), argv=("sandbox-init",)):
    return finish(*start(path, args, env, argv))


def test_the_commands_status_output_and_environment():
    assert run("/bin/sh", ["sh", "-c", 'echo "$FOO"; exit 7'], ["FOO=bar"]) == (7, b"bar\n", b"")


def test_a_command_killed_by_a_signal_gives_128_plus_it():
    assert run("/bin/sh", ["sh", "-c", "kill -TERM $$"])[0] == 143


def test_signals_are_passed_on_to_the_command():
    pid, out_r, rep_r = start("/bin/sh", ["sh", "-c", "trap 'echo got; exit 3' USR1; echo ready; "
                                          "while :; do sleep 0.05; done"])
    reader = os.fdopen(os.dup(out_r), "rb", 0)
    assert reader.readline() == b"ready\n"
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    code, output, _ = finish(pid, out_r, rep_r)
    reader.close()
    assert time.monotonic() < deadline
    assert (code, output) == (3, b"got\n")


def test_the_command_gets_neither_of_its_fds():
    code, output, _ = run("/bin/sh", ["sh", "-c", "for n in 3 4; do [ -e /proc/$$/fd/$n ] "
                                                  "&& echo $n; done; echo ok"])
    assert (code, output) == (0, b"ok\n")


@pytest.mark.parametrize("errno_, code, cls", [(2, 127, CommandNotFound),
                                               (8, 126, CannotExecute)])
def test_an_exec_failure_is_reported_as_docker_does(tmp_path, errno_, code, cls):
    path = str(tmp_path / "prog")
    if errno_ == 8:
        with open(path, "w") as f:
            f.write("no #! line, no ELF header\n")
        os.chmod(path, 0o755)
    result = run(path, ["prog"])
    assert result == (code, b"", b"E\0%d\0%s" % (errno_, path.encode()))
    error = runtime._decode_failure(result[2])
    assert isinstance(error, cls) and error.exit_code == code
    assert error.message.startswith('exec: "%s": ' % path), error.message


def test_run_by_hand_it_refuses():
    code, _, _ = run("/bin/true", ["true"], argv=("sandbox-init", "extra"))
    assert code == 125


@pytest.mark.parametrize("data", [b"", b"/bin/true\0", b"/bin/true\0002\0true\0"])
def test_a_damaged_command_is_refused(data):
    cmd_r, cmd_w = os.pipe()
    os.write(cmd_w, data)
    os.close(cmd_w)
    err_r, err_w = os.pipe()
    pid = os.posix_spawn(binary(), ["sandbox-init"], {}, file_actions=[
        (os.POSIX_SPAWN_DUP2, cmd_r, 3), (os.POSIX_SPAWN_DUP2, err_w, 2)])
    os.close(cmd_r)
    os.close(err_w)
    with os.fdopen(err_r, "rb") as f:
        message = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 125
    assert message == b"sandbox-init: a damaged command on fd 3\n"


# --- setup mode (native/setup.c): G's last steps, run here without the
# namespace steps (those need a container: the integration tests) ---------

def setup(words, go=b"g", tmp_path=None):
    """sandbox-init setup with ``words`` as the plan on fd 3, the error
    pipe on 4, ``go`` on 5 and sandbox-init itself on 6: (exit code,
    stdout, report)."""
    plan_r, plan_w = os.pipe()
    os.write(plan_w, ("\0".join(words) + "\0").encode())
    os.close(plan_w)
    go_r, go_w = os.pipe()
    os.write(go_w, go)
    os.close(go_w)
    rep_r, rep_w = os.pipe()
    out_r, out_w = os.pipe()
    exe = os.open(binary(), os.O_RDONLY)
    pid = os.posix_spawn(binary(), ["sandbox-init", "setup"], {}, file_actions=[
        (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, plan_r, 3),
        (os.POSIX_SPAWN_DUP2, rep_w, 4), (os.POSIX_SPAWN_DUP2, go_r, 5),
        (os.POSIX_SPAWN_DUP2, exe, 6)])
    for fd in (plan_r, rep_w, out_w, go_r, exe):
        os.close(fd)
    return finish(pid, out_r, rep_r)


def last_steps(name, args, env, init=False):
    """The plan's end as runtime._native_plan writes it (W, Z)."""
    return ([runtime._PLAN_VERSION, "W", "/", "Z", name, str(len(args))] + list(args)
            + [str(len(env))] + list(env) + ["i" if init else ""])


def test_setup_looks_the_command_up_in_the_path_and_execs_it_after_go():
    code, out, report = setup(last_steps("sh", ["sh", "-c", 'echo "$A $PWD"; exit 4'],
                                         ["PATH=/nonexistent:/bin", "A=b"]))
    assert (code, out, report) == (4, b"b /\n", b"")


def test_setup_without_go_ends_before_the_exec():
    code, out, _ = setup(last_steps("sh", ["sh", "-c", "echo ran"], ["PATH=/bin"]), go=b"")
    assert (code, out) == (125, b"")


def test_setup_execs_itself_as_the_init_with_init():
    code, out, _ = setup(last_steps("sh", ["sh", "-c", "cat /proc/$PPID/comm; exit 5"],
                                    ["PATH=/bin"], init=True))
    assert (code, out) == (5, b"sandbox-init\n")


@pytest.mark.parametrize("name, env, code, cls, text", [
    ("nosuch", ["PATH=/bin"], 127, CommandNotFound,
     'exec: "nosuch": executable file not found in $PATH'),
    ("/nonexistent/x", [], 127, CommandNotFound,
     'exec: "/nonexistent/x": no such file or directory'),
    ("{tmp}/data", [], 126, CannotExecute, 'exec: "{tmp}/data": permission denied'),
    ("data", ["PATH={tmp}"], 126, CannotExecute, 'exec: "{tmp}/data": permission denied'),
    ("{tmp}", [], 126, CannotExecute, 'exec: "{tmp}": permission denied'),
])
def test_setup_reports_the_lookups_failures_as_the_python_g_does(tmp_path, name, env, code,
                                                                 cls, text):
    (tmp_path / "data").write_text("not a program\n")       # mode 644
    name, text = name.format(tmp=tmp_path), text.format(tmp=tmp_path)
    env = [e.format(tmp=tmp_path) for e in env]
    got, _, report = setup(last_steps(name, [name], env))
    exc = runtime._decode_failure(report)
    assert got == code and type(exc) is cls and exc.message == text
    try:
        runtime._find_executable(name, env)
    except OSError as err:
        python = runtime._exec_error(err)
    except CommandNotFound as err:
        python = err
    assert (type(python), python.message, python.hint) == (cls, text, exc.hint)


def test_setup_refuses_a_damaged_plan_or_another_version():
    for words in (["sandbox-setup-0", "W", "/"], [runtime._PLAN_VERSION, "?"],
                  [runtime._PLAN_VERSION, "Z", "sh"]):
        code, _, report = setup(words)
        exc = runtime._decode_failure(report)
        assert code == 125 and exc.exit_code == 125 and "plan" in exc.message, report


@pytest.mark.skipif(os.geteuid() != 0, reason="setgroups needs root (CI runs the unit tests as root)")
def test_setup_sets_the_user_and_its_groups():
    words = last_steps("sh", ["sh", "-c", "id -u; id -g; id -G"], ["PATH=/bin:/usr/bin"])
    for groups, want in (("5,6,700", b"1234\n1234\n1234 5 6 700\n"), ("", b"1234\n1234\n1234\n")):
        plan = words[:1] + ["G", "1234", "1234", groups] + words[1:]
        assert setup(plan)[:2] == (0, want)


# --- start mode (native/start.c): C, given what P sends, here without a
# container (the integration tests run it for real: test_run.py) ----------

def start_c(messages, userns):
    """sandbox-init start with ``messages`` on its launch pipe and
    ``userns`` (an fd) as the user namespace to join: (exit code, report,
    what it wrote on the pid and status pipes)."""
    launch_r, launch_w = os.pipe()
    os.write(launch_w, messages)
    os.close(launch_w)
    rep_r, rep_w = os.pipe()
    go_r, go_w = os.pipe()
    pid_r, pid_w = os.pipe()
    status_r, status_w = os.pipe()
    exe = os.open(binary(), os.O_RDONLY)
    pid = os.posix_spawn(binary(), ["sandbox-init", "start", ""], {}, file_actions=[
        (os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(
            (launch_r, rep_w, go_r, exe, pid_w, status_w, userns), 3)])
    for fd in (launch_r, rep_w, go_r, exe, pid_w, status_w):
        os.close(fd)
    os.close(go_w)
    with os.fdopen(rep_r, "rb") as rep, os.fdopen(pid_r, "rb") as pids, \
            os.fdopen(status_r, "rb") as status:
        report, said, code_text = rep.read(), pids.read(), status.read()
    _, wstatus = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wstatus), report, said, code_text


def test_start_reports_a_user_namespace_it_cannot_join():
    nul = os.open("/dev/null", os.O_RDONLY)
    try:
        code, report, said, _ = start_c(b"", nul)
    finally:
        os.close(nul)
    exc = runtime._decode_failure(report)
    assert (code, said) == (125, b"")
    assert exc.exit_code == 125 and exc.message.startswith("cannot join the user namespace: ")


@pytest.mark.skipif(os.geteuid() != 0, reason="joins a user namespace of root's "
                                              "(CI runs the unit tests as root)")
@pytest.mark.parametrize("messages", [
    b"",                                         # P gave up before the root
    runtime._message("L", ["0", "0", "", "/", "/", "", "", "", ""]),   # no root first
    b"R12",                                      # cut short
    b"Rx:",                                      # no length
])
def test_start_without_a_root_and_a_launch_ends_quietly(messages):
    """What P sends first is the root filesystem to mount ("R"), then the
    Launch ("L"); anything else (P gave up, or a damaged message) ends C
    with 125 and no report (P reports its own error), before any process
    is started."""
    holder = subprocess.Popen(["unshare", "-U", "sleep", "30"])
    try:
        path = "/proc/%d/ns/user" % holder.pid
        deadline = time.monotonic() + 5
        while os.stat(path).st_ino == os.stat("/proc/self/ns/user").st_ino:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        userns = os.open(path, os.O_RDONLY)
        try:
            assert start_c(messages, userns) == (125, b"", b"", b"")
        finally:
            os.close(userns)
    finally:
        holder.kill()
        holder.wait()
