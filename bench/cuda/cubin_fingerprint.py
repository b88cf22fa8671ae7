#!/usr/bin/env python3
"""Fingerprints of the machine code of a kernels/cuda file, per kernel and architecture, with no GPU: pastes our
headers in (kernel_source.py), compiles with nvcc to cubins and prints each kernel's .text section size and
SHA-256. Two runs that print the same lines compiled to the same SASS, byte for byte: how a refactor of a kernel is
shown to change nothing when no GPU is at hand (diff the output before and after).

    python3 cubin_fingerprint.py flash_attention.cu 75 80 90 80:-DFA_FORCE_VOLTA_PATH > before.txt
    python3 cubin_fingerprint.py flash_attention_sm90.cu 90a

An architecture is nvcc's sm_ number, optionally followed by :-Dflags for that build.
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from kernel_source import source


def text_sections(cubin):
    """(name, size, sha256) of every .text.<kernel> section of a CUDA ELF (64-bit, little-endian)."""
    data = open(cubin, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError(f"{cubin}: not a 64-bit ELF")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i):
        name, _type, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size

    strings = header(shstrndx)[1]
    for i in range(shnum):
        name, off, size = header(i)
        n = data[strings + name:data.index(b"\0", strings + name)].decode()
        if n.startswith(".text."):
            yield n[len(".text."):], size, hashlib.sha256(data[off:off + size]).hexdigest()[:16]


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    work = tempfile.mkdtemp()
    src = os.path.join(work, argv[0])
    with open(src, "w") as f:
        f.write(source(argv[0]))
    for spec in argv[1:]:
        arch, _, flags = spec.partition(":")
        cubin = os.path.join(work, f"{arch}.cubin")
        subprocess.run([nvcc, "-std=c++17", "-cubin", f"-arch=sm_{arch}", *flags.split(), src, "-o", cubin],
                       check=True, stderr=subprocess.DEVNULL)
        for name, size, digest in sorted(text_sections(cubin)):
            print(f"sm_{spec} {name} {size} {digest}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1:])
