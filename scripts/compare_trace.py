#!/usr/bin/env python3
"""Compare owl's traced intermediates (OWL_TRACE=dir, raw little-endian f32 files named after
llama.cpp's tensors) with scripts/trace_llama_cpp.py's .npz, printing the max abs difference
per tensor in graph order, so the first op that diverges stands out.

Usage: python3 scripts/compare_trace.py ref.npz owl_trace_dir [n_layers]
"""
import os
import sys

import numpy as np

ref = np.load(sys.argv[1])
d = sys.argv[2]
n_layer = int(sys.argv[3]) if len(sys.argv) > 3 else 30
# Gemma 3 adds the scaled embeddings, Q/K norms, post-norms (attn_post_norm, ffn_post_norm),
# sa_out (its ffn_inp) and ffn_geglu; names a graph does not have are skipped.
names = ["attn_norm", "Qcur_normed", "Kcur_normed", "Qcur", "Kcur", "Vcur", "kqv_out",
         "attn_out", "attn_post_norm", "ffn_inp", "sa_out", "ffn_norm", "ffn_gate", "ffn_up",
         "ffn_swiglu", "ffn_geglu", "ffn_out", "ffn_post_norm", "l_out"]
order = (["inp_scaled"] + [f"{n}-{i}" for i in range(n_layer) for n in names]
         + ["result_norm", "result_output"])
for name in order:
    p = os.path.join(d, name + ".f32")
    if name not in ref or not os.path.exists(p):
        continue
    r = ref[name].reshape(-1)
    o = np.fromfile(p, dtype=np.float32)
    if r.size != o.size:
        r = r[-o.size:]
    if r.size != o.size:
        print(f"{name:16s} size mismatch ref {r.size} owl {o.size}")
        continue
    diff = np.abs(r - o)
    print(f"{name:16s} max|d| {diff.max():.3e}  max|ref| {np.abs(r).max():.3e}  n_diff {(diff > 0).sum()}/{r.size}")
