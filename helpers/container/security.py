"""Capabilities, masked and read-only paths, and the seccomp filter: the
defaults Docker applies, as data."""

import struct

from ..errors import UsageError

# <linux/capability.h>, in kernel order.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
    "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
    "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
CAP_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}

# Docker's default set (moby oci/caps/defaults.go).
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD",
                "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP",
                "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")

# Docker's masked and read-only paths (moby oci/defaults.go).
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
                "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                  "/proc/sysrq-trigger")

# Docker's network sysctls (20.10+) for a container with a network
# namespace of its own (spec.default_net_sysctls): any port for every user
# and ICMP echo sockets for every group, only there.  A kernel without
# them goes without (runtime.OPTIONAL_SYSCTLS).
UNPRIVILEGED_PORTS = "net.ipv4.ip_unprivileged_port_start"
PING_GROUPS = "net.ipv4.ping_group_range"


def normalize_cap(name):
    n = name.strip().upper()
    if n.startswith("CAP_"):
        n = n[4:]
    if n == "ALL":
        return n
    if n not in CAP_NUMBER:
        raise UsageError("unknown capability: %r" % name,
                         hint="names as in capabilities(7), e.g. NET_ADMIN or "
                              "CAP_NET_ADMIN; ALL for every one")
    return n


def effective_caps(cap_add, cap_drop, privileged, last_cap=None):
    """The capability names a container gets, in the spec's CAP_ form."""
    known = CAPABILITIES if last_cap is None else CAPABILITIES[:last_cap + 1]
    if privileged:
        return ["CAP_" + c for c in known]
    adds = [normalize_cap(c) for c in cap_add]
    drops = [normalize_cap(c) for c in cap_drop]
    caps = list(DEFAULT_CAPS)
    if "ALL" in adds:
        caps = list(known)
    else:
        caps += [c for c in adds if c not in caps]
    if "ALL" in drops:
        caps = [c for c in caps if c in adds]
    else:
        caps = [c for c in caps if c not in drops]
    return ["CAP_" + c for c in caps if c in known]


def cap_mask(names):
    mask = 0
    for n in names:
        mask |= 1 << CAP_NUMBER[n[4:] if n.startswith("CAP_") else n]
    return mask


