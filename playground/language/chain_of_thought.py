"""Chain-of-thought prompting, compared with answering directly, on GSM8K word problems.

Four ways to ask the same model the same question:
- direct answer: the answer is started for the model ("The answer is"), so it cannot reason first;
- zero-shot CoT: the answer starts "Let's think step by step." (Kojima et al., 2022);
- few-shot CoT: worked solutions of other problems come first (Wei et al., 2022);
- self-consistency: k sampled few-shot CoT answers, majority vote on their numbers (Wang et al., 2023).
Each answer's final number is extracted and scored against the reference, with its cost in tokens
and seconds: the price of thinking, made visible.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import torch

from playground.core import budget, checks
from playground.core.errors import PlaygroundError
from playground.core.paths import ASSETS
from playground.core.settings import Limits
from playground.core.stopping import check_wanted
from playground.language.answers import extract_answer, format_number, parse_reference
from playground.language.backend import LanguageBackend
from playground.language.batches import batch_cost
from playground.language.results import BatchOutput, RenderedPrompt, RowOutput
from playground.language.sampling_settings import SamplingSettings

GSM8K_DIR = ASSETS / "gsm8k"

DIRECT = "Direct answer"
ZERO_SHOT = "Zero-shot CoT"
FEW_SHOT = "Few-shot CoT"
SELF_CONSISTENCY = "Self-consistency"
MODES = (DIRECT, ZERO_SHOT, FEW_SHOT, SELF_CONSISTENCY)
ZERO_SHOT_TRIGGER = "Let's think step by step."
DIRECT_TRIGGER = "The answer is"

# Plain prompts are "Q: ...\nA: ..." blocks; a model that starts the next block has finished its answer.
_NEXT_QUESTION = ("\nQ:", "\nQuestion:")


@dataclass(frozen=True)
class Problem:
    question: str
    reference: Fraction | None  # None: a typed question without an answer; not scored
    solution: str = ""  # GSM8K's worked solution, calculator notes removed


def worked_solution(gsm8k_answer: str) -> str:
    """GSM8K's solution as a person would write it: "<<48/2=24>>" calculator notes dropped and the
    final "#### 72" turned into "The answer is 72." (the marker the models are shown, then read back)."""
    body, _, final = gsm8k_answer.rpartition("####")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f"{body}\n{DIRECT_TRIGGER} {final.strip()}."


def _problem(line: str) -> Problem:
    row = json.loads(line)
    return Problem(row["question"], parse_reference(row["answer"].rpartition("####")[2]), worked_solution(row["answer"]))


@lru_cache(maxsize=1)
def gsm8k_test() -> tuple[Problem, ...]:
    with open(GSM8K_DIR / "test.jsonl", encoding="utf-8") as handle:
        return tuple(_problem(line) for line in handle if line.strip())


@lru_cache(maxsize=1)
def gsm8k_exemplars() -> tuple[Problem, ...]:
    """Eight short GSM8K train problems with worked solutions, for few-shot prompts."""
    with open(GSM8K_DIR / "train_exemplars.jsonl", encoding="utf-8") as handle:
        return tuple(_problem(line) for line in handle if line.strip())


def gsm8k_problem(number: int | float) -> Problem:
    """GSM8K test problem `number`, counting from 1 as the table does."""
    count = len(gsm8k_test())
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
            or number != int(number) or not 1 <= number <= count:
        raise PlaygroundError(f"GSM8K test problems are numbered 1 to {count}; got {number!r}.")
    return gsm8k_test()[int(number) - 1]


def custom_problem(question: str, reference: str | None, limits: Limits) -> Problem:
    if not isinstance(question, str) or not question.strip():
        raise PlaygroundError("The question is empty: type a word problem or load a GSM8K one.")
    if len(question) > limits.max_prompt_chars:
        raise PlaygroundError(
            f"The question has {len(question):,} characters; this server accepts up to {limits.max_prompt_chars:,}."
        )
    return Problem(question.strip(), parse_reference(reference))


@dataclass(frozen=True)
class CotSettings:
    max_new_tokens: int = 160
    use_chat_template: bool = True
    exemplars: int = 4  # worked solutions shown in few-shot prompts
    samples: int = 5  # k, the self-consistency votes
    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(temperature=0.7))
    seed: int = 0  # for the sampled self-consistency answers; the other modes are greedy

    def validated(self, limits: Limits, modes: Sequence[str] = MODES) -> "CotSettings":
        """Self with whole numbers where counts are meant, or a message naming the bad value."""
        settings = replace(
            self,
            max_new_tokens=checks.new_tokens(self.max_new_tokens, limits),
            exemplars=checks.whole_number(self.exemplars, "The number of worked examples", 1, len(gsm8k_exemplars())),
            samples=checks.whole_number(self.samples, "The number of self-consistency samples", 2, limits.max_samples),
            seed=checks.seed(self.seed),
            sampling=self.sampling.validated(),
        )
        if SELF_CONSISTENCY in modes and settings.sampling.greedy:
            raise PlaygroundError(
                "Self-consistency needs temperature above 0: greedy decoding gives the same answer k times."
            )
        return settings


def check_modes(modes: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(mode for mode in MODES if mode in (modes or ()))
    unknown = [mode for mode in modes or () if mode not in MODES]
    if unknown:
        raise PlaygroundError(f"Unknown mode {str(unknown[0])[:40]!r}; modes are: {', '.join(MODES)}.")
    if not chosen:
        raise PlaygroundError("Pick at least one mode to run.")
    return chosen


@dataclass(frozen=True)
class Prompt:
    text: str  # exactly what the model reads, chat template included
    answer_start: str  # the beginning of the answer written for the model; shown with its output
    stop_strings: tuple[str, ...]


def build_cot_prompt(lm: LanguageBackend, mode: str, question: str, settings: CotSettings) -> Prompt:
    exemplars = gsm8k_exemplars()[: settings.exemplars] if mode in (FEW_SHOT, SELF_CONSISTENCY) else ()
    answer_start = {DIRECT: DIRECT_TRIGGER, ZERO_SHOT: ZERO_SHOT_TRIGGER}.get(mode, "")
    # A direct answer is one line; reasoning may take several, until the model starts a new question.
    stops = ("\n",) if mode == DIRECT else _NEXT_QUESTION
    if settings.use_chat_template:
        checks.chat_template(lm.tokenizer, lm.name)
        messages = []
        for example in exemplars:
            messages += [{"role": "user", "content": example.question}, {"role": "assistant", "content": example.solution}]
        messages.append({"role": "user", "content": question})
        rendered = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return Prompt(rendered + answer_start, answer_start, stops)
    shots = "".join(f"Q: {example.question}\nA: {example.solution}\n\n" for example in exemplars)
    return Prompt(f"{shots}Q: {question}\nA:" + (f" {answer_start}" if answer_start else ""), answer_start, stops)


def prompt_token_ids(lm: LanguageBackend, prompt: Prompt, settings: CotSettings) -> list[int]:
    # A rendered chat template already holds its special tokens; plain text gets the tokenizer's usual ones.
    ids = lm.tokenizer(prompt.text, add_special_tokens=not settings.use_chat_template).input_ids
    if len(ids) + settings.max_new_tokens > lm.context_length:
        raise PlaygroundError(
            f"The prompt is {len(ids):,} tokens and {settings.max_new_tokens} new tokens are asked for; "
            f"{lm.name} reads at most {lm.context_length:,}. Use fewer worked examples or fewer new tokens."
        )
    return ids


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


def _mode_result(mode: str, prompt: Prompt, rows: Sequence[RowOutput], reference: Fraction | None,
                 seconds: float, finished: bool) -> ModeResult:
    texts = tuple(prompt.answer_start + (" " if prompt.answer_start else "") + row.text.lstrip() for row in rows)
    answers = tuple(extract_answer(text).value for text in texts) if finished else ()
    answer = (majority_vote(answers) if mode == SELF_CONSISTENCY else answers[0]) if finished else None
    return ModeResult(mode, texts, answers, answer, reference, sum(row.new_tokens for row in rows), seconds, finished)


def _generation_args(mode: str, settings: CotSettings) -> dict:
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
        cost += batch_cost([ids], settings.max_new_tokens, _generation_args(mode, settings)["samples_per_prompt"])
    budget.check(cost, limits, "This comparison", COMPARE_LOWER)


def stream_mode(lm: LanguageBackend, mode: str, problem: Problem, settings: CotSettings) -> Iterator[ModeResult]:
    """One mode on one problem, yielding the answer as it is written; the last result is scored."""
    prompt = build_cot_prompt(lm, mode, problem.question, settings)
    args = _generation_args(mode, settings)
    for output in lm.stream_many([rendered(lm, prompt, settings)], args["sampling"], settings.max_new_tokens,
                                 args["samples_per_prompt"], args["seed"], prompt.stop_strings):
        yield _mode_result(mode, prompt, output.rows, problem.reference, output.seconds, output.finished)


def rendered(lm: LanguageBackend, prompt: Prompt, settings: CotSettings) -> RenderedPrompt:
    return RenderedPrompt(prompt.text, torch.tensor([prompt_token_ids(lm, prompt, settings)], device=lm.device))


def mode_batch(lm: LanguageBackend, prompts: Sequence[Prompt], mode: str, settings: CotSettings) -> BatchOutput:
    """Every prompt answered in `mode` together (rows grouped by prompt, a prompt's samples side by side)."""
    args = _generation_args(mode, settings)
    return lm.generate_many([rendered(lm, prompt, settings) for prompt in prompts], args["sampling"],
                            settings.max_new_tokens, args["samples_per_prompt"], args["seed"], prompts[0].stop_strings)


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


def check_problem_range(first: int | float, count: int | float, limits: Limits) -> range:
    total = len(gsm8k_test())
    first = checks.whole_number(first, "The first problem", 1, total)
    count = checks.whole_number(count, "The number of problems", 1, limits.max_batch_items)
    if first + count - 1 > total:
        raise PlaygroundError(f"GSM8K test has {total} problems; from {first}, at most {total - first + 1} remain.")
    return range(first, first + count)


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
                           _generation_args(mode, settings)["samples_per_prompt"])
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
            outcomes[i].results[mode] = _mode_result(mode, prompts[mode][i], rows, outcomes[i].problem.reference,
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


def outcome_rows(outcomes: Sequence[ProblemOutcome], modes: Sequence[str]) -> list[dict[str, object]]:
    """One row per problem: its number, question, reference, and per mode the answer, verdict and cost."""
    rows = []
    for outcome in outcomes:
        row: dict[str, object] = {
            "problem": outcome.number, "question": outcome.problem.question,
            "reference": format_number(outcome.problem.reference),
        }
        for mode in modes:
            result = outcome.results.get(mode)
            row[f"{mode}: answer"] = format_number(result.answer) if result else ""
            row[f"{mode}: correct"] = "" if result is None else result.correct
            row[f"{mode}: tokens"] = result.new_tokens if result else ""
            row[f"{mode}: seconds"] = round(result.seconds, 3) if result else ""
        rows.append(row)
    return rows


def outcomes_csv(outcomes: Sequence[ProblemOutcome], modes: Sequence[str]) -> str:
    rows = outcome_rows(outcomes, modes)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
