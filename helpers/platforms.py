"""This machine's platform as OCI names it (light: on the path of `run`)."""

import os

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm",
         "armv6l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def text(os_, arch, variant=None):
    """A platform as OCI writes it: "linux/arm64/v8", without the parts
    it lacks."""
    return "/".join(x for x in (os_, arch, variant) if x)


def host_arch():
    """amd64, arm64, ... (the kernel's machine name in Go's words)."""
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


# Go's GOOS/GOARCH pairs (Docker's `manifest annotate` accepts these).
VALID_PLATFORMS = {
    "aix": ("ppc64",), "android": ("386", "amd64", "arm", "arm64"),
    "darwin": ("386", "amd64", "arm", "arm64"), "dragonfly": ("amd64",),
    "freebsd": ("386", "amd64", "arm", "arm64", "riscv64"), "illumos": ("amd64",),
    "ios": ("arm64",), "js": ("wasm",), "wasip1": ("wasm",),
    "linux": ("386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64",
              "mips64le", "ppc64", "ppc64le", "riscv64", "s390x"),
    "netbsd": ("386", "amd64", "arm", "arm64"), "openbsd": ("386", "amd64", "arm", "arm64"),
    "plan9": ("386", "amd64", "arm"), "solaris": ("amd64",),
    "windows": ("386", "amd64", "arm", "arm64"),
}
