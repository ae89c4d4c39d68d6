"""Accuracy on a held-out labelled set as shots are added (k = 0, 1, 2, 4, 8), plus the same shots in a
shuffled order and with random labels: Min et al. (2022) found the format of the demonstrations
matters more than whether their labels are right; here a person can check that on a local model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence

from playground.core import budget
from playground.core.settings import Limits
from playground.core.stopping import check_wanted
from playground.language.backend import LanguageBackend
from playground.language.few_shot.prompts import (
    AS_GIVEN, RANDOM_LABELS, SHUFFLED, FewShotPrompt, build_few_shot_prompt, choose_shots,
)
from playground.language.few_shot.request import FewShotRequest
from playground.language.few_shot.run import answer_text
from playground.language.few_shot.scoring import label_token_ids
from playground.language.few_shot.tasks import Example
from playground.language.label_scoring import label_scoring_cost, shared_prefix_length
from playground.language.sampling_settings import SamplingSettings

SHOT_COUNTS = (0, 1, 2, 4, 8)
GREEDY = SamplingSettings(temperature=0)


@dataclass(frozen=True)
class SweepSetting:
    name: str  # what the chart's axis shows, e.g. "k=4" or "k=8 shuffled"
    k: int
    order: str


def sweep_settings(available: int) -> list[SweepSetting]:
    """k = 0, 1, 2, 4, 8 capped by the examples available; at the largest k, shuffled and random labels."""
    counts = sorted({min(k, available) for k in SHOT_COUNTS})
    settings = [SweepSetting(f"k={k}", k, AS_GIVEN) for k in counts]
    largest = counts[-1]
    if largest >= 2:
        settings.append(SweepSetting(f"k={largest} shuffled", largest, SHUFFLED))
    if largest >= 1:
        settings.append(SweepSetting(f"k={largest} random labels", largest, RANDOM_LABELS))
    return settings


@dataclass(frozen=True)
class ItemResult:
    setting: str
    item: int  # 1-based position in the held-out set
    input: str
    expected: str
    predicted: str
    correct: bool
    expected_probability: float | None  # classification only: p(expected label) over the label set


def normalised(text: str) -> str:
    """Case, surrounding quotes, trailing full stop and runs of spaces do not count as wrong answers."""
    return re.sub(r"\s+", " ", text.strip().strip("\"'").rstrip(".").strip()).casefold()


def sweep_prompts(lm: LanguageBackend, request: FewShotRequest, eval_set: Sequence[Example], limits: Limits,
                  settings: Sequence[SweepSetting] | None = None) -> list[tuple[SweepSetting, list[FewShotPrompt]]]:
    """Every setting's prompts (by default `sweep_settings`), one per held-out item; shots are chosen with the
    request's seed."""
    plan = []
    for setting in sweep_settings(len(request.examples)) if settings is None else settings:
        shots = choose_shots(request.examples, setting.k, setting.order, request.seed, request.labels)
        plan.append((setting, [build_few_shot_prompt(lm, request.fmt, shots, item.input, limits) for item in eval_set]))
    return plan


def answer_tokens(lm: LanguageBackend, eval_set: Sequence[Example], limits: Limits) -> int:
    """New tokens for a free-text answer: the longest expected one and a little room."""
    return min(max(len(lm.tokenizer(" " + item.output).input_ids) for item in eval_set) + 2, limits.max_new_tokens)


def few_shot_sweep_cost(lm: LanguageBackend, plan: list[tuple[SweepSetting, list[FewShotPrompt]]],
                        labels_ids: Sequence[Sequence[int]], answer_tokens: int) -> budget.Cost:
    cost = budget.Cost()
    for _, prompts in plan:
        if labels_ids:
            prefix = shared_prefix_length([prompt.ids for prompt in prompts])
            cost += budget.forward(prefix)
            for prompt in prompts:
                cost += label_scoring_cost(lm, prompt.token_count, labels_ids, prefix)
        else:
            for prompt in prompts:
                cost += budget.generation(prompt.token_count, answer_tokens)
    return cost


SWEEP_LOWER = "fewer held-out items, fewer or shorter labels, or fewer and shorter examples"


def sweep(
    lm: LanguageBackend, request: FewShotRequest, eval_set: Sequence[Example], limits: Limits,
    settings: Sequence[SweepSetting] | None = None,
) -> Iterator[ItemResult]:
    """Score every held-out item under every setting (by default `sweep_settings`), one item at a time (so a
    caller can show progress and stop between items). Shots are chosen with the request's seed: the same
    seed, the same sweep."""
    labels_ids = label_token_ids(lm, request.labels, request.fmt.use_chat_template) if request.labels else []
    new_tokens = answer_tokens(lm, eval_set, limits)
    plan = sweep_prompts(lm, request, eval_set, limits, settings)
    budget.check(few_shot_sweep_cost(lm, plan, labels_ids, new_tokens), limits, "This sweep", SWEEP_LOWER)
    for setting, prompts in plan:
        scores = lm.score_labels(prompts, labels_ids) if request.labels else None  # one per item, as they come
        for number, (item, prompt) in enumerate(zip(eval_set, prompts), start=1):
            check_wanted()
            if request.labels:
                probabilities = next(scores).probabilities()
                predicted = request.labels[int(probabilities.argmax())]
                expected_probability = float(probabilities[request.labels.index(item.output)])
                correct = predicted == item.output
            else:
                generation = lm.generate(prompt, GREEDY, new_tokens)
                predicted = answer_text(generation, prompt.chat)
                expected_probability = None
                correct = normalised(predicted) == normalised(item.output)
            yield ItemResult(setting.name, number, item.input, item.output, predicted, correct, expected_probability)


@dataclass(frozen=True)
class SettingAccuracy:
    setting: str
    accuracy: float
    correct: int
    scored: int
    mean_expected_probability: float | None


def accuracy_by_setting(results: Sequence[ItemResult]) -> list[SettingAccuracy]:
    """Per setting, in sweep order: the share answered right, and the mean probability of the right label."""
    rows = []
    for name in dict.fromkeys(result.setting for result in results):
        group = [result for result in results if result.setting == name]
        correct = sum(result.correct for result in group)
        probabilities = [r.expected_probability for r in group if r.expected_probability is not None]
        mean = sum(probabilities) / len(probabilities) if probabilities else None
        rows.append(SettingAccuracy(name, correct / len(group), correct, len(group), mean))
    return rows
