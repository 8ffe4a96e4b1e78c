#!/usr/bin/env python3
"""Random-weight F16 GGUF files with the exact shapes of real models, for speed benchmarks.

Usage
-----
    python3 scripts/make_bench_models.py --out /data/bench                 # 0.5b, 1b, 1.5b
    python3 scripts/make_bench_models.py --out /data/bench --models 7b     # ~15 GB, on request
    python3 scripts/make_bench_models.py --out DIR --models 0.5b,1b --seed 1 \\
        --tokenizer-from ~/.owl/models/SmolLM2-135M-Instruct.Q4_1.gguf

then make the benchmark formats with owl (the same tensor types llama-quantize would choose):

    cargo build --release
    for t in Q4_0 Q4_1 Q8_0 Q4_K_M Q5_K_M Q6_K; do
        target/release/owl quantize DIR/qwen2.5-0.5b-random-f16.gguf \\
            DIR/qwen2.5-0.5b-random-$t.gguf $t
    done

(`owl quantize --pure IN OUT Q4_K` gives every weight the same type, for per-kernel numbers.)

Models: ``0.5b`` Qwen2.5-0.5B, ``1b`` Llama-3.2-1B, ``1.5b`` Qwen2.5-1.5B, ``7b`` Qwen2.5-7B
(architectures ``qwen2`` and ``llama``).

Why it is built this way
------------------------
* **Real shapes, fake values.** Inference speed depends on tensor shapes, types and vocabulary
  size, not on the values, so there is no need to download gigabytes of real weights: every
  matrix is ``N(0, 1) * 0.02`` in F16, norms are ones (F32), biases small (F32). The files
  are deterministic for a given ``--seed``.
* **What convert_hf_to_gguf.py writes.** Metadata keys and tensor names are the ones
  llama.cpp's converter produces for these models (``{arch}.block_count`` ...,
  ``blk.N.attn_q.weight``, qwen2's ``attn_q/k/v.bias``, Llama-3's ``rope_freqs.weight`` from
  its llama3 rope scaling, ``llama.vocab_size``, ``llama.rope.dimension_count``, key/value
  length where the HF config names ``head_dim``, tied embeddings where the model ties them),
  so owl and llama.cpp load them exactly as they load the real models.
* **A tokenizer llama.cpp accepts.** llama.cpp refuses a model without tokenizer metadata. The
  default: the SmolLM2 tokenizer (a real byte-level BPE with merges) copied from the default
  model (``--tokenizer-from``, else ``$OWL_TEST_MODEL``, else the owl store), padded with
  ``[PADn]`` tokens of type UNUSED up to the model's vocabulary size, as the converter pads
  vocabularies. Without that file, a synthetic byte-level vocabulary (256 byte tokens, a few
  merges, ``<|endoftext|>``) is padded the same way. Token ids then do not mean what they mean
  in the real model, which does not matter for speed.
* **Streamed to disk.** Tensor infos are declared up front and each tensor is generated and
  written on its own, in chunks of rows, so memory stays around the largest tensor (about
  1.1 GB for 7B's embeddings) instead of the whole 15 GB model.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    import gguf
except ImportError:  # pragma: no cover
    sys.exit("this script needs the gguf package: pip install gguf")

# Shapes from the models' Hugging Face config.json files.
MODELS: dict[str, dict] = {
    "0.5b": dict(
        file="qwen2.5-0.5b-random-f16.gguf", name="Qwen2.5 0.5B (random weights)",
        arch="qwen2", n_layer=24, n_embd=896, n_ff=4864, n_head=14, n_head_kv=2,
        n_vocab=151936, n_ctx=32768, rope_theta=1000000.0, rms_eps=1e-6, tied=True,
        qkv_bias=True,
    ),
    "1b": dict(
        file="llama-3.2-1b-random-f16.gguf", name="Llama 3.2 1B (random weights)",
        arch="llama", n_layer=16, n_embd=2048, n_ff=8192, n_head=32, n_head_kv=8,
        n_vocab=128256, n_ctx=131072, rope_theta=500000.0, rms_eps=1e-5, tied=True,
        qkv_bias=False, head_dim=64,
        llama3_rope=dict(factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                         original_max_position_embeddings=8192),
    ),
    "1.5b": dict(
        file="qwen2.5-1.5b-random-f16.gguf", name="Qwen2.5 1.5B (random weights)",
        arch="qwen2", n_layer=28, n_embd=1536, n_ff=8960, n_head=12, n_head_kv=2,
        n_vocab=151936, n_ctx=32768, rope_theta=1000000.0, rms_eps=1e-6, tied=True,
        qkv_bias=True,
    ),
    "7b": dict(
        file="qwen2.5-7b-random-f16.gguf", name="Qwen2.5 7B (random weights)",
        arch="qwen2", n_layer=28, n_embd=3584, n_ff=18944, n_head=28, n_head_kv=4,
        n_vocab=152064, n_ctx=32768, rope_theta=1000000.0, rms_eps=1e-6, tied=False,
        qkv_bias=True,
    ),
    # Qwen3-30B-A3B's layer shapes with 4 of its 48 layers (128 experts, 8 used), and a dense
    # Qwen3 of the same active size (the FFN of the 8 active experts: n_ff = 8 * 768), to show
    # that MoE decoding costs what its active parameters cost.
    "30b-a3b-4l": dict(
        file="qwen3-30b-a3b-4layers-random-f16.gguf", name="Qwen3 30B-A3B, 4 layers (random)",
        arch="qwen3moe", n_layer=4, n_embd=2048, n_ff=6144, n_head=32, n_head_kv=4,
        head_dim=128, n_vocab=151936, n_ctx=40960, rope_theta=1000000.0, rms_eps=1e-6,
        tied=False, qkv_bias=False, qk_norm=True, n_expert=128, n_expert_used=8, n_ff_exp=768,
    ),
    "30b-a3b-dense-4l": dict(
        file="qwen3-a3b-dense-equivalent-4layers-random-f16.gguf",
        name="Qwen3 dense, the active size of 30B-A3B, 4 layers (random)",
        arch="qwen3", n_layer=4, n_embd=2048, n_ff=6144, n_head=32, n_head_kv=4,
        head_dim=128, n_vocab=151936, n_ctx=40960, rope_theta=1000000.0, rms_eps=1e-6,
        tied=False, qkv_bias=False, qk_norm=True,
    ),
    # DeepSeek-V2-Lite's attention and expert shapes (with V2/V3's low-rank queries, which
    # llama.cpp requires outside the 27-layer Lite) in 4 layers: 1 dense + 3 MoE layers of 64
    # experts (6 used, 2 shared), multi-head latent attention with a 512 + 64 latent.
    "dsv2-4l": dict(
        file="deepseek-v2-lite-shapes-4layers-random-f16.gguf",
        name="DeepSeek-V2-Lite shapes, 4 layers (random)",
        arch="deepseek2", n_layer=4, n_embd=2048, n_ff=10944, n_head=16, n_head_kv=1,
        n_vocab=102400, n_ctx=163840, rope_theta=10000.0, rms_eps=1e-6, tied=False,
        qkv_bias=False, q_lora_rank=1536, kv_lora_rank=512, n_rot=64, qk_nope=128, v_head=128,
        n_dense_lead=1, n_expert=64, n_expert_used=6, n_ff_exp=1408, n_expert_shared=2,
        expert_weights_scale=1.0, sigmoid=False,
    ),
    # Tiny random models for checking an architecture against llama.cpp (not for speed).
    "tiny-qwen3": dict(
        file="tiny-qwen3-random-f16.gguf", name="tiny qwen3 (random weights)",
        arch="qwen3", n_layer=2, n_embd=64, n_ff=128, n_head=4, n_head_kv=2, head_dim=32,
        n_vocab=49152, n_ctx=4096, rope_theta=1000000.0, rms_eps=1e-6, tied=True,
        qkv_bias=False, qk_norm=True, scale=0.2,
    ),
}

DEFAULT_TOKENIZER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHUNK_ELEMENTS = 1 << 24  # rows generated at a time: ~16M values, 64 MB of f32


def deepseek2_tensor_shapes(m: dict) -> list[tuple[str, tuple[int, ...], type]]:
    """deepseek2 (multi-head latent attention, MoE with shared experts) as llama.cpp's converter
    writes it: kv_b_proj split into attn_k_b (transposed) and attn_v_b, 3-D expert tensors."""
    e, ff, v, nh = m["n_embd"], m["n_ff"], m["n_vocab"], m["n_head"]
    lora, rot, nope, vh = m["kv_lora_rank"], m["n_rot"], m["qk_nope"], m["v_head"]
    t: list[tuple[str, tuple[int, ...], type]] = [("token_embd.weight", (v, e), np.float16)]
    for i in range(m["n_layer"]):
        p = f"blk.{i}."
        t.append((p + "attn_norm.weight", (e,), np.float32))
        if m.get("q_lora_rank"):
            ql = m["q_lora_rank"]
            t.append((p + "attn_q_a.weight", (ql, e), np.float16))
            t.append((p + "attn_q_a_norm.weight", (ql,), np.float32))
            t.append((p + "attn_q_b.weight", (nh * (nope + rot), ql), np.float16))
        else:
            t.append((p + "attn_q.weight", (nh * (nope + rot), e), np.float16))
        t.append((p + "attn_kv_a_mqa.weight", (lora + rot, e), np.float16))
        t.append((p + "attn_kv_a_norm.weight", (lora,), np.float32))
        t.append((p + "attn_k_b.weight", (nh, lora, nope), np.float16))
        t.append((p + "attn_v_b.weight", (nh, vh, lora), np.float16))
        t.append((p + "attn_output.weight", (e, nh * vh), np.float16))
        t.append((p + "ffn_norm.weight", (e,), np.float32))
        if i < m["n_dense_lead"]:
            t.append((p + "ffn_gate.weight", (ff, e), np.float16))
            t.append((p + "ffn_up.weight", (ff, e), np.float16))
            t.append((p + "ffn_down.weight", (e, ff), np.float16))
            continue
        x, fe, fs = m["n_expert"], m["n_ff_exp"], m["n_ff_exp"] * m["n_expert_shared"]
        t.append((p + "ffn_gate_inp.weight", (x, e), np.float32))
        if m.get("exp_probs_b"):
            t.append((p + "exp_probs_b.bias", (x,), np.float32))
        t.append((p + "ffn_gate_exps.weight", (x, fe, e), np.float16))
        t.append((p + "ffn_up_exps.weight", (x, fe, e), np.float16))
        t.append((p + "ffn_down_exps.weight", (x, e, fe), np.float16))
        t.append((p + "ffn_gate_shexp.weight", (fs, e), np.float16))
        t.append((p + "ffn_up_shexp.weight", (fs, e), np.float16))
        t.append((p + "ffn_down_shexp.weight", (e, fs), np.float16))
    t.append(("output_norm.weight", (e,), np.float32))
    if not m["tied"]:
        t.append(("output.weight", (v, e), np.float16))
    return t


def add_deepseek2_metadata(w: gguf.GGUFWriter, m: dict) -> None:
    """The deepseek2 keys DeepseekV2Model.set_gguf_parameters writes (absorbed MLA layout)."""
    lora, rot = m["kv_lora_rank"], m["n_rot"]
    w.add_leading_dense_block_count(m["n_dense_lead"])
    w.add_vocab_size(m["n_vocab"])
    if m.get("q_lora_rank"):
        w.add_q_lora_rank(m["q_lora_rank"])
    w.add_kv_lora_rank(lora)
    w.add_key_length(lora + rot)
    w.add_value_length(lora)
    w.add_key_length_mla(m["qk_nope"] + rot)
    w.add_value_length_mla(m["v_head"])
    w.add_expert_shared_count(m["n_expert_shared"])
    if "expert_weights_scale" in m:
        w.add_expert_weights_scale(m["expert_weights_scale"])
    if m.get("expert_weights_norm"):
        w.add_expert_weights_norm(True)
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID if m.get("sigmoid")
                             else gguf.ExpertGatingFuncType.SOFTMAX)
    if m.get("n_group"):
        w.add_expert_group_count(m["n_group"])
        w.add_expert_group_used_count(m["n_group_used"])
    w.add_rope_dimension_count(rot)
    if "yarn" in m:
        # DeepSeek-V3: YaRN factor 40 over 4096 positions, mscale_all_dim 1 (the converter
        # writes 0.1 * mscale_all_dim as the log multiplier).
        y = m["yarn"]
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(y["factor"])
        w.add_rope_scaling_orig_ctx_len(y["original_context_length"])
        w.add_rope_scaling_yarn_log_mul(0.1 * y["mscale_all_dim"])


def routed_tensor_shapes(m: dict) -> list[tuple[str, tuple[int, ...], type]]:
    """glm4moe (GLM-4.5) as Glm4MoeModel writes it: biased Q/K/V, optional Q/K norms, the
    pre-FFN norm named post_attention_norm, leading dense layers, then sigmoid-routed experts
    with a selection bias and shared experts. ernie4_5-moe (Ernie4_5MoeModel) is the same
    layout without Q/K/V biases, with the pre-FFN norm named ffn_norm and a shared expert of
    its own width (`n_ff_shexp`)."""
    e, ff, v = m["n_embd"], m["n_ff"], m["n_vocab"]
    hd = m["head_dim"]
    q, kv = m["n_head"] * hd, m["n_head_kv"] * hd
    t: list[tuple[str, tuple[int, ...], type]] = [("token_embd.weight", (v, e), np.float16)]
    for i in range(m["n_layer"]):
        p = f"blk.{i}."
        t.append((p + "attn_norm.weight", (e,), np.float32))
        t.append((p + "attn_q.weight", (q, e), np.float16))
        t.append((p + "attn_k.weight", (kv, e), np.float16))
        t.append((p + "attn_v.weight", (kv, e), np.float16))
        if m["qkv_bias"]:
            t.append((p + "attn_q.bias", (q,), np.float32))
            t.append((p + "attn_k.bias", (kv,), np.float32))
            t.append((p + "attn_v.bias", (kv,), np.float32))
        if m.get("qk_norm"):
            t.append((p + "attn_q_norm.weight", (hd,), np.float32))
            t.append((p + "attn_k_norm.weight", (hd,), np.float32))
        t.append((p + "attn_output.weight", (e, q), np.float16))
        t.append((p + m["ffn_norm_name"] + ".weight", (e,), np.float32))
        if i < m["n_dense_lead"]:
            t.append((p + "ffn_gate.weight", (ff, e), np.float16))
            t.append((p + "ffn_up.weight", (ff, e), np.float16))
            t.append((p + "ffn_down.weight", (e, ff), np.float16))
            continue
        x, fe = m["n_expert"], m["n_ff_exp"]
        fs = m.get("n_ff_shexp", m["n_ff_exp"] * m["n_expert_shared"])
        t.append((p + "ffn_gate_inp.weight", (x, e), np.float32))
        t.append((p + "exp_probs_b.bias", (x,), np.float32))
        t.append((p + "ffn_gate_exps.weight", (x, fe, e), np.float16))
        t.append((p + "ffn_up_exps.weight", (x, fe, e), np.float16))
        t.append((p + "ffn_down_exps.weight", (x, e, fe), np.float16))
        t.append((p + "ffn_gate_shexp.weight", (fs, e), np.float16))
        t.append((p + "ffn_up_shexp.weight", (fs, e), np.float16))
        t.append((p + "ffn_down_shexp.weight", (e, fs), np.float16))
    t.append(("output_norm.weight", (e,), np.float32))
    if not m["tied"]:
        t.append(("output.weight", (v, e), np.float16))
    return t


def add_glm4moe_metadata(w: gguf.GGUFWriter, m: dict) -> None:
    """The keys Glm4MoeModel.set_gguf_parameters adds (partial RoPE, routing)."""
    w.add_rope_dimension_count(m["n_rot"])
    w.add_leading_dense_block_count(m["n_dense_lead"])
    w.add_expert_shared_count(m["n_expert_shared"])
    w.add_expert_weights_scale(m["expert_weights_scale"])
    w.add_expert_weights_norm(True)
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)


def tensor_shapes(m: dict) -> list[tuple[str, tuple[int, ...], type]]:
    """(name, numpy shape = reversed ggml dims, dtype) in the converter's per-layer order."""
    if m["arch"] in ("glm4moe", "ernie4_5-moe"):
        return routed_tensor_shapes(m)
    if m["arch"] == "deepseek2":
        return deepseek2_tensor_shapes(m)
    if m["arch"] == "gpt-oss":
        return gpt_oss_tensor_shapes(m)
    e, ff, v = m["n_embd"], m["n_ff"], m["n_vocab"]
    hd = m.get("head_dim") or e // m["n_head"]
    q, kv = m["n_head"] * hd, m["n_head_kv"] * hd
    t: list[tuple[str, tuple[int, ...], type]] = []
    if "llama3_rope" in m:
        t.append(("rope_freqs.weight", (hd // 2,), np.float32))
    t.append(("token_embd.weight", (v, e), np.float16))
    for i in range(m["n_layer"]):
        p = f"blk.{i}."
        t.append((p + "attn_norm.weight", (e,), np.float32))
        t.append((p + "attn_q.weight", (q, e), np.float16))
        t.append((p + "attn_k.weight", (kv, e), np.float16))
        t.append((p + "attn_v.weight", (kv, e), np.float16))
        if m.get("qk_norm"):
            t.append((p + "attn_q_norm.weight", (hd,), np.float32))
            t.append((p + "attn_k_norm.weight", (hd,), np.float32))
        if m["qkv_bias"]:
            t.append((p + "attn_q.bias", (q,), np.float32))
            t.append((p + "attn_k.bias", (kv,), np.float32))
            t.append((p + "attn_v.bias", (kv,), np.float32))
        t.append((p + "attn_output.weight", (e, q), np.float16))
        if m["arch"] == "gemma3":
            t.append((p + "post_attention_norm.weight", (e,), np.float32))
        t.append((p + "ffn_norm.weight", (e,), np.float32))
        if m.get("n_expert"):
            # Mixture of experts: router in F32 (as the converter keeps it), 3-D expert tensors.
            x, fe = m["n_expert"], m["n_ff_exp"]
            t.append((p + "ffn_gate_inp.weight", (x, e), np.float32))
            t.append((p + "ffn_gate_exps.weight", (x, fe, e), np.float16))
            t.append((p + "ffn_up_exps.weight", (x, fe, e), np.float16))
            t.append((p + "ffn_down_exps.weight", (x, e, fe), np.float16))
            continue
        t.append((p + "ffn_gate.weight", (ff, e), np.float16))
        t.append((p + "ffn_up.weight", (ff, e), np.float16))
        t.append((p + "ffn_down.weight", (e, ff), np.float16))
        if m["arch"] == "gemma3":
            t.append((p + "post_ffw_norm.weight", (e,), np.float32))
    t.append(("output_norm.weight", (e,), np.float32))
    if not m["tied"]:
        t.append(("output.weight", (v, e), np.float16))
    return t


def gemma3_metadata(w: gguf.GGUFWriter, m: dict) -> None:
    """The keys Gemma3Model.set_gguf_parameters adds: the sliding window (when the model has
    one), the sliding layers' RoPE base and the final logit soft-cap (when given)."""
    if m.get("sliding_window"):
        w.add_sliding_window(m["sliding_window"])
    if m.get("rope_theta_swa"):
        w.add_rope_freq_base_swa(m["rope_theta_swa"])
    if m.get("softcap"):
        w.add_final_logit_softcapping(m["softcap"])


def gpt_oss_tensor_shapes(m: dict) -> list[tuple[str, tuple[int, ...], type]]:
    """gpt-oss's tensors as convert_hf_to_gguf.py's GptOssModel names them: attention with
    Q/K/V/output biases and per-head sinks, ``post_attention_norm`` (llama.cpp's attn_post_norm,
    the pre-FFN norm), a biased router and biased experts (F16 here, where the real files use
    MXFP4), a separate output head."""
    e, v, hd = m["n_embd"], m["n_vocab"], m["head_dim"]
    q, kv = m["n_head"] * hd, m["n_head_kv"] * hd
    x, fe = m["n_expert"], m["n_ff_exp"]
    f16, f32 = np.float16, np.float32
    t: list[tuple[str, tuple[int, ...], type]] = [("token_embd.weight", (v, e), f16)]
    for i in range(m["n_layer"]):
        p = f"blk.{i}."
        t += [
            (p + "attn_norm.weight", (e,), f32),
            (p + "attn_q.weight", (q, e), f16), (p + "attn_q.bias", (q,), f32),
            (p + "attn_k.weight", (kv, e), f16), (p + "attn_k.bias", (kv,), f32),
            (p + "attn_v.weight", (kv, e), f16), (p + "attn_v.bias", (kv,), f32),
            (p + "attn_output.weight", (e, q), f16), (p + "attn_output.bias", (e,), f32),
            (p + "attn_sinks.weight", (m["n_head"],), f32),
            (p + "post_attention_norm.weight", (e,), f32),
            (p + "ffn_gate_inp.weight", (x, e), f32), (p + "ffn_gate_inp.bias", (x,), f32),
            (p + "ffn_gate_exps.weight", (x, fe, e), f16), (p + "ffn_gate_exps.bias", (x, fe), f32),
            (p + "ffn_up_exps.weight", (x, fe, e), f16), (p + "ffn_up_exps.bias", (x, fe), f32),
            (p + "ffn_down_exps.weight", (x, e, fe), f16), (p + "ffn_down_exps.bias", (x, e), f32),
        ]
    t += [("output_norm.weight", (e,), f32), ("output.weight", (v, e), f16)]
    return t


# gpt-oss tensors drawn wider than the defaults, so that a wrong sink, bias or swiglu_oai clamp
# (limit 7) visibly changes the logits: name suffix -> standard deviation (first match wins).
GPT_OSS_STD = {"attn_sinks.weight": 2.0, "ffn_gate_exps.bias": 2.0, "ffn_up_exps.bias": 2.0,
               ".bias": 0.5}


def gpt_oss_tensor_data(name: str, shape: tuple[int, ...], rng) -> np.ndarray | None:
    for suffix, std in GPT_OSS_STD.items():
        if name.endswith(suffix):
            return (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)
    return None


def gpt_oss_metadata(w: gguf.GGUFWriter, m: dict) -> None:
    """The keys GptOssModel.set_gguf_parameters adds: the sliding window and YaRN scaling (the
    real models: factor 32 over 4096 original positions, betas 32 and 1)."""
    w.add_sliding_window(m["sliding_window"])
    y = m["yarn"]
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(y["factor"])
    w.add_rope_scaling_orig_ctx_len(y["original_context_length"])
    w.add_rope_scaling_yarn_beta_fast(32.0)
    w.add_rope_scaling_yarn_beta_slow(1.0)


def llama3_rope_factors(m: dict) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors for rope_type llama3."""
    r = m["llama3_rope"]
    hd = m.get("head_dim") or m["n_embd"] // m["n_head"]
    base = m["rope_theta"]
    freqs = 1.0 / (base ** (np.arange(0, hd, 2, dtype=np.float32) / hd))
    old = r["original_max_position_embeddings"]
    low_wl, high_wl = old / r["low_freq_factor"], old / r["high_freq_factor"]
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(r["factor"])
        else:
            s = (old / wl - r["low_freq_factor"]) / (r["high_freq_factor"] - r["low_freq_factor"])
            out.append(1 / ((1 - s) / r["factor"] + s))
    return np.array(out, dtype=np.float32)


def gpt2_byte_chars() -> list[str]:
    """GPT-2's bytes_to_unicode, in byte order."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    out, n = [], 0
    for b in range(256):
        if b in printable:
            out.append(chr(b))
        else:
            out.append(chr(256 + n))
            n += 1
    return out


def synthetic_tokenizer() -> dict:
    tokens = ["<|endoftext|>"] + gpt2_byte_chars()
    merges = ["Ġ t", "h e", "Ġ a", "i n", "Ġt he"]
    for mg in merges:
        tokens.append(mg.replace(" ", ""))
    types = [gguf.TokenType.CONTROL] + [gguf.TokenType.NORMAL] * (len(tokens) - 1)
    return dict(model="gpt2", pre="default", tokens=tokens, types=[int(t) for t in types],
                merges=merges, ids=dict(bos=0, eos=0), add_bos=False, chat_template=None)


def find_tokenizer_file(arg: str | None) -> Path | None:
    if arg:
        p = Path(arg).expanduser()
        if not p.is_file():
            sys.exit(f"--tokenizer-from: {p} not found")
        return p
    cands = []
    if os.environ.get("OWL_TEST_MODEL"):
        cands.append(Path(os.environ["OWL_TEST_MODEL"]))
    home = Path(os.environ["OWL_HOME"]) if os.environ.get("OWL_HOME") else Path.home() / ".owl"
    cands.append(home / "models" / DEFAULT_TOKENIZER_FILE)
    return next((p for p in cands if p.is_file()), None)


def read_tokenizer(path: Path) -> dict:
    r = gguf.GGUFReader(path)

    def get(key: str, default=None):
        f = r.get_field(key)
        return f.contents() if f is not None else default

    if get("tokenizer.ggml.model") != "gpt2":
        sys.exit(f"{path}: only gpt2-style (byte-level BPE) tokenizers can be reused")
    ids = {}
    for k in ("bos", "eos", "unknown", "padding"):
        v = get(f"tokenizer.ggml.{k}_token_id")
        if v is not None:
            ids[k] = int(v)
    return dict(model="gpt2", pre=get("tokenizer.ggml.pre", "default"),
                tokens=list(get("tokenizer.ggml.tokens")),
                types=[int(t) for t in get("tokenizer.ggml.token_type")],
                merges=list(get("tokenizer.ggml.merges", [])), ids=ids,
                add_bos=bool(get("tokenizer.ggml.add_bos_token", False)),
                chat_template=get("tokenizer.chat_template"))


def add_tokenizer(w: gguf.GGUFWriter, tok: dict, n_vocab: int) -> None:
    tokens, types = list(tok["tokens"]), list(tok["types"])
    if len(tokens) > n_vocab:
        sys.exit(f"the tokenizer has {len(tokens)} tokens, more than the model's {n_vocab}")
    for i in range(len(tokens), n_vocab):
        tokens.append(f"[PAD{i}]")
        types.append(int(gguf.TokenType.UNUSED))
    w.add_tokenizer_model(tok["model"])
    w.add_tokenizer_pre(tok["pre"])
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(tok["merges"])
    ids = tok["ids"]
    if "bos" in ids:
        w.add_bos_token_id(ids["bos"])
    if "eos" in ids:
        w.add_eos_token_id(ids["eos"])
    if "unknown" in ids:
        w.add_unk_token_id(ids["unknown"])
    if "padding" in ids:
        w.add_pad_token_id(ids["padding"])
    w.add_add_bos_token(tok["add_bos"])
    if tok["chat_template"]:
        w.add_chat_template(tok["chat_template"])


def write_model(key: str, out_dir: Path, tok: dict, seed: int) -> Path:
    m = MODELS[key]
    path = out_dir / m["file"]
    shapes = tensor_shapes(m)
    n_params = sum(math.prod(s) for _, s, _ in shapes)
    nbytes = sum(math.prod(s) * np.dtype(d).itemsize for _, s, d in shapes)
    free = os.statvfs(out_dir).f_bavail * os.statvfs(out_dir).f_frsize
    if free < nbytes * 1.05:
        sys.exit(f"{m['file']} needs {nbytes / 1e9:.1f} GB, only {free / 1e9:.1f} GB free in {out_dir}")
    print(f"{m['file']}: {n_params / 1e9:.2f}B parameters, {nbytes / 1e9:.2f} GB", flush=True)

    arch = m["arch"]
    w = gguf.GGUFWriter(path, arch)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(m["name"])
    w.add_size_label(gguf.size_label(n_params, 0, 0, 0))
    w.add_block_count(m["n_layer"])
    w.add_context_length(m["n_ctx"])
    w.add_embedding_length(m["n_embd"])
    w.add_feed_forward_length(m["n_ff"])
    w.add_head_count(m["n_head"])
    w.add_head_count_kv(m["n_head_kv"])
    w.add_rope_freq_base(m["rope_theta"])
    w.add_layer_norm_rms_eps(m["rms_eps"])
    if "head_dim" in m:
        w.add_key_length(m["head_dim"])
        w.add_value_length(m["head_dim"])
    if m.get("n_expert"):
        w.add_expert_count(m["n_expert"])
        w.add_expert_used_count(m["n_expert_used"])
        w.add_expert_feed_forward_length(m["n_ff_exp"])
    if arch == "gpt-oss":
        gpt_oss_metadata(w, m)
    if arch == "gemma3":
        gemma3_metadata(w, m)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if arch == "deepseek2":
        add_deepseek2_metadata(w, m)
    if arch == "glm4moe":
        add_glm4moe_metadata(w, m)
    if arch == "ernie4_5-moe":
        w.add_interleave_moe_layer_step(1)
        w.add_leading_dense_block_count(m["n_dense_lead"])
        w.add_expert_shared_count(m["n_expert_shared"])
        w.add_expert_shared_feed_forward_length(m["n_ff_shexp"])
    if arch == "llama":
        w.add_vocab_size(m["n_vocab"])
        w.add_rope_dimension_count(m.get("head_dim") or m["n_embd"] // m["n_head"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_tokenizer(w, tok, m["n_vocab"])

    for name, shape, dtype in shapes:
        w.add_tensor_info(name, shape, np.dtype(dtype), math.prod(shape) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    # One generator per model, so a model's file does not depend on which others are made.
    rng = np.random.default_rng([seed, m.get("seed_index", list(MODELS).index(key))])
    t0, done = time.time(), 0
    for name, shape, dtype in shapes:
        data = gpt_oss_tensor_data(name, shape, rng) if arch == "gpt-oss" else None
        if data is not None:
            pass
        elif name == "rope_freqs.weight":
            data = llama3_rope_factors(m)
        elif name.endswith(("attn_q_norm.weight", "attn_k_norm.weight")) or (
                arch == "gemma3" and name.endswith("norm.weight")):
            # Gemma's norms hold 1 + w (the converter adds the 1): around 1, each its own.
            data = (1 + rng.standard_normal(shape, dtype=np.float32) * 0.3).astype(np.float32)
        elif name.endswith("exp_probs_b.bias"):
            # Big enough to change which experts win now and then.
            data = (rng.standard_normal(shape, dtype=np.float32) * 0.1).astype(np.float32)
        elif name.endswith("_norm.weight"):
            data = np.ones(shape, dtype=np.float32)
        elif len(shape) == 1:
            data = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        elif dtype == np.float32:
            data = (rng.standard_normal(shape, dtype=np.float32) * m.get("scale", 0.02)).astype(np.float32)
        elif len(shape) == 3:
            data = np.empty(shape, dtype=np.float16)
            for i in range(shape[0]):
                data[i] = rng.standard_normal(shape[1:], dtype=np.float32) * m.get("scale", 0.02)
        else:
            data = np.empty(shape, dtype=np.float16)
            rows = max(1, CHUNK_ELEMENTS // shape[1])
            for r0 in range(0, shape[0], rows):
                r1 = min(shape[0], r0 + rows)
                chunk = rng.standard_normal((r1 - r0, shape[1]), dtype=np.float32)
                chunk *= m.get("scale", 0.02)
                data[r0:r1] = chunk
        w.write_tensor_data(data)
        done += data.nbytes
        if sys.stderr.isatty():
            print(f"\r  {done / nbytes * 100:5.1f}%", end="", file=sys.stderr, flush=True)
    w.close()
    if sys.stderr.isatty():
        print("\r", end="", file=sys.stderr)
    print(f"  wrote {path} in {time.time() - t0:.0f}s", flush=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--models", default="0.5b,1b,1.5b",
                    help=f"comma-separated, from {','.join(MODELS)} (default: 0.5b,1b,1.5b)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--tokenizer-from", metavar="GGUF",
                    help="GGUF whose gpt2 tokenizer to reuse (default: the SmolLM2 default model "
                         "from $OWL_TEST_MODEL or the owl store; a synthetic one if absent)")
    a = ap.parse_args()

    keys = [k.strip().lower() for k in a.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown or not keys:
        sys.exit(f"unknown model(s) {','.join(unknown)}; choose from {','.join(MODELS)}")
    out_dir = Path(a.out).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)

    src = find_tokenizer_file(a.tokenizer_from)
    if src is not None:
        print(f"tokenizer: {src}")
        tok = read_tokenizer(src)
    else:
        print("tokenizer: synthetic byte-level vocabulary (no default model found)")
        tok = synthetic_tokenizer()
    for k in keys:
        write_model(k, out_dir, tok, a.seed)


if __name__ == "__main__":
    main()
