"""This machine's platform as OCI names it (light: on the path of `run`)."""

import os

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm",
         "armv6l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def host_arch():
    """amd64, arm64, ... (the kernel's machine name in Go's words)."""
    machine = os.uname().machine
    return _ARCH.get(machine, machine)
