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

Gemma 3 and Qwen 3 MoE have no committed GGUF small enough to start from, so for them the
script makes both sides itself, small (a ~300-token vocabulary, dims of 32): a random BF16
checkpoint under Hugging Face's names (``tests/fixtures/hf/tiny-{gemma3,qwen3moe}/``) and next
to it ``tiny-NAME.gguf``, written with gguf-py the way ``convert_hf_to_gguf.py``'s
``Gemma3Model`` and ``Qwen3MoeModel`` write it (the same key calls, the converter's own vocabulary
code for SentencePiece, gguf-py's ``SpecialVocab``; norms plus one for Gemma, F32 norms and
routers, experts stacked). Gemma 3's vocabulary is a SentencePiece BPE model trained here
(``tokenizer.model``, with the ``tokenizer.json`` and ``tokenizer_config.json`` Gemma ships);
Qwen 3 MoE's a byte-level BPE with Qwen 2's split, trained with ``tokenizers``. The converter
itself needs torch; ``--check-convert PYTHON`` is for the first two fixtures only.

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
sys.path.insert(0, "/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py")  # llama.cpp's own gguf-py, if there
from gguf import GGUFReader  # noqa: E402
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


# ---------------------------------------------------------------------------------------------
# Gemma 3 and Qwen 3 MoE: both sides made here.

CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Paris is a city of bridges, museums and cafes along the river Seine.",
    "A model reads tokens, one after another, and predicts the next one.",
    "Numbers like 12, 345 and 6789 are split into digits by some tokenizers.",
    "The quick brown fox jumps over the lazy dog; the dog does not mind.",
    "Small models are cheap to test: they run in milliseconds on any machine.",
    "Hello world! How are you today? I am fine, thank you very much.",
    "Owls hunt at night, and their feathers make almost no sound in flight.",
] * 4


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (round to nearest even), as uint16."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(u: np.ndarray) -> np.ndarray:
    return (u.astype(np.uint32) << 16).view(np.float32)


