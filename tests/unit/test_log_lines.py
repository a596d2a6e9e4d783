"""Reading the json-file log (`logs`): a damaged line, as a full disk left
them in logs written before the writers cut such a record back, costs
only itself: the whole record after it is still shown."""

from helpers.commands import containers


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
