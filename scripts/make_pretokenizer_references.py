#!/usr/bin/env python3
"""llama.cpp's tokenization of tricky strings under every pre-tokenizer owl relies on.

llama.cpp ships vocabulary test files for only some pre-tokenizers (no DeepSeek-V3, Kimi K2,
GPT-4o...). The pre-tokenizer is just the `tokenizer.ggml.pre` name, so each one can be checked
on any byte-level BPE vocabulary: this copies the Qwen2 vocabulary fixture with `pre` replaced,
lets llama.cpp (llama-cpp-python 0.3.36, vocab only) tokenize the strings of llama.cpp's own
`ggml-vocab-llama-bpe.gguf.inp` plus a few CJK, digit and emoji strings, and writes the ids to
`crates/text/tests/fixtures/pretokenizers.json`. `crates/text/tests/pretokenizers.rs` checks
owl's tokenizer against it.

    python3 scripts/make_pretokenizer_references.py

Developer machines only (needs llama-cpp-python and gguf); CI only reads the committed JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import gguf
import llama_cpp
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_references as mr  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VOCAB = ROOT / "crates/text/tests/fixtures/vocab"
OUT = ROOT / "crates/text/tests/fixtures/pretokenizers.json"

# One name per distinct pre-tokenizer of the families owl targets, and the other regex kinds.
PRES = [
    "deepseek-v3", "deepseek-llm", "deepseek-coder", "deepseek-r1-qwen", "llama-bpe", "qwen2",
    "qwen35", "gpt-2", "starcoder", "falcon", "poro-chat", "viking", "tekken", "gpt-4o",
    "jais-2", "minicpm5", "exaone-moe", "bailingmoe", "seed-coder", "smollm", "command-r",
    "chatglm-bpe", "glm4", "grok-2", "hunyuan-dense", "ufakzeka", "laguna",
]

EXTRA = [
    "数字123456和中文混合，还有标点。",
    "日本語のテキストとカタカナ、ひらがな。",
    "3.14159 + 2718281828 = 12345678901234567890",
    "Kimi K2 🚀 émojis, naïve café; 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "def f(x):\n\treturn x**2  # 平方\n\n\n",
    "   leading spaces and trailing   ",
    "I'm they're we'VE it'S don't",
]


def inputs() -> list[str]:
    text = (VOCAB / "ggml-vocab-llama-bpe.gguf.inp").read_text(encoding="utf-8")
    cases = text.split("\n__ggml_vocab_test__\n")
    if cases and cases[-1].endswith("\n__ggml_vocab_test__"):
        cases[-1] = cases[-1][: -len("\n__ggml_vocab_test__")]
    return [c for c in cases if c] + EXTRA


def with_pre(src: Path, dst: Path, pre: str) -> None:
    reader = gguf.GGUFReader(src, "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    writer = gguf.GGUFWriter(dst, arch.contents() if arch else "llama")
    new = {gguf.Keys.Tokenizer.PRE: MetadataDetails(gguf.GGUFValueType.STRING, pre)}
    copy_with_new_metadata(reader, writer, new, [])


def tokenize(path: Path, texts: list[str]) -> list[list[int]]:
    llama_cpp.llama_backend_init()
    mr.quiet_logs(False)
    mp = llama_cpp.llama_model_default_params()
    mp.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), mp)
    if not model:
        raise RuntimeError(f"llama.cpp cannot load {path}")
    vocab = llama_cpp.llama_model_get_vocab(model)
    out = [mr.tokenize(vocab, t, False, False) for t in texts]
    llama_cpp.llama_model_free(model)
    return out


def main() -> int:
    texts = inputs()
    result: dict = {
        "llama_cpp_python": llama_cpp.__version__,
        "vocab": "ggml-vocab-qwen2.gguf (tokenizer.ggml.pre replaced)",
        "texts": texts,
        "ids": {},
    }
    with tempfile.TemporaryDirectory() as d:
        for pre in PRES:
            path = Path(d) / f"{pre}.gguf"
            with_pre(VOCAB / "ggml-vocab-qwen2.gguf", path, pre)
            result["ids"][pre] = tokenize(path, texts)
            print(f"{pre}: {sum(map(len, result['ids'][pre]))} tokens", flush=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=None) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
