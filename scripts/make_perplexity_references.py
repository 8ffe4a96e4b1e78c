#!/usr/bin/env python3
"""Texts and llama-perplexity references for `owl perplexity`.

    # the fidelity text (not committed: ~64 KB of English prose and commands): the top-level
    # Markdown docs of the vendored llama.cpp (docs/*.md, sorted by name), concatenated and cut
    # at the last line break before --bytes
    python3 scripts/make_perplexity_references.py text --bytes 65536 --out /tmp/owl-ppl.txt

    # the committed test fixtures: tests/fixtures/perplexity/text.txt (the first 6 KB of
    # llama.cpp's docs/speculative.md, MIT licensed) scored by llama-perplexity on
    # tests/fixtures/arch/tiny-llama.gguf (F16) -> tests/fixtures/perplexity/tiny-llama.json, and
    # on its Q4_1 quantization by `owl quantize` (token embedding Q8_0: 32 columns)
    # tests/fixtures/perplexity/tiny-llama-q4_1.gguf -> tiny-llama-q4_1.json
    cargo build --release -p owl && python3 scripts/make_perplexity_references.py fixture

llama-perplexity is llama.cpp 0c1e570 built for AVX2 only (GGML_NATIVE=OFF, GGML_AVX2=ON,
no AVX-512), the build owl's exact path (OWL_NO_REPACK=1) equals bit for bit; it runs with
flash attention off (`-fa off`, owl's attention is llama.cpp's non-flash path) and `-b` equal to
`-c` (one chunk per pass). Set LLAMA_CPP_DIR to the llama.cpp checkout (default: the vendored
copy of llama-cpp-python 0.3.36). Developer machines only; CI reads the committed JSON.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LLAMA_CPP_DIR = Path(os.environ.get(
    "LLAMA_CPP_DIR", "/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp"))
FIXTURE_DIR = REPO_ROOT / "tests" / "fixtures" / "perplexity"
FIXTURE_MODEL = REPO_ROOT / "tests" / "fixtures" / "arch" / "tiny-llama.gguf"
FIXTURE_Q4_1 = FIXTURE_DIR / "tiny-llama-q4_1.gguf"
OWL = REPO_ROOT / "target" / "release" / "owl"
FIXTURE_CTX = 128
FIXTURE_BYTES = 6000


def cut(text: str, n_bytes: int) -> str:
    """The longest prefix of whole lines within n_bytes (UTF-8)."""
    data = text.encode("utf-8")[:n_bytes]
    end = data.rfind(b"\n")
    return data[: end + 1 if end >= 0 else len(data)].decode("utf-8", errors="ignore")


def docs_text(n_bytes: int) -> str:
    files = sorted((LLAMA_CPP_DIR / "docs").glob("*.md"))
    if not files:
        sys.exit(f"no docs/*.md under {LLAMA_CPP_DIR} (set LLAMA_CPP_DIR)")
    return cut("".join(f.read_text(encoding="utf-8") for f in files), n_bytes)


def llama_perplexity(model: Path, text: Path, n_ctx: int, threads: int, extra=()) -> dict:
    """Runs llama-perplexity and parses its chunk PPLs and final estimate."""
    bin_dir = LLAMA_CPP_DIR / "build" / "bin"
    cmd = [str(bin_dir / "llama-perplexity"), "-m", str(model), "-f", str(text),
           "-c", str(n_ctx), "-b", str(n_ctx), "-fa", "off", "-t", str(threads), *extra]
    env = dict(os.environ, LD_LIBRARY_PATH=str(bin_dir))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    log = out.stdout + out.stderr
    chunks = [float(v) for v in re.findall(r"\[\d+\](\d+\.\d+),", log)]
    final = re.search(r"Final estimate: PPL = (\d+\.\d+) \+/- (\d+\.\d+)", log)
    n_tokens = re.search(r"tokenizes to only (\d+) tokens", log)
    if final is None:
        sys.exit(f"no final estimate from {' '.join(cmd)}:\n{log[-3000:]}")
    return {
        "command": " ".join(["llama-perplexity", *cmd[1:]]),
        "chunk_ppl": chunks,
        "n_chunks": len(chunks),
        "ppl": float(final.group(1)),
        "ppl_error": float(final.group(2)),
        "short": n_tokens is not None,
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("text", help="write the fidelity text")
    t.add_argument("--bytes", type=int, default=65536)
    t.add_argument("--out", type=Path, default=Path("/tmp/owl-ppl.txt"))
    f = sub.add_parser("fixture", help="write the committed test fixture and its reference")
    f.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    if args.what == "text":
        text = docs_text(args.bytes)
        args.out.write_text(text, encoding="utf-8")
        print(f"{args.out}: {len(text.encode('utf-8'))} bytes, sha256 {sha256(args.out)}")
        return

    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    text_path = FIXTURE_DIR / "text.txt"
    text = cut((LLAMA_CPP_DIR / "docs" / "speculative.md").read_text(encoding="utf-8"),
               FIXTURE_BYTES)
    text_path.write_text(text, encoding="utf-8")
    subprocess.run([str(OWL), "quantize", "-t", "1", str(FIXTURE_MODEL), str(FIXTURE_Q4_1),
                    "Q4_1"], check=True)
    for model in (FIXTURE_MODEL, FIXTURE_Q4_1):
        ref = llama_perplexity(model, text_path, FIXTURE_CTX, args.threads)
        ref.pop("short")
        ref["command"] = ref["command"].replace(str(REPO_ROOT) + "/", "")
        out = {
            "llama_cpp_commit": "0c1e570",
            "build": "AVX2 only, -fa off",
            "generated_on": datetime.date.today().isoformat(),
            "cpu": cpu_name(),
            "model": model.name,
            "model_sha256": sha256(model),
            "text": text_path.name,
            "text_sha256": sha256(text_path),
            "n_ctx": FIXTURE_CTX,
            **ref,
        }
        dest = FIXTURE_DIR / (model.stem + ".json")
        dest.write_text(json.dumps(out, indent=2) + "\n")
        print(f"{dest}: {ref['n_chunks']} chunks, PPL {ref['ppl']} +/- {ref['ppl_error']}")

if __name__ == "__main__":
    main()
