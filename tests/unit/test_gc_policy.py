"""sandbox.py turns the cyclic garbage collector off for the start of a
container (helpers.collect_garbage_from_now_on); every other verb, and
whatever may live long, turns it back on."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = r"""
import gc, sys
sys.path.insert(0, sys.argv[1])
gc.disable()
from helpers import cli
cli.main(sys.argv[2:])
print("gc", gc.isenabled(), flush=True)
"""


def gc_after(*argv):
    with tempfile.TemporaryDirectory() as root:
        env = dict(os.environ, SANDBOX_ROOT=root, SANDBOX_RUNROOT=os.path.join(root, "run"))
        result = subprocess.run([sys.executable, "-S", "-c", PROBE, HERE, *argv],
                                capture_output=True, text=True, env=env, timeout=60)
    return result.stdout.split()[-1]


def test_run_keeps_it_off_and_other_verbs_turn_it_on():
    # run of an image that is not there: an error after the parse, before
    # anything starts
    assert gc_after("run", "--pull=never", "no-such-image-here") == "False"
    assert gc_after("images", "-q") == "True"


def test_turning_it_on_freezes_what_exists():
    import gc
    from helpers import collect_garbage_from_now_on
    was = gc.isenabled()
    gc.disable()
    try:
        collect_garbage_from_now_on()
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        if not was:
            gc.disable()
