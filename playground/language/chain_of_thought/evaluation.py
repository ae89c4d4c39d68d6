"""Accuracy on many GSM8K problems: every chosen mode on each, in batches, with progress after every batch, and
the accuracy and cost per mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

from playground.core import budget, checks
from playground.core.settings import Limits
from playground.core.stopping import check_wanted
from playground.language.backend import LanguageBackend
from playground.language.batches import batch_cost
from playground.language.chain_of_thought.answering import ModeResult, generation_args, mode_batch, mode_result
from playground.language.chain_of_thought.gsm8k import Problem, gsm8k_problem
from playground.language.chain_of_thought.prompts import (
    SELF_CONSISTENCY, CotSettings, build_cot_prompt, prompt_token_ids,
)


@dataclass
class ProblemOutcome:
    number: int  # GSM8K test problem number (from 1)
    problem: Problem
    results: dict[str, ModeResult] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationProgress:
    outcomes: tuple[ProblemOutcome, ...]
    steps_done: int
    steps_total: int


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def evaluation_plan(problems: int, modes: Sequence[str], settings: CotSettings,
                    batch_size: int) -> list[tuple[str, Sequence[int]]]:
    """The `generate` calls of an evaluation, in order: (mode, indices of the problems generated together)."""
    plan = []
    for chunk in _chunks(range(problems), batch_size):
        for mode in modes:
            per_call = max(1, batch_size // settings.samples) if mode == SELF_CONSISTENCY else batch_size
            plan += [(mode, part) for part in _chunks(chunk, per_call)]
    return plan


def evaluation_cost(ids: dict[str, list[list[int]]], plan: Sequence[tuple[str, Sequence[int]]],
                    settings: CotSettings) -> budget.Cost:
    """What the plan's calls may run, from each mode's prompt token ids."""
    cost = budget.Cost()
    for mode, part in plan:
        cost += batch_cost([ids[mode][i] for i in part], settings.max_new_tokens,
                           generation_args(mode, settings)["samples_per_prompt"])
    return cost


def evaluate(lm: LanguageBackend, numbers: Sequence[int], modes: Sequence[str], settings: CotSettings,
             batch_size: int, limits: Limits) -> Iterator[EvaluationProgress]:
    """Each mode on GSM8K test problems `numbers`, `batch_size` sequences per `generate` call;
    yields after every call, so a person sees accuracy grow and can stop it."""
    batch_size = checks.whole_number(batch_size, "Sequences per batch", 1, limits.max_generation_batch)
    outcomes = tuple(ProblemOutcome(number, gsm8k_problem(number)) for number in numbers)
    prompts = {mode: [build_cot_prompt(lm, mode, o.problem.question, settings) for o in outcomes] for mode in modes}
    ids = {mode: [prompt_token_ids(lm, p, settings) for p in prompts[mode]] for mode in modes}
    plan = evaluation_plan(len(outcomes), modes, settings, batch_size)
    budget.check(evaluation_cost(ids, plan, settings), limits, "This measurement",
                 "fewer problems or modes, fewer new tokens, or a larger batch")
    for step, (mode, part) in enumerate(plan, start=1):
        check_wanted()
        output = mode_batch(lm, [prompts[mode][i] for i in part], mode, settings)
        per_problem = len(output.rows) // len(part)
        for position, i in enumerate(part):
            rows = output.rows[position * per_problem:(position + 1) * per_problem]
            seconds = max(row.seconds for row in rows)
            outcomes[i].results[mode] = mode_result(mode, prompts[mode][i], rows, outcomes[i].problem.reference,
                                                     seconds, finished=True)
        yield EvaluationProgress(outcomes, step, len(plan))


@dataclass(frozen=True)
class ModeAccuracy:
    mode: str
    correct: int
    scored: int
    new_tokens: int
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.scored if self.scored else 0.0


def accuracy_by_mode(outcomes: Sequence[ProblemOutcome], modes: Sequence[str]) -> list[ModeAccuracy]:
    summary = []
    for mode in modes:
        results = [o.results[mode] for o in outcomes if mode in o.results]
        summary.append(ModeAccuracy(
            mode, sum(r.correct is True for r in results), sum(r.correct is not None for r in results),
            sum(r.new_tokens for r in results), sum(r.seconds for r in results),
        ))
    return summary
