"""The next-token distribution, stage by stage, exactly as `transformers` samples from it.

`model.generate(do_sample=True, ...)` turns the last position's logits into the distribution it draws
from by running logits processors in a fixed order (`GenerationMixin._get_logits_processor`):
repetition penalty, then temperature, top-k, top-p, min-p. This module builds the same processor
objects in the same order, and keeps the scores after each one, so the tab can show what every knob
did, and the last stage is the very distribution `generate` would draw from.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Sequence

import torch
from transformers import (
    LogitsProcessor,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from playground.language.sampling_settings import SamplingSettings

if TYPE_CHECKING:  # the local backend calls these with itself
    from playground.language.local import LocalLanguageModel

STAGE_NAMES = ("raw", "repetition penalty", "temperature", "top-k", "top-p", "min-p")
TRANSFORMERS_ORDER = STAGE_NAMES[1:]


def processor_chain(settings: SamplingSettings) -> list[tuple[str, str, LogitsProcessor | None]]:
    """(stage, knob as text, processor or None when that knob is off) in transformers' order.

    The conditions mirror `_get_logits_processor` for batch-1 sampling (min_tokens_to_keep=1), so a
    processor is present here exactly when `generate` would add it.
    """
    s = settings.validated()
    penalty = RepetitionPenaltyLogitsProcessor(s.repetition_penalty) if s.repetition_penalty != 1.0 else None
    chain: list[tuple[str, str, LogitsProcessor | None]] = [
        ("repetition penalty", f"penalty {s.repetition_penalty:g}" if penalty else "off", penalty)
    ]
    if s.greedy:  # generate(do_sample=False) runs no warpers; the limit T -> 0 is handled in `next_token_stages`
        return chain + [("temperature", "0 (greedy)", None)] + [(name, "off (greedy)", None) for name in STAGE_NAMES[3:]]
    return chain + [
        ("temperature", f"T = {s.temperature:g}",
         TemperatureLogitsWarper(s.temperature) if s.temperature != 1.0 else None),
        ("top-k", f"k = {s.top_k}" if s.top_k else "off", TopKLogitsWarper(s.top_k) if s.top_k else None),
        ("top-p", f"p = {s.top_p:g}" if s.top_p < 1.0 else "off", TopPLogitsWarper(s.top_p) if s.top_p < 1.0 else None),
        ("min-p", f"min-p = {s.min_p:g}" if s.min_p else "off", MinPLogitsWarper(s.min_p) if s.min_p else None),
    ]


def chain_of(settings: SamplingSettings) -> tuple[LogitsProcessor, ...]:
    """The processors that change anything, in order: what sampling with these knobs applies."""
    return tuple(processor for _, _, processor in processor_chain(settings) if processor is not None)


@dataclass
class Stage:
    """The scores after one stage of the chain (-inf where a token has been removed)."""

    name: str
    knob: str
    active: bool
    scores: torch.Tensor  # (1, vocab) float32
    previous: "Stage | None" = None
    one_hot: int | None = None  # greedy: all the mass on this token id

    @cached_property
    def probs(self) -> torch.Tensor:
        """(vocab,) probabilities, renormalised over the surviving tokens."""
        if not self.active and self.previous is not None:
            return self.previous.probs
        if self.one_hot is not None:
            probs = torch.zeros(self.scores.shape[-1], device=self.scores.device)
            probs[self.one_hot] = 1.0
            return probs
        return torch.softmax(self.scores[0], dim=-1)

    @cached_property
    def kept(self) -> torch.Tensor:
        """(vocab,) bool: tokens that can still be drawn after this stage."""
        if not self.active and self.previous is not None:
            return self.previous.kept
        return self.probs > 0 if self.one_hot is not None else torch.isfinite(self.scores[0])

    @cached_property
    def survivors(self) -> int:
        return int(self.kept.sum())

    @cached_property
    def entropy_bits(self) -> float:
        return entropy_bits(self.probs)

    @cached_property
    def removed_mass(self) -> float:
        """How much probability the tokens this stage removed had just before it (then renormalised away)."""
        if self.previous is None or not self.active:
            return 0.0
        removed = self.previous.kept & ~self.kept
        return float(self.previous.probs[removed].sum())

    @property
    def removed_count(self) -> int:
        return 0 if self.previous is None else self.previous.survivors - self.survivors


def next_token_stages(logits: torch.Tensor, input_ids: torch.Tensor, settings: SamplingSettings,
                      order: Sequence[str] = TRANSFORMERS_ORDER, allowed: torch.Tensor | None = None) -> list[Stage]:
    """Every stage from the raw logits (vocab,) or (1, vocab) to the distribution that is sampled.

    `order` is the order the knobs are applied in: transformers' by default; an inference server
    may use its own (llama.cpp applies temperature last).

    `allowed` (vocab,) bool, from a grammar (`playground.language.grammar`), adds a "grammar" stage that
    removes every other token, right after the repetition penalty: where `generate` runs a processor
    passed in `logits_processor` (after its own processors, before the sampling warpers).

    `input_ids` (1, n) is the whole sequence so far, which the repetition penalty reads. With
    temperature 0 the last stage is one-hot on the argmax (the first one on ties, as `torch.argmax`
    and greedy `generate` pick), which is the exact limit of sampling as the temperature goes to 0.
    """
    scores = logits.reshape(1, -1).to(torch.float32)  # generate casts the logits to float32 too
    stages = [Stage("raw", "model logits", True, scores)]
    chain = {name: (knob, processor) for name, knob, processor in processor_chain(settings)}
    for name in order:
        knob, processor = chain[name]
        if processor is not None:
            scores = processor(input_ids, scores)
        stages.append(Stage(name, knob, processor is not None, scores, previous=stages[-1]))
        if name == "repetition penalty" and allowed is not None:
            scores = scores.masked_fill(~allowed.to(scores.device).reshape(1, -1), float("-inf"))
            stages.append(Stage("grammar", "tokens the constraint allows", True, scores, previous=stages[-1]))
    if settings.greedy:
        temperature = next(stage for stage in stages if stage.name == "temperature")
        temperature.active = True
        temperature.one_hot = int(torch.argmax(scores[0]))
    return stages


def draw_token(stages: list[Stage], generator: torch.Generator | None = None) -> int:
    """The next token, drawn the way `generate` draws it (multinomial over the last stage; argmax if greedy)."""
    final = stages[-1]
    for stage in stages:
        if stage.one_hot is not None:
            return stage.one_hot
    probs = torch.softmax(final.scores, dim=-1)  # exactly generate's call, so a seeded draw picks the same token
    return int(torch.multinomial(probs, num_samples=1, generator=generator)[0, 0])


def entropy_bits(probs: torch.Tensor) -> float:
    p = probs[probs > 0]
    return float(-(p * torch.log2(p)).sum()) if p.numel() else 0.0


def descending_order(probs: torch.Tensor) -> torch.Tensor:
    """Token ids from most to least likely; stable, so ties keep the id order argmax uses."""
    return torch.sort(probs, descending=True, stable=True).indices


def tail_points(probs: torch.Tensor, order: torch.Tensor | None = None, points: int = 120) -> list[tuple[int, float]]:
    """(rank, probability) on a log-spaced grid of ranks 1..vocab, for a log-log view of the tail.

    `order` (from `descending_order`) can be shared by stages that keep the ranking, which every stage
    after the repetition penalty does (temperature is monotone, the cuts only remove the tail): one
    sort instead of one per stage. Ranks whose probability is 0 (removed by a knob) are left out, so the
    curve ends where the cut is.
    """
    order = descending_order(probs) if order is None else order
    vocab = order.shape[0]
    ranks = sorted({min(vocab, max(1, round(math.exp(i * math.log(vocab) / (points - 1))))) for i in range(points)})
    values = probs[order[torch.tensor(ranks, device=probs.device) - 1]].tolist()
    return [(rank, value) for rank, value in zip(ranks, values) if value > 0]


def _forward_kwargs(model: torch.nn.Module) -> dict:
    """Ask for the last position's logits only, where the model allows it (saves the LM head on the prompt)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


