#!/usr/bin/env python3
"""Cross-check of make_minilm_references.py's numpy forward pass against llama.cpp.

Writes all-MiniLM-L6-v2 as an F32 GGUF the way llama.cpp's converter does (vocabulary as in
make_wpm_references.py, tensors renamed with gguf's BERT tensor map, the pooler dropped), runs
llama.cpp's BERT graph (llama-cpp-python 0.3.36, mean pooling, one sequence per context) on the
*same token ids* as the reference, L2-normalises, and prints the largest difference from the
reference embeddings.

llama.cpp's BERT uses ggml's GELU: the tanh approximation, looked up in an f16 table (input and
output rounded to f16), not the erf GELU the model was trained with; that alone moves the
embeddings by ~2e-4. So the check also reruns the numpy forward pass with ggml's GELU: that one
must agree with llama.cpp to float32 precision, which validates everything else in it.

Called by ``make_minilm_references.py --check-gguf PATH``; needs LLAMA_CPP_LIB_PATH when
llama-cpp-python was built without its own shared library.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

import llama_cpp.llama_cpp as L
import make_references as mr
import make_wpm_references as wpm


def write_gguf(model_dir: Path, path: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    tok_json = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tokens, types = wpm.build_tokens(tok_json, config["vocab_size"])
    n_layers = config["num_hidden_layers"]
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    w = gguf.GGUFWriter(str(path), "bert")
    w.add_name("all-MiniLM-L6-v2")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_block_count(n_layers)
    w.add_head_count(config["num_attention_heads"])
    w.add_layer_norm_eps(config["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_token_type_count(config.get("type_vocab_size", 1))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("bert-bge")
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(w)
    for name, t in sorted(load_file(str(model_dir / "model.safetensors")).items()):
        if name.startswith("pooler.") or name.endswith("position_ids"):
            continue
        new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise SystemExit(f"no GGUF name for {name}")
        w.add_tensor(new, np.ascontiguousarray(t.astype(np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def embed(model, ids: list[int], n_embd: int) -> np.ndarray:
    cp = L.llama_context_default_params()
    cp.n_ctx = 512
    cp.n_batch = 512
    cp.n_ubatch = 512
    cp.n_seq_max = 1
    cp.n_threads = cp.n_threads_batch = 2
    cp.embeddings = True
    cp.pooling_type = L.LLAMA_POOLING_TYPE_MEAN
    # F32 KV cache: the default F16 one moves the result by ~2e-4
    cp.type_k = cp.type_v = L.GGML_TYPE_F32
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        raise SystemExit("llama.cpp could not create a context")
    b = mr.make_batch(ids, 0, logits_last_only=False)
    try:
        rc = L.llama_decode(ctx, b)
        if rc != 0:
            raise SystemExit(f"llama_decode returned {rc}")
        ptr = L.llama_get_embeddings_seq(ctx, 0)
        e = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_embd,))
        e = e.astype(np.float64)
    finally:
        L.llama_batch_free(b)
        L.llama_free(ctx)
    return e / max(np.linalg.norm(e), 1e-12)


def ggml_gelu(x: np.ndarray) -> np.ndarray:
    """ggml_vec_gelu_f32 with GGML_GELU_FP16: f16 table of the tanh approximation."""
    xf = x.astype(np.float32)
    h = xf.astype(np.float16).astype(np.float32)
    c = np.float32(0.7978845608028654)
    t = np.float32(0.5) * h * (np.float32(1) + np.tanh(c * h * (np.float32(1) + np.float32(0.044715) * h * h)))
    t = t.astype(np.float16).astype(np.float64)
    return np.where(xf <= -10, 0.0, np.where(xf >= 10, x, t))


def check(model_dir: Path, gguf_path: Path, ref: dict) -> None:
    import make_minilm_references as mm  # noqa: PLC0415

    mm.gelu = ggml_gelu
    ggml_like = mm.MiniLM(model_dir)
    write_gguf(model_dir, gguf_path)
    mr.quiet_logs(False)
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    model = L.llama_model_load_from_file(str(gguf_path).encode(), mp)
    if not model:
        raise SystemExit(f"llama.cpp could not load {gguf_path}")
    n_embd = L.llama_model_n_embd(model)
    worst = worst_ggml = 0.0
    for row in ref["sentences"] + ref["batch"]:
        got = embed(model, row["ids"], n_embd)
        diff = float(np.abs(got - np.array(row["embedding"])).max())
        cos = float(got @ np.array(row["embedding"]))
        diff_ggml = float(np.abs(got - ggml_like.embed([row["ids"]])[0]).max())
        worst, worst_ggml = max(worst, diff), max(worst_ggml, diff_ggml)
        label = row.get("name", row["text"][:30])
        print(f"llama.cpp vs numpy  {label:<32} {len(row['ids']):>4} tokens  max|diff| {diff:.2e}"
              f"  cos {cos:.9f}   vs numpy with ggml's GELU {diff_ggml:.2e}")
    L.llama_model_free(model)
    print(f"largest difference: {worst:.2e} (erf GELU reference), {worst_ggml:.2e} (ggml GELU)")
