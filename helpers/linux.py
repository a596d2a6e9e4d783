"""Thin ctypes wrappers around the Linux syscalls that the stdlib lacks.

One wrapper per syscall, ``argtypes`` declared once, every failure raised as
``OSError(errno, strerror, path)``.  This module imports nothing from the
package, so a child that has already pivoted into the container root can still
call into it (all of it is loaded before the pivot).  (DESIGN.md, house style 1)
"""

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)

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

libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                       ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong, ctypes.c_ulong]
libc.syscall.restype = ctypes.c_long
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(ret, path=None):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return ret


def _b(s):
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


def unshare(flags):
    _check(libc.unshare(flags))


def setns(fd, nstype=0):
    _check(libc.setns(fd, nstype))


def mount(source, target, fstype, flags=0, data=None):
    _check(libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           target)


def umount2(target, flags=0):
    _check(libc.umount2(_b(target), flags), target)


def pivot_root(new_root, put_old):
    _check(libc.syscall(SYS_pivot_root, _b(new_root), _b(put_old)), new_root)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(libc.prctl(option, arg2, arg3, arg4, arg5))


def set_process_name(name):
    """PR_SET_NAME: the comm shown by ps (15 bytes at most)."""
    buf = ctypes.create_string_buffer(_b(name)[:15])
    prctl(PR_SET_NAME, ctypes.addressof(buf))


def sethostname(name):
    b = _b(name)
    _check(libc.sethostname(b, len(b)))


# -- capabilities ---------------------------------------------------------
# <linux/capability.h>: version 3 headers carry two 32-bit data words.
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capset(effective, permitted, inheritable):
    """Set the three capability sets of the calling thread (bitmasks)."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(libc.syscall(SYS_capset, ctypes.byref(hdr), ctypes.byref(data)))


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
class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort),
                ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_set_filter(program, flags=0):
    """Install a classic-BPF seccomp filter: ``program`` is a list of
    (code, jt, jf, k) tuples.  The caller must hold no_new_privs or
    CAP_SYS_ADMIN in its user namespace.  With
    SECCOMP_FILTER_FLAG_NEW_LISTENER, returns the listener's fd."""
    arr = (_SockFilter * len(program))(*[_SockFilter(*ins) for ins in program])
    prog = _SockFprog(len(program), arr)
    return _check(libc.syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags,
                               ctypes.byref(prog)))


def pidfd_getfd(pidfd, fd):
    """A duplicate of another process's fd (close-on-exec)."""
    return _check(libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0))


# -- network interfaces -----------------------------------------------------
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
AF_INET = 2
SOCK_DGRAM = 2
SOCK_CLOEXEC = 0o2000000

libc.socket.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
libc.close.argtypes = [ctypes.c_int]


def interface_up(name):
    """Set IFF_UP on an interface (netdevice(7) SIOCGIFFLAGS/SIOCSIFFLAGS);
    used for `lo` in a fresh network namespace without importing socket."""
    fd = _check(libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0))
    try:
        ifr = ctypes.create_string_buffer(40)      # struct ifreq
        ifr[:len(name)] = name.encode()
        _check(libc.ioctl(fd, SIOCGIFFLAGS, ifr), name)
        flags = int.from_bytes(ifr[16:18], "little") | IFF_UP
        ifr[16:18] = flags.to_bytes(2, "little")
        _check(libc.ioctl(fd, SIOCSIFFLAGS, ifr), name)
    finally:
        libc.close(fd)
