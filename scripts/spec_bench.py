#!/usr/bin/env python3
"""Speculative decoding's speed-up on `owl run`, with the replies checked identical.

For each prompt, runs `owl run --temperature 0 -v` with `--spec off` and `--spec auto` (and
`ngram` with --all-modes, `draft` with --draft-model) alternately, `--reps` times each, and reads the decode rate owl prints
(tokens after the first, per second after the first). Prints one line per prompt (median
rates, ratio, whether every reply was identical) and a JSON summary. Exits 1 if any reply
differs between modes.

  python3 scripts/spec_bench.py --model PATH_OR_NAME [--reps 5] [--threads 2] [--draft-model D]
      [--raw]   (plain completions, for base models without a chat template)
"""
import argparse
import json
import re
import statistics
import subprocess
import sys

PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a "
    "single step. To be or not to be, that is the question. All that glitters is not gold. The "
    "early bird catches the worm, but the second mouse gets the cheese. Actions speak louder "
    "than words, and practice makes perfect."
)
TYPOS = (
    "Our compnay was founded in 1998 by two freinds who beleived that every famly deserves "
    "clean water. Today we operate in twelve contries and employ more then four hundred people. "
    "We are proud of our recrod, and we are comitted to doing even better in the futrue."
)
CODE = '''import json

def load_users(path):
    with open(path) as f:
        data = json.load(f)
    users = []
    for item in data:
        if item.get("active"):
            users.append({"name": item["name"], "email": item["email"]})
    return users

def save_users(path, users):
    with open(path, "w") as f:
        json.dump(users, f, indent=2)
'''
GRAMMAR = (
    "Me and my brother goes to the market every saturday. We buys apples, bread and some "
    "cheese, and then we walks home together. The market are busy in the morning, so we "
    "usually arrives early."
)
JSON_DOC = """{
  "name": "Alice Smith",
  "age": 30,
  "email": "alice@example.com",
  "address": {"street": "12 Oak Lane", "city": "Springfield", "zip": "01101"},
  "tags": ["admin", "editor"]
}"""
ITEMS = ("apples, bananas, carrots, dates, eggs, flour, grapes, honey, ice cream, jam, kale, "
         "lemons, milk, noodles, oranges")

PROMPTS = {
    "copy/repeat": "Repeat the following text exactly, word for word:\n\n" + PARAGRAPH + "\n",
    "copy/proofread": "Fix the typos in this text and return the full corrected text:\n\n" + TYPOS + "\n",
    "copy/comment-code": "Add a comment above each function in this Python code. Return the whole code.\n\n```python\n" + CODE + "```",
    "copy/rename": "In the code below, rename the function `load_users` to `read_active_users`. Return the complete code unchanged otherwise.\n\n```python\n" + CODE + "```",
    "copy/list": "Here is a shopping list: " + ITEMS + ".\nWrite the same list again, one item per line.",
    "copy/grammar": "Correct the grammar of this text and return the whole corrected text:\n\n" + GRAMMAR + "\n",
    "copy/json-edit": "Change the age to 31 in this JSON and return the whole JSON:\n\n```json\n" + JSON_DOC + "\n```",
    "free/story": "Write a short story about a robot who learns to paint.",
    "free/explain": "Explain how photosynthesis works, for a twelve-year-old.",
    "free/tips": "Give me five practical tips for sleeping better.",
}

# For base models without a chat template (`--raw`): text the model continues by copying, and
# free text.
RAW_PROMPTS = {
    "copy/repeat": "Original:\n" + PARAGRAPH + "\n\nCopy:\nThe quick brown fox",
    "copy/code": CODE + "\n\n# The same code again:\n\nimport json\n",
    "free/story": "Once upon a time, in a small village by the sea,",
}

RATE = re.compile(r"generated (\d+) tokens in ([\d.]+)s = ([\d.]+) tok/s")


