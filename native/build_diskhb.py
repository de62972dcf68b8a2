"""cffi build script of ``clp._diskhb_native`` (out-of-line API mode), named in setup.py's
``cffi_modules``. The declarations are the ``CDEF`` block of ``native/diskhb.h``, so the C
header is the single source of the interface."""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent


def cdef_of(header: Path) -> str:
    text = header.read_text()
    begin, end = "/* CDEF BEGIN */", "/* CDEF END */"
    return text[text.index(begin) + len(begin):text.index(end)]


ffibuilder = FFI()
ffibuilder.cdef(cdef_of(HERE / "diskhb.h"))
ffibuilder.set_source("clp._diskhb_native", '#include "diskhb.h"',
                      sources=["native/diskhb.c"], include_dirs=["native"],
                      extra_compile_args=["-O2", "-Wall", "-Wextra"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
