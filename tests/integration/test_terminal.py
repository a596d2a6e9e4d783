"""`run -it` drives a real pseudo-terminal: prompt, typed input, echo, raw
mode, window size, and the exit code of the shell."""

import time

import pexpect
import pytest

pytestmark = pytest.mark.terminal


def spawn(sb, *args, rows=30, cols=100, env=None):
    argv = sb.argv(*args, env=env)
    child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=30,
                          dimensions=(rows, cols))
    return child


def ended(child):
    """The exit status of a spawned CLI, once its output has ended."""
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_interactive_shell_prompt_command_and_exit_code(sb, busybox):
    child = spawn(sb, "run", "--rm", "-it", busybox, "sh")
    child.expect(r"# ")                      # root's prompt from ash
    child.sendline("echo $((6*7)); tty; stty size")
    child.expect("42")
    child.expect(r"/dev/pts/0\r\n")
    child.expect("30 100")
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_window_size_change_reaches_the_container(sb, busybox):
    child = spawn(sb, "run", "--rm", "-it", busybox, "sh")
    child.expect(r"# ")
    child.setwinsize(40, 120)
    child.sendline("stty size")
    child.expect("40 120")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_reaches_the_foreground_program_not_sandbox(sb, busybox):
    child = spawn(sb, "run", "--rm", "-it", busybox, "sh")
    child.expect(r"# ")
    child.sendline("sleep 30")
    child.expect("sleep 30\r\n")
    time.sleep(0.5)                          # let the shell start sleep
    started = time.monotonic()
    child.sendcontrol("c")                   # raw mode: ^C goes to the pty
    child.expect(r"# ", timeout=10)          # sleep died, the shell lives
    assert time.monotonic() - started < 5
    child.sendline("echo alive")
    child.expect("alive")
    child.sendline("exit 5")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5


@pytest.mark.parametrize("how", [[], ["-u", "1000"], ["--ulimit", "nofile=200:200"],
                                 ["--init", "--read-only"]],
                         ids=["native", "user", "python-setup", "init-readonly"])
def test_run_t_gets_a_terminal_of_the_containers_own(sb, busybox, how):
    """As Docker's: the pty of `run -t` comes from the container's devpts
    (`tty` names it /dev/pts/0; /dev/console is it, as runc binds it), is
    the controlling terminal (`ps` shows it, /dev/tty opens), is owned by
    the command's user, and has our window size from the start.  The same
    from the native setup and the Python one (--ulimit takes the latter)."""
    child = spawn(sb, "run", "--rm", "-t", *how, busybox, "sh", "-c",
                  "tty; ls -ln /dev/console $(tty); stty size; echo via-tty > /dev/tty; "
                  "ps -o pid,tty,comm | grep ps", rows=21, cols=77)
    child.expect(r"/dev/pts/0\r+\n")
    owner = "1000" if "1000" in how else "0"
    child.expect(r"c[rw-]{9}\s+1 %s\s+\d+\s+136,\s+0 .* /dev/console\r+\n" % owner)
    child.expect(r"c[rw-]{9}\s+1 %s\s+\d+\s+136,\s+0 .* /dev/pts/0\r+\n" % owner)
    child.expect("21 77\r+\n")
    child.expect("via-tty")
    child.expect(r"136,0\s+ps")
    assert ended(child) == 0


def test_tty_without_i_still_shows_output(sb, busybox):
    child = spawn(sb, "run", "--rm", "-t", busybox, "sh", "-c", "tty; echo done")
    child.expect("done")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_attach_and_detach_with_the_detach_keys(sb, busybox):
    """`attach` to a `run -dit` shell, type into it, then ctrl-p ctrl-q (or
    the keys of --detach-keys): attach ends with 0 and the shell runs on."""
    sb("rm", "-f", "detachable")
    sb.ok("run", "-dit", "--name", "detachable", busybox, "sh")
    try:
        for keys, typed in ((None, "\x10\x11"), ("ctrl-a,d", "\x01d")):
            child = spawn(sb, "attach", *(["--detach-keys", keys] if keys else []),
                          "detachable")
            child.sendline("echo $((6*7))")
            child.expect("42")
            child.send("\x10x")          # not the sequence: passed on
            child.send(typed)
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 0
            assert sb.ok("inspect", "-f", "{{.State.Running}}", "detachable").stdout \
                == "true\n"
        r = sb("attach", "--detach-keys", "ctrl-", "detachable")
        assert r.returncode == 125 and "invalid detach keys" in r.stderr
    finally:
        sb("rm", "-f", "detachable")