def run(owl, model, threads, mode, prompt, max_tokens, draft_model=None, raw=False):
    cmd = [owl, "run", "-m", model, "-t", str(threads), "-v", "--temperature", "0",
           "--max-tokens", str(max_tokens), "--spec", mode, "-"]
    if raw:
        cmd[2:2] = ["--raw"]
    if mode == "draft":
        cmd[-1:-1] = ["--draft-model", draft_model]
    p = subprocess.run(cmd, input=prompt, capture_output=True, text=True, check=True)
    m = RATE.search(p.stderr)
    if not m:
        raise SystemExit(f"no rate in owl's output: {p.stderr[-300:]}")
    return p.stdout, int(m.group(1)), float(m.group(3))


def record(owl, model, threads, prompts, max_tokens, raw, path):
    """Writes each prompt's reply token ids (`--spec off`, temperature 0) as JSON lines for
    `cargo run --release -p owl-engine --example spec_replay -- MODEL FILE`."""
    with open(path, "w") as f:
        for name, prompt in prompts.items():
            cmd = [owl, "run", "-m", model, "-t", str(threads), "--json", "--temperature", "0",
                   "--max-tokens", str(max_tokens), "--spec", "off", "-"]
            if raw:
                cmd[2:2] = ["--raw"]
            p = subprocess.run(cmd, input=prompt, capture_output=True, text=True, check=True)
            reply = [json.loads(line)["token"] for line in p.stdout.splitlines()
                     if line.startswith("{") and '"token"' in line]
            f.write(json.dumps({"name": name, "prompt": prompt, "raw": raw, "reply": reply}) + "\n")
            print(f"{name:16} {len(reply):4} tokens recorded", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--owl", default="./target/release/owl")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--all-modes", action="store_true", help="ngram too")
    ap.add_argument("--draft-model", help="also `--spec draft` with this draft model")
    ap.add_argument("--prompts", help="comma-separated prompt names (default: all)")
    ap.add_argument("--raw", action="store_true",
                    help="plain completion (`owl run --raw`) of RAW_PROMPTS, for base models")
    ap.add_argument("--record", metavar="FILE",
                    help="only record each reply's token ids (for examples/spec_replay.rs)")
    a = ap.parse_args()
    modes = ["off", "auto"] + (["ngram"] if a.all_modes else []) + (
        ["draft"] if a.draft_model else [])
    summary = {}
    same_everywhere = True
    chosen = RAW_PROMPTS if a.raw else PROMPTS
    if a.prompts:
        unknown = set(a.prompts.split(",")) - set(chosen)
        if unknown:
            raise SystemExit(f"unknown prompts {sorted(unknown)}: pick from {sorted(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in a.prompts.split(",")}
    if a.record:
        record(a.owl, a.model, a.threads, chosen, a.max_tokens, a.raw, a.record)
        return
    for name, prompt in chosen.items():
        rates = {m: [] for m in modes}
        texts = set()
        tokens = None
        for _ in range(a.reps):
            for m in modes:
                text, n, rate = run(a.owl, a.model, a.threads, m, prompt, a.max_tokens,
                                    a.draft_model, a.raw)
                texts.add(text)
                tokens = n
                rates[m].append(rate)
        med = {m: statistics.median(v) for m, v in rates.items()}
        same = len(texts) == 1
        same_everywhere &= same
        row = {"tokens": tokens, "identical": same}
        for m in modes:
            row[f"{m}_tok_s"] = round(med[m], 1)
            if m != "off":
                row[f"{m}_ratio"] = round(med[m] / med["off"], 3)
        summary[name] = row
        print(f"{name:16} {tokens:4} tokens  " + "  ".join(
            f"{m} {med[m]:7.1f} tok/s" for m in modes) + "  " + "  ".join(
            f"{m}/off {med[m] / med['off']:.2f}x" for m in modes if m != "off") +
            f"  identical: {same}", flush=True)
    print(json.dumps(summary, indent=1))
    sys.exit(0 if same_everywhere else 1)


if __name__ == "__main__":
    main()
