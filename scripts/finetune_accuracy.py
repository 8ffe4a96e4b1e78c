#!/usr/bin/env python3
"""Exact-match accuracy of a model on held-out routing chats (`owl finetune`'s yardstick).

For each {"messages": [...]} line, the conversation up to its last assistant turn goes to
`owl run` (greedy, at most 8 tokens) and the reply, stripped and lower-cased, must equal that
turn's content exactly.

    python3 scripts/finetune_accuracy.py --model tickets --data tests/fixtures/finetune/tickets-heldout.jsonl
    python3 scripts/finetune_accuracy.py --model smollm2-135m-instruct --lora path/to/adapter.gguf ...
"""
import argparse
import json
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--owl", default="./target/release/owl")
    ap.add_argument("--lora")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--show", type=int, default=5, help="misses to print")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.data) if l.strip()]
    if a.limit:
        rows = rows[: a.limit]
    right, misses = 0, []
    for r in rows:
        msgs = r["messages"]
        last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        want = msgs[last]["content"].strip().lower()
        user = msgs[last - 1]["content"]
        cmd = [a.owl, "run", "-m", a.model, "-t", a.threads, "--temperature", "0",
               "--max-tokens", "8", user]
        if a.lora:
            cmd[2:2] = ["--lora", a.lora]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"owl run failed: {out.stderr}")
        got = out.stdout.strip().lower()
        if got == want:
            right += 1
        else:
            misses.append((want, got, user))
    for want, got, user in misses[: a.show]:
        print(f"  want {want!r}, got {got!r}: {user[:70]}")
    print(json.dumps({"model": a.model, "n": len(rows), "right": right,
                      "accuracy": right / max(1, len(rows))}))


if __name__ == "__main__":
    main()
