"""`owl run` and `owl serve` share one engine: the same messages and sampling settings give the
same reply, greedy or seeded, with or without stop strings."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("OWL_BIN", str(ROOT / "target" / "release" / "owl"))

CASES = [
    # (system, user, sampling flags for `owl run`, the same for the server)
    (None, "What is the capital of France?",
     ["--temperature", "0"], dict(temperature=0)),
    ("You are a terse assistant.", "Name three colours.",
     ["--temperature", "0"], dict(temperature=0)),
    (None, "Write a haiku about autumn.",
     ["--temperature", "0.8", "--top-k", "40", "--top-p", "0.95", "--min-p", "0.05",
      "--seed", "1234"],
     dict(temperature=0.8, top_p=0.95, seed=1234, extra_body={"top_k": 40, "min_p": 0.05})),
    (None, "Count from 1 to 10.",
     ["--temperature", "0", "--stop", "5"], dict(temperature=0, stop=["5"])),
]


def owl_run(server, system, user, flags, max_tokens):
    cmd = [BIN, "run", "--threads", "2", "--ctx-size", str(server.ctx), "-n", str(max_tokens)]
    model = os.environ.get("OWL_TEST_MODEL")
    if model:
        cmd += ["--model", model]
    if system:
        cmd += ["--system", system]
    out = subprocess.run(cmd + flags + [user], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout.decode()


@pytest.mark.parametrize("system,user,flags,params", CASES)
def test_owl_run_reply_equals_owl_serve_reply(server, client, model_id, system, user, flags,
                                              params):
    max_tokens = 48
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}]
    r = client.chat.completions.create(model=model_id, messages=messages,
                                       max_tokens=max_tokens, **params)
    served = r.choices[0].message.content
    printed = owl_run(server, system, user, flags, max_tokens)
    # `owl run` ends its output with a newline when the reply does not.
    expected = served if served.endswith("\n") else served + "\n"
    assert printed == expected
