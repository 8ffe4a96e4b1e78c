"""LoRA adapters over HTTP: the committed tiny llama served with its adapter fixture
(`tests/fixtures/lora/`, made by `scripts/make_lora_fixtures.py`) as a llama.cpp GGUF adapter
(`full`) and as a PEFT directory (`peft`), through the official `openai` client.

* `/v1/models` lists both adapters with `parent` naming the base;
* a request whose `model` is an adapter's name generates with it: GGUF and PEFT give the same
  text, which differs from the base model's;
* requests for the base and both adapters sent together (batched in one engine) each equal
  their output alone;
* `POST /v1/load_lora_adapter` / `unload_lora_adapter` (vLLM's routes): hot loading, a 400
  naming the field on bad input, a 404 for an unknown name; after unloading, the name is
  404 as a model.
"""

import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request

import pytest
from openai import NotFoundError, OpenAI

from conftest import ROOT, free_port, wait_healthy

MODEL = ROOT / "tests/fixtures/arch/tiny-llama.gguf"
GGUF = ROOT / "tests/fixtures/lora/tiny-llama-lora.gguf"
PEFT = ROOT / "tests/fixtures/lora/tiny-llama-peft"
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time"]


BINARY = os.environ.get("OWL_BIN", str(ROOT / "target" / "release" / "owl"))


@contextlib.contextmanager
def serving(args: list, log, env=None):
    """`owl serve --model MODEL ARGS` on a free port until the block ends; yields its URL."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [BINARY, "serve", "--model", str(MODEL), "--port", str(port), "--threads", "2",
             *args],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, timeout=60)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def lora_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("lora") / "serve.log"
    with serving(["--parallel", "6", "--lora", f"full={GGUF}", "--lora", f"peft={PEFT}"],
                 log) as base:
        yield base


def client(base: str) -> OpenAI:
    return OpenAI(base_url=base + "/v1", api_key="unused")


def complete(base: str, model: str, prompt: str) -> str:
    r = client(base).completions.create(model=model, prompt=prompt, max_tokens=12,
                                        temperature=0)
    assert r.model == model
    return r.choices[0].text


def post(base: str, path: str, body: dict) -> tuple[int, str]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_models_lists_adapters(lora_server):
    models = {m.id: m for m in client(lora_server).models.list().data}
    for name, path in [("full", GGUF), ("peft", PEFT)]:
        m = models[name]
        assert m.model_extra["parent"] == "tiny-llama"
        assert m.model_extra["root"] == str(path)


def test_adapters_change_the_output_and_formats_agree(lora_server):
    for p in PROMPTS:
        base = complete(lora_server, "tiny-llama", p)
        full = complete(lora_server, "full", p)
        assert full == complete(lora_server, "peft", p)
        assert full != base


def test_concurrent_mixed_requests_equal_solo(lora_server):
    jobs = [(m, p) for p in PROMPTS for m in ["tiny-llama", "full", "peft"]]
    solo = {j: complete(lora_server, *j) for j in jobs}
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as ex:
        together = dict(zip(jobs, ex.map(lambda j: complete(lora_server, *j), jobs)))
    assert together == solo


def test_load_and_unload(lora_server):
    code, body = post(lora_server, "/v1/load_lora_adapter", {"lora_name": "hot"})
    assert code == 400 and json.loads(body)["error"]["param"] == "lora_path"
    code, body = post(lora_server, "/v1/load_lora_adapter",
                      {"lora_name": "hot", "lora_path": str(MODEL)})
    assert code == 400 and "not a LoRA adapter" in body
    code, body = post(lora_server, "/v1/load_lora_adapter",
                      {"lora_name": "full", "lora_path": str(GGUF)})
    assert code == 400 and json.loads(body)["error"]["param"] == "lora_name"
    code, _ = post(lora_server, "/v1/load_lora_adapter",
                   {"lora_name": "hot", "lora_path": str(PEFT)})
    assert code == 200
    assert complete(lora_server, "hot", PROMPTS[0]) == complete(lora_server, "full", PROMPTS[0])
    code, _ = post(lora_server, "/v1/unload_lora_adapter", {"lora_name": "hot"})
    assert code == 200
    code, body = post(lora_server, "/v1/unload_lora_adapter", {"lora_name": "hot"})
    assert code == 404 and json.loads(body)["error"]["param"] == "lora_name"
    with pytest.raises(NotFoundError):
        complete(lora_server, "hot", PROMPTS[0])
    assert "hot" not in {m.id for m in client(lora_server).models.list().data}


@pytest.fixture(scope="module")
def derived_server(tmp_path_factory):
    """`owl serve` over a store holding a derived model `tuned` (the tiny llama + the GGUF
    adapter, made by `owl create`, as `owl finetune` makes its output), beside its base."""
    home = tmp_path_factory.mktemp("derived-home")
    env = dict(os.environ, OWL_HOME=str(home))
    subprocess.run([BINARY, "create", "tuned", "--from", str(MODEL), "--adapter", str(GGUF)],
                   env=env, check=True, capture_output=True)
    with serving(["--parallel", "4"], home / "serve.log", env) as base:
        yield base


def test_base_and_derived_served_side_by_side(derived_server, lora_server):
    """The base and the tuned model answer concurrent clients, each reply equal to its solo
    reply; the tuned one is the adapter's output (as `--lora full=` gives it), not the base's."""
    jobs = [(m, p) for p in PROMPTS for m in ["tiny-llama", "tuned"] for _ in range(2)]
    solo = {j: complete(derived_server, *j) for j in set(jobs)}
    for p in PROMPTS:
        assert solo[("tuned", p)] == complete(lora_server, "full", p)
        assert solo[("tuned", p)] != solo[("tiny-llama", p)]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as ex:
        together = list(ex.map(lambda j: complete(derived_server, *j), jobs))
    assert together == [solo[j] for j in jobs]
