#!/usr/bin/env python3
"""A tiny LoRA adapter for tests/fixtures/arch/tiny-llama.gguf, in both formats owl reads,
and llama.cpp's logits with it.

Writes into ``tests/fixtures/lora/``:

* ``tiny-llama-lora.gguf``: llama.cpp's GGUF adapter (``general.type = adapter``,
  ``adapter.type = lora``, ``adapter.lora.alpha``; ``blk.N.<role>.weight.lora_a`` of numpy
  shape [rank, n_in] and ``.lora_b`` [n_out, rank], F32), adapting every attention and FFN
  matrix of both layers with random A and B (rank 4, alpha 8: scale 2);
* ``tiny-llama-peft/``: the same adapter as PEFT saves it (``adapter_config.json``,
  ``adapter_model.safetensors`` with ``base_model.model.model.layers.N.self_attn.q_proj
  .lora_A.weight`` ...). PEFT holds Hugging Face's Q/K row order; llama.cpp's converter
  permutes Q/K rows for its RoPE, and the B of q_proj / k_proj with them, so the GGUF file
  holds the permuted B and the PEFT one the un-permuted B;
* ``tiny-llama-lora.json`` (unless ``--no-reference``): llama.cpp's top-10 logits with the
  adapter, for 3 prompts fed one token per decode call (llama.cpp's decode path, no tiled
  GEMM) and then 16 greedy steps, at adapter scale 1, and for one prompt at scale 0.5.

    python3 scripts/make_lora_fixtures.py
    LLAMA_CPP_LIB_PATH=.../llama.cpp/build/bin PYTHONPATH=.../llama_cpp_python-0.3.36 \\
        python3 scripts/make_lora_fixtures.py

Developer machines only (the reference needs llama-cpp-python); CI reads the committed files.
"""

from __future__ import annotations

import argparse
import datetime
import json
import struct
import sys
from pathlib import Path

import numpy as np
import gguf

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "tests" / "fixtures" / "arch" / "tiny-llama.gguf"
OUT = REPO / "tests" / "fixtures" / "lora"
RANK = 4
ALPHA = 8.0
N_GEN = 16
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village by the sea,",
]
# (GGUF role, PEFT module path under model.layers.N)
ROLES = [
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
]


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf LlamaModel.permute, on rows."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = np.ascontiguousarray(t, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_adapter() -> None:
    r = gguf.GGUFReader(str(BASE))
    field = lambda k: r.fields[k].parts[r.fields[k].data[0]][0]  # noqa: E731
    n_layer = int(field("llama.block_count"))
    n_head = int(field("llama.attention.head_count"))
    n_head_kv = int(field("llama.attention.head_count_kv"))
    shapes = {t.name: (int(t.shape[1]), int(t.shape[0])) for t in r.tensors
              if len(t.shape) == 2}  # (n_out, n_in)
    rng = np.random.default_rng(14)
    w = gguf.GGUFWriter(str(OUT / "tiny-llama-lora.gguf"), "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", ALPHA)
    peft = {}
    for il in range(n_layer):
        for role, module in ROLES:
            n_out, n_in = shapes[f"blk.{il}.{role}.weight"]
            a = (rng.standard_normal((RANK, n_in)) * 0.3).astype(np.float32)
            b = (rng.standard_normal((n_out, RANK)) * 0.3).astype(np.float32)
            peft[f"base_model.model.model.layers.{il}.{module}.lora_A.weight"] = a
            peft[f"base_model.model.model.layers.{il}.{module}.lora_B.weight"] = b
            if role == "attn_q":
                b = permute(b, n_head)
            elif role == "attn_k":
                b = permute(b, n_head_kv)
            w.add_tensor(f"blk.{il}.{role}.weight.lora_a", a)
            w.add_tensor(f"blk.{il}.{role}.weight.lora_b", np.ascontiguousarray(b))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    d = OUT / "tiny-llama-peft"
    d.mkdir(parents=True, exist_ok=True)
    write_safetensors(d / "adapter_model.safetensors", peft)
    cfg = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "tiny-llama",
        "r": RANK, "lora_alpha": ALPHA, "lora_dropout": 0.0, "bias": "none",
        "target_modules": [m.split(".")[1] for _, m in ROLES], "use_rslora": False,
        "use_dora": False, "fan_in_fan_out": False, "rank_pattern": {}, "alpha_pattern": {},
    }
    (d / "adapter_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def reference() -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ctypes
    import make_references as mr
    L = mr.L
    L.llama_backend_init()
    mr.quiet_logs(False)
    model = L.llama_model_load_from_file(str(BASE).encode(), L.llama_model_default_params())
    if not model:
        raise RuntimeError(f"llama.cpp cannot load {BASE}")
    path = OUT / "tiny-llama-lora.gguf"
    adapter = L.llama_adapter_lora_init(model, str(path).encode())
    if not adapter:
        raise RuntimeError(f"llama.cpp cannot load {path}")
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)

    def run(toks: list[int], scale: float) -> dict:
        ctx = L.llama_init_from_model(model, mr.context_params())
        if not ctx:
            raise RuntimeError("llama_init_from_model failed")
        try:
            adapters = (L.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(scale)
            if L.llama_set_adapters_lora(ctx, adapters, 1, scales) != 0:
                raise RuntimeError("llama_set_adapters_lora failed")
            for pos, t in enumerate(toks):
                mr.decode(ctx, [t], pos)
            pos = len(toks)
            top, gen = [], []
            for step in range(N_GEN):
                logits = mr.last_logits(ctx, n_vocab)
                top.append(mr.topk(logits, mr.TOP_K))
                tok = top[-1][0][0]
                gen.append(tok)
                if step + 1 < N_GEN:
                    mr.decode(ctx, [tok], pos)
                    pos += 1
        finally:
            L.llama_free(ctx)
        return {"scale": scale, "tokens": gen, "top_logits": top}

    cases = []
    for i, text in enumerate(PROMPTS):
        toks = mr.tokenize(vocab, text, True, False)
        for scale in ([1.0, 0.5] if i == 0 else [1.0]):
            cases.append({"prompt": text, "prompt_tokens": toks, **run(toks, scale)})
    L.llama_adapter_lora_free(adapter)
    L.llama_model_free(model)
    return {
        "llama_cpp_python": mr.llama_cpp.__version__,
        "llama_cpp_commit": mr.VENDORED_LLAMA_CPP_COMMIT.get(mr.llama_cpp.__version__),
        "generated_on": datetime.date.today().isoformat(),
        "cpu": mr.cpu_model(),
        "model": BASE.name,
        "model_sha256": mr.sha256(BASE),
        "adapter": path.name,
        "adapter_sha256": mr.sha256(path),
        "prompt_fed": "one token per decode call",
        "n_gen": N_GEN,
        "cases": cases,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    make_adapter()
    if not args.no_reference:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import make_references as mr
        mr.write_json(OUT / "tiny-llama-lora.json", reference())
    return 0


if __name__ == "__main__":
    sys.exit(main())