def last_logits(lm: LocalLanguageModel, input_ids: torch.Tensor, past_key_values: object = None) -> tuple[torch.Tensor, object]:
    """(1, vocab) logits for the position after `input_ids`, and the updated KV cache."""
    with torch.inference_mode():
        output = lm.model(input_ids=input_ids, past_key_values=past_key_values, use_cache=True,
                          **_forward_kwargs(lm.model))
    return output.logits[:, -1], output.past_key_values


def prompt_prefix(lm: LocalLanguageModel, prompt_ids: torch.Tensor) -> object | None:
    """The KV cache of every prompt token but the last, computed once for one row (None for a one-token
    prompt). `generate` given it (or `rows_of` it) with the whole prompt feeds only the last token: many
    samples or beams then share one pass over the prompt instead of each running it again."""
    if prompt_ids.shape[1] < 2:
        return None
    with torch.inference_mode():
        return lm.model(input_ids=prompt_ids[:, :-1], use_cache=True, **_forward_kwargs(lm.model)).past_key_values


def rows_of(prefix: object | None, rows: int) -> object | None:
    """A copy of `prefix` for `rows` sequences (generate grows its cache in place, so each run needs its own)."""
    if prefix is None:
        return None
    cache = copy.deepcopy(prefix)
    if rows > 1:
        cache.batch_repeat_interleave(rows)
    return cache


def next_token_distribution(lm: LocalLanguageModel, prompt_ids: torch.Tensor, settings: SamplingSettings) -> list[Stage]:
    """One forward pass over the prompt (keeping no cache: nothing follows), then every stage of the chain."""
    with torch.inference_mode():
        logits = lm.model(input_ids=prompt_ids, use_cache=False, **_forward_kwargs(lm.model)).logits[:, -1]
    return next_token_stages(logits, prompt_ids, settings)


def end_token_ids(lm: LocalLanguageModel) -> set[int]:
    """The one rule for the tokens that end a text: those `generate` stops on (the generation config) and
    the tokenizer's own end-of-text token."""
    eos = lm.model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, (list, tuple)) else [eos])
    return (ids | {lm.tokenizer.eos_token_id}) - {None}