# -- seccomp --------------------------------------------------------------
# A deny list of x86_64 system calls that Docker's default profile also
# refuses and that matter even inside a user namespace: kernel keyrings
# (not namespaced; CVE-2016-0728), module and kexec loading, clock and swap
# changes, open_by_handle_at (the "shocker" escape), new mount API calls that
# could build mounts outside the caps check, perf/bpf/userfaultfd (kernel
# attack surface), and the personality flags that disable ASLR.  Refused with
# EPERM, as Docker does.  Applied last, right before execve.
SECCOMP_DENY_X86_64 = {
    "acct": 163, "add_key": 248, "bpf": 321, "clock_adjtime": 305,
    "clock_settime": 227, "delete_module": 176, "finit_module": 313,
    "get_kernel_syms": 177, "init_module": 175, "ioperm": 173, "iopl": 172,
    "kcmp": 312, "kexec_file_load": 320, "kexec_load": 246, "keyctl": 250,
    "lookup_dcookie": 212, "nfsservctl": 180, "open_by_handle_at": 304,
    "perf_event_open": 298, "query_module": 178, "quotactl": 179,
    "reboot": 169, "request_key": 249, "settimeofday": 164, "swapoff": 168,
    "swapon": 167, "_sysctl": 156, "uselib": 134, "userfaultfd": 323,
    "create_module": 174, "afs_syscall": 183,
    "ustat": 136, "sysfs": 139, "fsconfig": 431, "fsmount": 432,
    "fsopen": 430, "fspick": 433, "move_mount": 429, "open_tree": 428,
    "mount_setattr": 442,
    # io_uring: a large kernel attack surface of its own, outside what the
    # rest of this filter sees (Docker's profile refuses it since 25.0).
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
}
# personality(2) only with the personas Docker's profile allows (Linux,
# 32-bit Linux, UNAME26, both, and the query), not ADDR_NO_RANDOMIZE and
# the other flags that weaken ASLR.
_NR_PERSONALITY = 135
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# Without CAP_SYS_ADMIN, as Docker's and podman's default profiles: no new
# namespaces (clone and unshare with a namespace flag, setns; clone3, whose
# flags sit in memory a filter cannot read, answers ENOSYS, so that libc
# falls back to clone).  A new user namespace would hand the container a
# full capability set over namespaces of its own, and with it the kernel's
# netfilter and filesystem code that the container's bounding set keeps it
# from: the way most kernel exploits start.
NAMESPACE_SYSCALLS_X86_64 = {"clone": 56, "unshare": 272, "setns": 308, "clone3": 435}
CLONE_NAMESPACE_FLAGS = {"CLONE_NEWNS": 0x20000, "CLONE_NEWCGROUP": 0x2000000,
                         "CLONE_NEWUTS": 0x4000000, "CLONE_NEWIPC": 0x8000000,
                         "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                         "CLONE_NEWNET": 0x40000000}

AUDIT_ARCH_X86_64 = 0xC000003E
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL_PROCESS = 0x80000000
_EPERM = 1
_ENOSYS = 38
_ARG0 = 16                      # seccomp_data.args[0], its low 32 bits
_X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
_NR_BIND = 49


def bind_notify_program():
    """bind(2) waits for the supervisor's answer (its native monitor gives
    published ports' sockets that live in the host's network namespace:
    network.direct_bindings); everything else passes."""
    return [
        (_BPF_LD_W_ABS, 0, 0, 4),                       # seccomp_data.arch
        (_BPF_JEQ_K, 0, 2, AUDIT_ARCH_X86_64),
        (_BPF_LD_W_ABS, 0, 0, 0),                       # seccomp_data.nr
        (_BPF_JEQ_K, 1, 0, _NR_BIND),
        (_BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        (_BPF_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF),
    ]


def seccomp_filter(seccomp, capabilities=()):
    """The program for a spec's linux.seccomp: the one compiled at create
    from --security-opt seccomp=PROFILE (seccomp_profile.py; kept as the
    hex of its instructions, "sandboxProgram"), else sandbox's own for the
    bounding set ``capabilities``."""
    code = seccomp.get("sandboxProgram")
    if code:
        return [tuple(insn) for insn in struct.iter_unpack("<HBBI", bytes.fromhex(code))]
    return seccomp_program(capabilities)


def seccomp_prologue():
    """The start of every filter here (ours and a profile's): a call of
    another architecture ends the process, an x32 call gets EPERM; then
    the call's number is in A."""
    return [
        (_BPF_LD_W_ABS, 0, 0, 4),                       # seccomp_data.arch
        (_BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        (_BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        (_BPF_LD_W_ABS, 0, 0, 0),                       # seccomp_data.nr
        # x32 ABI numbers have bit 30 set; >= means JGE (0x35)
        (0x35, 0, 1, _X32_SYSCALL_BIT),
        (_BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | _EPERM),
    ]


def seccomp_program(capabilities=()):
    """Classic BPF: check the arch, refuse x32 calls, personas other than
    PERSONALITIES, new namespaces unless ``capabilities`` (the bounding
    set's names) has CAP_SYS_ADMIN, and the list."""
    deny = sorted(set(SECCOMP_DENY_X86_64.values()))
    prog = seccomp_prologue()
    allowed = len(PERSONALITIES)
    prog.append((_BPF_JEQ_K, 0, allowed + 3, _NR_PERSONALITY))
    prog.append((_BPF_LD_W_ABS, 0, 0, _ARG0))
    prog += [(_BPF_JEQ_K, allowed - i, 0, persona) for i, persona in enumerate(PERSONALITIES)]
    prog.append((_BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | _EPERM))
    prog.append((_BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    if "CAP_SYS_ADMIN" not in capabilities:
        nr = NAMESPACE_SYSCALLS_X86_64
        prog += [
            (_BPF_JEQ_K, 0, 1, nr["clone3"]),
            (_BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | _ENOSYS),
            (_BPF_JEQ_K, 0, 1, nr["setns"]),
            (_BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | _EPERM),
            (_BPF_JEQ_K, 1, 0, nr["clone"]),
            (_BPF_JEQ_K, 0, 4, nr["unshare"]),          # neither: on to the list
            (_BPF_LD_W_ABS, 0, 0, _ARG0),               # their flags
            (_BPF_JSET_K, 0, 1, sum(CLONE_NAMESPACE_FLAGS.values())),
            (_BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | _EPERM),
            (_BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ]
    n = len(deny)
    for i, nr in enumerate(deny):
        # on match jump to the final "deny" return, which sits after the
        # remaining comparisons and the "allow" return
        prog.append((_BPF_JEQ_K, n - i, 0, nr))
    prog.append((_BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    prog.append((_BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | _EPERM))
    return prog
