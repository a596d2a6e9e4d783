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


# -- dns mode: the names of containers on user-defined networks -------------------
def _query(name, qtype=1, ident=0x1234):
    import struct
    head = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return head + labels + b"\0" + struct.pack(">HH", qtype, 1)


def _parse(reply):
    """(rcode, [A addresses]) of a reply to one question."""
    import socket
    import struct
    ident, flags, qd, an, _, _ = struct.unpack(">HHHHHH", reply[:12])
    pos = 12
    while reply[pos]:
        pos += reply[pos] + 1
    pos += 5
    addrs = []
    for _ in range(an):
        assert reply[pos:pos + 2] == b"\xc0\x0c"             # the question's name
        rtype, _, ttl, size = struct.unpack(">HHIH", reply[pos + 2:pos + 12])
        data = reply[pos + 12:pos + 12 + size]
        if rtype == 12:                                       # PTR: labels
            labels, i = [], 0
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode())
                i += data[i] + 1
            addrs.append(".".join(labels))
        else:
            assert rtype == 1 and size == 4
            addrs.append(socket.inet_ntoa(data))
        pos += 12 + size
    assert flags & 0x8000 and ident == 0x1234 and qd == 1
    return flags & 0xF, addrs


def test_dns_answers_the_askers_networks_and_refuses_the_rest(tmp_path):
    import socket
    import subprocess
    table = tmp_path / "dns-names"
    # the asker (127.0.0.1 on gateway 127.0.0.1) is also on 10.9.0.1's network;
    # "hidden" is on a network it is not on.
    table.write_text("127.0.0.1 127.0.0.1 aaaaaaaaaaaa me\n"
                     "127.0.0.1 127.0.0.5 bbbbbbbbbbbb web api\n"
                     "10.9.0.1 10.9.0.2 aaaaaaaaaaaa me\n"
                     "10.9.0.1 10.9.0.7 cccccccccccc far\n"
                     "10.8.0.1 10.8.0.3 dddddddddddd hidden\n"
                     "garbage line\n")
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.setsockopt(socket.IPPROTO_IP, 8, 1)                 # IP_PKTINFO
    server.bind(("127.0.0.1", 0))
    proc = subprocess.Popen([binary(), "dns", str(table)], pass_fds=(server.fileno(), 3),
                            preexec_fn=lambda: os.dup2(server.fileno(), 3))
    try:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(5)

        def ask(name, qtype=1):
            client.sendto(_query(name, qtype), server.getsockname())
            return _parse(client.recv(512))
        assert ask("web") == (0, ["127.0.0.5"])
        assert ask("API") == (0, ["127.0.0.5"])              # any case
        assert ask("web", qtype=28) == (0, [])                # no AAAA: an empty answer
        assert ask("far") == (0, ["10.9.0.7"])                # on another of its networks
        assert ask("hidden") == (5, [])                       # REFUSED: not its network
        assert ask("5.0.0.127.in-addr.arpa", qtype=12) == (0, ["web"])   # its name back
        assert ask("7.0.9.10.in-addr.arpa", qtype=12) == (0, ["far"])
        assert ask("3.0.8.10.in-addr.arpa", qtype=12) == (5, [])
        assert ask("9.9.9.9.in-addr.arpa", qtype=12) == (5, [])
        assert ask("nothing.example") == (5, [])
        client.sendto(b"\x12\x34\x81\x00" + b"\0" * 8, server.getsockname())   # a response
        table.write_text("127.0.0.1 127.0.0.1 aaaaaaaaaaaa me\n"
                         "127.0.0.1 127.0.0.9 eeeeeeeeeeee web\n")
        assert ask("web") == (0, ["127.0.0.9"])              # the table is read again
        assert ask("api") == (5, [])
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_dns_without_a_socket_holds_on(tmp_path):
    """The keeper's first task is to hold the network namespace: with no
    socket to serve (fd 3 not one), the dns mode sleeps rather than ends,
    which would take every bridge with it."""
    import subprocess
    import time
    with open(os.devnull) as nul:
        proc = subprocess.Popen([binary(), "dns", str(tmp_path / "none")],
                                pass_fds=(nul.fileno(), 3), stderr=subprocess.DEVNULL,
                                preexec_fn=lambda: os.dup2(nul.fileno(), 3))
    try:
        time.sleep(0.3)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
