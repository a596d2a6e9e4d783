"""--security-opt seccomp=PROFILE: Docker's profile form resolved for a
container and compiled to classic BPF, run here for real: each filter is
installed in a forked child, which then makes the calls."""

import ctypes
import errno
import json
import os

import pytest

from helpers import linux
from helpers.container import seccomp_profile as sp
from helpers.errors import UsageError

libc = ctypes.CDLL(None, use_errno=True)
libc.lseek.restype = ctypes.c_long


def under(oci, call):
    """call()'s result (repr) in a child that runs under oci's filter."""
    prog = sp.to_bpf(oci)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            linux.seccomp_set_filter(prog)
            os.write(w, repr(call()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


def lseeks():
    """lseek(/dev/zero, OFFSET) for offsets around 2**32: arg 1 is 64-bit."""
    fd = os.open("/dev/zero", os.O_RDONLY)
    out = []
    for off in (5, 0xFFFFFFFF, 0x100000000, 0x100000001, 0x200000000):
        res = libc.lseek(fd, ctypes.c_long(off), 0)
        out.append("ok" if res >= 0 else errno.errorcode[ctypes.get_errno()])
    return out


def lseek_rule(op, value, two=0):
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EINVAL,
         "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}]}]}


@pytest.mark.parametrize("op, value, two, want", [
    ("SCMP_CMP_EQ", 0x100000001, 0, "ok ok ok EINVAL ok"),
    ("SCMP_CMP_NE", 0x100000001, 0, "EINVAL EINVAL EINVAL ok EINVAL"),
    ("SCMP_CMP_GT", 0x100000000, 0, "ok ok ok EINVAL EINVAL"),
    ("SCMP_CMP_GE", 0x100000000, 0, "ok ok EINVAL EINVAL EINVAL"),
    ("SCMP_CMP_LT", 0x100000000, 0, "EINVAL EINVAL ok ok ok"),
    ("SCMP_CMP_LE", 0x100000000, 0, "EINVAL EINVAL EINVAL ok ok"),
    ("SCMP_CMP_MASKED_EQ", 0xFFFFFFFF00000000, 0x100000000, "ok ok EINVAL EINVAL ok"),
])
def test_64_bit_argument_conditions(op, value, two, want):
    assert under(lseek_rule(op, value, two), lseeks) == repr(want.split())


def test_errno_default_and_first_match():
    def mkdir():
        try:
            os.mkdir("/nonexistent-dir/x")
        except OSError as exc:
            return errno.errorcode[exc.errno]
    deny = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat", "not_a_call"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": errno.EACCES},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS}]}
    assert under(deny, mkdir) == "'EACCES'"           # the first rule that matches
    everything = sorted(set(sp.SYSCALLS) - {"mkdir", "mkdirat"})
    allow = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EXDEV,
             "syscalls": [{"names": everything, "action": "SCMP_ACT_ALLOW"}]}
    assert under(allow, mkdir) == "'EXDEV'"            # the default, with its errno
    # 370-odd names make two blocks: getpid sits in the first, write (the
    # child's report) in the second
    assert int(under(allow, os.getpid)) > 0


def test_resolve_keeps_the_rules_that_apply():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["new_one"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
        {"names": ["old_one"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}]}
    names = lambda oci: [r["names"][0] for r in oci["syscalls"]]     # noqa: E731
    assert names(sp.resolve(profile, ["CAP_CHOWN"], (6, 1))) == ["read", "clone", "old_one"]
    assert names(sp.resolve(profile, ["CAP_SYS_ADMIN"], (6, 1))) == ["read", "mount", "old_one"]


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ("[]", "no defaultAction"),
    ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "SCMP_ACT_NOTIFY is not supported"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], '
     '"action": "SCMP_ACT_MAYBE"}]}', "unknown action"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], '
     '"action": "SCMP_ACT_ALLOW", "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]}',
     "a bad argument condition"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}',
     "names no system call"),
])
def test_bad_profiles_are_refused(tmp_path, text, message):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        sp.load(str(path))


def test_a_profile_loads_and_compiles_whole(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"name": "ptrace", "action": "SCMP_ACT_KILL"}]}))      # the older "name" form
    oci = sp.resolve(sp.load(str(path)), [])
    assert oci["syscalls"] == [{"names": ["ptrace"], "action": "SCMP_ACT_KILL"}]
    prog = sp.to_bpf(oci)
    assert prog[-1] == (0x06, 0, 0, 0x7FFF0000)              # the default: allow


def test_sandboxs_own_filter_numbers_agree_with_the_table():
    """security.py keeps its few numbers itself (the CLI's start does not
    import the whole table): they must be the table's.  (vm86 and vm86old,
    i386's, once stood there with their 32-bit numbers, which on x86_64
    are setreuid and umount2: both were refused.)"""
    from helpers.container import security
    for name, nr in list(security.SECCOMP_DENY_X86_64.items()) + \
            list(security.NAMESPACE_SYSCALLS_X86_64.items()) + \
            [("personality", security._NR_PERSONALITY), ("bind", security._NR_BIND)]:
        assert sp.SYSCALLS.get(name) == nr, name