def save_bf16(tensors: dict[str, np.ndarray], path: Path) -> None:
    """A safetensors file of BF16 tensors (uint16 bits; numpy has no bfloat16)."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = np.ascontiguousarray(t, dtype=np.uint16).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def random_bf16(rng: np.random.Generator, *shape: int, scale: float = 0.3) -> np.ndarray:
    return to_bf16(rng.standard_normal(shape).astype(np.float32) * scale)


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def gemma_tokenizer(out: Path) -> int:
    """A SentencePiece BPE model shaped like Gemma's (ids 0-3 pad/eos/bos/unk, control turn
    markers, byte fallback, no dummy prefix), with the tokenizer.json and tokenizer_config.json
    a Gemma directory carries. Returns the vocabulary size."""
    import io

    import sentencepiece as spm
    from tokenizers import Regex, normalizers, processors  # noqa: F401

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=buf, model_type="bpe", vocab_size=320,
        byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>",
        eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        control_symbols=["<start_of_turn>", "<end_of_turn>"], add_dummy_prefix=False,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_digits=True, character_coverage=1.0, num_threads=1, minloglevel=2)
    (out / "tokenizer.model").write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    n = sp.vocab_size()
    vocab = {sp.IdToPiece(i): i for i in range(n)}
    # tokenizer.json as transformers' GemmaConverter writes it: merges from the scores.
    merges = []
    for piece, pid in vocab.items():
        if sp.IsControl(pid) or sp.IsUnknown(pid) or sp.IsByte(pid):
            continue
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                merges.append((pid, vocab[a], vocab[b], a, b))
    merges = [(a, b) for _, _, _, a, b in sorted(merges)]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse()])
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", 2)])
    tok.save(str(out / "tokenizer.json"), pretty=False)
    write_json(out / "tokenizer_config.json", {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {
            str(vocab[t]): {"content": t, "lstrip": False, "normalized": False,
                            "rstrip": False, "single_word": False, "special": True}
            for t in specials},
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False,
        "spaces_between_special_tokens": False,
        "tokenizer_class": "GemmaTokenizer",
        "chat_template": (
            "{{ bos_token }}{% for message in messages %}{% set role = 'model' if "
            "message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' + role "
            "+ '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"),
    })
    return n


def sentencepiece_vocab(d: Path, vocab_size: int):
    """convert_hf_to_gguf.py's _create_vocab_sentencepiece (its ids past the model are padding;
    its added_tokens.json and added_tokens_decoder handling)."""
    from sentencepiece import SentencePieceProcessor

    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(d / "tokenizer.model"))
    tokens = [f"[PAD{i}]".encode() for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    types = [5] * vocab_size
    for i in range(min(sp.vocab_size(), vocab_size)):
        ty = 1
        if sp.IsUnknown(i):
            ty = 2
        elif sp.IsControl(i):
            ty = 3
        elif sp.IsUnused(i):
            ty = 5
        elif sp.IsByte(i):
            ty = 6
        tokens[i], scores[i], types[i] = sp.IdToPiece(i).encode(), sp.GetScore(i), ty
    tcfg = json.loads((d / "tokenizer_config.json").read_text())
    for i, data in tcfg.get("added_tokens_decoder", {}).items():
        i, t = int(i), data["content"]
        if data.get("special") or (t.startswith("<") and t.endswith(">") and "|" in t):
            types[i] = 3
        else:
            types[i], t = 4, t.replace("\u2581", " ")
        scores[i], tokens[i] = -1000.0, t.encode()
    return tokens, scores, types


def make_gemma3() -> Path:
    import gguf

    out = OUT / "tiny-gemma3"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    n_vocab = gemma_tokenizer(out)
    n_layer, n_embd, n_ff, n_head, n_kv, hd = 7, 32, 64, 4, 2, 16
    config = {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "hidden_size": n_embd,
        "intermediate_size": n_ff,
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": hd,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": {"rope_type": "linear", "factor": 2.0},
        "sliding_window": 4,
        "sliding_window_pattern": 6,
        "query_pre_attn_scalar": hd,
        "final_logit_softcapping": 30.0,
        "attn_logit_softcapping": None,
        "hidden_activation": "gelu_pytorch_tanh",
        "vocab_size": n_vocab,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "bos_token_id": 2,
        "eos_token_id": 1,
        "pad_token_id": 0,
    }
    write_json(out / "config.json", config)
    write_json(out / "generation_config.json", {"bos_token_id": 2, "eos_token_id": [1, 5],
                                                 "pad_token_id": 0})
    rng = np.random.default_rng(3)
    norm = lambda n: to_bf16(rng.standard_normal(n).astype(np.float32) * 0.2)  # noqa: E731
    hf: dict[str, np.ndarray] = {"model.embed_tokens.weight": random_bf16(rng, n_vocab, n_embd, scale=1.0)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        hf[p + "input_layernorm.weight"] = norm(n_embd)
        hf[p + "self_attn.q_proj.weight"] = random_bf16(rng, n_head * hd, n_embd)
        hf[p + "self_attn.k_proj.weight"] = random_bf16(rng, n_kv * hd, n_embd)
        hf[p + "self_attn.v_proj.weight"] = random_bf16(rng, n_kv * hd, n_embd)
        hf[p + "self_attn.o_proj.weight"] = random_bf16(rng, n_embd, n_head * hd)
        hf[p + "self_attn.q_norm.weight"] = norm(hd)
        hf[p + "self_attn.k_norm.weight"] = norm(hd)
        hf[p + "post_attention_layernorm.weight"] = norm(n_embd)
        hf[p + "pre_feedforward_layernorm.weight"] = norm(n_embd)
        hf[p + "post_feedforward_layernorm.weight"] = norm(n_embd)
        hf[p + "mlp.gate_proj.weight"] = random_bf16(rng, n_ff, n_embd)
        hf[p + "mlp.up_proj.weight"] = random_bf16(rng, n_ff, n_embd)
        hf[p + "mlp.down_proj.weight"] = random_bf16(rng, n_embd, n_ff)
    hf["model.norm.weight"] = norm(n_embd)
    save_bf16(hf, out / "model.safetensors")

    # The GGUF, as Gemma3Model writes it.
    w = gguf.GGUFWriter(str(OUT / "tiny-gemma3.gguf"), "gemma3")
    w.add_name("tiny-gemma3")
    w.add_block_count(n_layer)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(2.0)
    w.add_rope_freq_base(config["rope_theta"])
    w.add_rope_freq_base_swa(config["rope_local_base_freq"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_final_logit_softcapping(config["final_logit_softcapping"])
    w.add_sliding_window(config["sliding_window"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    tokens, scores, types = sentencepiece_vocab(out, n_vocab)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    gguf.SpecialVocab(out, n_vocab=len(tokens)).add_to_gguf(w)
    w.add_add_space_prefix(False)
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "post_attention_norm",
             "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for name, t in hf.items():
        stem = name.removesuffix(".weight")
        if stem == "model.embed_tokens":
            g = "token_embd"
        elif stem == "model.norm":
            g = "output_norm"
        else:
            _, _, i, part = stem.split(".", 3)
            g = f"blk.{i}.{names[part]}"
        if name.endswith("norm.weight"):
            w.add_tensor(g + ".weight", from_bf16(t) + np.float32(1.0))
        else:
            w.add_tensor(g + ".weight", t, raw_dtype=gguf.GGMLQuantizationType.BF16)
    write_gguf(w)
    print(f"wrote {out.relative_to(REPO)} and tiny-gemma3.gguf")
    return out


def write_gguf(w) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def qwen_tokenizer(out: Path) -> list[str]:
    """A byte-level BPE with Qwen 2's split, trained on the corpus; Qwen's special tokens."""
    from tokenizers import Regex, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=330, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok.save(str(out / "tokenizer.json"), pretty=False)
    vocab = tok.get_vocab(with_added_tokens=True)
    write_json(out / "tokenizer_config.json", {
        "add_bos_token": False,
        "add_prefix_space": False,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "model_max_length": 4096,
        "tokenizer_class": "Qwen2Tokenizer",
        "chat_template": (
            "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
            "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"),
    })
    return [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def make_qwen3moe() -> Path:
    import gguf

    out = OUT / "tiny-qwen3moe"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tokens = qwen_tokenizer(out)
    n_tok = len(tokens)
    n_vocab = n_tok + 3  # padded, as Qwen's embeddings are
    n_layer, n_embd, n_ff, n_ff_exp, n_head, n_kv, hd, n_exp, n_used = 2, 32, 64, 16, 4, 2, 16, 4, 2
    config = {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "hidden_size": n_embd,
        "intermediate_size": n_ff,
        "moe_intermediate_size": n_ff_exp,
        "num_experts": n_exp,
        "num_experts_per_tok": n_used,
        "norm_topk_prob": True,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": hd,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": None,
        "hidden_act": "silu",
        "vocab_size": n_vocab,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": tokens.index("<|endoftext|>"),
        "eos_token_id": tokens.index("<|im_end|>"),
    }
    write_json(out / "config.json", config)
    rng = np.random.default_rng(4)
    norm = lambda n: to_bf16(1.0 + rng.standard_normal(n).astype(np.float32) * 0.2)  # noqa: E731
    hf: dict[str, np.ndarray] = {"model.embed_tokens.weight": random_bf16(rng, n_vocab, n_embd, scale=1.0)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        hf[p + "input_layernorm.weight"] = norm(n_embd)
        hf[p + "self_attn.q_proj.weight"] = random_bf16(rng, n_head * hd, n_embd)
        hf[p + "self_attn.k_proj.weight"] = random_bf16(rng, n_kv * hd, n_embd)
        hf[p + "self_attn.v_proj.weight"] = random_bf16(rng, n_kv * hd, n_embd)
        hf[p + "self_attn.o_proj.weight"] = random_bf16(rng, n_embd, n_head * hd)
        hf[p + "self_attn.q_norm.weight"] = norm(hd)
        hf[p + "self_attn.k_norm.weight"] = norm(hd)
        hf[p + "post_attention_layernorm.weight"] = norm(n_embd)
        hf[p + "mlp.gate.weight"] = random_bf16(rng, n_exp, n_embd, scale=1.0)
        for e in range(n_exp):
            q = f"{p}mlp.experts.{e}."
            hf[q + "gate_proj.weight"] = random_bf16(rng, n_ff_exp, n_embd)
            hf[q + "up_proj.weight"] = random_bf16(rng, n_ff_exp, n_embd)
            hf[q + "down_proj.weight"] = random_bf16(rng, n_embd, n_ff_exp)
    hf["model.norm.weight"] = norm(n_embd)
    hf["lm_head.weight"] = random_bf16(rng, n_vocab, n_embd)
    # Two shards, experts split across them, and an index.
    keys = sorted(hf)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    weight_map = {}
    for k, part in enumerate(shards, 1):
        fname = f"model-0000{k}-of-00002.safetensors"
        save_bf16({n: hf[n] for n in part}, out / fname)
        weight_map.update({n: fname for n in part})
    write_json(out / "model.safetensors.index.json",
               {"metadata": {"total_size": sum(v.nbytes for v in hf.values())},
                "weight_map": weight_map})

    # The GGUF, as Qwen3MoeModel writes it.
    w = gguf.GGUFWriter(str(OUT / "tiny-qwen3moe.gguf"), "qwen3moe")
    w.add_name("tiny-qwen3moe")
    w.add_block_count(n_layer)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(config["rope_theta"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_expert_count(n_exp)
    w.add_expert_used_count(n_used)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    w.add_expert_feed_forward_length(n_ff_exp)
    # get_vocab_base: ids past the tokenizer are [PADn]; added special tokens are control.
    gtokens, gtypes = [], []
    for i in range(n_vocab):
        if i >= n_tok:
            gtokens.append(f"[PAD{i}]")
            gtypes.append(5)
        else:
            gtokens.append(tokens[i])
            gtypes.append(3 if tokens[i].startswith("<|") else 1)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(gtokens)
    w.add_token_types(gtypes)
    gguf.SpecialVocab(out, load_merges=True, n_vocab=len(gtokens)).add_to_gguf(w)
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "ffn_norm",
             "mlp.gate": "ffn_gate_inp"}
    f32 = lambda t: from_bf16(t)  # noqa: E731
    for name in hf:
        t = hf[name]
        stem = name.removesuffix(".weight")
        if ".experts." in stem:
            continue
        if stem == "model.embed_tokens":
            g = "token_embd"
        elif stem == "model.norm":
            g = "output_norm"
        elif stem == "lm_head":
            g = "output"
        else:
            _, _, i, part = stem.split(".", 3)
            g = f"blk.{i}.{names[part]}"
        if t.ndim == 1 or g.endswith("_norm") or g.endswith("ffn_gate_inp"):
            w.add_tensor(g + ".weight", f32(t))
        else:
            w.add_tensor(g + ".weight", t, raw_dtype=gguf.GGMLQuantizationType.BF16)
        if stem.endswith("mlp.gate"):
            i = stem.split(".")[2]
            for wn, gn in [("down_proj", "ffn_down_exps"), ("gate_proj", "ffn_gate_exps"),
                           ("up_proj", "ffn_up_exps")]:
                stacked = np.stack([hf[f"model.layers.{i}.mlp.experts.{e}.{wn}.weight"]
                                    for e in range(n_exp)])
                w.add_tensor(f"blk.{i}.{gn}.weight", stacked,
                             raw_dtype=gguf.GGMLQuantizationType.BF16)
    write_gguf(w)
    print(f"wrote {out.relative_to(REPO)} and tiny-qwen3moe.gguf")
    return out


def make_deepseek2() -> Path:
    """DeepSeek-V3-shaped: MLA with a Q LoRA, one dense layer then MoE with sigmoid routing,
    groups, a selection bias, a shared expert and YaRN; the tokenizer is Qwen 3 MoE's."""
    import gguf

    out = OUT / "tiny-deepseek2"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tokens = qwen_tokenizer(out)
    n_vocab = len(tokens)
    n_layer, n_embd, n_ff, n_ff_exp, n_head = 3, 64, 96, 32, 4
    q_rank, kv_rank, nope, rope, v = 32, 32, 16, 8, 16
    n_exp, n_used, n_group, topk_group, n_shared = 8, 2, 4, 2, 1
    rope_scaling = {"type": "yarn", "factor": 40.0, "original_max_position_embeddings": 4096,
                    "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}
    config = {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "hidden_size": n_embd,
        "intermediate_size": n_ff,
        "moe_intermediate_size": n_ff_exp,
        "num_hidden_layers": n_layer,
        "num_nextn_predict_layers": 1,
        "first_k_dense_replace": 1,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_head,
        "q_lora_rank": q_rank,
        "kv_lora_rank": kv_rank,
        "qk_nope_head_dim": nope,
        "qk_rope_head_dim": rope,
        "v_head_dim": v,
        "n_routed_experts": n_exp,
        "num_experts_per_tok": n_used,
        "n_group": n_group,
        "topk_group": topk_group,
        "n_shared_experts": n_shared,
        "routed_scaling_factor": 2.5,
        "norm_topk_prob": True,
        "scoring_func": "sigmoid",
        "topk_method": "noaux_tc",
        "max_position_embeddings": 163840,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000,
        "rope_scaling": rope_scaling,
        "hidden_act": "silu",
        "vocab_size": n_vocab,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": tokens.index("<|endoftext|>"),
        "eos_token_id": tokens.index("<|im_end|>"),
    }
    write_json(out / "config.json", config)
    rng = np.random.default_rng(5)
    norm = lambda n: to_bf16(1.0 + rng.standard_normal(n).astype(np.float32) * 0.2)  # noqa: E731
    hf: dict[str, np.ndarray] = {"model.embed_tokens.weight": random_bf16(rng, n_vocab, n_embd, scale=1.0)}
    for i in range(n_layer + 1):  # the last is the MTP layer, which the converter drops
        p = f"model.layers.{i}."
        hf[p + "input_layernorm.weight"] = norm(n_embd)
        hf[p + "self_attn.q_a_proj.weight"] = random_bf16(rng, q_rank, n_embd)
        hf[p + "self_attn.q_a_layernorm.weight"] = norm(q_rank)
        hf[p + "self_attn.q_b_proj.weight"] = random_bf16(rng, n_head * (nope + rope), q_rank)
        hf[p + "self_attn.kv_a_proj_with_mqa.weight"] = random_bf16(rng, kv_rank + rope, n_embd)
        hf[p + "self_attn.kv_a_layernorm.weight"] = norm(kv_rank)
        hf[p + "self_attn.kv_b_proj.weight"] = random_bf16(rng, n_head * (nope + v), kv_rank)
        hf[p + "self_attn.o_proj.weight"] = random_bf16(rng, n_embd, n_head * v)
        hf[p + "post_attention_layernorm.weight"] = norm(n_embd)
        if i < 1:
            hf[p + "mlp.gate_proj.weight"] = random_bf16(rng, n_ff, n_embd)
            hf[p + "mlp.up_proj.weight"] = random_bf16(rng, n_ff, n_embd)
            hf[p + "mlp.down_proj.weight"] = random_bf16(rng, n_embd, n_ff)
            continue
        hf[p + "mlp.gate.weight"] = random_bf16(rng, n_exp, n_embd, scale=1.0)
        hf[p + "mlp.gate.e_score_correction_bias"] = rng.standard_normal(n_exp).astype(np.float32) * 0.1
        for e in range(n_exp):
            q = f"{p}mlp.experts.{e}."
            hf[q + "gate_proj.weight"] = random_bf16(rng, n_ff_exp, n_embd)
            hf[q + "up_proj.weight"] = random_bf16(rng, n_ff_exp, n_embd)
            hf[q + "down_proj.weight"] = random_bf16(rng, n_embd, n_ff_exp)
        for wn, shape in [("gate_proj", (n_ff_exp * n_shared, n_embd)),
                          ("up_proj", (n_ff_exp * n_shared, n_embd)),
                          ("down_proj", (n_embd, n_ff_exp * n_shared))]:
            hf[f"{p}mlp.shared_experts.{wn}.weight"] = random_bf16(rng, *shape)
    hf["model.norm.weight"] = norm(n_embd)
    hf["lm_head.weight"] = random_bf16(rng, n_vocab, n_embd)
    # The selection bias is F32 in DeepSeek's checkpoints; the rest BF16.
    save_mixed(hf, out / "model.safetensors")

    # The GGUF, as DeepseekV2Model writes it.
    w = gguf.GGUFWriter(str(OUT / "tiny-deepseek2.gguf"), "deepseek2")
    w.add_name("tiny-deepseek2")
    w.add_block_count(n_layer)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(1)
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(40.0)
    w.add_rope_scaling_orig_ctx_len(4096)
    w.add_rope_scaling_yarn_beta_fast(32)
    w.add_rope_scaling_yarn_beta_slow(1)
    w.add_rope_freq_base(10000)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_expert_count(n_exp)
    w.add_expert_used_count(n_used)
    w.add_expert_group_count(n_group)
    w.add_expert_group_used_count(topk_group)
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    w.add_leading_dense_block_count(1)
    w.add_vocab_size(n_vocab)
    w.add_q_lora_rank(q_rank)
    w.add_kv_lora_rank(kv_rank)
    w.add_key_length(kv_rank + rope)
    w.add_value_length(kv_rank)
    w.add_key_length_mla(nope + rope)
    w.add_value_length_mla(v)
    w.add_expert_feed_forward_length(n_ff_exp)
    w.add_expert_shared_count(n_shared)
    w.add_expert_weights_scale(2.5)
    w.add_expert_weights_norm(True)
    w.add_rope_dimension_count(rope)
    w.add_rope_scaling_yarn_log_mul(0.1 * 1.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t.startswith("<|") else 1 for t in tokens])
    gguf.SpecialVocab(out, load_merges=True, n_vocab=n_vocab).add_to_gguf(w)
    names = {"input_layernorm": "attn_norm", "self_attn.q_a_proj": "attn_q_a",
             "self_attn.q_a_layernorm": "attn_q_a_norm", "self_attn.q_b_proj": "attn_q_b",
             "self_attn.kv_a_proj_with_mqa": "attn_kv_a_mqa",
             "self_attn.kv_a_layernorm": "attn_kv_a_norm", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "mlp.gate": "ffn_gate_inp",
             "mlp.shared_experts.gate_proj": "ffn_gate_shexp",
             "mlp.shared_experts.up_proj": "ffn_up_shexp",
             "mlp.shared_experts.down_proj": "ffn_down_shexp"}
    bf16 = gguf.GGMLQuantizationType.BF16
    for name, t in hf.items():
        if ".experts." in name and ".shared_experts." not in name:
            continue
        if name.startswith(f"model.layers.{n_layer}."):
            continue
        if name.endswith("e_score_correction_bias"):
            w.add_tensor(f"blk.{name.split('.')[2]}.exp_probs_b.bias", t)
            continue
        stem = name.removesuffix(".weight")
        if stem == "model.embed_tokens":
            g = "token_embd"
        elif stem == "model.norm":
            g = "output_norm"
        elif stem == "lm_head":
            g = "output"
        else:
            _, _, i, part = stem.split(".", 3)
            if part == "self_attn.kv_b_proj":
                kv_b = t.reshape(n_head, nope + v, kv_rank)
                w.add_tensor(f"blk.{i}.attn_k_b.weight",
                             np.ascontiguousarray(kv_b[:, :nope, :].transpose(0, 2, 1)),
                             raw_dtype=bf16)
                w.add_tensor(f"blk.{i}.attn_v_b.weight", np.ascontiguousarray(kv_b[:, nope:, :]),
                             raw_dtype=bf16)
                continue
            g = f"blk.{i}.{names[part]}"
        if t.ndim == 1 or g.endswith("_norm") or g.endswith("ffn_gate_inp"):
            w.add_tensor(g + ".weight", from_bf16(t))
        else:
            w.add_tensor(g + ".weight", t, raw_dtype=bf16)
        if stem.endswith("mlp.gate"):
            i = stem.split(".")[2]
            for wn, gn in [("down_proj", "ffn_down_exps"), ("gate_proj", "ffn_gate_exps"),
                           ("up_proj", "ffn_up_exps")]:
                stacked = np.stack([hf[f"model.layers.{i}.mlp.experts.{e}.{wn}.weight"]
                                    for e in range(n_exp)])
                w.add_tensor(f"blk.{i}.{gn}.weight", stacked, raw_dtype=bf16)
    write_gguf(w)
    print(f"wrote {out.relative_to(REPO)} and tiny-deepseek2.gguf")
    return out


def save_mixed(tensors: dict[str, np.ndarray], path: Path) -> None:
    """save_bf16, with float32 arrays stored as F32."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        dtype = "F32" if t.dtype == np.float32 else "BF16"
        data = np.ascontiguousarray(t).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-convert", metavar="PYTHON")
    ap.add_argument("--only", choices=["llama", "qwen2", "gemma3", "qwen3moe", "deepseek2"])
    args = ap.parse_args()
    for arch in HF_ARCH:
        if args.only in (None, arch):
            out = make(arch)
            if args.check_convert:
                check_convert(args.check_convert, arch, out)
    if args.only in (None, "gemma3"):
        make_gemma3()
    if args.only in (None, "qwen3moe"):
        make_qwen3moe()
    if args.only in (None, "deepseek2"):
        make_deepseek2()
    return 0


if __name__ == "__main__":
    sys.exit(main())
