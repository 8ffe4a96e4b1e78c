"""Starts a real `owl serve` on 127.0.0.1 for the end-to-end suite and stops it afterwards.

The server binary is `$OWL_BIN` (default: target/release/owl) and the model `$OWL_TEST_MODEL`
(default: the store's default model). The fixture checks that SIGTERM makes the server exit 0.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-secret"
PARALLEL = 4
CTX = 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"owl serve exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError("owl serve did not become healthy")


class Server:
    def __init__(self, base: str, proc: subprocess.Popen, log: Path):
        self.base = base
        self.proc = proc
        self.log = log
        self.api_key = API_KEY
        self.ctx = CTX
        self.parallel = PARALLEL

    def alive(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = os.environ.get("OWL_BIN", str(ROOT / "target" / "release" / "owl"))
    port = free_port()
    log = tmp_path_factory.mktemp("owl") / "serve.log"
    cmd = [binary, "serve", "--port", str(port), "--parallel", str(PARALLEL),
           "--ctx-size", str(CTX), "--threads", "2", "--api-key", API_KEY, "--queue", "64"]
    model = os.environ.get("OWL_TEST_MODEL")
    if model:
        cmd += ["--model", model]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
    except Exception:
        proc.kill()
        sys.stderr.write(log.read_text(errors="replace"))
        raise
    srv = Server(base, proc, log)
    yield srv
    # Graceful shutdown: SIGTERM must end the server with status 0 within a few seconds.
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("owl serve did not exit within 15 s of SIGTERM")
    if code != 0:
        sys.stderr.write(log.read_text(errors="replace"))
    assert code == 0, f"owl serve exited with {code} after SIGTERM"


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.base + "/v1", api_key=server.api_key, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def model_id(client):
    return client.models.list().data[0].id
