"""The language tabs over an OpenAI-compatible server: what the playground adds on top of the HTTP call.

Starts llama.cpp's server on the offline SmolLM2 GGUF (as the tests do; scripts/test-assets.sh installs
it), or uses a running one given as an `openai+http://...` source:

    .venv/bin/python -m bench.bench_remote
    .venv/bin/python -m bench.bench_remote "openai+http://gpu-box:8000/v1?model=Qwen/Qwen2.5-7B-Instruct&server=vllm"
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import interleaved_medians, report
from playground.core.service import ModelService
from playground.core.settings import load_settings
from playground.language.sampling_settings import SamplingSettings
from playground.language.remote.operations import generate_text, render_prompt
from playground.views.sampling import next_token_view

PROMPT = "Explain to a classroom, in two short sentences, why the sky looks blue during the day and red at sunset."
KNOBS = SamplingSettings(temperature=0.8, top_k=50, top_p=0.9, min_p=0.05, repetition_penalty=1.1)


def measure(source: str) -> None:
    service = ModelService(load_settings(overrides={"models": {"language": [source]}}))
    start = time.perf_counter()
    lm = service.load("language")
    print(f"{lm.name}: connect + tokenizer {time.perf_counter() - start:.2f} s; second load "
          f"{_seconds(lambda: service.load('language')) * 1e3:.3f} ms")
    limits = service.settings.limits
    text = render_prompt(lm, PROMPT, True)
    raw_payload = {"model": lm.endpoint.model, "prompt": text, "max_tokens": 1, "logprobs": lm.top_logprobs,
                   **lm.sampling_fields(SamplingSettings(temperature=0))}
    http = httpx.Client(timeout=60)

    def raw_next_token() -> object:
        return http.post(f"{lm.endpoint.base_url}/completions", json=raw_payload).json()

    def tab_next_token() -> object:  # everything the tab's event computes: template, request, chain, chart, tables
        return next_token_view(service.load("language"), PROMPT, True, KNOBS, limits)

    ours, raw = interleaved_medians(tab_next_token, raw_next_token, repeats=15)
    report("next token: tab / raw HTTP request", ours, raw, "(goal <= 1.10)")

    generation_payload = {"model": lm.endpoint.model, "prompt": text, "max_tokens": 32, "seed": 0,
                          **lm.sampling_fields(KNOBS)}

    def raw_generate() -> object:
        return http.post(f"{lm.endpoint.base_url}/completions", json=generation_payload).json()

    ours, raw = interleaved_medians(lambda: generate_text(lm, text, KNOBS, 32, 0), raw_generate, repeats=7)
    report("32 tokens: generate_text / raw HTTP request", ours, raw, "(goal <= 1.05)")


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    if argv:
        measure(argv[0])
        return
    from tests.inference_servers import LlamaServer, remote_source

    server = LlamaServer(Path(tempfile.mkdtemp()) / "server.log")
    try:
        measure(remote_source(server.base_url))
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
