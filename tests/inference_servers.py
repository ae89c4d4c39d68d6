"""Real HTTP servers for the remote-backend tests: llama.cpp's OpenAI-compatible server on the offline
SmolLM2 GGUF, a port that accepts connections and never answers, and a relay that fails its first
requests with 503 (or 500) before passing the rest to a real server (to see retries recover)."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

from playground.core.registry import SMOLLM2_SOURCE, smollm2_gguf_path
from tests.factories import REPO

SERVER_PYTHON = REPO / ".cache" / "llama-server" / "bin" / "python"
MODEL_ALIAS = "smollm2"
CONTEXT = 2048


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def remote_source(base_url: str, server: str = "llama.cpp") -> str:
    """The registry source for the served SmolLM2, its tokenizer read from the same GGUF."""
    return f"openai+{base_url}?model={MODEL_ALIAS}&server={server}&tokenizer={SMOLLM2_SOURCE}&context={CONTEXT}"


class LlamaServer:
    """`python -m llama_cpp.server` on 127.0.0.1, started and waited for; `stop()` ends it."""

    def __init__(self, log_path: Path):
        if not SERVER_PYTHON.exists():
            raise RuntimeError("llama.cpp's server is not installed: run scripts/test-assets.sh")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._log = open(log_path, "w")
        self._process = subprocess.Popen(
            [str(SERVER_PYTHON), "-m", "llama_cpp.server", "--model", str(smollm2_gguf_path()), "--model_alias",
             MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(CONTEXT), "--seed", "0",
             "--verbose", "false"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_until_ready(timeout=120)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self._process.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not start within {timeout} s; see {self._log.name}")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._log.close()


class SilentServer:
    """Accepts TCP connections and never answers: what a hung or overloaded server looks like."""

    def __init__(self):
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/v1"

    def stop(self) -> None:
        self._socket.close()


class FlakyRelay:
    """Answers its first `failures` requests with `status` and an OpenAI-style error saying `message`,
    then relays requests to `target` unchanged."""

    def __init__(self, target: str, failures: int, status: int = 503, message: str = "warming up"):
        self.failures_left = failures
        self.requests = 0
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _relay(self, method: str) -> None:
                relay.requests += 1
                if relay.failures_left > 0:
                    relay.failures_left -= 1
                    self._send(status, json.dumps({"error": {"message": message}}).encode())
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                answer = httpx.request(method, target + self.path.removeprefix("/v1"), content=body,
                                       headers={"Content-Type": "application/json"}, timeout=60)
                self._send(answer.status_code, answer.content)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._relay("GET")

            def do_POST(self) -> None:
                self._relay("POST")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
