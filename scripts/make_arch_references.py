#!/usr/bin/env python3
"""Tiny random models per architecture, and llama.cpp's greedy continuations on them.

For each architecture owl supports, this writes a tiny random-weight F16 GGUF (2 layers, 4
for gpt-oss, hidden size 32, the SmolLM2 vocabulary, the metadata keys and tensor names
llama.cpp's converter writes; see make_bench_models.py) into ``tests/fixtures/arch/``, and the
VARIANTS: each architecture again in other shapes, tensor types and metadata (another layer
count, experts as wide as the embedding, a quantized token embedding and output, absent
optional keys; gpt-oss with MXFP4 experts). Next to each, a JSON reference: for 3 prompts,
llama.cpp's tokenization, 32 greedy steps (not stopping at end-of-generation) and the top-10
logits at every step, computed with llama-cpp-python 0.3.36 (llama.cpp 0c1e570) in the same
settings as make_references.py (F16 KV cache, no flash attention, the whole prompt in one
batch, then one token per decode call; for the variants the prompt's micro-batches are single
tokens, see VARIANT_UBATCH).

    python3 scripts/make_arch_references.py                  # every model
    python3 scripts/make_arch_references.py qwen3 llama-3l-q8  # some

Developer machines only (needs llama-cpp-python); CI only reads the committed files.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import sys
import tempfile
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
    # Gemma 3's shape in miniature: 6 layers, five sliding over a window of 8 (so the 32-token
    # runs cross it) then one global (load_swa_pattern's period 6), per-head Q/K norms, its
    # own RoPE base on the sliding layers, pre- and post-norms around both halves, GELU-gated
    # FFN, tied embeddings, logits soft-capped at 8 (the tiny model's logits reach past it).
    "gemma3": dict(arch="gemma3", rope_theta=1000000.0, rope_theta_swa=50000.0, qkv_bias=False,
                   qk_norm=True, head_dim=16, n_layer=6, n_head_kv=1, sliding_window=8,
                   softcap=8.0, n_ctx=32768),
}


Q = mbm.gguf.GGMLQuantizationType
# Variants: the same architecture in other shapes, tensor types and metadata, so that a loader
# that only works for the base model's choices fails a reference. name -> dict(base=arch,
# quant={tensor-name pattern (fnmatch): type} (requantized by gguf-py, first match wins),
# drop=[metadata keys left out], seed_index=pinned index, and any spec keys overriding the
# base's). A variant without spec overrides is a requantized copy of the base's fixture; one
# with overrides is generated afresh (its own seed index) and then requantized.
VARIANTS = {
    # gpt-oss with its experts in MXFP4, as the real gpt-oss files hold them.
    "gpt-oss-mxfp4": dict(base="gpt-oss", quant={"*_exps.weight": Q.MXFP4}),
    # The rest: per architecture, another layer count, experts as wide as the embedding, a
    # quantized token embedding (Q8_0 where it is 32 wide, smaller types where it is 64, to
    # keep the files small) with an untied quantized output or a tied one, and optional keys
    # left out (llama.cpp's defaults then apply). Seed indices from 101, apart from the
    # architectures'.
    # gpt-oss: 2 layers, 4 experts as wide as the embedding, MXFP4 experts, Q8_0 token
    # embedding and output, no YaRN betas (llama.cpp then uses 32 and 1).
    "gpt-oss-2l-q8": dict(base="gpt-oss", seed_index=101, n_layer=2, n_expert=4, n_ff_exp=32,
                          quant={"*_exps.weight": Q.MXFP4, "token_embd.weight": Q.Q8_0,
                                 "output.weight": Q.Q8_0},
                          drop=["gpt-oss.rope.scaling.yarn_beta_fast",
                                "gpt-oss.rope.scaling.yarn_beta_slow"]),
    # llama: 3 layers, as many KV heads as heads, untied Q8_0 embedding and output; no vocab
    # size, RoPE dimension count, KV head count or frequency base (10000) keys.
    "llama-3l-q8": dict(base="llama", seed_index=102, n_layer=3, n_head_kv=4, tied=False,
                        quant={"token_embd.weight": Q.Q8_0, "output.weight": Q.Q8_0},
                        drop=["llama.vocab_size", "llama.rope.dimension_count",
                              "llama.attention.head_count_kv", "llama.rope.freq_base"]),
    # qwen2: 1 layer, Q4_1 embedding tied to the output, no KV head count key. (Not Q4_0:
    # llama.cpp repacks a Q4_0 output head to Q4_0x8 on AVX2 machines and sums it in another
    # order than its row kernel, so the decode path could not be compared bit for bit.)
    "qwen2-1l-q4_1": dict(base="qwen2", seed_index=103, n_layer=1, n_head_kv=4,
                        quant={"token_embd.weight": Q.Q4_1},
                        drop=["qwen2.attention.head_count_kv"]),
    # qwen3: 3 layers, heads of n_embd / n_head with no key/value length keys, Q8_0 embedding
    # tied to the output.
    "qwen3-3l-q8": dict(base="qwen3", seed_index=104, n_layer=3, head_dim=8,
                        quant={"token_embd.weight": Q.Q8_0},
                        drop=["qwen3.attention.key_length", "qwen3.attention.value_length"]),
    # qwen3moe: 3 layers, 4 experts as wide as the embedding (Q8_0), untied Q8_0 embedding and
    # output, no feed_forward_length (no dense FFN to size; llama.cpp does not need it).
    "qwen3moe-3l-q8": dict(base="qwen3moe", seed_index=105, n_layer=3, n_expert=4, n_ff_exp=32,
                           tied=False,
                           quant={"*_exps.weight": Q.Q8_0, "token_embd.weight": Q.Q8_0,
                                  "output.weight": Q.Q8_0},
                           drop=["qwen3moe.feed_forward_length"]),
    # deepseek2: 2 layers (1 dense, 1 MoE), 4 experts as wide as the embedding, softmax
    # routing by default (no gating key), no groups, selection bias, weight normalisation or
    # YaRN keys, Q5_0 embedding tied to the output.
    "deepseek2-2l-q5": dict(base="deepseek2", seed_index=106, n_layer=2, n_expert=4,
                            n_ff_exp=64, n_group=0, exp_probs_b=False,
                            expert_weights_norm=False, sigmoid=False,
                            quant={"token_embd.weight": Q.Q5_0},
                            drop=["deepseek2.expert_gating_func",
                                  "deepseek2.rope.scaling.type", "deepseek2.rope.scaling.factor",
                                  "deepseek2.rope.scaling.original_context_length",
                                  "deepseek2.rope.scaling.yarn_log_multiplier"]),
    # glm4moe: 2 layers (1 dense, 1 MoE), 4 experts as wide as the embedding, sigmoid routing
    # by default (no gating key), Q5_0 embedding tied to the output.
    "glm4moe-2l-q5": dict(base="glm4moe", seed_index=107, n_layer=2, n_expert=4, n_ff_exp=64,
                          quant={"token_embd.weight": Q.Q5_0},
                          drop=["glm4moe.expert_gating_func"]),
    # ernie4_5-moe: 2 layers, both MoE (no leading dense block count nor feed_forward_length
    # key), 4 experts as wide as the embedding, Q4_1 embedding tied to the output.
    "ernie4_5-moe-2l-q4_1": dict(base="ernie4_5-moe", seed_index=108, n_layer=2, n_dense_lead=0,
                               n_expert=4, n_ff_exp=64, quant={"token_embd.weight": Q.Q4_1},
                               drop=["ernie4_5-moe.leading_dense_block_count",
                                     "ernie4_5-moe.feed_forward_length"]),
    # gemma3: 7 layers (the seventh slides again: the period restarts), as many KV heads as
    # heads, Q8_0 embedding tied to the output as in the real gemma-3-270m file, which also
    # has no sliding RoPE base (llama.cpp's default 10000) and no soft-cap key.
    "gemma3-7l-q8": dict(base="gemma3", seed_index=109, n_layer=7, n_head_kv=4,
                         quant={"token_embd.weight": Q.Q8_0},
                         drop=["gemma3.rope.freq_base_swa", "gemma3.final_logit_softcapping"]),
    # llama with every matrix and the tied embedding in BF16, as Hugging Face checkpoints hold
    # them (norms stay F32, as the converter writes them).
    "llama-bf16": dict(base="llama",
                       quant={"token_embd.weight": Q.BF16, "blk.*.attn_q.weight": Q.BF16,
                              "blk.*.attn_k.weight": Q.BF16, "blk.*.attn_v.weight": Q.BF16,
                              "blk.*.attn_output.weight": Q.BF16,
                              "blk.*.ffn_gate.weight": Q.BF16, "blk.*.ffn_up.weight": Q.BF16,
                              "blk.*.ffn_down.weight": Q.BF16}),
}
VARIANT_KEYS = ("base", "quant", "drop", "seed_index")
# The variants' references feed the prompt to llama.cpp one token per micro-batch, i.e. through
# its decode path (the prompt still in one llama_decode call): its whole-prompt path multiplies
# with llamafile's tiled GEMM, another summation order, and through these random models that
# alone moves llama.cpp's own logits by up to 4e-2 from its decode path's (measured on the
# variants: prompt-path top logits against one_by_one_top_logits), past the prompt tolerance
# and across near-ties of the greedy runs. owl's decode path is llama.cpp's bit for bit, so
# this keeps the check tight on what the variants are for: shapes, types and keys. The
# architectures' own fixtures (and the copies in WHOLE_PROMPT) keep the whole-prompt batch.
VARIANT_UBATCH = 1
WHOLE_PROMPT = {"gpt-oss-mxfp4"}


# A model's random stream follows its seed index. These are pinned (they are the positions the
# models first had in make_bench_models.MODELS), so adding benchmark models does not change the
# committed tiny models when they are regenerated. New architectures take the next free index.
SEED_INDEX = {"qwen3": 4, "llama": 5, "qwen2": 6, "qwen3moe": 7, "deepseek2": 10, "gpt-oss": 10,
              "glm4moe": 11, "ernie4_5-moe": 12, "gemma3": 13}
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


def requantized(src: Path, dst: Path, quant: dict, drop=()) -> Path:
    """`src` with the tensors whose names match a pattern of `quant` quantized to its type by
    gguf-py (the reference quantizer) and the metadata keys in `drop` left out; all other
    metadata and tensors copied unchanged."""
    gguf = mbm.gguf
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.get_field("general.architecture").contents())
    unknown = [k for k in drop if r.get_field(k) is None]
    if unknown:
        raise KeyError(f"{src.name} has no {', '.join(unknown)} to drop")
    for f in r.fields.values():
        if f.name.startswith("GGUF.") or f.name == "general.architecture" or f.name in drop:
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, f.contents(), f.types[0], sub)
    for t in r.tensors:
        data = np.array(t.data)
        qtype = next((q for pat, q in quant.items() if fnmatch.fnmatchcase(t.name, pat)), None)
        if qtype is not None:
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
        v = VARIANTS[name]
        base, spec = v["base"], {k: x for k, x in v.items() if k not in VARIANT_KEYS}
        if not spec:
            src = OUT / f"tiny-{base}.gguf"
            if not src.is_file():
                make_model(base, tok)
            return requantized(src, OUT / f"tiny-{name}.gguf", v.get("quant", {}),
                               v.get("drop", ()))
        mbm.MODELS[f"tiny-{name}"] = {**TINY, **ARCHS[base], **spec,
                                      "file": f"tiny-{name}-f16.gguf",
                                      "name": f"tiny {name} (random weights)",
                                      "seed_index": v["seed_index"]}
        with tempfile.TemporaryDirectory() as tmp:
            src = mbm.write_model(f"tiny-{name}", Path(tmp), tok, seed=7)
            return requantized(src, OUT / f"tiny-{name}.gguf", v.get("quant", {}),
                               v.get("drop", ()))
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


def reference(path: Path, n_ubatch: int | None = None) -> dict:
    """llama.cpp's references for the model at `path`; `n_ubatch` (default: make_references'
    whole-prompt batch) splits the prompt into micro-batches of that many tokens."""
    default_ubatch = mr.N_UBATCH
    mr.N_UBATCH = n_ubatch or default_ubatch
    try:
        return _reference(path, n_ubatch)
    finally:
        mr.N_UBATCH = default_ubatch


def _reference(path: Path, n_ubatch: int | None) -> dict:
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
    ubatch = {} if n_ubatch is None else {"n_ubatch": n_ubatch}
    return {
        **ubatch,
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
        ref = reference(path, VARIANT_UBATCH if name in VARIANTS and name not in WHOLE_PROMPT
                        else None)
        mr.write_json(OUT / f"tiny-{name}.json", ref)
        print(f"{name}: {path.stat().st_size / 1e6:.1f} MB, references written", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