@pytest.mark.parametrize("monitor", ["native", "python"])
def test_run_it_detaches_with_the_detach_keys_and_attach_resizes(sb, busybox, monitor):
    """`run -it`, then ctrl-p ctrl-q: the CLI ends with 0 and the shell runs
    on (as under Docker); `attach` finds it, with its terminal's size
    following the new client's (also for a container whose terminal is
    its user's, not ours to open); `exit 5` ends attach with 5.  With the
    native monitor and with the Python supervisor."""
    env = {"SANDBOX_MONITOR": "python"} if monitor == "python" else None
    sb("rm", "-f", "itdetach")
    child = spawn(sb, "run", "-it", "-u", "1000", "--name", "itdetach", busybox, "sh",
                  env=env, rows=25, cols=90)
    try:
        child.expect(r"\$ ")
        child.setwinsize(26, 91)
        child.sendline("stty size")
        child.expect("26 91")
        child.sendline("echo $((6*7))")
        child.expect("42")
        child.send("\x10\x11")
        assert ended(child) == 0
        assert sb.ok("inspect", "-f", "{{.State.Running}}", "itdetach").stdout == "true\n"
        child = spawn(sb, "attach", "itdetach", rows=33, cols=111, env=env)
        child.sendline("stty size")
        child.expect("33 111")
        child.setwinsize(44, 122)
        child.sendline("stty size")
        child.expect("44 122")
        child.sendline("exit 5")
        assert ended(child) == 5
        assert sb.ok("inspect", "-f", "{{.State.ExitCode}}", "itdetach").stdout == "5\n"
    finally:
        sb("rm", "-f", "itdetach")
    child = spawn(sb, "run", "--rm", "-it", "--detach-keys", "ctrl-a,d", busybox, "sh")
    child.expect(r"# ")
    child.send("\x01d")
    assert ended(child) == 0
    r = sb("run", "--rm", "-t", "--detach-keys", "ctrl-", busybox, "true")
    assert r.returncode == 125 and "invalid detach keys" in r.stderr
    for cid in sb.ok("ps", "-q").stdout.split():
        sb.ok("rm", "-f", cid)


def test_run_it_and_start_ai_miss_no_output(sb, busybox):
    """Attached before the start: what the command writes at once is seen
    every time (run -it, start -ai)."""
    for _ in range(5):
        child = spawn(sb, "run", "--rm", "-it", busybox, "echo", "right-away")
        child.expect("right-away")
        assert ended(child) == 0
    cid = sb.ok("create", "-it", busybox, "sh", "-c", "echo at-once; exit 4").stdout.strip()
    child = spawn(sb, "start", "-ai", cid)
    child.expect("at-once")
    assert ended(child) == 4
    sb.ok("rm", cid)


def test_signals_sent_to_run_it_reach_the_container(sb, busybox):
    child = spawn(sb, "run", "--rm", "-it", busybox, "sh", "-c",
                  "trap 'echo got-term; exit 9' TERM; echo ready; "
                  "while :; do sleep 0.1; done")
    child.expect("ready")
    child.kill(15)
    child.expect("got-term")
    assert ended(child) == 9


def test_exec_it_gets_a_terminal_of_the_containers_own(sb, busybox):
    """As Docker's: the pty comes from the container's devpts, so `tty`
    names it (/dev/pts/N), at our window size, owned by the exec's user;
    typed input, the exit code.  A container whose /dev/pts/ptmx is not a
    ptmx gets a clear refusal, not a hang."""
    sb.ok("run", "-d", "--name", "exec-tty", busybox, "sleep", "60")
    child = spawn(sb, "exec", "-it", "-u", "1000", "exec-tty", "sh", "-c",
                  "tty; ls -ln $(tty); stty size", rows=33, cols=101)
    child.expect(r"/dev/pts/(\d+)\r\n")
    child.expect(r"c[rw-]{9}\s+1 1000\s+")          # the slave is the user's
    child.expect("33 101")
    assert ended(child) == 0
    child = spawn(sb, "exec", "-it", "exec-tty", "sh")
    child.expect("# ")
    child.sendline("echo $((6*7)); exit 5")
    child.expect("42")
    assert ended(child) == 5
    # -d -t: a terminal nobody reads, as Docker's (what is written to it is
    # read and dropped: more than a pty holds does not block the command)
    sb.ok("exec", "-d", "-t", "exec-tty", "sh", "-c",
          "tty > /tmp/dt; seq 200000; touch /tmp/dt-done")
    sb.ok("exec", "-d", "exec-tty", "sh", "-c", "tty > /tmp/dn")
    deadline = time.monotonic() + 20
    while sb("exec", "exec-tty", "test", "-e", "/tmp/dt-done").returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert sb.ok("exec", "exec-tty", "cat", "/tmp/dt").stdout.startswith("/dev/pts/")
    assert sb.ok("exec", "exec-tty", "cat", "/tmp/dn").stdout == "not a tty\n"
    sb.ok("rm", "-f", "exec-tty")

    sb.ok("run", "-d", "--privileged", "--name", "exec-tty", busybox, "sleep", "60")
    sb.ok("exec", "exec-tty", "sh", "-c", "umount /dev/pts && mkfifo /dev/pts/ptmx")
    child = spawn(sb, "exec", "-it", "exec-tty", "true")
    child.expect("cannot allocate a terminal in the container")
    assert ended(child) == 125
    assert sb.ok("exec", "exec-tty", "echo", "still-fine").stdout == "still-fine\n"
    sb.ok("rm", "-f", "exec-tty")


