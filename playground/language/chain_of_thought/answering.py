"""One mode answering: a problem streamed as it is written (the compare view), or many prompts in one batch; each
answer's final number extracted, and self-consistency's majority vote."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Sequence

import torch

from playground.core import budget
from playground.core.settings import Limits
from playground.language.answers import extract_answer, format_number
from playground.language.backend import LanguageBackend
from playground.language.batches import batch_cost
from playground.language.chain_of_thought.gsm8k import Problem
from playground.language.chain_of_thought.prompts import (
    SELF_CONSISTENCY, CotSettings, Prompt, build_cot_prompt, prompt_token_ids,
)
from playground.language.results import BatchOutput, RenderedPrompt, RowOutput
from playground.language.sampling_settings import SamplingSettings


def majority_vote(answers: Sequence[Fraction | None]) -> Fraction | None:
    """The most common extracted number (answers without one do not vote); ties go to the earliest."""
    counts = Counter(answer for answer in answers if answer is not None)
    return counts.most_common(1)[0][0] if counts else None


@dataclass(frozen=True)
class ModeResult:
    mode: str
    texts: tuple[str, ...]  # one per sample (k for self-consistency), each from the answer start the model was given
    answers: tuple[Fraction | None, ...]  # the number extracted from each text
    answer: Fraction | None  # the mode's answer: the only one, or the majority vote
    reference: Fraction | None
    new_tokens: int
    seconds: float
    finished: bool = True

    @property
    def correct(self) -> bool | None:
        if self.reference is None or not self.finished:
            return None
        return self.answer == self.reference

    def votes(self) -> list[tuple[str, int]]:
        """("72", 3), ("70", 1), ("no number", 1): what self-consistency counted."""
        counts = Counter(format_number(a) if a is not None else "no number" for a in self.answers)
        return counts.most_common()


def mode_result(mode: str, prompt: Prompt, rows: Sequence[RowOutput], reference: Fraction | None,
                 seconds: float, finished: bool) -> ModeResult:
    texts = tuple(prompt.answer_start + (" " if prompt.answer_start else "") + row.text.lstrip() for row in rows)
    answers = tuple(extract_answer(text).value for text in texts) if finished else ()
    answer = (majority_vote(answers) if mode == SELF_CONSISTENCY else answers[0]) if finished else None
    return ModeResult(mode, texts, answers, answer, reference, sum(row.new_tokens for row in rows), seconds, finished)


def generation_args(mode: str, settings: CotSettings) -> dict:
    if mode == SELF_CONSISTENCY:
        return {"sampling": settings.sampling, "samples_per_prompt": settings.samples, "seed": settings.seed}
    return {"sampling": SamplingSettings(temperature=0), "samples_per_prompt": 1, "seed": 0}


COMPARE_LOWER = "fewer modes, new tokens, worked examples or self-consistency samples"


def check_compare_budget(lm: LanguageBackend, problem: Problem, modes: Sequence[str], settings: CotSettings,
                         limits: Limits) -> None:
    """Refuse up front a comparison whose modes together would cost more than one request may."""
    cost = budget.Cost()
    for mode in modes:
        ids = prompt_token_ids(lm, build_cot_prompt(lm, mode, problem.question, settings), settings)
        cost += batch_cost([ids], settings.max_new_tokens, generation_args(mode, settings)["samples_per_prompt"])
    budget.check(cost, limits, "This comparison", COMPARE_LOWER)


def stream_mode(lm: LanguageBackend, mode: str, problem: Problem, settings: CotSettings) -> Iterator[ModeResult]:
    """One mode on one problem, yielding the answer as it is written; the last result is scored."""
    prompt = build_cot_prompt(lm, mode, problem.question, settings)
    args = generation_args(mode, settings)
    for output in lm.stream_many([rendered(lm, prompt, settings)], args["sampling"], settings.max_new_tokens,
                                 args["samples_per_prompt"], args["seed"], prompt.stop_strings):
        yield mode_result(mode, prompt, output.rows, problem.reference, output.seconds, output.finished)


def rendered(lm: LanguageBackend, prompt: Prompt, settings: CotSettings) -> RenderedPrompt:
    return RenderedPrompt(prompt.text, torch.tensor([prompt_token_ids(lm, prompt, settings)], device=lm.device))


def mode_batch(lm: LanguageBackend, prompts: Sequence[Prompt], mode: str, settings: CotSettings) -> BatchOutput:
    """Every prompt answered in `mode` together (rows grouped by prompt, a prompt's samples side by side)."""
    args = generation_args(mode, settings)
    return lm.generate_many([rendered(lm, prompt, settings) for prompt in prompts], args["sampling"],
                            settings.max_new_tokens, args["samples_per_prompt"], args["seed"], prompts[0].stop_strings)
