#!/usr/bin/env python3
"""Tiny Hugging Face model directories for owl's HF-directory loader, made from the committed
tiny GGUF fixtures with the ``safetensors`` and ``tokenizers`` packages (no torch).

For ``tests/fixtures/arch/tiny-{llama,qwen2}.gguf`` this writes ``tests/fixtures/hf/tiny-NAME/``:
``config.json``, ``tokenizer.json`` (the GGUF's byte-level BPE vocabulary, merges and control
tokens, with SmolLM's pre-tokenizer), ``tokenizer_config.json`` (special tokens and the chat
template) and the weights under Hugging Face's names and row order, as F16/F32 safetensors —
one file for llama, two shards plus ``model.safetensors.index.json`` for qwen2. Llama's Q/K
rows are put back into HF's rotate-half order, the inverse of the converter's ``permute``.

The GGUF is then what llama.cpp's ``convert_hf_to_gguf.py`` makes of the directory, so
``crates/hf/tests/hf_dirs.rs`` checks that owl's view of the directory has the GGUF's metadata
and the same tensor bytes, and the same logits. With ``--check-convert PYTHON`` (a Python that
has torch and transformers), the script also runs llama.cpp's converter on each directory and
checks that every tensor and tokenizer key comes back equal to the original GGUF, which is what
makes the fixture pair a faithful one.

    python3 scripts/make_hf_fixtures.py [--check-convert /path/to/python]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

REPO = Path(__file__).resolve().parent.parent
ARCH_DIR = REPO / "tests" / "fixtures" / "arch"
OUT = REPO / "tests" / "fixtures" / "hf"
LLAMA_CPP = Path("/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp")

HF_ARCH = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}
LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def field(r: GGUFReader, key: str, default=None):
    f = r.fields.get(key)
    return default if f is None else f.contents()


def hf_name(gguf_name: str) -> str:
    stem, suffix = gguf_name.rsplit(".", 1)
    top = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
    if stem in top:
        return f"{top[stem]}.{suffix}"
    _, i, part = stem.split(".", 2)
    return f"model.layers.{i}.{LAYER_NAMES[part]}.{suffix}"


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of the converter's permute: GGUF row (h, 2i + j) -> HF row (h, j * half + i)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tokenizer(r: GGUFReader, out: Path) -> dict:
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ")) for m in field(r, "tokenizer.ggml.merges")]
    assert field(r, "tokenizer.ggml.pre") == "smollm", "the fixtures use SmolLM2's vocabulary"
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    control = [t for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    tok.save(str(out / "tokenizer.json"), pretty=False)
    name = lambda key: tokens[field(r, key)]  # noqa: E731
    cfg = {
        "bos_token": name("tokenizer.ggml.bos_token_id"),
        "eos_token": name("tokenizer.ggml.eos_token_id"),
        "unk_token": name("tokenizer.ggml.unknown_token_id"),
        "pad_token": name("tokenizer.ggml.padding_token_id"),
        "add_bos_token": bool(field(r, "tokenizer.ggml.add_bos_token")),
        "clean_up_tokenization_spaces": False,
        "model_max_length": 4096,
        "tokenizer_class": "GPT2Tokenizer",
        "chat_template": field(r, "tokenizer.chat_template"),
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    return cfg


def make(arch: str) -> Path:
    src = ARCH_DIR / f"tiny-{arch}.gguf"
    r = GGUFReader(src)
    out = OUT / f"tiny-{arch}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    k = lambda s: field(r, f"{arch}.{s}")  # noqa: E731
    n_head, n_kv = k("attention.head_count"), k("attention.head_count_kv")
    names = {t.name for t in r.tensors}
    config = {
        "architectures": [HF_ARCH[arch]],
        "model_type": arch,
        "hidden_size": k("embedding_length"),
        "intermediate_size": k("feed_forward_length"),
        "num_hidden_layers": k("block_count"),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "max_position_embeddings": k("context_length"),
        "rms_norm_eps": 1e-6,
        "rope_theta": float(k("rope.freq_base")),
        "vocab_size": len(field(r, "tokenizer.ggml.tokens")),
        "hidden_act": "silu",
        "tie_word_embeddings": "output.weight" not in names,
        "torch_dtype": "float16",
        "bos_token_id": field(r, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": field(r, "tokenizer.ggml.eos_token_id"),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_tokenizer(r, out)

    tensors = {}
    for t in r.tensors:
        data = np.array(t.data).reshape([int(d) for d in reversed(t.shape)])
        if arch == "llama" and (".attn_q." in t.name or ".attn_k." in t.name):
            data = unpermute(data, n_head if ".attn_q." in t.name else n_kv)
        tensors[hf_name(t.name)] = np.ascontiguousarray(data)
    if arch == "qwen2":
        # Two shards and an index, as large checkpoints come.
        keys = sorted(tensors)
        shards = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
        weight_map = {}
        for i, part in enumerate(shards, 1):
            fname = f"model-0000{i}-of-00002.safetensors"
            save_file({n: tensors[n] for n in part}, str(out / fname), metadata={"format": "pt"})
            weight_map.update({n: fname for n in part})
        index = {"metadata": {"total_size": sum(v.nbytes for v in tensors.values())},
                 "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    else:
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    print(f"wrote {out.relative_to(REPO)}")
    return out


def check_convert(python: str, arch: str, hf_dir: Path) -> None:
    """Runs llama.cpp's converter on the directory and compares with the original GGUF."""
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "out.gguf"
        # transformers picks its tokenizer class by `model_type` (Qwen2Tokenizer for qwen2,
        # whose split differs from SmolLM's and so defeats the converter's vocabulary hash):
        # the converter reads a copy whose `model_type` is llama's, which keeps the
        # tokenizer_config's GPT-2 class. The architecture, and so the tensor mapping, still
        # comes from `architectures`.
        src = Path(tmp) / hf_dir.name
        shutil.copytree(hf_dir, src)
        cfg = json.loads((src / "config.json").read_text())
        cfg["model_type"] = "llama"
        (src / "config.json").write_text(json.dumps(cfg))
        subprocess.run([python, str(LLAMA_CPP / "convert_hf_to_gguf.py"), str(src),
                        "--outfile", str(dst), "--outtype", "f16"], check=True,
                       capture_output=True)
        a, b = GGUFReader(ARCH_DIR / f"tiny-{arch}.gguf"), GGUFReader(dst)
        ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
        assert set(ta) == set(tb), (set(ta) ^ set(tb))
        for n in ta:
            assert ta[n].tensor_type == tb[n].tensor_type, n
            assert np.array_equal(np.array(ta[n].data), np.array(tb[n].data)), n
        for key in a.fields:
            if key.startswith("tokenizer."):
                assert field(a, key) == field(b, key), key
        print(f"llama.cpp's converter gives back tiny-{arch}.gguf's tensors and tokenizer")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-convert", metavar="PYTHON")
    args = ap.parse_args()
    for arch in HF_ARCH:
        out = make(arch)
        if args.check_convert:
            check_convert(args.check_convert, arch, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
