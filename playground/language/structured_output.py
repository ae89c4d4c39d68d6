"""Structured output with a local model: the grammar stage of the next token, and N seeded samples without
and with the constraint, side by side, with how many of each obey it and what the mask costs per step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from playground.language.generation import SamplingSettings
from playground.language.grammar import (
    Constraint, GrammarProcessor, allowed_tokens, compile_constraint, engine_tokenizer, vocab_width,
)
from playground.language.sampling import Stage, end_token_ids, next_token_distribution, next_token_stages
from playground.language.samples import Samples, draw_samples

if TYPE_CHECKING:
    from llguidance import LLMatcher

    from playground.language.loader import LanguageModel

VALID, INVALID, CUT_OFF = "valid", "invalid", "cut off"  # a cut-off text may be a valid one unfinished


def matcher_for(lm: LanguageModel, constraint: Constraint) -> LLMatcher:
    """The constraint compiled for this model's tokenizer (the engine's tokenizer is built once per model)."""
    engine = engine_tokenizer(lm.tokenizer, vocab_width(lm.model))
    return compile_constraint(engine, constraint)


def constrained_next_token(lm: LanguageModel, prompt_ids: torch.Tensor, settings: SamplingSettings,
                           constraint: Constraint) -> list[Stage]:
    """The next token's chain with the grammar stage: at the start of the constrained text, the tokens the
    engine allows are kept and the rest removed, then the knobs as usual."""
    matcher = matcher_for(lm, constraint)
    with torch.inference_mode():
        logits = next_token_distribution(lm, prompt_ids, settings)[0].scores
    return next_token_stages(logits, prompt_ids, settings, allowed=allowed_tokens(matcher, logits.shape[-1]))


@dataclass(frozen=True)
class Comparison:
    constraint: Constraint
    free: Samples  # the same seed, no constraint
    constrained: Samples
    free_verdicts: tuple[str, ...]  # VALID, INVALID or CUT_OFF per row
    constrained_verdicts: tuple[str, ...]

    @staticmethod
    def rate(verdicts: tuple[str, ...]) -> float:
        return verdicts.count(VALID) / max(len(verdicts), 1)

    @property
    def mask_ms_per_step(self) -> float:
        """Time in the grammar stage per model call (every row's mask and engine step)."""
        return 1000 * self.constrained.grammar_seconds / max(self.constrained.steps, 1)

    @property
    def step_ratio(self) -> float:
        """Time per model call constrained / unconstrained (1.0 = the mask costs nothing)."""
        free = self.free.seconds / max(self.free.steps, 1)
        return self.constrained.seconds / max(self.constrained.steps, 1) / free if free else float("nan")


def verdict(constraint: Constraint, text: str, ended: bool) -> str:
    if constraint.validates(text):
        return VALID
    return INVALID if ended else CUT_OFF


def compare_constrained(lm: LanguageModel, prompt_ids: torch.Tensor, settings: SamplingSettings,
                        constraint: Constraint, samples: int, max_new_tokens: int, seed: int) -> Comparison:
    """`samples` seeded samples without the constraint, then the same with it (same seed, same knobs)."""
    matcher = matcher_for(lm, constraint)
    free = draw_samples(lm, prompt_ids, settings, samples, max_new_tokens, seed)
    grammar = GrammarProcessor([matcher.deep_copy() for _ in range(samples)], prompt_ids.shape[1], end_token_ids(lm))
    constrained = draw_samples(lm, prompt_ids, settings, samples, max_new_tokens, seed, grammar)
    return Comparison(
        constraint, free, constrained,
        tuple(verdict(constraint, row.text, row.ended) for row in free.rows),
        tuple(verdict(constraint, row.text, row.ended) for row in constrained.rows),
    )
