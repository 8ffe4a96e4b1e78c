"""Speculation with a draft model over HTTP (`owl serve --draft-model M`), through the official
`openai` client: the committed tiny llama guesses for itself.

* replies, alone and concurrent, equal those of a server with `--spec off`;
* /metrics counts the draft model's guesses apart (`owl_spec_draft_model_*`);
* a served model of another vocabulary (the tiny DeepSeek-V2 of `tests/fixtures/hf/`) is still
  served, guessing by prompt lookup, and the server log says why.
"""

import concurrent.futures
import re
import urllib.request

from openai import OpenAI

from conftest import ROOT
from test_lora import MODEL, serving

OTHER = ROOT / "tests/fixtures/hf/tiny-deepseek2.gguf"
# Prompts without repeated spans, so the first guesses come from the draft model.
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time",
           "Seven quick zebras jumped"]


def complete(base: str, prompt: str, model: str = "tiny-llama") -> str:
    r = OpenAI(base_url=base + "/v1", api_key="unused").completions.create(
        model=model, prompt=prompt, max_tokens=16, temperature=0)
    return r.choices[0].text


def metric(base: str, name: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
        text = r.read().decode()
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return float(m.group(1))


def test_draft_model_serves_the_same_replies(tmp_path):
    with serving(["--spec", "off", "--parallel", "4"], tmp_path / "off.log") as base:
        want = {p: complete(base, p) for p in PROMPTS}
    log = tmp_path / "draft.log"
    with serving(["--model", str(OTHER), "--draft-model", str(MODEL), "--parallel", "4"],
                 log) as base:
        first = complete(base, PROMPTS[0])
        assert first == want[PROMPTS[0]]
        drafted = metric(base, "owl_spec_draft_model_tokens_total")
        accepted = metric(base, "owl_spec_draft_model_accepted_tokens_total")
        assert drafted > 0 and 0 < accepted <= drafted, (drafted, accepted)
        assert drafted <= metric(base, "owl_spec_draft_tokens_total")
        with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as ex:
            together = dict(zip(PROMPTS, ex.map(lambda p: complete(base, p), PROMPTS)))
        assert together == want
        # The model of another vocabulary answers, guessing by prompt lookup.
        assert complete(base, PROMPTS[1], "tiny-deepseek2") is not None
    text = log.read_text()
    assert "vocabulary" in text and "prompt lookup" in text, text[-2000:]
