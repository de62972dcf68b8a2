"""cffi build script of clp's two native modules (out-of-line API mode), named in setup.py's
``cffi_modules``:

- ``clp._diskhb_native``: the disk heartbeat's I/O (``native/diskhb.c``);
- ``clp._hbrx_native``: the heartbeat receive path, verification and the per-(sender, path)
  table (``native/hbrx.c``).

The declarations are the ``CDEF`` block of each header, so the C header is the single source of
the interface."""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
FLAGS = ["-O2", "-Wall", "-Wextra"]


def cdef_of(header: Path) -> str:
    text = header.read_text()
    begin, end = "/* CDEF BEGIN */", "/* CDEF END */"
    return text[text.index(begin) + len(begin):text.index(end)]


def builder(name: str) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_of(HERE / f"{name}.h"))
    ffi.set_source(f"clp._{name}_native", f'#include "{name}.h"', sources=[f"native/{name}.c"],
                   include_dirs=["native"], extra_compile_args=FLAGS)
    return ffi


diskhb = builder("diskhb")
hbrx = builder("hbrx")

if __name__ == "__main__":
    diskhb.compile(verbose=True)
    hbrx.compile(verbose=True)
