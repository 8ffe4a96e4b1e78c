#!/usr/bin/env python3
"""Load benchmark: concurrent streaming chat clients against `owl serve` and `llama-server`.

For each concurrency N (default 1 4 8 16) the script starts the server with N parallel
sequences on the same model, runs N client threads that each stream `--requests` chat
completions of `--max-tokens` tokens (end-of-generation ignored so both servers generate the
same number of tokens), and reports aggregate generated tokens/s, time to first token (p50,
p99) and errors. Servers alternate per N so drift on a shared machine hits both alike.
With `--json-schema` every request carries `response_format` json_schema (a list of strings
long enough to fill the token budget), which measures constrained decoding on both servers.
This is a benchmark, not a test: nothing here passes or fails.

    python3 scripts/load_bench.py --model ~/.owl/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --llama-server /path/to/llama-server -c 1 4 8 16
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "Tell me about the history of the bicycle.",
    "Explain how a refrigerator works.",
    "Describe a walk through a forest in autumn.",
    "What makes a good cup of coffee?",
    "Write a short story about a lighthouse keeper.",
    "Explain photosynthesis to a child.",
    "Describe the city of Lisbon.",
    "What are the rules of chess?",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not ready")


def start(kind, args, n, port):
    ctx = args.ctx
    if kind == "owl":
        cmd = [args.owl, "serve", "--model", args.model, "--port", str(port),
               "--parallel", str(n), "--ctx-size", str(ctx), "--threads", str(args.threads)]
        cmd += args.owl_arg
    else:
        # llama-server's -c is the total context, split evenly between its -np slots.
        cmd = [args.llama_server, "-m", args.model, "--port", str(port), "-np", str(n),
               "-c", str(ctx * n), "-t", str(args.threads), "--no-webui"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc


def model_id(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/v1/models")
    data = json.loads(c.getresponse().read())
    return data["data"][0]["id"]


SCHEMA = {
    "type": "object",
    "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
    "required": ["steps"],
}
CONSTRAINED = False


def one_request(port, i, max_tokens, out, model):
    req = {
        "model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
        "ignore_eos": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
    }
    if CONSTRAINED:
        req["response_format"] = {"type": "json_schema",
                                  "json_schema": {"name": "steps", "schema": SCHEMA}}
    body = json.dumps(req)
    t0 = time.perf_counter()
    ttft = None
    tokens = 0
    usage = None
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("POST", "/v1/chat/completions", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            out.append(("error", f"status {r.status}"))
            return
        for line in r:
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("usage"):
                usage = ev["usage"]
            for ch in ev.get("choices") or []:
                if (ch.get("delta") or {}).get("content"):
                    tokens += 1
                    if ttft is None:
                        ttft = time.perf_counter() - t0
        c.close()
    except Exception as e:  # noqa: BLE001 - reported as an error of the run
        out.append(("error", repr(e)))
        return
    n = usage["completion_tokens"] if usage else tokens
    out.append(("ok", ttft if ttft is not None else time.perf_counter() - t0, n))


def run_load(port, n_clients, requests, max_tokens):
    model = model_id(port)
    results = []
    lock = threading.Lock()

    def client(k):
        for j in range(requests):
            local = []
            one_request(port, k * requests + j, max_tokens, local, model)
            with lock:
                results.extend(local)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if r[0] == "ok"]
    errors = len(results) - len(ok)
    gen = sum(r[2] for r in ok)
    ttfts = sorted(r[1] for r in ok)

    def pct(p):
        if not ttfts:
            return float("nan")
        return ttfts[min(len(ttfts) - 1, int(round(p / 100 * (len(ttfts) - 1))))]

    return {"tok_s": gen / wall, "ttft_p50": pct(50), "ttft_p99": pct(99),
            "errors": errors, "generated": gen, "wall_s": wall}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--owl", default=str(ROOT / "target" / "release" / "owl"))
    ap.add_argument("--llama-server", default=shutil.which("llama-server"))
    ap.add_argument("-c", "--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--requests", type=int, default=2, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=512, help="context per sequence")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-o", "--json", help="write the results here as JSON")
    ap.add_argument("--owl-arg", action="append", default=[],
                    help="an extra argument for `owl serve` (repeatable), e.g. --owl-arg=--spec=off")
    ap.add_argument("--json-schema", action="store_true",
                    help="constrain every reply with a JSON schema (response_format)")
    args = ap.parse_args()
    global CONSTRAINED
    CONSTRAINED = args.json_schema
    args.model = os.path.expanduser(args.model)
    kinds = ["owl"] + (["llama.cpp"] if args.llama_server else [])
    print(f"# {cpu_model()}, {args.threads} threads, model {Path(args.model).name}, "
          f"{args.requests} requests/client, {args.max_tokens} tokens each"
          f"{', json_schema' if CONSTRAINED else ''}", flush=True)
    rows = []
    for n in args.clients:
        for kind in kinds:
            port = free_port()
            proc = start(kind, args, n, port)
            try:
                run_load(port, 1, 1, 4)  # warm-up
                r = run_load(port, n, args.requests, args.max_tokens)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            r.update(server=kind, clients=n)
            rows.append(r)
            print(f"{kind:9} clients {n:2}: {r['tok_s']:7.1f} tok/s  ttft p50 {r['ttft_p50']*1000:7.0f} ms"
                  f"  p99 {r['ttft_p99']*1000:7.0f} ms  errors {r['errors']}", flush=True)
    print("\n| clients | owl tok/s | llama-server tok/s | ratio | owl TTFT p50/p99 ms | llama TTFT p50/p99 ms | errors owl/llama |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.clients:
        o = next(r for r in rows if r["server"] == "owl" and r["clients"] == n)
        l = next((r for r in rows if r["server"] == "llama.cpp" and r["clients"] == n), None)
        if l:
            print(f"| {n} | {o['tok_s']:.1f} | {l['tok_s']:.1f} | {o['tok_s']/l['tok_s']:.2f} | "
                  f"{o['ttft_p50']*1000:.0f}/{o['ttft_p99']*1000:.0f} | "
                  f"{l['ttft_p50']*1000:.0f}/{l['ttft_p99']*1000:.0f} | {o['errors']}/{l['errors']} |")
        else:
            print(f"| {n} | {o['tok_s']:.1f} | – | – | {o['ttft_p50']*1000:.0f}/{o['ttft_p99']*1000:.0f} | – | {o['errors']}/– |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
