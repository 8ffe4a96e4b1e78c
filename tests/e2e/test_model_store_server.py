"""One server for many models, through the official `ollama` client: models found in place in
an Ollama-layout store and a Hugging Face cache (both built here from the tiny fixtures) are
listed and run without being copied; a model is pulled from a local server in the Hub's
layout (HF_ENDPOINT); copy, create and delete change the store; models load on demand, leave
after their keep-alive, and the memory budget unloads the least recently used one."""

import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import ollama
import pytest

from conftest import ROOT, free_port, wait_healthy

ARCH = ROOT / "tests" / "fixtures" / "arch"
REV = "0123456789abcdef0123456789abcdef01234567"
HUB_REPO = "owl-test/pulled-tiny"


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


class Hub(http.server.BaseHTTPRequestHandler):
    """The two Hub endpoints hf-hub's client calls: repository info and `resolve`."""
    files = {}

    def log_message(self, *a):
        pass

    def _file(self):
        repo, _, rest = self.path.lstrip("/").partition("/resolve/")
        name = rest.partition("/")[2]
        return self.files.get(name) if repo == HUB_REPO else None

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        if self.path.startswith(f"/api/models/{HUB_REPO}/revision/"):
            body = json.dumps({"id": HUB_REPO, "sha": REV,
                               "siblings": [{"rfilename": f} for f in self.files]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = self._file()
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0] or 0)
        part = data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
        self.send_header("X-Repo-Commit", REV)
        self.send_header("Accept-Ranges", "bytes")
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if not head:
            self.wfile.write(part)


def build_ollama_store(root: Path) -> Path:
    blob = ARCH / "tiny-qwen2.gguf"
    digest = sha256(blob)
    (root / "blobs").mkdir(parents=True)
    shutil.copy(blob, root / "blobs" / f"sha256-{digest}")
    params = json.dumps({"temperature": 0}).encode()
    pd = hashlib.sha256(params).hexdigest()
    (root / "blobs" / f"sha256-{pd}").write_bytes(params)
    man = root / "manifests" / "registry.ollama.ai" / "library" / "tinyq" / "latest"
    man.parent.mkdir(parents=True)
    man.write_text(json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": f"sha256:{pd}", "size": len(params)},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": blob.stat().st_size},
            {"mediaType": "application/vnd.ollama.image.params", "digest": f"sha256:{pd}", "size": len(params)},
        ],
    }))
    return root / "blobs" / f"sha256-{digest}"


def build_hf_cache(hub: Path) -> Path:
    repo = hub / "models--cached-org--tiny-llama-GGUF"
    data = (ARCH / "tiny-llama.gguf").read_bytes()
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    snap = repo / "snapshots" / REV
    snap.mkdir(parents=True)
    os.symlink(os.path.relpath(blob, snap), snap / "tiny-llama-Q8_0.gguf")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REV)
    return blob


