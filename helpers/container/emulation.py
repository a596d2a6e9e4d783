"""Images of other architectures (run --platform linux/arm64 on amd64),
emulated with qemu-user, without root and without touching the host.

Docker needs a privileged container (tonistiigi/binfmt) to register qemu
in the host's binfmt_misc, and podman relies on the administrator having
done so.  Since Linux 6.7 a user namespace may mount a binfmt_misc of its
own, whose entries hold for its processes and those of the namespaces
below it.  So, when a container of a foreign architecture is to start:

- If the host's binfmt_misc already has an enabled entry for it with the
  F flag (the interpreter opened when registered, so usable inside any
  root filesystem), nothing is done.
- Else a keeper process ("sandbox-binfmt") joins the user's shared user
  namespace, makes a mount namespace of its own, mounts binfmt_misc there
  and registers every static qemu-user interpreter it finds, with flags
  F and P (as Debian's qemu-user-static registers them), and the host's
  own entries again (wine, java, ...: the namespace's binfmt_misc hides
  the host's from its processes), then sleeps:
  the entries live as long as its mount does.  Its record (binfmt.json in
  the run root) says which user namespace it serves; a keeper of an older
  namespace is replaced.  The containers never see the mount: a container
  cannot register interpreters for the others.

Interpreters: qemu-ARCH-static (or a static qemu-ARCH) in $SANDBOX_QEMU_DIR
(':'-separated), /usr/bin, /usr/local/bin, /usr/libexec/qemu-binfmt; the
magic and mask from /usr/share/binfmts/qemu-ARCH (Debian's) where present,
else those of qemu's qemu-binfmt-conf.sh below."""

import os
import struct

from .. import fsutil
from ..errors import HostError

KEEPER_NAME = "sandbox-binfmt"
# OCI architecture -> (qemu's name, magic, mask): Debian's /usr/share/binfmts
# (qemu-user-static 7.2) for all but x86_64 (qemu-binfmt-conf.sh).
_ELF = b"\x7fELF"
QEMU = {
    "arm64": ("aarch64", _ELF + b"\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
              b"\xff" * 7 + b"\x00" + b"\xff" * 8 + b"\xfe\xff\xff\xff"),
    "arm": ("arm", _ELF + b"\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00",
            b"\xff" * 7 + b"\x00" + b"\xff" * 8 + b"\xfe\xff\xff\xff"),
    "ppc64le": ("ppc64le", _ELF + b"\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00",
                b"\xff" * 7 + b"\xfc" + b"\xff" * 8 + b"\xfe\xff\xff\x00"),
    "s390x": ("s390x", _ELF + b"\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16",
              b"\xff" * 7 + b"\xfc" + b"\xff" * 9 + b"\xfe\xff\xff"),
    "riscv64": ("riscv64", _ELF + b"\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00",
                b"\xff" * 7 + b"\x00" + b"\xff" * 8 + b"\xfe\xff\xff\xff"),
    "amd64": ("x86_64", _ELF + b"\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00",
              b"\xff" * 5 + b"\xfe\xfe\x00" + b"\xff" * 8 + b"\xfe\xff\xff\xff"),
}
# What a host runs without emulation besides its own architecture.
NATIVE_TOO = {"amd64": ("386",), "arm64": ("arm",)}
SEARCH = ("/usr/bin", "/usr/local/bin", "/usr/libexec/qemu-binfmt")
HOST_BINFMT = "/proc/sys/fs/binfmt_misc"


def needed(arch):
    """Whether an image of ``arch`` needs emulation on this host."""
    from ..platforms import host_arch
    host = host_arch()
    return bool(arch) and arch != host and arch not in NATIVE_TOO.get(host, ())


def supported(arch):
    """Whether this host runs ``arch``: natively, or through an emulator
    sandbox knows (QEMU)."""
    return not needed(arch) or arch in QEMU


def _stored(magic, mask):
    """A magic as binfmt_misc keeps it: its bytes under the mask."""
    return bytes(m & k for m, k in zip(magic, mask))


