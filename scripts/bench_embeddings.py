#!/usr/bin/env python3
"""Embedding throughput: `owl serve` against `llama-server --embeddings`, sentences per second.

256 short English sentences (generated deterministically below, 6-12 words each) are embedded
the way a client does it: one `/v1/embeddings` request carrying all 256 inputs ("1x256"), and
eight concurrent requests of 32 inputs ("8x32"). Both servers run at the same time on the same
CPUs (``taskset``) with the same thread count; requests alternate between them so that load
from other processes on a shared machine falls on both alike (an idle server takes no CPU).
Each cell is the median of ``--runs`` timed runs after one warm-up.

Usage:
  scripts/bench_embeddings.py --owl target/release/owl \\
      --llama-server .../build/bin/llama-server --cpus 0,1 -t 2 \\
      --model F16=/work/embmodels/minilm-F16.gguf --model Q8_0=/work/embmodels/minilm-Q8_0.gguf \\
      --owl-only HF-F32=/root/.owl/models/all-MiniLM-L6-v2

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

SUBJECTS = ["The cat", "A young engineer", "My neighbour", "The old train", "Our team",
            "The small bird", "A quiet river", "The new library", "Her brother", "The red car",
            "This recipe", "The morning sun", "A tired doctor", "The city council", "His laptop",
            "The football club"]
VERBS = ["quickly finished", "slowly crossed", "carefully repaired", "happily visited",
         "never forgot", "often describes", "suddenly opened", "proudly presented"]
OBJECTS = ["the wooden bridge", "a long report", "the blue door", "an interesting book",
           "the garden", "a broken window", "the mountain path", "the final exam"]
ENDINGS = ["", " yesterday", " before dinner", " in the rain", " after a long week",
           " with great care", " near the station", " for the first time"]


def sentences(n: int = 256) -> list[str]:
    """n distinct short sentences, the same on every run."""
    out = []
    for i in range(n):
        s = SUBJECTS[i % 16]
        v = VERBS[(i // 16) % 8]
        o = OBJECTS[(i * 5 + i // 16) % 8]
        e = ENDINGS[(i // 128 * 4 + i * 3 + i // 8) % 8]
        out.append(f"{s} {v} {o}{e}.")
    return out


def post(port: int, inputs: list[str]) -> None:
    body = json.dumps({"input": inputs}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/embeddings", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        data = json.loads(r.read())
    assert len(data["data"]) == len(inputs), "wrong number of embeddings"


def run_once(port: int, texts: list[str], mode: str) -> float:
    """Sentences per second of one run."""
    t0 = time.perf_counter()
    if mode == "1x256":
        post(port, texts)
    else:
        n_req = 8
        per = len(texts) // n_req
        threads = [threading.Thread(target=post, args=(port, texts[i * per:(i + 1) * per]))
                   for i in range(n_req)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    return len(texts) / (time.perf_counter() - t0)


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            post(port, ["warm up"])
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"server on port {port} not ready")


def start(cmd: list[str], cpus: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", cpus, *cmd], stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--owl", default="target/release/owl")
    ap.add_argument("--llama-server")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="a GGUF both servers load")
    ap.add_argument("--owl-only", action="append", default=[], metavar="NAME=PATH",
                    help="a model only owl loads (e.g. a Hugging Face directory)")
    ap.add_argument("--llama-args", default="-np 8 -c 4096",
                    help="more llama-server arguments (its default -b 2048 -ub 512 otherwise)")
    ap.add_argument("--cpus", default="0,1")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--modes", default="1x256,8x32")
    ap.add_argument("--logs", default="/tmp")
    args = ap.parse_args()
    texts = sentences()
    modes = args.modes.split(",")
    rows = []
    jobs = [(m, True) for m in args.model] + [(m, False) for m in args.owl_only]
    for spec, both in jobs:
        name, path = spec.split("=", 1)
        procs = {}
        port = 18090
        procs["owl"] = (port, start([args.owl, "serve", "-m", path, "-t", str(args.threads),
                                     "--port", str(port), "--parallel", "8"],
                                    args.cpus, Path(args.logs, f"bench-emb-owl-{name}.log")))
        if both and args.llama_server:
            port2 = 18091
            procs["llama"] = (port2, start(
                [args.llama_server, "-m", path, "--embeddings", "-t", str(args.threads),
                 "-tb", str(args.threads), "--port", str(port2), *args.llama_args.split()],
                args.cpus, Path(args.logs, f"bench-emb-llama-{name}.log")))
        try:
            for port_, proc in procs.values():
                wait_ready(port_, proc)
            for mode in modes:
                res = {k: [] for k in procs}
                for k, (port_, _) in procs.items():
                    run_once(port_, texts, mode)  # warm-up
                for _ in range(args.runs):
                    for k, (port_, _) in procs.items():
                        res[k].append(run_once(port_, texts, mode))
                med = {k: statistics.median(v) for k, v in res.items()}
                span = {k: (min(v), max(v)) for k, v in res.items()}
                ratio = med["owl"] / med["llama"] if "llama" in med else None
                rows.append((name, mode, med, span, ratio))
                print(json.dumps({"model": name, "mode": mode, "median": med, "span": span,
                                  "owl/llama": ratio}), flush=True)
        finally:
            for _, proc in procs.values():
                proc.terminate()
                proc.wait()
    print("\n| model | request shape | owl sent/s | llama-server sent/s | owl / llama |")
    print("|---|---|---:|---:|---:|")
    for name, mode, med, span, ratio in rows:
        o = f"{med['owl']:.1f} ({span['owl'][0]:.1f}–{span['owl'][1]:.1f})"
        ll = (f"{med['llama']:.1f} ({span['llama'][0]:.1f}–{span['llama'][1]:.1f})"
              if "llama" in med else "—")
        r = f"{ratio:.2f}" if ratio else "—"
        print(f"| {name} | {mode} | {o} | {ll} | {r} |")


if __name__ == "__main__":
    main()
