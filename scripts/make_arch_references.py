#!/usr/bin/env python3
"""Tiny random models per architecture, and llama.cpp's greedy continuations on them.

For each architecture owl supports, this writes a tiny random-weight F16 GGUF (2 layers, 4
for gpt-oss, hidden size 32, the SmolLM2 vocabulary, the metadata keys and tensor names
llama.cpp's converter writes; see make_bench_models.py; VARIANTS are copies with some tensors
requantized, e.g. gpt-oss with MXFP4 experts) into ``tests/fixtures/arch/`` and next to it a
JSON reference: for 3 prompts, llama.cpp's tokenization, 32 greedy steps (not stopping at
end-of-generation) and the top-10 logits at every step, computed with llama-cpp-python 0.3.36
(llama.cpp 0c1e570) in the same settings as make_references.py (F16 KV cache, no flash
attention, the whole prompt in one batch, then one token per decode call).

    python3 scripts/make_arch_references.py            # every architecture
    python3 scripts/make_arch_references.py qwen3      # one

Developer machines only (needs llama-cpp-python); CI only reads the committed files.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_bench_models as mbm  # noqa: E402
import make_references as mr  # noqa: E402

L = mr.L
OUT = mr.REPO_ROOT / "tests" / "fixtures" / "arch"
N_GEN = 32
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village by the sea,",
]
TINY = dict(n_layer=2, n_embd=32, n_ff=96, n_head=4, n_head_kv=2, n_vocab=49152, n_ctx=4096,
            rms_eps=1e-6, tied=True, scale=0.25)
ARCHS = {
    "llama": dict(arch="llama", rope_theta=10000.0, qkv_bias=False),
    "qwen2": dict(arch="qwen2", rope_theta=1000000.0, qkv_bias=True),
    "qwen3": dict(arch="qwen3", rope_theta=1000000.0, qkv_bias=False, qk_norm=True, head_dim=16),
    "qwen3moe": dict(arch="qwen3moe", rope_theta=1000000.0, qkv_bias=False, qk_norm=True,
                     head_dim=16, n_expert=8, n_expert_used=2, n_ff_exp=48),
    # DeepSeek-V3's shape in miniature: low-rank queries, a latent of 32 + 8 RoPE dims, one
    # leading dense layer, then sigmoid-scored experts in 4 groups (2 used) with a selection
    # bias, normalised and scaled weights, and a shared expert.
    "deepseek2": dict(arch="deepseek2", rope_theta=10000.0, qkv_bias=False, n_layer=3, n_embd=64,
                      n_head=4, n_head_kv=1, q_lora_rank=32, kv_lora_rank=32, n_rot=8, qk_nope=16,
                      v_head=16, n_dense_lead=1, n_expert=8, n_expert_used=2, n_ff_exp=32,
                      n_expert_shared=1, expert_weights_scale=2.5, expert_weights_norm=True,
                      sigmoid=True, n_group=4, n_group_used=2, exp_probs_b=True, n_ctx=163840,
                      yarn=dict(factor=40.0, original_context_length=4096, mscale_all_dim=1.0)),
    # GLM-4.5's shape in miniature: biased Q/K/V, RoPE over half of each head (NeoX), one
    # leading dense layer, then sigmoid-routed experts with a selection bias, normalised and
    # scaled weights and a shared expert.
    "glm4moe": dict(arch="glm4moe", rope_theta=1000000.0, qkv_bias=True, n_layer=3, n_embd=64,
                    n_head=4, n_head_kv=2, head_dim=16, n_rot=8, n_dense_lead=1, n_expert=8,
                    n_expert_used=2, n_ff_exp=32, n_expert_shared=1, expert_weights_scale=2.5,
                    qk_norm=False, n_ctx=131072, ffn_norm_name="post_attention_norm"),
    # ERNIE 4.5's MoE in miniature: one leading dense layer, softmax-routed experts with a
    # selection bias and a shared expert of its own width.
    "ernie4_5-moe": dict(arch="ernie4_5-moe", rope_theta=500000.0, qkv_bias=False, n_layer=3,
                         n_embd=64, n_head=4, n_head_kv=2, head_dim=16, n_dense_lead=1,
                         n_expert=8, n_expert_used=2, n_ff_exp=32, n_expert_shared=1,
                         n_ff_shexp=48, n_ctx=131072, ffn_norm_name="ffn_norm"),
    # 4 layers (sliding window of 8 on layers 0 and 2, full attention on 1 and 3, so the
    # 32-token runs cross the window), YaRN as in the real models, separate output head.
    "gpt-oss": dict(arch="gpt-oss", rope_theta=150000.0, qkv_bias=True, head_dim=16, n_layer=4,
                    n_expert=8, n_expert_used=2, n_ff_exp=64, rms_eps=1e-5, tied=False,
                    n_ctx=131072, sliding_window=8,
                    yarn=dict(factor=32.0, original_context_length=4096)),
}


# Copies of a tiny model with some tensors requantized: name -> (base, name suffix, type).
# gpt-oss-mxfp4 holds its experts in MXFP4, as the real gpt-oss files do.
VARIANTS = {
    "gpt-oss-mxfp4": ("gpt-oss", "_exps.weight", mbm.gguf.GGMLQuantizationType.MXFP4),
}


# A model's random stream follows its seed index. These are pinned (they are the positions the
# models first had in make_bench_models.MODELS), so adding benchmark models does not change the
# committed tiny models when they are regenerated. New architectures take the next free index.
SEED_INDEX = {"qwen3": 4, "llama": 5, "qwen2": 6, "qwen3moe": 7, "deepseek2": 10, "gpt-oss": 10,
              "glm4moe": 11, "ernie4_5-moe": 12}
for _name, _spec in ARCHS.items():
    _seed = SEED_INDEX.get(_name, max(SEED_INDEX.values()) + 1 + list(ARCHS).index(_name))
    mbm.MODELS[f"tiny-{_name}"] = dict(TINY, **_spec, file=f"tiny-{_name}.gguf",
                                       name=f"tiny {_name} (random weights)", seed_index=_seed)


# qwen3 gets a thinking chat template (Qwen3's shape: the generation prompt opens a <think>
# block unless enable_thinking is false), so the CLI's and server's reasoning split can be
# tested end to end on a model that knows nothing about thinking.
THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)


def requantized(src: Path, dst: Path, suffix: str, qtype) -> Path:
    """`src` with the tensors whose names end in `suffix` quantized to `qtype` by gguf-py (the
    reference quantizer), all metadata and other tensors copied unchanged."""
    gguf = mbm.gguf
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.get_field("general.architecture").contents())
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture":
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, f.contents(), f.types[0], sub)
    for t in r.tensors:
        data = np.array(t.data)
        if t.name.endswith(suffix):
            q = gguf.quants.quantize(data.astype(np.float32), qtype)
            w.add_tensor(t.name, q, raw_dtype=qtype)
        else:
            w.add_tensor(t.name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst


def make_model(name: str, tok: dict) -> Path:
    if name in VARIANTS:
        base, suffix, qtype = VARIANTS[name]
        src = OUT / f"tiny-{base}.gguf"
        if not src.is_file():
            make_model(base, tok)
        return requantized(src, OUT / f"tiny-{name}.gguf", suffix, qtype)
    if name == "qwen3":
        tok = dict(tok, chat_template=THINKING_TEMPLATE)
    return mbm.write_model(f"tiny-{name}", OUT, tok, seed=7)


N_ONE_BY_ONE = 8


def one_by_one(model, n_vocab: int, toks: list[int]) -> list:
    """llama.cpp's top logits when the prompt is fed one token per decode call (its decode
    path only: no tiled GEMM anywhere), then for N_ONE_BY_ONE greedy steps."""
    ctx = L.llama_init_from_model(model, mr.context_params())
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    top = []
    try:
        for pos, t in enumerate(toks):
            mr.decode(ctx, [t], pos)
        pos = len(toks)
        for _ in range(N_ONE_BY_ONE):
            logits = mr.last_logits(ctx, n_vocab)
            top.append(mr.topk(logits, mr.TOP_K))
            mr.decode(ctx, [top[-1][0][0]], pos)
            pos += 1
    finally:
        L.llama_free(ctx)
    return top


def reference(path: Path) -> dict:
    L.llama_backend_init()
    mr.quiet_logs(False)
    mp = L.llama_model_default_params()
    model = L.llama_model_load_from_file(str(path).encode(), mp)
    if not model:
        raise RuntimeError(f"llama.cpp cannot load {path}")
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    mr.N_GEN = N_GEN
    cases = []
    for text in PROMPTS:
        toks = mr.tokenize(vocab, text, True, False)
        g = mr.generate(model, vocab, n_vocab, toks)
        cases.append({"prompt": text, "prompt_tokens": toks, "tokens": g["tokens"],
                      "top_logits": g["top_logits"],
                      "one_by_one_top_logits": one_by_one(model, n_vocab, toks)})
    L.llama_model_free(model)
    return {
        "llama_cpp_python": mr.llama_cpp.__version__,
        "llama_cpp_commit": mr.VENDORED_LLAMA_CPP_COMMIT.get(mr.llama_cpp.__version__),
        "generated_on": datetime.date.today().isoformat(),
        "cpu": mr.cpu_model(),
        "model": path.name,
        "model_sha256": mr.sha256(path),
        "n_gen": N_GEN,
        "cases": cases,
    }


def main() -> int:
    names = sys.argv[1:] or list(ARCHS) + list(VARIANTS)
    OUT.mkdir(parents=True, exist_ok=True)
    src = mbm.find_tokenizer_file(None)
    if src is None:
        sys.exit("needs the default model for its vocabulary: owl pull")
    tok = mbm.read_tokenizer(src)
    for name in names:
        path = make_model(name, tok)
        ref = reference(path)
        mr.write_json(OUT / f"tiny-{name}.json", ref)
        print(f"{name}: {path.stat().st_size / 1e6:.1f} MB, references written", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
