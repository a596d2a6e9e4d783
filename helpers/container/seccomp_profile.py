"""--security-opt seccomp=PROFILE: a seccomp profile of Docker's JSON form
(the one moby ships as default.json, and the OCI runtime spec's
LinuxSeccomp), in place of sandbox's own filter (security.seccomp_program).

``resolve`` turns the profile into the OCI form for one container, as
Docker's daemon does at create: each rule's ``includes`` and ``excludes``
(capabilities of the container's bounding set, architectures, minimum
kernel) decide whether it is kept.  ``to_bpf`` turns that into classic
BPF for x86_64 (syscalls_x86_64.py names the calls; a name this table or
kernel does not know is left out, as runc does):

- a call of another architecture (i386's int 0x80) ends the process, an
  x32 call answers EPERM, as in sandbox's own filter;
- rules are tried in their order, and the first whose call and argument
  conditions match gives its action; no match, the default action;
- argument conditions are 64-bit, unsigned: SCMP_CMP_EQ, NE, LT, LE, GT,
  GE and MASKED_EQ (``(arg & value) == valueTwo``); several in one rule
  must all hold;
- actions: SCMP_ACT_ALLOW, ERRNO (``errnoRet``, else the profile's
  ``defaultErrnoRet``, else EPERM), KILL and KILL_THREAD, KILL_PROCESS,
  TRAP, TRACE (ENOSYS with no tracer, or ``errnoRet``) and LOG;
  SCMP_ACT_NOTIFY is refused (nothing here would answer it).
"""

import json
import os

from ..errors import UsageError
from .security import SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS, \
    seccomp_prologue
from .syscalls_x86_64 import SYSCALLS

ACTIONS = {"SCMP_ACT_ALLOW": SECCOMP_RET_ALLOW, "SCMP_ACT_ERRNO": SECCOMP_RET_ERRNO,
           "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
           "SCMP_ACT_KILL_PROCESS": SECCOMP_RET_KILL_PROCESS, "SCMP_ACT_TRAP": 0x00030000,
           "SCMP_ACT_TRACE": 0x7FF00000, "SCMP_ACT_LOG": 0x7FFC0000}
OPS = ("SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT",
       "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ")
# The architecture names profiles use for this host (Docker's are Go's).
ARCH_NAMES = ("amd64", "x86_64", "SCMP_ARCH_X86_64")
EPERM, ENOSYS = 1, 38
MAX_INSNS = 4096                # BPF_MAXINSNS

_LD_W_ABS, _JEQ, _JGT, _JGE, _JSET, _JA = 0x20, 0x15, 0x25, 0x35, 0x45, 0x05
_AND_K, _RET = 0x54, 0x06
_FAIL = "fail"                  # a jump to the end of the current block


def _error(path, what):
    return UsageError("seccomp profile %s: %s" % (path, what),
                      hint="a profile in Docker's JSON form (defaultAction, syscalls)")


def load(path):
    """The profile at ``path`` (a JSON object), checked: exit 125 with
    what is wrong, before anything is made."""
    try:
        with open(path, "rb") as f:
            profile = json.loads(f.read())
    except OSError as exc:
        raise _error(path, exc.strerror) from None
    except ValueError as exc:
        raise _error(path, "not JSON: %s" % exc) from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise _error(path, "no defaultAction")
    _action(path, profile["defaultAction"])
    for rule in profile.get("syscalls") or []:
        if not isinstance(rule, dict):
            raise _error(path, "a syscalls entry is not an object")
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names or not all(isinstance(n, str) for n in names):
            raise _error(path, "a syscalls entry names no system call")
        _action(path, rule.get("action"))
        for arg in rule.get("args") or []:
            if not isinstance(arg, dict) or arg.get("op") not in OPS or \
                    not isinstance(arg.get("index"), int) or not 0 <= arg["index"] <= 5:
                raise _error(path, "a bad argument condition %r in the rule for %s"
                             % (arg, ", ".join(names)))
            for key in ("value", "valueTwo"):
                if not isinstance(arg.get(key, 0), int) or not 0 <= arg.get(key, 0) < 1 << 64:
                    raise _error(path, "%s of an argument condition is not a "
                                       "64-bit number" % key)
    return profile


def _action(path, action):
    if action == "SCMP_ACT_NOTIFY":
        raise _error(path, "SCMP_ACT_NOTIFY is not supported (no agent answers it)")
    if action not in ACTIONS:
        raise _error(path, "unknown action %r" % (action,))


def _kernel():
    parts = []
    for piece in os.uname().release.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts)


def _applies(rule, caps, kernel):
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if any(c in caps for c in exc.get("caps") or []):
        return False
    if any(a in ARCH_NAMES for a in exc.get("arches") or []):
        return False
    if inc.get("arches") and not any(a in ARCH_NAMES for a in inc["arches"]):
        return False
    if not all(c in caps for c in inc.get("caps") or []):
        return False
    if inc.get("minKernel"):
        want = tuple(int(p) for p in str(inc["minKernel"]).split(".")[:2] if p.isdigit())
        if kernel < want:
            return False
    return True


