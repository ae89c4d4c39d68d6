"""Many continuations of one prompt: a seeded sweep over temperatures, and greedy vs beam search.

The sweep hands the model's batcher the very processor chain the tab shows (`chain_of`), plus a
last processor that only records the entropy of each distribution drawn from, so "mean entropy" is
measured on what was actually sampled, without keeping every step's full distribution in memory.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from transformers import LogitsProcessor, StoppingCriteriaList

from playground.core import checks
from playground.core.knobs import TEMPERATURE
from playground.core.settings import Limits
from playground.core.stopping import StopWhenUnwanted, check_wanted
from playground.language.results import SearchResult, SweepColumn
from playground.language.sampling_settings import SamplingSettings
from playground.language.batcher import Continuation
from playground.language.sampling import chain_of, end_token_ids, prompt_prefix, rows_of

if TYPE_CHECKING:  # the local backend calls these with itself
    from playground.language.local import LocalLanguageModel


def parse_temperatures(text: str, limits: Limits) -> list[float]:
    """'0, 0.7, 1.2' -> [0.0, 0.7, 1.2]; each must be a valid temperature."""
    return checks.numbers(text, TEMPERATURE, limits.max_sweep_temperatures, "0, 0.7, 1.2")


class _EntropyRecorder(LogitsProcessor):
    """Leaves the scores as they are; remembers each row's entropy (bits)."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(scores.float(), dim=-1)
        self.steps.append(-(log_p.exp() * log_p).nan_to_num().sum(-1) / math.log(2))
        return scores


def _active(new_tokens: torch.Tensor, end_tokens: set[int]) -> torch.Tensor:
    """(n, steps) bool: positions up to and including each sequence's first end token."""
    ends = torch.zeros_like(new_tokens, dtype=torch.bool)
    for token in end_tokens:
        ends |= new_tokens == token
    after_end = (ends.cumsum(-1) - ends.int()) > 0
    return ~after_end


def _decode(lm: LocalLanguageModel, new_tokens: torch.Tensor, active: torch.Tensor) -> list[str]:
    return [lm.tokenizer.decode(row[mask], skip_special_tokens=True) for row, mask in zip(new_tokens, active)]


def _column(lm: LocalLanguageModel, prompt_ids: torch.Tensor, settings: SamplingSettings, samples: int,
            max_new_tokens: int, seed: int) -> tuple[Continuation, _EntropyRecorder]:
    """`samples` seeded continuations at one setting (one if greedy: they would all be the same), as a request
    to the batcher: the chain the tab shows, plus a last processor that records the entropy drawn from."""
    recorder = _EntropyRecorder()
    count = 1 if settings.greedy else samples
    rows = (tuple(prompt_ids[0].tolist()),) * count
    request = Continuation(rows, (*chain_of(settings), recorder), settings.greedy, max_new_tokens, seed,
                           frozenset(end_token_ids(lm)))
    return request, recorder


def _swept(lm: LocalLanguageModel, settings: SamplingSettings, samples: int, drawn: list[list[int]],
           recorder: _EntropyRecorder) -> SweepColumn:
    width = max(len(row) for row in drawn)
    new_tokens = torch.tensor([row + [lm.tokenizer.pad_token_id] * (width - len(row)) for row in drawn])
    active = _active(new_tokens, end_token_ids(lm))
    entropy = 0.0
    if not settings.greedy and recorder.steps:
        per_step = torch.stack(recorder.steps, dim=1)[:, :width].cpu()
        entropy = float(per_step[active].mean())
    texts = _decode(lm, new_tokens, active)
    return SweepColumn(settings.temperature, tuple(texts * (samples if settings.greedy else 1)), entropy)


def temperature_sweep(lm: LocalLanguageModel, prompt_ids: torch.Tensor, base: SamplingSettings, temperatures: list[float],
                      samples: int, max_new_tokens: int, seed: int) -> list[SweepColumn]:
    """One column per temperature, each seeded with `seed` so it repeats on its own (and equals what
    `model.generate` draws after `torch.manual_seed(seed)`). The columns are separate requests to the batcher,
    each with its own knobs and generator, so they run together, beside anyone else's; the prompt runs once."""
    settings = [replace(base, temperature=t).validated() for t in temperatures]
    columns = [_column(lm, prompt_ids, one, samples, max_new_tokens, seed) for one in settings]
    drawn = lm.batcher.generate_all([request for request, _ in columns])
    return [_swept(lm, one, samples, rows, recorder)
            for one, rows, (_, recorder) in zip(settings, drawn, columns)]


def continuation_log_prob(lm: LocalLanguageModel, prompt_ids: torch.Tensor, new_tokens: torch.Tensor,
                          prefix: object | None = None) -> float:
    """log P(continuation | prompt) under the model. With `prefix` (the prompt's cache, `prompt_prefix`) only
    the prompt's last token and the continuation are run, and logits are kept for the continuation only."""
    check_wanted()
    if new_tokens.numel() == 0:
        return 0.0
    prefix = prompt_prefix(lm, prompt_ids) if prefix is None else prefix
    fed = torch.cat([prompt_ids[0, -1:], new_tokens[:-1].to(prompt_ids.device)])[None]
    if prefix is None:  # a one-token prompt: nothing was cached
        fed = torch.cat([prompt_ids[0, :-1], fed[0]])[None]
    with torch.inference_mode():
        logits = lm.model(fed, past_key_values=rows_of(prefix, 1), use_cache=True).logits[0, -new_tokens.numel():]
    log_probs = torch.log_softmax(logits.float(), -1)
    return float(log_probs.gather(1, new_tokens[:, None].to(log_probs.device)).sum())


def compare_search(lm: LocalLanguageModel, prompt_ids: torch.Tensor, beams: int, max_new_tokens: int,
                   shown_beams: int = 3) -> list[SearchResult]:
    """Greedy decoding and the best beams of beam search, each with the model's log-probability of it.
    The prompt runs once; greedy, the beams and the scoring all continue from its cache."""
    end_tokens = end_token_ids(lm)
    prefix = prompt_prefix(lm, prompt_ids)
    runs = [("greedy", 1, {"num_beams": 1, "num_return_sequences": 1}),
            (f"beam search ({beams} beams)", beams, {"num_beams": beams, "num_return_sequences": min(beams, shown_beams),
                                                     "early_stopping": True})]
    results = []
    for method, rows, extra in runs:
        with torch.inference_mode():
            output = lm.model.generate(
                prompt_ids, attention_mask=torch.ones_like(prompt_ids), past_key_values=rows_of(prefix, rows),
                max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_k=None, top_p=None,
                pad_token_id=lm.tokenizer.pad_token_id, stopping_criteria=StoppingCriteriaList([StopWhenUnwanted()]),
                **extra,
            )
        new_tokens = output[:, prompt_ids.shape[1]:]
        active = _active(new_tokens, end_tokens)
        for rank, (row, mask) in enumerate(zip(new_tokens, active), start=1):
            kept = row[mask]
            label = method if len(new_tokens) == 1 else f"{method}, beam {rank}"
            results.append(SearchResult(label, lm.tokenizer.decode(kept, skip_special_tokens=True), int(kept.numel()),
                                        continuation_log_prob(lm, prompt_ids, kept, prefix)))
    return results
