"""linux.scrub_command_line: what /proc/PID/cmdline and environ show of a
process forked from the CLI (real /proc, in a forked child)."""

import os

from helpers import linux


def _in_child(action):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            action()
            for name in ("cmdline", "environ"):
                with open("/proc/self/" + name, "rb") as f:
                    os.write(w, f.read().replace(b"\0", b"|") + b"\n")
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out.splitlines()


def test_before_and_after():
    os.environ["SCRUB_TEST_SECRET"] = "hunter2"     # for children only
    before = _in_child(lambda: None)
    # (a child whose scrub reports failure writes nothing: the test fails)
    after = _in_child(lambda: linux.scrub_command_line("sandbox-exec") or os._exit(3))
    # os.environ changes do not reach the kernel's copy: what the process
    # was started with is the test runner's environment and command line.
    assert "pytest" in before[0] or "python" in before[0]
    assert before[1].strip("|")
    assert after[0].rstrip("|") == "sandbox-exec"
    assert after[1].strip("|") == ""


def test_a_long_name_is_cut_to_the_command_lines_room():
    after = _in_child(lambda: linux.scrub_command_line("x" * 100000))
    assert set(after[0].rstrip("|")) == {"x"}
    assert after[1].strip("|") == ""
