"""The native monitor (native/monitor.c) against the Python supervisor's
own code: the same json-file log for the same output, and the hand-back
arguments (exit code, attached clients) it execs Python with.  Runs the
binary scripts/setup-host builds, with real pipes and processes."""

import json
import os

import pytest

from helpers.container import monitor


def binary():
    path = monitor.native_path()
    if path is None:
        pytest.fail("the native monitor is not built: run scripts/setup-host (as root)")
    return path


def run_monitor(tmp_path, out, err, child_status=3, logmax="0:1"):
    """The monitor supervising a child that exits with ``child_status``,
    with ``out`` and ``err`` (each at most a pipe's 64 KiB) already written
    to its pipes: one read each, as Python's LogWriter.write of all of it.
    Returns (log entries, the arguments it handed back)."""
    log = str(tmp_path / "c-json.log")
    result = str(tmp_path / "result")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.write(out_w, out)
    os.write(err_w, err)
    os.close(out_w)
    os.close(err_w)
    pid = os.fork()
    if pid == 0:
        try:
            child = os.fork()
            if child == 0:
                os._exit(child_status)
            for fd in (out_r, err_r):
                os.set_inheritable(fd, True)
            os.execv(binary(), ["sandbox-monitor", "supervise", log, logmax, str(child), "-1",
                                "-1", str(out_r), str(err_r), "0", "-1", "", "/bin/sh", "-c",
                                'printf "%%s|%%s" "$1" "$2" > %s' % result, "sh"])
        finally:
            os._exit(127)
    os.close(out_r)
    os.close(err_r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    entries = []
    if os.path.exists(log):
        with open(log) as f:
            entries = [json.loads(line) for line in f]
    with open(result) as f:
        return entries, f.read()


def python_entries(tmp_path, out, err, limits=(0, 1)):
    writer = monitor.LogWriter(str(tmp_path / "py-json.log"), limits)
    if out:
        writer.write("stdout", out)
    if err:
        writer.write("stderr", err)
    writer.close()
    with open(tmp_path / "py-json.log") as f:
        return [json.loads(line) for line in f]


def by_stream(entries):
    return {s: [e["log"] for e in entries if e["stream"] == s] for s in ("stdout", "stderr")}


OUT = (b"plain\n"
       b"tab\tquote\"back\\slash\x01\x1f\x7f\r\n"
       + "h\u00e9llo \u20ac \U0001d11e \U0001f600\n".encode()
       # invalid UTF-8: stray continuation, impossible bytes, overlong,
       # surrogates, a sequence cut short, then one cut by the end
       + b"bad \x80 \xff\xfe \xc0\xaf \xe0\x80\x80 \xed\xa0\x80 \xf0\x9f\x98 x\n"
       + b"y" * 40000 + b"\n"
       + b"no newline at the end \xe2\x82")
ERR = b"err line\n" + b"z" * 20000


def test_log_is_what_the_python_supervisor_writes(tmp_path):
    entries, _ = run_monitor(tmp_path, OUT, ERR)
    assert by_stream(entries) == by_stream(python_entries(tmp_path, OUT, ERR))
    # Line by line, long lines in Docker's 16 KiB pieces.
    assert [len(e) for e in by_stream(entries)["stdout"][4:7]] == [16384, 16384, 40001 - 32768]
    for e in entries:
        assert list(e) == ["log", "stream", "time"]
        assert len(e["time"]) == len("2026-11-28T02:41:51.123456789Z") and e["time"].endswith("Z")
    # Byte for byte as Python's encoder writes it (ASCII, \\u escapes).
    with open(tmp_path / "c-json.log", "rb") as f:
        first = f.readline()
    assert first.startswith(b'{"log":"plain\\n","stream":"stdout","time":"')


def _streams_of(path):
    with open(path) as f:
        return [json.loads(line)["stream"] for line in f]


def test_rotates_as_the_python_supervisor_does(tmp_path):
    """max-size 1000, max-file 3: the stdout read fills the first file,
    the stderr read finds it full and goes to a new one (rotation happens
    between writes, as Docker's); the same files from both writers."""
    out, err = b"a\n" * 600, b"b\n" * 10
    entries, _ = run_monitor(tmp_path, out, err, logmax="1000:3")
    python_entries(tmp_path, out, err, limits=(1000, 3))
    assert [e["stream"] for e in entries] == ["stderr"] * 10
    assert _streams_of(tmp_path / "c-json.log.1") == ["stdout"] * 600
    assert _streams_of(tmp_path / "py-json.log.1") == ["stdout"] * 600
    assert _streams_of(tmp_path / "py-json.log") == ["stderr"] * 10
    assert not os.path.exists(tmp_path / "c-json.log.2")
    # max-file 1: emptied in place instead.
    one = tmp_path / "one"
    one.mkdir()
    entries, _ = run_monitor(one, out, err, logmax="1000:1")
    assert [e["stream"] for e in entries] == ["stderr"] * 10
    assert sorted(os.listdir(one)) == ["c-json.log", "result"]


def test_log_driver_none_writes_no_file(tmp_path):
    entries, handed = run_monitor(tmp_path, b"out\n", b"err\n", logmax="-")
    assert entries == [] and handed == "3|"
    assert not os.path.exists(tmp_path / "c-json.log")


def test_hands_back_the_exit_code_and_no_clients(tmp_path):
    _, handed = run_monitor(tmp_path, b"", b"", child_status=7)
    assert handed == "7|"


def test_refuses_to_run_by_hand():
    import subprocess
    result = subprocess.run([binary()], capture_output=True, text=True)
    assert result.returncode == 125
    assert "not run by hand" in result.stderr