def _is_static(path):
    """An ELF file without a program interpreter (PT_INTERP)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != _ELF or head[4] != 2:
                return False
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except (OSError, struct.error, IndexError):
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def interpreter(qemu_name):
    """The static qemu-user interpreter for ``qemu_name``, or None."""
    dirs = [d for d in os.environ.get("SANDBOX_QEMU_DIR", "").split(":") if d] + list(SEARCH)
    for d in dirs:
        for name in ("qemu-%s-static" % qemu_name, "%s-binfmt-P" % qemu_name,
                     "qemu-%s" % qemu_name):
            path = os.path.join(d, name)
            if os.access(path, os.X_OK) and _is_static(os.path.realpath(path)):
                return os.path.realpath(path)
    return None


def kernel_can():
    """Whether this kernel mounts a binfmt_misc per user namespace (6.7+)."""
    import re
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (6, 7)


def available():
    """{arch: True (the host's binfmt_misc runs it) or the interpreter's
    path} for the architectures this host can run emulated (`info`)."""
    out = {}
    for arch in QEMU:
        if not needed(arch):
            continue
        if host_handles(arch):
            out[arch] = True
        else:
            path = interpreter(QEMU[arch][0])
            if path:
                out[arch] = path
    return out


def _magic(arch):
    """(qemu name, magic, mask): Debian's binfmts file, else our table."""
    name, magic, mask = QEMU[arch]
    try:
        with open("/usr/share/binfmts/qemu-" + name) as f:
            fields = _parse_entry("\n" + f.read())      # (no "enabled" line first)
        magic, mask = (fields[k].encode().decode("unicode_escape").encode("latin-1")
                       for k in ("magic", "mask"))
    except (OSError, KeyError, ValueError):
        pass
    return name, magic, mask


def _escaped(data):
    return "".join("\\x%02x" % b for b in data)


def registration(arch, path):
    """The line written to binfmt_misc's register for ``arch``."""
    name, magic, mask = _magic(arch)
    return ":sandbox-qemu-%s:M:0:%s:%s:%s:FP" % (name, _escaped(magic), _escaped(mask), path)


def host_handles(arch):
    """Whether the host's own binfmt_misc runs ``arch`` in any root
    filesystem (an enabled entry with the F flag for its magic)."""
    name, magic, mask = _magic(arch)
    stored = _stored(magic, mask).hex()
    return any(e["enabled"] and "F" in e.get("flags", "") and
               e.get("magic") in (stored, magic.hex()) for _, e in _host_entries())


def _host_entries():
    """(name, _parse_entry's fields) of the host's binfmt_misc entries
    that can be read, by name."""
    try:
        names = sorted(os.listdir(HOST_BINFMT))
    except OSError:
        return
    for name in names:
        if name in ("register", "status"):
            continue
        try:
            with open(os.path.join(HOST_BINFMT, name)) as f:
                yield name, _parse_entry(f.read())
        except OSError:
            continue


def _parse_entry(text):
    """A binfmt_misc entry file's fields: {"enabled", "interpreter",
    "flags", "offset", "magic", "mask", "extension"}."""
    lines = text.splitlines()
    out = {"enabled": bool(lines) and lines[0] == "enabled"}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        out[key.rstrip(":")] = value.strip()
    return out


def host_registrations(skip_magics=()):
    """The host's enabled binfmt_misc entries (readable where it is
    mounted) as registration lines, but those of ``skip_magics`` (ours
    replace them): a binfmt_misc of a user namespace hides the host's
    from its processes, so the keeper registers them again (wine, java,
    an admin's qemu), as they were."""
    out = []
    for name, e in _host_entries():
        if name.startswith("sandbox-qemu-") or not e["enabled"] or not e.get("interpreter"):
            continue
        flags = e.get("flags", "")
        if e.get("magic"):
            magic = bytes.fromhex(e["magic"])
            if magic in skip_magics:
                continue
            mask = bytes.fromhex(e["mask"]) if e.get("mask") else b""
            out.append(":%s:M:%s:%s:%s:%s:%s" % (name, e.get("offset", "0"), _escaped(magic),
                                                 _escaped(mask), e["interpreter"], flags))
        elif e.get("extension"):
            out.append(":%s:E::%s::%s:%s" % (name, e["extension"].lstrip("."),
                                             e["interpreter"], flags))
    return out


def _record_path():
    from ..paths import default_runroot
    return os.path.join(default_runroot(), "binfmt.json")


def _serving(record, userns_ino):
    """Whether the recorded keeper is alive and serves this user namespace."""
    from ..pids import alive
    if not record or record.get("userns") != userns_ino:
        return False
    pid = record.get("pid", 0)
    if not alive(pid, record.get("start")):
        return False
    try:
        return os.stat("/proc/%d/ns/user" % pid).st_ino == userns_ino
    except OSError:
        return False


def prepare(arch):
    """ensure(), with a failure only warned about: an image may say another
    architecture and hold programs of this host's (mislabelled images
    exist), and Docker runs it all the same; if its programs are foreign,
    the exec then fails with "exec format error" (126) after the warning."""
    try:
        ensure(arch)
    except HostError as exc:
        from ..errors import warn
        warn(exc.message, hint=exc.hint)


def ensure(arch):
    """Make ``arch`` runnable in the user's containers (see the module's
    docstring), or say clearly why it cannot be."""
    if not needed(arch):
        return
    if not supported(arch):
        raise HostError("images for linux/%s cannot run here: sandbox knows no emulator "
                        "for that architecture" % arch,
                        hint="run an image built for this machine's architecture")
    if host_handles(arch):
        return
    from .. import userns
    fd = userns.shared_userns_fd()
    try:
        ino = os.fstat(fd).st_ino
        path = _record_path()
        record = fsutil.read_json(path, default={})
        if _serving(record, ino) and arch in record.get("arches", []):
            return
        with fsutil.locked(path + ".lock"):
            record = fsutil.read_json(path, default={})
            if _serving(record, ino) and arch in record.get("arches", []):
                return
            found = {a: interpreter(QEMU[a][0]) for a in QEMU if needed(a)}
            found = {a: p for a, p in found.items() if p}
            if arch not in found:
                raise HostError(
                    "images for linux/%s need emulation, and no static qemu-%s was found"
                    % (arch, QEMU[arch][0]),
                    hint="install qemu-user-static (Debian, Ubuntu, Fedora), or put "
                         "qemu-%s-static in a directory named by $SANDBOX_QEMU_DIR"
                         % QEMU[arch][0])
            ours = set()
            for a in found:
                _, magic, mask = _magic(a)
                ours |= {magic, _stored(magic, mask)}
            lines = [registration(a, p) for a, p in sorted(found.items())]
            pid = _start_keeper(fd, host_registrations(ours) + lines)
            from ..pids import alive, proc_start_time
            old = record.get("pid")
            fsutil.write_json(path, {"pid": pid, "start": proc_start_time(pid),
                                     "userns": ino, "arches": sorted(found),
                                     "interpreters": found}, mode=0o600)
            if old and alive(old, record.get("start")):
                # Its entries now live on in the new keeper's mount (one
                # binfmt_misc per user namespace), or served an old one.
                import signal
                os.kill(old, signal.SIGKILL)
    finally:
        os.close(fd)


def _start_keeper(userns_fd, lines):
    """The keeper: registration ``lines`` (the later ones first in the
    kernel's order) in a binfmt_misc of the user namespace it holds."""
    from .. import linux
    from ..userns import spawn_keeper

    def enter():
        linux.setns(userns_fd, linux.CLONE_NEWUSER)
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        try:
            linux.mount("binfmt_misc", HOST_BINFMT, "binfmt_misc")
        except OSError as exc:
            raise HostError("cannot mount a binfmt_misc of the user namespace (%s)"
                            % os.strerror(exc.errno),
                            hint="emulation without root needs Linux 6.7 or later") from None
        for line in lines:
            try:
                with open(os.path.join(HOST_BINFMT, "register"), "w") as f:
                    f.write(line)
            except FileExistsError:
                pass            # (registered by a keeper before us)
            except OSError:
                if line.startswith(":sandbox-qemu-"):
                    raise
                # (a host entry this namespace may not have: left out)
        return None
    return spawn_keeper(KEEPER_NAME, enter, what="cannot set up emulation")
