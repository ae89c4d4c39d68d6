"""The sampling tab on the real SmolLM2: next-token call vs one raw forward pass, and step-by-step
generation (KV cache, every step's distribution kept) vs `model.generate` with the same settings.

    .venv/bin/python -m bench.bench_sampling
"""

from __future__ import annotations

import time

import torch

from bench.common import median_seconds, report
from playground.core.registry import SMOLLM2_SOURCE
from playground.core.service import ModelService
from playground.core.settings import load_settings
from playground.language.sampling_settings import SamplingSettings
from playground.language.generation import encode_prompt
from playground.language.steps import advance, start_session
from playground.views.sampling import next_token_view

MODEL = "SmolLM2-135M-Instruct (offline demo)"
PROMPT = "Explain to a classroom, in two short sentences, why the sky looks blue during the day and red at sunset."
KNOBS = SamplingSettings(temperature=0.8, top_k=50, top_p=0.9, min_p=0.05, repetition_penalty=1.1)
TOKENS = 32


def main() -> None:
    service = ModelService(load_settings(overrides={"models": {"language": [SMOLLM2_SOURCE]}}))
    lm = service.load("language", MODEL)
    limits = service.settings.limits
    ids = encode_prompt(lm, PROMPT, True)
    print(f"{MODEL} on {lm.device}, prompt of {ids.shape[1]} tokens, torch threads {torch.get_num_threads()}")

    def raw_forward() -> torch.Tensor:
        with torch.inference_mode():
            return lm.model(ids).logits[0, -1]

    def tab_next_token() -> object:  # everything the tab's next_token event computes, chart and tables included
        return next_token_view(service.load("language", MODEL), PROMPT, True, KNOBS, limits)

    report("next_token call / raw forward pass", median_seconds(tab_next_token, 15), median_seconds(raw_forward, 15),
           "(goal <= 1.05)")

    def steps() -> None:
        advance(lm, start_session(("bench",), ids, 0), KNOBS, TOKENS, limits.max_new_tokens)

    def generate() -> None:
        torch.manual_seed(0)
        with torch.inference_mode():
            lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=TOKENS, min_new_tokens=TOKENS,
                              pad_token_id=lm.tokenizer.pad_token_id, **KNOBS.generate_kwargs())

    step_seconds, generate_seconds = median_seconds(steps, 5, 1), median_seconds(generate, 5, 1)
    session = advance(lm, start_session(("bench",), ids, 0), KNOBS, TOKENS, limits.max_new_tokens)
    drawn = len(session.steps)
    print(f"step generation: {drawn / step_seconds:7.1f} tokens/s ({drawn} tokens drawn)")
    print(f"model.generate:  {TOKENS / generate_seconds:7.1f} tokens/s ({TOKENS} tokens)")
    report("step generation time per token / generate's", step_seconds / drawn, generate_seconds / TOKENS, "(goal ~1)")

    start = time.perf_counter()
    one = start_session(("bench",), ids, 0)
    advance(lm, one, KNOBS, 1, limits.max_new_tokens)
    first = time.perf_counter() - start
    start = time.perf_counter()
    advance(lm, one, KNOBS, 1, limits.max_new_tokens)
    print(f"'Step one token': first {first * 1e3:.0f} ms (reads the prompt), next {(time.perf_counter() - start) * 1e3:.0f} ms"
          " (one token through the KV cache)")


if __name__ == "__main__":
    main()
