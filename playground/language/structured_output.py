"""Structured output on any backend: N seeded samples without and with a constraint, side by side, with how
many of each obey it (checked apart from the engine, `Constraint.validates`) and what the mask costs.

A local model masks with llguidance in its own chain (`playground.language.samples`); a server applies its
own structured output (`LanguageBackend.sample_scored` with a constraint)."""

from __future__ import annotations

from dataclasses import dataclass

from playground.language.constraints import Constraint
from playground.language.results import ScoredSamples

VALID, INVALID, CUT_OFF = "valid", "invalid", "cut off"  # a cut-off text may be a valid one unfinished


def validity(constraint: Constraint, text: str, ended: bool) -> str:
    if constraint.validates(text):
        return VALID
    return INVALID if ended else CUT_OFF


@dataclass(frozen=True)
class Comparison:
    constraint: Constraint
    free: ScoredSamples  # the same seed, no constraint
    constrained: ScoredSamples

    @property
    def free_verdicts(self) -> tuple[str, ...]:
        return tuple(validity(self.constraint, row.text, row.ended) for row in self.free.rows)

    @property
    def constrained_verdicts(self) -> tuple[str, ...]:
        return tuple(validity(self.constraint, row.text, row.ended) for row in self.constrained.rows)

    @staticmethod
    def rate(verdicts: tuple[str, ...]) -> float:
        return verdicts.count(VALID) / max(len(verdicts), 1)

    @property
    def mask_ms_per_step(self) -> float | None:
        """Time in the grammar stage per model call (every row's mask and engine step); None on a server."""
        if self.constrained.grammar_seconds is None:
            return None
        return 1000 * self.constrained.grammar_seconds / max(self.constrained.steps, 1)

    @property
    def step_ratio(self) -> float:
        """Time per step constrained / unconstrained (1.0 = the mask costs nothing)."""
        free = self.free.seconds / max(self.free.steps, 1)
        return self.constrained.seconds / max(self.constrained.steps, 1) / free if free else float("nan")
