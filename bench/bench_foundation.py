"""The cache on a real model: first vs second request, and the cost of going through the service.

    .venv/bin/python -m bench.bench_foundation
"""

from __future__ import annotations

import tempfile
import time

import torch

from bench.common import median_seconds, report
from playground.core.registry import SMOLLM2_SOURCE
from playground.core.service import ModelService
from playground.core.settings import load_settings

MODEL = "SmolLM2-135M-Instruct (offline demo)"


def main() -> None:
    settings = load_settings(overrides={"models": {"language": [SMOLLM2_SOURCE]}})
    service = ModelService(settings)
    prompt = "The future of AI is"

    def request() -> torch.Tensor:  # what a tab does: get the model from the cache, run it
        lm = service.load("language", MODEL)
        ids = lm.tokenizer(prompt, return_tensors="pt").input_ids
        with torch.inference_mode():
            return lm.model(ids).logits[0, -1]

    start = time.perf_counter()
    request()
    first = time.perf_counter() - start
    start = time.perf_counter()
    request()
    second = time.perf_counter() - start
    print(f"first request (loads {MODEL} from its converted copy): {first:.2f} s")
    print(f"second request (cached):                              {second:.3f} s  ({first / second:.0f}x faster)")

    lm = service.load("language", MODEL)
    ids = lm.tokenizer(prompt, return_tensors="pt").input_ids

    def raw() -> torch.Tensor:
        with torch.inference_mode():
            return lm.model(ids).logits[0, -1]

    def through_service() -> torch.Tensor:
        model = service.load("language", MODEL).model
        with torch.inference_mode():
            return model(ids).logits[0, -1]

    report("cached service.load + forward / raw forward", median_seconds(through_service, 50),
           median_seconds(raw, 50), "(goal ~1.00)")

    with tempfile.TemporaryDirectory() as empty_cache:
        cold = ModelService(load_settings(overrides={"models": {"language": [SMOLLM2_SOURCE]}, "cache_dir": empty_cache}))
        start = time.perf_counter()
        cold.load("language", MODEL)
        print(f"first ever load (GGUF dequantised and converted):    {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
