"""Reading the json-file log (`logs`): a damaged line, as a full disk left
them in logs written before the writers cut such a record back, costs
only itself: the whole record after it is still shown.  Rotation
(--log-opt max-size, max-file) by the Python writer, and what readers
find after it."""

import json
import os

import pytest

from helpers.commands import containers
from helpers.container import monitor


def test_a_whole_record_after_half_a_record_is_kept():
    line = (b'{"log":"line 16\\n","{"log":"line 17\\n","stream":"stdout",'
            b'"time":"2026-11-28T08:55:30.738354737Z"}\n')
    assert containers._entry(line) == {
        "log": "line 17\n", "stream": "stdout", "time": "2026-11-28T08:55:30.738354737Z"}


def test_what_cannot_be_read_is_skipped():
    for line in (b'{"log":"cut sho', b"\x00\x00\x00\n", b'{"log":"a\\n","st{"log":\n'):
        assert containers._entry(line) is None
    good = b'{"log":"fine\\n","stream":"stderr","time":"2026-11-28T08:55:30Z"}\n'
    assert containers._entry(good)["log"] == "fine\n"


# --- rotation (--log-opt max-size / max-file) ----------------------------------

def test_rotation_shifts_files_and_drops_the_oldest(tmp_path):
    from helpers.container import logconfig
    path = str(tmp_path / "c-json.log")
    writer = monitor.LogWriter(path, (10, 3))
    for i in range(5):
        writer.write("stdout", b"line %d\n" % i)   # each entry is over 10 bytes
    writer.close()
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    assert logconfig.files(path) == [path + ".2", path + ".1", path]
    logs = []
    for name in logconfig.files(path):
        with open(name) as f:
            logs += [json.loads(line)["log"] for line in f]
    assert logs == ["line 2\n", "line 3\n", "line 4\n"]


def test_a_reader_two_rotations_behind_finds_the_file_after_its_own(tmp_path):
    from helpers.container import logconfig
    path = str(tmp_path / "c-json.log")
    writer = monitor.LogWriter(path, (10, 4))
    writer.write("stdout", b"first\n")
    reader = open(path, "rb")
    for text in (b"second\n", b"third\n"):
        writer.write("stdout", text)
    # The reader's file is <log>.2 now; the next one written is <log>.1.
    assert logconfig.next_file(path, os.fstat(reader.fileno())) == path + ".1"
    writer.write("stdout", b"fourth\n")
    assert logconfig.next_file(path, os.fstat(reader.fileno())) == path + ".2"
    writer.close()
    reader.close()


@pytest.mark.parametrize("driver, opts, defaults, expected", [
    (None, [], {}, {"Type": "json-file", "Config": {}}),
    ("none", [], {"log-opts": {"max-size": "1m"}}, {"Type": "none", "Config": {}}),
    (None, ["max-file=2"], {"log-opts": {"max-size": "1m"}},
     {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}),
    (None, [], {"log-driver": "none"}, {"Type": "none", "Config": {}}),
    (None, ["mode=non-blocking", "max-buffer-size=4m"], {},
     {"Type": "json-file", "Config": {"mode": "non-blocking", "max-buffer-size": "4m"}}),
])
def test_log_config_merges_defaults_under_flags(driver, opts, defaults, expected):
    from helpers.container import logconfig
    assert logconfig.parse(driver, opts, defaults) == expected


def test_limits_read_docker_sizes():
    from helpers.container import logconfig
    assert logconfig.limits({"max-size": "10m", "max-file": "3"}) == (10 * 1024 * 1024, 3)
    assert logconfig.limits({}) == (0, 1)


@pytest.mark.parametrize("opts, message", [
    (["mode=fast"], "unknown mode 'fast'"),
    (["max-buffer-size=4m"], "only supported with 'mode=non-blocking'"),
    (["mode=non-blocking", "max-buffer-size=lots"], "invalid max-buffer-size 'lots'"),
])
def test_log_delivery_mode_is_checked_as_dockers(opts, message):
    from helpers.container import logconfig
    from helpers.errors import UsageError
    with pytest.raises(UsageError, match=message):
        logconfig.parse(None, opts, {})
