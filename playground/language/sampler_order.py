"""The same knobs in two orders: transformers' (temperature first) and llama.cpp's (temperature last).

transformers applies repetition penalty, temperature, top-k, top-p, min-p; llama.cpp's sampler chain applies
the cuts first and the temperature last, so there the temperature never changes which tokens survive. Each
knob here is transformers' own implementation; only the order differs, so every difference between the two
final distributions is the order's doing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from playground.language.sampling_settings import SamplingSettings
from playground.language.remote.endpoint import SERVER_KINDS
from playground.language.sampling import TRANSFORMERS_ORDER, Stage, next_token_stages

LLAMA_CPP_ORDER = SERVER_KINDS["llama.cpp"].order
ORDERS = {"transformers": TRANSFORMERS_ORDER, "llama.cpp": LLAMA_CPP_ORDER}


@dataclass(frozen=True)
class OrderComparison:
    first: list[Stage]  # transformers' order
    second: list[Stage]  # llama.cpp's order
    total_variation: float  # half the L1 distance between the two final distributions, 0 to 1
    only_first: tuple[int, ...]  # token ids that survive transformers' order only, likeliest first
    only_second: tuple[int, ...]  # ... llama.cpp's order only


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    return float(0.5 * (p.double() - q.double()).abs().sum())


def _by_probability(ids: torch.Tensor, probs: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in ids[torch.argsort(probs[ids], descending=True, stable=True)])


def compare_orders(logits: torch.Tensor, input_ids: torch.Tensor, settings: SamplingSettings) -> OrderComparison:
    """Both chains from the same logits (1, vocab), with the same knobs."""
    settings = settings.validated()
    first = next_token_stages(logits, input_ids, settings, TRANSFORMERS_ORDER)
    second = next_token_stages(logits, input_ids, settings, LLAMA_CPP_ORDER)
    a, b = first[-1], second[-1]
    raw = first[0].probs
    return OrderComparison(
        first, second, total_variation(a.probs, b.probs),
        _by_probability(torch.nonzero(a.kept & ~b.kept)[:, 0], raw),
        _by_probability(torch.nonzero(b.kept & ~a.kept)[:, 0], raw),
    )
