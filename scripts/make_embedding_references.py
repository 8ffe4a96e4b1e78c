#!/usr/bin/env python3
"""llama-embedding references for owl's embeddings (`/api/embed`, the engine's `embed`).

For each tiny fixture model (tests/fixtures/arch/tiny-{llama,qwen2}.gguf) and each prompt
below, runs llama.cpp's `llama-embedding` with mean pooling and L2 normalisation
(`--pooling mean --embd-normalize 2`: what Ollama and llama-server compute for a generative
model) and writes tests/fixtures/reference/embeddings.json.

llama-embedding is llama.cpp 0c1e570 built for AVX2 (see scripts/make_perplexity_references.py;
`cmake --build build --target llama-embedding`). Set LLAMA_CPP_DIR to the checkout (default:
the vendored copy of llama-cpp-python 0.3.36). Developer machines only; CI reads the JSON.
"""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LLAMA = Path(os.environ.get(
    "LLAMA_CPP_DIR", "/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp"))
PROMPTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Embeddings turn text into vectors; similar texts land close together.",
]
MODELS = ["llama", "qwen2"]


def embed(model: Path, prompt: str) -> list:
    env = dict(os.environ, LD_LIBRARY_PATH=str(LLAMA / "build" / "bin"))
    out = subprocess.run(
        [str(LLAMA / "build" / "bin" / "llama-embedding"), "-m", str(model), "-p", prompt,
         "--pooling", "mean", "--embd-normalize", "2", "--embd-output-format", "json",
         "-t", "2", "-c", "512"],
        env=env, check=True, capture_output=True, text=True).stdout
    data = json.loads(out)["data"]
    assert len(data) == 1, "one prompt, one embedding"
    return data[0]["embedding"]


def main() -> None:
    refs = {"llama_cpp": "0c1e570", "pooling": "mean", "normalize": 2, "cases": []}
    for m in MODELS:
        path = ROOT / "tests" / "fixtures" / "arch" / f"tiny-{m}.gguf"
        for p in PROMPTS:
            refs["cases"].append({"model": f"tiny-{m}", "prompt": p, "embedding": embed(path, p)})
    dest = ROOT / "tests" / "fixtures" / "reference" / "embeddings.json"
    dest.write_text(json.dumps(refs, indent=1) + "\n")
    print(f"wrote {dest} ({len(refs['cases'])} cases)")


if __name__ == "__main__":
    main()
