#!/usr/bin/env python3
"""Dump llama.cpp's intermediate tensors for one prompt, for a layer-by-layer diff with owl.

Runs the prompt as one batch through llama.cpp (llama-cpp-python, same settings as
make_references.py: F16 KV cache, no flash attention) with an eval callback that copies every
F32 tensor the graph computes, and writes them to an .npz keyed by ggml's tensor names
("attn_norm-0", "Qcur-0", "kq_soft_max-0", "ffn_out-0", "l_out-0", "result_output", ...).
Compare with `OWL_TRACE=dir` output of owl (same names) using scripts/compare_trace.py.

Usage: python3 scripts/trace_llama_cpp.py --model M.gguf --tokens 1,2,3 --out trace.npz
"""
import argparse
import ctypes

import llama_cpp as L
import numpy as np


class GgmlTensor(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
        ("extra", ctypes.c_void_p),
        ("padding", ctypes.c_char * 8),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-repack", action="store_true",
                    help="keep every weight in the file's layout (llama-cli's --no-repack), "
                         "the layout owl's OWL_NO_REPACK=1 path multiplies in")
    ap.add_argument("--one-by-one", action="store_true",
                    help="feed the tokens one per decode call and keep the last call's tensors "
                         "(llama.cpp's decode path only)")
    args = ap.parse_args()
    toks = [int(t) for t in args.tokens.split(",")]
    captured = {}

    @L.ggml_backend_sched_eval_callback
    def cb(t_ptr, ask, _ud):
        t = ctypes.cast(t_ptr, ctypes.POINTER(GgmlTensor)).contents
        if ask:
            return True
        if t.type != 0 or not t.data:
            return True
        ne = [t.ne[i] for i in range(4)]
        nb = [t.nb[i] for i in range(4)]
        n = ne[0] * ne[1] * ne[2] * ne[3]
        contiguous = nb[0] == 4 and nb[1] == 4 * ne[0] and nb[2] == nb[1] * ne[1] and nb[3] == nb[2] * ne[2]
        name = t.name.decode(errors="replace")
        if contiguous and n > 0:
            buf = (ctypes.c_float * n).from_address(t.data)
            arr = np.frombuffer(buf, dtype=np.float32).copy().reshape(ne[3], ne[2], ne[1], ne[0])
            captured[name] = arr
        return True

    L.llama_backend_init()
    mp = L.llama_model_default_params()
    if args.no_repack:
        mp.use_extra_bufts = False
    model = L.llama_model_load_from_file(args.model.encode(), mp)
    cp = L.llama_context_default_params()
    cp.n_ctx = 2048
    cp.n_batch = 512
    cp.n_ubatch = 512
    cp.n_threads = 2
    cp.n_threads_batch = 2
    cp.flash_attn_type = 0
    cp.cb_eval = cb
    ctx = L.llama_init_from_model(model, cp)
    if args.one_by_one:
        for i, t in enumerate(toks):
            captured.clear()
            b = L.llama_batch_init(1, 0, 1)
            b.token[0], b.pos[0], b.n_seq_id[0], b.logits[0] = t, i, 1, 1
            b.seq_id[0][0] = 0
            b.n_tokens = 1
            assert L.llama_decode(ctx, b) == 0
            L.llama_batch_free(b)
        np.savez(args.out, **captured)
        print(f"captured {len(captured)} tensors of the last of {len(toks)} decode calls")
        return
    batch = L.llama_batch_init(len(toks), 0, 1)
    for i, t in enumerate(toks):
        batch.token[i] = t
        batch.pos[i] = i
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = 1 if i == len(toks) - 1 else 0
    batch.n_tokens = len(toks)
    assert L.llama_decode(ctx, batch) == 0
    np.savez(args.out, **captured)
    print(f"captured {len(captured)} tensors: {sorted(captured)[:12]} ...")


if __name__ == "__main__":
    main()
