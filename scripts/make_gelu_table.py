#!/usr/bin/env python3
"""Writes ggml's GELU lookup table (`ggml_table_gelu_f16`, 65536 f16 values indexed by the f16
bits of x) as llama.cpp's CPU backend really fills it, read out of its shared library after
`ggml_cpu_init()`. owl's `owl_kernels::gelu` must reproduce it entry for entry
(`crates/kernels/tests/gelu_table.rs`).

    LD_LIBRARY_PATH=$LLAMA/build/bin python3 scripts/make_gelu_table.py $LLAMA/build/bin/libggml-cpu.so
"""
import ctypes
import hashlib
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "crates/kernels/tests/fixtures/ggml_gelu_f16.bin"


def main() -> None:
    lib = ctypes.CDLL(sys.argv[1])
    lib.ggml_cpu_init()
    table = (ctypes.c_uint16 * 65536).in_dll(lib, "ggml_table_gelu_f16")
    data = bytes(table)
    if data.count(0) == len(data):
        sys.exit("the table is empty: ggml_cpu_init did not fill it")
    OUT.write_bytes(data)
    print(OUT, len(data), hashlib.sha256(data).hexdigest())


if __name__ == "__main__":
    main()
