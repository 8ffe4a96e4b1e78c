#!/usr/bin/env python3
"""A quantized GGUF with every quantized tensor dequantized to F16 (by gguf-py, the reference
dequantizer), metadata and other tensors unchanged.

The result computes with the very weights of the quantized file but without 8-bit activations
(ggml multiplies F16 weights with F16 activations), so it is the reference to measure kernel
paths against: `owl perplexity -m F16 --kl-divergence-base base.kld`, then `--kl-divergence`
for each path of the quantized file (docs/FIDELITY.md).

    python3 scripts/dequantize_gguf.py in.Q4_1.gguf out.F16.gguf

Developer tool (needs the `gguf` and `numpy` packages); nothing in CI runs it.
"""

from __future__ import annotations

import sys

import numpy as np
import gguf


def main(src: str, dst: str) -> None:
    r = gguf.GGUFReader(src)
    arch = r.get_field("general.architecture").contents()
    w = gguf.GGUFWriter(dst, arch)
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        if f.name == "general.file_type":
            w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, f.contents(), f.types[0], sub)
    quantized = {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16}
    for t in r.tensors:
        if t.tensor_type in quantized:
            w.add_tensor(t.name, np.array(t.data), raw_dtype=t.tensor_type)
            continue
        x = gguf.quants.dequantize(np.array(t.data), t.tensor_type)
        w.add_tensor(t.name, x.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
