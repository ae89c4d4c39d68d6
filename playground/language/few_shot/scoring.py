"""Scoring labels: the log-likelihood of each label's tokens after the prompt, so a person sees confidence move as
shots are added, not only whether a string matched."""

from __future__ import annotations

from typing import Sequence

from playground.core.errors import PlaygroundError
from playground.language.backend import LanguageBackend
from playground.language.few_shot.prompts import FewShotPrompt
from playground.language.results import LabelScores


def label_token_ids(lm: LanguageBackend, labels: Sequence[str], chat: bool) -> list[list[int]]:
    """Each label's tokens as they follow the prompt: after "Sentiment:" a space comes first; after
    the chat template's assistant header the answer starts directly."""
    ids = [lm.tokenizer((label if chat else " " + label), add_special_tokens=False).input_ids for label in labels]
    empty = [label for label, tokens in zip(labels, ids) if not tokens]
    if empty:
        raise PlaygroundError(f"The label {empty[0]!r} produced no tokens.")
    return ids


def label_scores(lm: LanguageBackend, prompt: FewShotPrompt, labels: Sequence[str]) -> LabelScores:
    return next(lm.score_labels([prompt], label_token_ids(lm, labels, prompt.chat)))


def label_probabilities(lm: LanguageBackend, prompt: FewShotPrompt, labels: Sequence[str]) -> dict[str, float]:
    """Each label's share of the probability mass the model puts on the label set (sums to 1)."""
    return dict(zip(labels, label_scores(lm, prompt, labels).probabilities().tolist()))
