"""A kernels/cuda file's text as dev.longtune.cuda.NvrtcCompiler.source makes it: each of our headers it includes
(`#include "common.cuh"`, `#include "flash_attention_rows.cuh"`, alone on a line) pasted in place, once; CUDA's own
headers stay includes. No GPU or third-party module needed."""
import pathlib
import re

KERNELS = pathlib.Path(__file__).resolve().parent.parent.parent / "kernels" / "cuda"
_LOCAL_INCLUDE = re.compile(r'^#include "([^"/]+\.cuh)"[ \t]*$', re.M)


def source(name, _seen=None):
    seen = set() if _seen is None else _seen

    def paste(m):
        header = m.group(1)
        if header in seen:
            return ""
        seen.add(header)
        return source(header, seen)

    return _LOCAL_INCLUDE.sub(paste, (KERNELS / name).read_text())


if __name__ == "__main__":  # python3 kernel_source.py FILE > pasted.cu
    import sys
    sys.stdout.write(source(sys.argv[1]))
