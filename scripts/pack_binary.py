"""One file from PyInstaller's one-folder build: the front (native/unpack.c)
with the folder appended in the format that front reads (its header
comment says it).  Used by scripts/build-binary; tests/unit/test_unpack.py
packs small folders with it.

    python3 scripts/pack_binary.py FRONT FOLDER OUTPUT
"""

import hashlib
import os
import stat
import struct
import sys

MAGIC = b"SBXPACK1"
ID_LEN = 32


def entries(folder):
    """(kind, relative path, mode, data or source path), parents first, in a
    stable order (the same folder packs to the same bytes)."""
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        rel_top = os.path.relpath(top, folder)
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            rel = name if rel_top == "." else os.path.join(rel_top, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                yield "l", rel, 0o777, os.readlink(path).encode()
            elif stat.S_ISDIR(st.st_mode):
                yield "d", rel, stat.S_IMODE(st.st_mode), b""
            elif stat.S_ISREG(st.st_mode):
                yield "f", rel, stat.S_IMODE(st.st_mode), path
            else:
                raise ValueError("%s: neither file, directory nor symlink" % path)


def write_payload(folder, out):
    """The entries of folder to the open file out; their sha256."""
    digest = hashlib.sha256()

    def put(data):
        out.write(data)
        digest.update(data)
    for kind, rel, mode, data in entries(folder):
        name = rel.encode()
        if kind == "f":
            size = os.path.getsize(data)
        else:
            size = len(data)
        put(struct.pack("<BBHIQ", ord(kind), 0, len(name), mode, size) + name)
        if kind == "f":
            with open(data, "rb") as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    put(chunk)
        else:
            put(data)
    return digest


def pack(front, folder, output):
    if not os.path.isfile(os.path.join(folder, "sandbox")):
        raise ValueError("%s: no program named sandbox in it" % folder)
    tmp = output + ".tmp"
    with open(tmp, "wb") as out:
        with open(front, "rb") as f:
            out.write(f.read())
        offset = out.tell()
        digest = write_payload(folder, out)
        length = out.tell() - offset
        out.write(MAGIC + struct.pack("<QQ", offset, length)
                  + digest.hexdigest()[:ID_LEN].encode())
    os.chmod(tmp, 0o755)
    os.rename(tmp, output)
    return digest.hexdigest()[:ID_LEN]


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    print(pack(*sys.argv[1:]))
