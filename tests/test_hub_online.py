"""The online path, for real, on loopback: a Hub (tests/loopback_hub.py, the Hub's own HTTP protocol) serves
real files in their Hub layouts; prefetch, the "Hub reachable" decision and loading by Hub id run through the
code a user's online machine runs. Each client is a fresh process: huggingface_hub reads HF_ENDPOINT once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from playground.core.hub import decide_hub_access, probe_hub
from playground.core.registry import smollm2_gguf_path
from playground.language.weights import converted_gguf_dir
from tests.factories import REPO, TEST_MODELS, diffusion
from tests.loopback_hub import LoopbackHub

SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TINY_SD_ID = "playground-test/tiny-stable-diffusion-random-v1"
GATED_ID = "meta-llama/Llama-2-7b-hf"
TOKEN = "hf_loopback_test_token"


@pytest.fixture(scope="module")
def hub(base_settings, test_settings):
    diffusion.build(base_settings)  # the tiny pipeline, in diffusers' layout (as its Hub repo would be)
    llama3 = REPO / ".cache/offline-assets/npm/@lenml__tokenizer-llama3/package/models"
    with LoopbackHub({
        SMOLLM2_ID: converted_gguf_dir(smollm2_gguf_path(), base_settings),  # the real weights, in Hub layout
        TINY_SD_ID: TEST_MODELS / diffusion.NAME / "pipeline",
        GATED_ID: (llama3, "model", TOKEN),  # stands in for a gated tokenizer repo: served only with the token
    }) as served:
        yield served


def run_client(hub: LoopbackHub, code: str, tmp_path, **env: str) -> dict:
    """Run `code` in a fresh process pointed at the loopback Hub, with an empty HF cache; its last line is JSON."""
    environ = {key: value for key, value in os.environ.items()
               if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") and not key.startswith("PLAYGROUND_")}
    environ |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(REPO)} | env
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


PREFETCH_THEN_LOAD = f"""
import json, os, time
import playground
from playground.core.hub import decide_hub_access
access = decide_hub_access()
from playground import prefetch
code = prefetch.main(["--kind", "language", "--kind", "text_to_image"])
# The same process, now offline (as after a class's prefetch): the cache alone must be enough.
from playground.core.hub import go_offline
go_offline()
from playground.core.service import ModelService
from playground.core.settings import load_settings
service = ModelService(load_settings())
available = {{kind: service.availability(kind, None).loadable for kind in ("language", "text_to_image")}}
start = time.perf_counter()
lm = service.load("language", "{SMOLLM2_ID}")
ids = lm.tokenizer("The capital of France is", return_tensors="pt").input_ids
next_id = int(lm.model(ids).logits[0, -1].argmax())
pipeline = service.load("text_to_image", "{TINY_SD_ID}")
print(json.dumps({{"reachable": access.reachable, "prefetch": code, "available": available,
                  "next": lm.tokenizer.decode([next_id]), "pipeline": type(pipeline).__name__,
                  "load_s": time.perf_counter() - start}}))
"""


def test_prefetch_fills_the_cache_and_defaults_load_by_hub_id(hub, tmp_path):
    result = run_client(hub, PREFETCH_THEN_LOAD, tmp_path, PLAYGROUND_LANGUAGE_MODELS=SMOLLM2_ID,
                        PLAYGROUND_TEXT_TO_IMAGE_MODELS=TINY_SD_ID, PLAYGROUND_CACHE_DIR=str(tmp_path / "pg"))
    assert result["reachable"] and result["prefetch"] == 0
    assert result["available"] == {"language": True, "text_to_image": True}  # the cache checks see the files
    assert result["next"].strip() == "Paris"  # SmolLM2's real weights, fetched by their Hub id
    assert result["pipeline"].endswith("Pipeline")
    served = {path.split("/resolve/")[-1] for method, path in hub.requests if "/resolve/" in path}
    assert any(path.endswith("model.safetensors") for path in served)


AVAILABILITY_ONLINE = f"""
import json, os
import playground
from playground.core.hub import decide_hub_access
access = decide_hub_access()
from playground.core.service import ModelService
from playground.core.settings import load_settings
service = ModelService(load_settings())
without = service.availability("tokenizer", "Llama-2")
os.environ["HF_TOKEN"] = "{TOKEN}"  # as a Space secret sets it; huggingface_hub reads it at each request
answer = {{"reachable": access.reachable, "offline": service.settings.offline, "without": without.loadable,
          "message": without.message, "with": service.availability("tokenizer", "Llama-2").loadable,
          "ids": service.load("tokenizer", "Llama-2").encode("Hello world", False)}}
print(json.dumps(answer))
"""


def test_gated_tokenizer_needs_a_token_and_loads_with_one(hub, tmp_path):
    result = run_client(hub, AVAILABILITY_ONLINE, tmp_path)
    assert result["reachable"] and not result["offline"]
    assert not result["without"] and "HF_TOKEN" in result["message"]
    assert result["with"] and result["ids"] == [9906, 1917]  # Llama-3's ids: the served file, through the token


def test_no_hub_is_decided_within_two_seconds_and_the_process_goes_offline(monkeypatch):
    import huggingface_hub.constants as constants

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    start = time.perf_counter()
    access = decide_hub_access()
    assert not access.reachable and time.perf_counter() - start < 2
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE  # every library now fails at once

    silent = socket.socket()  # accepts connections, never answers: the probe gives up at its timeout
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        start = time.perf_counter()
        assert not probe_hub(timeout=1.0).reachable
        assert 0.9 < time.perf_counter() - start < 2
    finally:
        silent.close()


def test_a_hub_that_answers_is_reachable(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    access = probe_hub()
    assert access.reachable and access.seconds < 2  # a 404 for a repo it does not hold still means a Hub


def test_offline_when_asked_without_probing(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    threading_before = threading.active_count()
    access = decide_hub_access()
    assert not access.reachable and "HF_HUB_OFFLINE" in access.reason and access.seconds == 0
    assert threading.active_count() == threading_before
