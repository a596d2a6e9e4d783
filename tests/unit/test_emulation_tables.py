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
