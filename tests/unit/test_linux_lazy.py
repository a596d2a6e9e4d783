"""helpers.linux loads _ctypes and libc's function pointers at the first
syscall, not at import: the CLI of `run` imports the module for its
constants and leaves the loading (about a millisecond) to the container's
processes (linux._Lib)."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from helpers import linux
assert linux.CLONE_NEWNET == 0x40000000
print("_ctypes" in sys.modules)
# PR_CAPBSET_READ of CAP_CHOWN: 1 or 0, changes nothing
print(linux.prctl(linux.PR_CAPBSET_READ, 0) in (0, 1))
print("_ctypes" in sys.modules)
try:
    linux.setns(-1, 0)
except OSError as exc:
    print(exc.errno)
"""


def test_ctypes_is_loaded_at_the_first_call_and_errors_still_carry_errno():
    out = subprocess.run([sys.executable, "-S", "-c", PROBE, HERE], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "True", "True", "9"]      # 9: EBADF
