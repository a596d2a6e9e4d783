"""Thin wrappers (_ctypes) around the Linux syscalls that the stdlib lacks.

One wrapper per syscall, ``argtypes`` declared once, every failure raised as
``OSError(errno, strerror, path)``.  This module imports nothing from the
package, so a child that has already pivoted into the container root can still
call into it (all of it is loaded before the pivot).  (DESIGN.md, house style 1)
"""

import os


class _Lib:
    """The libc side: _ctypes, its simple C types and libc's function
    pointers, made at the first syscall (_load), not at import.  The CLI of
    `run` imports this module for its constants but calls nothing in it:
    C and G, the container's processes, pay for _ctypes (about a
    millisecond), on the other core, while the CLI writes the record.
    Loaded before any pivot (the first setns or unshare loads it), so a
    child past the pivot never imports."""

    def __getattr__(self, name):
        # Only for a missing attribute: once loaded, plain lookups.
        _load(self)
        return object.__getattribute__(self, name)


_lib = _Lib()


def _load(lib):
    # _ctypes, not the ctypes package: the package costs ~2.5 ms (most of
    # it ctypes._endian's classes), and this module needs only function
    # pointers into libc and a few simple C types, all of which are
    # _ctypes' own (the package defines c_int and friends in exactly this
    # way: a _SimpleCData subclass with that struct-module code).
    import _ctypes

    def simple_type(code):
        return type("c_" + code, (_ctypes._SimpleCData,), {"_type_": code})
    c_int, c_long, c_ulong = simple_type("i"), simple_type("l"), simple_type("L")
    c_char_p, c_void_p = simple_type("z"), simple_type("P")

    class Libc:
        _handle = _ctypes.dlopen(None, 0)      # the program's own libc

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = c_int

    def libc(name, argtypes=None, restype=None):
        function = Function((name, Libc))
        if argtypes is not None:
            function.argtypes = argtypes
        if restype is not None:
            function.restype = restype
        return function

    lib.ctypes = _ctypes
    lib.c_char = simple_type("c")
    lib.unshare = libc("unshare", [c_int])
    lib.setns = libc("setns", [c_int, c_int])
    lib.mount = libc("mount", [c_char_p, c_char_p, c_char_p, c_ulong, c_char_p])
    lib.umount2 = libc("umount2", [c_char_p, c_int])
    lib.prctl = libc("prctl", [c_int, c_ulong, c_ulong, c_ulong, c_ulong])
    lib.syscall = libc("syscall", restype=c_long)
    lib.sethostname = libc("sethostname", [c_char_p, c_ulong])
    lib.setdomainname = libc("setdomainname", [c_char_p, c_ulong])
    lib.socket = libc("socket", [c_int, c_int, c_int])
    lib.ioctl = libc("ioctl", [c_int, c_ulong, c_void_p])
    lib.close = libc("close", [c_int])
    lib.inotify_init1 = libc("inotify_init1", [c_int])
    lib.inotify_add_watch = libc("inotify_add_watch", [c_int, c_char_p, c_ulong])


def preload():
    """The libc side now, not at the first syscall: for a process that
    must not import later (monitor.preload)."""
    return _lib.ctypes


def _buffer(data):
    """A writable C copy of ``data`` (passed as a pointer; .raw reads it)."""
    return (_lib.c_char * len(data)).from_buffer_copy(data)


# <linux/sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# <linux/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# <linux/prctl.h>
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

SECCOMP_SET_MODE_FILTER = 1
SYS_pivot_root = 155      # x86_64
SYS_seccomp = 317         # x86_64
SYS_pidfd_getfd = 438
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SYS_setns = 308
SYS_capset = 126

def _check(ret, path=None):
    if ret < 0:
        err = _lib.ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return ret


def _b(s):
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


def unshare(flags):
    _check(_lib.unshare(flags))


def setns(fd, nstype=0):
    _check(_lib.setns(fd, nstype))


def mount(source, target, fstype, flags=0, data=None):
    _check(_lib.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           target)


def umount2(target, flags=0):
    _check(_lib.umount2(_b(target), flags), target)


# inotify(7): what `compose watch` waits on (compose/watch.py).
IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_CLOSE_WRITE, IN_DONT_FOLLOW, IN_ONLYDIR = 0x8, 0x2000000, 0x1000000


def inotify_init1(flags=os.O_NONBLOCK | os.O_CLOEXEC):
    return _check(_lib.inotify_init1(flags))


def inotify_add_watch(fd, path, mask):
    return _check(_lib.inotify_add_watch(fd, _b(path), mask), path)


def pivot_root(new_root, put_old):
    _check(_lib.syscall(SYS_pivot_root, _b(new_root), _b(put_old)), new_root)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(_lib.prctl(option, arg2, arg3, arg4, arg5))


def set_process_name(name):
    """PR_SET_NAME: the comm shown by ps (15 bytes at most)."""
    buf = _buffer(_b(name)[:15] + b"\0")
    prctl(PR_SET_NAME, _lib.ctypes.addressof(buf))


# The fds above 2 that the CLI was started with (hold_back_inherited_fds).
inherited_fds = []


