"""Emulation's tables and checks: the magic and mask of each architecture
(Debian's /usr/share/binfmts where qemu-user-static's files are there),
the registration line, what needs emulation, and static interpreters."""

import os
import sys

from helpers.container import emulation


def test_registration_line():
    line = emulation.registration("arm64", "/usr/bin/qemu-aarch64-static")
    name, kind, offset, magic, mask, path, flags = line[1:].split(":")
    assert (name, kind, offset, path, flags) == (
        "sandbox-qemu-aarch64", "M", "0", "/usr/bin/qemu-aarch64-static", "FP")
    assert magic.startswith("\\x7f\\x45\\x4c\\x46\\x02")      # ELF, 64-bit
    assert len(magic) == len(mask) == 20 * 4


def test_needed_on_this_host():
    from helpers.platforms import host_arch
    host = host_arch()
    assert not emulation.needed(host)
    assert not emulation.needed(None)
    assert emulation.needed("riscv64") == (host != "riscv64")
    if host == "amd64":
        assert not emulation.needed("386") and emulation.needed("arm64")


def test_static_and_dynamic_programs():
    assert not emulation._is_static(sys.executable)         # has PT_INTERP
    assert not emulation._is_static("/etc/passwd")
    if os.path.exists("/bin/busybox"):                        # busybox-static
        assert emulation._is_static(os.path.realpath("/bin/busybox"))


def test_table_matches_debians_binfmts():
    for arch, (name, magic, mask) in emulation.QEMU.items():
        path = "/usr/share/binfmts/qemu-" + name
        if os.path.exists(path):
            assert emulation._magic(arch) == (name, magic, mask), arch


def test_kernel_check(monkeypatch):
    class U:
        def __init__(self, release):
            self.release = release
    for release, ok in (("6.18.0-1-amd64", True), ("6.7.0", True), ("6.6.30", False),
                        ("5.10.0-28-amd64", False), ("7.0.1", True)):
        monkeypatch.setattr(os, "uname", lambda r=release: U(r))
        assert emulation.kernel_can() is ok, release


def test_host_entries_registered_again(tmp_path, monkeypatch):
    (tmp_path / "register").write_text("")
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "wine").write_text("enabled\ninterpreter /usr/bin/wine\nflags: \n"
                                   "extension .exe\n")
    (tmp_path / "jar").write_text("disabled\ninterpreter /usr/bin/jexec\nflags: \n"
                                  "extension .jar\n")
    name, magic, mask = emulation._magic("arm64")
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OCF\noffset 0\n"
        "magic %s\nmask %s\n" % (magic.hex(), mask.hex()))
    (tmp_path / "other").write_text(
        "enabled\ninterpreter /x/run\nflags: P\noffset 2\nmagic 4142\nmask ff0f\n")
    monkeypatch.setattr(emulation, "HOST_BINFMT", str(tmp_path))
    assert emulation.host_registrations({magic}) == [
        ":other:M:2:\\x41\\x42:\\xff\\x0f:/x/run:P",
        ":wine:E::exe::/usr/bin/wine:"]
    assert len(emulation.host_registrations()) == 3


def test_host_handles_reads_entries_as_the_kernel_writes_them(tmp_path, monkeypatch):
    """Flags may be empty ("flags: " and nothing more): the systemd guest
    has such entries, which once made `info` fail."""
    name, magic, mask = emulation._magic("arm64")
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "python3.11").write_text("enabled\ninterpreter /usr/bin/python3.11\nflags:\n"
                                         "offset 0\nmagic a70d0d0a\n")
    monkeypatch.setattr(emulation, "HOST_BINFMT", str(tmp_path))
    assert not emulation.host_handles("arm64")
    stored = bytes(m & k for m, k in zip(magic, mask))
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: POCF\noffset 0\n"
        "magic %s\nmask %s\n" % (stored.hex(), mask.hex()))
    assert emulation.host_handles("arm64")
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: P\noffset 0\n"
        "magic %s\nmask %s\n" % (stored.hex(), mask.hex()))
    assert not emulation.host_handles("arm64")          # no F: not in every root
