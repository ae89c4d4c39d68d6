"""CoT compare on the real SmolLM2: what the tab's generation costs over raw `model.generate`, and what
batching problems buys.

    .venv/bin/python -m bench.bench_chain_of_thought [--tokens 64] [--problems 8] [--repeats 5]

1. Generated tokens/s of a mode (zero-shot CoT, greedy, streamed as the tab does it, and unstreamed
   as the batch evaluation does it) vs raw `model.generate` on the same prompt ids and settings.
   Printed as seconds-per-token ratios: playground / raw, goal <= 1.05.
2. Accuracy run over N problems: all in batches (left-padded) vs one problem at a time.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Callable

import torch

import bench.common  # noqa: F401  (environment and torchvision fix before model libraries load)
from playground.core.registry import SMOLLM2_SOURCE
from playground.core.service import ModelService
from playground.core.settings import load_settings
from playground.language.chain_of_thought import answering, evaluation, gsm8k, prompts
from playground.language.batches import generate_batch
from playground.language.sampling_settings import SamplingSettings

MODEL = "SmolLM2-135M-Instruct (offline demo)"


def interleaved_seconds_per_token(functions: dict[str, Callable[[], int]], repeats: int) -> dict[str, list[float]]:
    """Seconds per generated token of each function, run in turn each round (order rotating), so a
    machine whose load drifts slows all of them alike; each function returns its token count."""
    names = list(functions)
    for name in names:  # warm-up
        functions[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            start = time.perf_counter()
            tokens = functions[name]()
            samples[name].append((time.perf_counter() - start) / tokens)
    return samples


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    settings = load_settings(overrides={"models": {"language": [SMOLLM2_SOURCE]}})
    lm = ModelService(settings).load("language", MODEL)
    cot_settings = prompts.CotSettings(max_new_tokens=args.tokens)
    problem = gsm8k.gsm8k_problem(1)
    prompt = prompts.build_cot_prompt(lm, prompts.ZERO_SHOT, problem.question, cot_settings)
    ids = prompts.prompt_token_ids(lm, prompt, cot_settings)
    greedy = SamplingSettings(temperature=0)
    print(f"{MODEL} on {lm.device}, torch threads {torch.get_num_threads()}; zero-shot CoT prompt of {len(ids)} "
          f"tokens, greedy, up to {args.tokens} new tokens")

    def raw() -> int:
        prompt_ids = torch.tensor([ids], device=lm.device)
        with torch.inference_mode():
            output = lm.model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids),
                                       max_new_tokens=args.tokens, pad_token_id=lm.tokenizer.pad_token_id,
                                       **greedy.generate_kwargs())
        return output.shape[1] - prompt_ids.shape[1]

    def raw_in_a_thread() -> int:  # where the stream runs generate; thread scheduling differs on a busy CPU
        result: list[int] = []
        worker = threading.Thread(target=lambda: result.append(raw()))
        worker.start()
        worker.join()
        return result[0]

    def streamed_mode() -> int:
        return list(answering.stream_mode(lm, prompts.ZERO_SHOT, problem, cot_settings))[-1].new_tokens

    def unstreamed() -> int:
        return generate_batch(lm, [ids], greedy, args.tokens, stop_strings=prompt.stop_strings).new_tokens

    samples = interleaved_seconds_per_token(
        {"raw": raw, "raw_thread": raw_in_a_thread, "streamed": streamed_mode, "unstreamed": unstreamed}, args.repeats
    )
    for name in ("raw", "raw_thread"):
        print(f"{name} model.generate: {1 / statistics.median(samples[name]):.1f} tokens/s (median of {args.repeats})")
    for name, baseline, label in (
        ("streamed", "raw_thread", "zero-shot CoT streamed (tab) / raw generate in a thread"),
        ("unstreamed", "raw", "generate_batch, 1 row (batch runs) / raw generate"),
    ):
        ratio = median_ratio(samples[name], samples[baseline])
        print(f"{label:58} {statistics.median(samples[name]) * 1e3:7.1f} ms/token / "
              f"{statistics.median(samples[baseline]) * 1e3:7.1f} ms/token; median per-round ratio {ratio:5.3f}"
              "  (goal <= 1.05)")

    limits = settings.limits
    numbers = gsm8k.check_problem_range(1, args.problems, limits)
    small = prompts.CotSettings(max_new_tokens=args.tokens)
    for batch_size in (1, min(args.problems, limits.max_generation_batch)):
        start = time.perf_counter()
        outcomes = list(evaluation.evaluate(lm, numbers, [prompts.ZERO_SHOT], small, batch_size, limits))[-1].outcomes
        seconds = time.perf_counter() - start
        tokens = sum(o.results[prompts.ZERO_SHOT].new_tokens for o in outcomes)
        right = sum(o.results[prompts.ZERO_SHOT].correct is True for o in outcomes)
        print(f"{args.problems} problems, {batch_size:2d} per batch: {seconds:7.2f} s, {tokens / seconds:6.1f} tokens/s, "
              f"{args.problems / seconds:5.2f} problems/s, {right}/{args.problems} right")


if __name__ == "__main__":
    main()