def hold_back_inherited_fds():
    """The fds above 2 that the caller left open to the CLI (a shell's, a
    CI runner's: pipes, files, a directory of the host even) are not the
    container's, nor a supervisor's to keep open for months: made
    close-on-exec here, so that no command, helper or monitor we exec gets
    them, and remembered, so that a process of ours that lives on without
    an exec (--init's PID 1, a Python supervisor) closes them
    (close_inherited_fds).  The CLI itself may still read them (--env-file
    /dev/fd/63).  Without /proc, nothing is done."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
                    inherited_fds.append(fd)
            except OSError:
                pass            # the listing's own fd, closed by now


def close_inherited_fds():
    for fd in inherited_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    del inherited_fds[:]


def scrub_command_line(name):
    """Overwrite what /proc/self/cmdline and /proc/self/environ show (the
    memory the kernel reads them from, proc(5) arg_start..env_end) with
    ``name`` and nothing: for a process forked from the CLI that the
    container's processes can see (--init's PID 1, exec's process before
    its exec), whose command line and environment are the CLI's: the
    user's flags and whole environment (tokens, keys).  Python keeps its
    own copies (sys.argv, os.environ); libc's getenv finds nothing after
    this.  Needs the process's own /proc (before a pivot, or in a /proc of
    its PID namespace).  Best effort (False: not done): a kernel that
    refuses /proc/self/mem writes must not make exec or --init fail."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        # Fields 48-51 of proc(5); [0] is field 3.
        arg_start, arg_end, env_start, env_end = (int(x) for x in fields[45:49])
        text = _b(name)[:max(arg_end - arg_start - 1, 0)]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(arg_start)
            mem.write(text + b"\0" * (arg_end - arg_start - len(text)))
            mem.seek(env_start)
            mem.write(b"\0" * (env_end - env_start))
    except (OSError, ValueError):
        return False
    return True


def setdomainname(name):
    b = name.encode()
    _check(_lib.setdomainname(b, len(b)))


def sethostname(name):
    b = _b(name)
    _check(_lib.sethostname(b, len(b)))


# -- capabilities ---------------------------------------------------------
# <linux/capability.h>: version 3 headers carry two 32-bit data words.
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective, permitted, inheritable):
    """Set the three capability sets of the calling thread (bitmasks)."""
    # struct __user_cap_header_struct {u32 version; int pid}, then two
    # struct __user_cap_data_struct {u32 effective, permitted, inheritable}
    hdr = _buffer(_u32(_LINUX_CAPABILITY_VERSION_3) + _u32(0))
    data = b"".join(_u32((mask >> shift) & 0xFFFFFFFF)
                    for shift in (0, 32)
                    for mask in (effective, permitted, inheritable))
    _check(_lib.syscall(SYS_capset, hdr, _buffer(data)))


def _u32(value):
    return value.to_bytes(4, "little")


def cap_last_cap():
    fd = os.open("/proc/sys/kernel/cap_last_cap", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return int(os.read(fd, 64))
    finally:
        os.close(fd)


def capbset_drop(cap):
    prctl(PR_CAPBSET_DROP, cap)


def cap_ambient_clear():
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass


# -- seccomp --------------------------------------------------------------
def bpf_code(program):
    """A classic-BPF program, a list of (code, jt, jf, k) tuples, as the
    kernel's array of struct sock_filter {u16 code; u8 jt, jf; u32 k}."""
    return b"".join(code.to_bytes(2, "little") + bytes((jt, jf)) + _u32(k)
                    for code, jt, jf, k in program)


def seccomp_set_filter(program, flags=0):
    """Install a classic-BPF seccomp filter: ``program`` is a list of
    (code, jt, jf, k) tuples.  The caller must hold no_new_privs or
    CAP_SYS_ADMIN in its user namespace.  With
    SECCOMP_FILTER_FLAG_NEW_LISTENER, returns the listener's fd."""
    # struct sock_filter {u16 code; u8 jt, jf; u32 k}; struct sock_fprog
    # {unsigned short len; (6 bytes of padding) struct sock_filter *filter}
    insns = _buffer(bpf_code(program))
    prog = _buffer(len(program).to_bytes(2, "little") + bytes(6) +
                   _lib.ctypes.addressof(insns).to_bytes(8, "little"))
    return _check(_lib.syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog))


def pidfd_getfd(pidfd, fd):
    """A duplicate of another process's fd (close-on-exec)."""
    return _check(_lib.syscall(SYS_pidfd_getfd, pidfd, fd, 0))


# -- network interfaces -----------------------------------------------------
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
AF_INET = 2
SOCK_DGRAM = 2
SOCK_CLOEXEC = 0o2000000

def interface_up(name):
    """Set IFF_UP on an interface (netdevice(7) SIOCGIFFLAGS/SIOCSIFFLAGS);
    used for `lo` in a fresh network namespace without importing socket."""
    fd = _check(_lib.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0))
    try:
        ifr = _buffer(name.encode().ljust(40, b"\0"))     # struct ifreq
        _check(_lib.ioctl(fd, SIOCGIFFLAGS, ifr), name)
        flags = int.from_bytes(ifr.raw[16:18], "little") | IFF_UP
        ifr[16:18] = flags.to_bytes(2, "little")
        _check(_lib.ioctl(fd, SIOCSIFFLAGS, ifr), name)
    finally:
        _lib.close(fd)