@pytest.fixture(scope="module")
def store_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("store")
    ollama_blob = build_ollama_store(tmp / "ollama")
    hf_blob = build_hf_cache(tmp / "hf" / "hub")
    Hub.files = {"tiny-gguf-Q8_0.gguf": (ARCH / "tiny-llama.gguf").read_bytes()}
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    # A budget that holds two tiny models but not three (each: file plus its KV cache).
    env = dict(os.environ, OWL_HOME=str(tmp / "owl"), OLLAMA_MODELS=str(tmp / "ollama"),
               HF_HOME=str(tmp / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{hub.server_port}")
    env.pop("HF_HUB_CACHE", None)
    env.pop("OWL_API_KEY", None)
    port = free_port()
    binary = os.environ.get("OWL_BIN", str(ROOT / "target" / "release" / "owl"))
    cmd = [binary, "serve", "--port", str(port), "--model", str(ARCH / "tiny-llama.gguf"),
           "--ctx-size", "256", "--parallel", "1", "--threads", "2", "--keep-alive", "3s",
           "--max-memory", "11M"]
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
    except Exception:
        proc.kill()
        sys.stderr.write(log.read_text(errors="replace"))
        raise
    yield {"client": ollama.Client(host=base, timeout=60), "ollama_blob": ollama_blob,
           "hf_blob": hf_blob, "tmp": tmp, "log": log}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    hub.shutdown()


def names(c):
    return [m.model for m in c.list().models]


def loaded(c):
    return sorted(m.model.removesuffix(":latest") for m in c.ps().models)


def reply(c, model):
    r = c.chat(model=model, messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 4, "temperature": 0})
    assert r.done and r.eval_count == 4
    return r


def test_found_in_place_and_run(store_server):
    c = store_server["client"]
    listed = names(c)
    assert "tiny-llama" in listed
    assert "ollama:tinyq:latest" in listed, listed
    hf = [n for n in listed if n.startswith("hf:cached-org/tiny-llama-GGUF")]
    assert hf, listed
    reply(c, "ollama:tinyq")
    reply(c, hf[0])
    # Not copied: owl's own model directory holds nothing.
    owl_models = store_server["tmp"] / "owl" / "models"
    assert not owl_models.exists() or not any(owl_models.iterdir())
    assert store_server["ollama_blob"].stat().st_nlink == 1


def test_keep_alive_and_memory_budget(store_server):
    c = store_server["client"]
    reply(c, "tiny-llama")
    reply(c, "ollama:tinyq")
    assert len(loaded(c)) <= 2
    # A third model: the least recently used idle one (tiny-llama) makes room.
    hf = next(n for n in names(c) if n.startswith("hf:cached-org/"))
    reply(c, hf)
    now = loaded(c)
    assert hf in now and "tiny-llama" not in now, now
    # Idle past the 3 s keep-alive: everything leaves.
    deadline = time.time() + 15
    while loaded(c) and time.time() < deadline:
        time.sleep(0.5)
    assert loaded(c) == []
    # A request's keep_alive overrides the server's.
    c.generate(model="ollama:tinyq", prompt="", keep_alive="1h")
    time.sleep(4)
    assert loaded(c) == ["ollama:tinyq"]
    c.generate(model="ollama:tinyq", prompt="", keep_alive=0)
    assert loaded(c) == []


def test_pull_from_the_hub(store_server):
    c = store_server["client"]
    events = list(c.pull(f"hf:{HUB_REPO}", stream=True))
    assert events[-1].status == "success", events
    assert any(e.total and e.completed == e.total for e in events), events
    pulled = [n for n in names(c) if n.startswith(f"hf:{HUB_REPO}")]
    assert pulled, names(c)
    reply(c, pulled[0])
    cached = list((store_server["tmp"] / "hf" / "hub").glob("models--owl-test--pulled-tiny/blobs/*"))
    assert cached and cached[0].read_bytes() == (ARCH / "tiny-llama.gguf").read_bytes()
    with pytest.raises(ollama.ResponseError):
        c.pull("hf:owl-test/no-such-repo")


def test_copy_create_delete(store_server):
    c = store_server["client"]
    c.copy("tiny-llama", "my-copy")
    assert "my-copy" in names(c)
    a = reply(c, "my-copy").message.content
    assert a == reply(c, "tiny-llama").message.content
    c.create(model="pirate", from_="my-copy", system="You are a pirate.", parameters={"temperature": 0, "num_predict": 3})
    shown = c.show("pirate")
    assert 'SYSTEM """You are a pirate."""' in shown.modelfile
    assert "num_predict" in shown.parameters
    r = c.chat(model="pirate", messages=[{"role": "user", "content": "Hi"}])
    assert r.eval_count == 3  # the derived num_predict applies
    with pytest.raises(ollama.ResponseError) as e:
        c.delete("my-copy")  # pirate derives from it
    assert e.value.status_code == 400
    c.delete("pirate")
    c.delete("my-copy")
    assert "my-copy" not in names(c) and "pirate" not in names(c)
    with pytest.raises(ollama.ResponseError) as e:
        c.delete("ollama:tinyq")
    assert e.value.status_code == 400 and "ollama" in e.value.error.lower()
    with pytest.raises(ollama.ResponseError) as e:
        c.delete("never-existed")
    assert e.value.status_code == 404


def test_owl_ps_lists_loaded_models(store_server):
    c = store_server["client"]
    c.generate(model="ollama:tinyq", prompt="", keep_alive="10m")
    port = c._client.base_url.port
    binary = os.environ.get("OWL_BIN", str(ROOT / "target" / "release" / "owl"))
    out = subprocess.run([binary, "ps", "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "ollama:tinyq" in out.stdout and "MiB" in out.stdout, out.stdout
    c.generate(model="ollama:tinyq", prompt="", keep_alive=0)
    out = subprocess.run([binary, "ps", "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "ollama:tinyq" not in out.stdout, out.stdout