def test_exec_it_detaches_with_the_detach_keys(sb, busybox):
    """`exec -it`, then ctrl-p ctrl-q (or --detach-keys): the CLI ends with
    0 and the command runs on, as Docker's exec; its terminal is held and
    read by sandbox's own process, so what it writes later does not block
    it; its end is in `events` (exec_die).  Bad keys are refused first."""
    sb.ok("run", "-d", "--name", "exec-detach", busybox, "sleep", "120")
    try:
        for keys, typed in ((None, "\x10\x11"), ("ctrl-x,y", "\x18y")):
            child = spawn(sb, "exec", "-it", *(["--detach-keys", keys] if keys else []),
                          "exec-detach", "sh")
            child.expect("# ")
            # After the detach it writes more than a pty holds, to a
            # terminal nobody shows, then says so.
            child.sendline("rm -f /tmp/wrote; echo $$ > /tmp/shell; "
                           "(sleep 1; seq 100000; touch /tmp/wrote) & echo $((6*7))")
            child.expect("42")
            child.send(typed)
            assert ended(child) == 0
            pid = sb.ok("exec", "exec-detach", "cat", "/tmp/shell").stdout.strip()
            # (a zombie passes kill -0: so was the shell whose terminal
            # was hung up when X died of the CLI's end, before X waited)
            state = sb.ok("exec", "exec-detach", "sh", "-c",
                          "grep ^State: /proc/%s/status" % pid).stdout
            assert "State:" in state and "zombie" not in state, state
            deadline = time.monotonic() + 20
            while sb("exec", "exec-detach", "test", "-e", "/tmp/wrote").returncode != 0:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            sb.ok("exec", "exec-detach", "kill", "-KILL", pid)
        since = str(int(time.time()) - 60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = sb.ok("events", "--since", since, "--until", str(int(time.time()) + 1),
                        "--filter", "event=exec_die", "--format", "{{.Action}}").stdout
            if out.count("exec_die") >= 2:
                break
            time.sleep(0.2)
        assert out.count("exec_die") >= 2, out
        r = sb("exec", "-it", "--detach-keys", "ctrl-", "exec-detach", "true")
        assert r.returncode == 125 and "invalid detach keys" in r.stderr
    finally:
        sb("rm", "-f", "exec-detach")


@pytest.mark.parametrize("how", [[], ["--ulimit", "nofile=200:200"]], ids=["native", "python"])
def test_host_dev_bound_in_works_and_t_gets_a_host_pty(sb, busybox, how):
    """-v /dev:/dev, as Docker: the host's /dev replaces the container's
    (none of the default /dev/pts, /dev/shm, /dev/mqueue mounts under it;
    the mqueue mount used to fail on the host's /dev), and -t then gets a
    pty of the host's devpts through /dev/ptmx (its pts/ptmx is mode 000)."""
    child = spawn(sb, "run", "--rm", "-t", "-v", "/dev:/dev", *how, busybox, "sh", "-c",
                  "tty; test -L /dev/ptmx || echo host-ptmx; echo x > /dev/null && echo ok")
    child.expect(r"/dev/pts/\d+\r+\n")
    child.expect("host-ptmx")                   # (ours is a link to pts/ptmx)
    child.expect("ok")
    assert ended(child) == 0