def resolve(profile, caps, kernel=None):
    """The OCI LinuxSeccomp for a container with bounding set ``caps``
    ("CAP_..." names): the rules that apply, in the profile's order."""
    kernel = kernel or _kernel()
    rules = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, caps, kernel):
            continue
        out = {"names": list(rule.get("names") or [rule["name"]]), "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            out["args"] = [{"index": a["index"], "value": a.get("value", 0),
                            "valueTwo": a.get("valueTwo", 0), "op": a["op"]}
                           for a in rule["args"]]
        rules.append(out)
    oci = {"defaultAction": profile["defaultAction"], "syscalls": rules,
           "architectures": ["SCMP_ARCH_X86_64"]}
    if profile.get("defaultErrnoRet") is not None:
        oci["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return oci


def _ret(action, errno_ret, default_errno):
    base = ACTIONS[action]
    if action == "SCMP_ACT_ERRNO":
        errno = errno_ret if errno_ret is not None else default_errno
        return base | ((EPERM if errno is None else errno) & 0xFFFF)
    if action == "SCMP_ACT_TRACE":
        return base | ((ENOSYS if errno_ret is None else errno_ret) & 0xFFFF)
    return base


def _arg_code(arg):
    """Instructions that fall through when the condition holds and jump
    to _FAIL when it does not (A is clobbered)."""
    lo_off = 16 + 8 * arg["index"]
    hi_off = lo_off + 4
    value, two = arg.get("value", 0), arg.get("valueTwo", 0)
    vhi, vlo = value >> 32, value & 0xFFFFFFFF
    op = arg["op"]
    if op == "SCMP_CMP_MASKED_EQ":
        return [(_LD_W_ABS, 0, 0, hi_off), (_AND_K, 0, 0, vhi), (_JEQ, 0, _FAIL, two >> 32),
                (_LD_W_ABS, 0, 0, lo_off), (_AND_K, 0, 0, vlo),
                (_JEQ, 0, _FAIL, two & 0xFFFFFFFF)]
    if op == "SCMP_CMP_EQ":
        return [(_LD_W_ABS, 0, 0, hi_off), (_JEQ, 0, _FAIL, vhi),
                (_LD_W_ABS, 0, 0, lo_off), (_JEQ, 0, _FAIL, vlo)]
    if op == "SCMP_CMP_NE":
        return [(_LD_W_ABS, 0, 0, hi_off), (_JEQ, 0, 2, vhi),
                (_LD_W_ABS, 0, 0, lo_off), (_JEQ, _FAIL, 0, vlo)]
    if op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        last = _JGT if op == "SCMP_CMP_GT" else _JGE
        return [(_LD_W_ABS, 0, 0, hi_off), (_JGT, 3, 0, vhi), (_JEQ, 0, _FAIL, vhi),
                (_LD_W_ABS, 0, 0, lo_off), (last, 0, _FAIL, vlo)]
    # LT, LE: fail when hi is greater, hold when it is smaller
    last = _JGE if op == "SCMP_CMP_LT" else _JGT
    return [(_LD_W_ABS, 0, 0, hi_off), (_JGT, _FAIL, 0, vhi), (_JEQ, 0, 2, vhi),
            (_LD_W_ABS, 0, 0, lo_off), (last, _FAIL, 0, vlo)]


def _block(code):
    """Resolve _FAIL jumps: to the instruction after ``code``."""
    out = []
    for pos, (op, jt, jf, k) in enumerate(code):
        end = len(code) - pos - 1
        out.append((op, end if jt == _FAIL else jt, end if jf == _FAIL else jf, k))
    return out


def to_bpf(oci):
    """Classic BPF (a list of (code, jt, jf, k)) for an OCI LinuxSeccomp."""
    default_errno = oci.get("defaultErrnoRet")
    prog = seccomp_prologue()
    for rule in oci.get("syscalls") or []:
        ret = _ret(rule["action"], rule.get("errnoRet"), default_errno)
        numbers = [SYSCALLS[n] for n in rule["names"] if n in SYSCALLS]
        if not rule.get("args"):
            for start in range(0, len(numbers), 200):       # (jumps reach 255)
                chunk = numbers[start:start + 200]
                block = [(_LD_W_ABS, 0, 0, 0)]
                block += [(_JEQ, len(chunk) - i, 0, nr) for i, nr in enumerate(chunk)]
                block += [(_JA, 0, 0, 1), (_RET, 0, 0, ret)]
                prog += block
            continue
        conditions = []
        for arg in rule["args"]:
            conditions += _arg_code(arg)
        for nr in numbers:
            prog += _block([(_LD_W_ABS, 0, 0, 0), (_JEQ, 0, _FAIL, nr)] + conditions
                           + [(_RET, 0, 0, ret)])
    prog.append((_RET, 0, 0, _ret(oci["defaultAction"], None, default_errno)))
    if len(prog) > MAX_INSNS:
        raise UsageError("the seccomp profile makes a filter of %d instructions, "
                         "more than the kernel's %d" % (len(prog), MAX_INSNS),
                         hint="fewer rules with argument conditions")
    return prog
