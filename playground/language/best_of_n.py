"""Best-of-N: sample N continuations, keep the one the model itself finds likeliest.

Two scores, both from the model's own log-probabilities of the tokens it drew (before any knob): the sum,
which is the probability of the whole text and favours short ones, and the mean per token, which does not.
The choice can differ between them, and showing both is the point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

from playground.language.generation import SamplingSettings
from playground.language.samples import draw_samples

if TYPE_CHECKING:
    from playground.language.loader import LanguageModel

SCORES = ("sum", "mean")  # the log-probability summed over the tokens; averaged per token


@dataclass(frozen=True)
class Candidate:
    text: str
    tokens: int  # tokens drawn, the end token included
    log_prob: float  # the sum, natural log
    mean_log_prob: float  # per token
    ended: bool  # False: cut at the token limit


@dataclass(frozen=True)
class BestOfN:
    candidates: tuple[Candidate, ...]
    seconds: float
    tokens: int  # tokens generated in all

    def score(self, candidate: Candidate, by: str) -> float:
        return candidate.log_prob if by == "sum" else candidate.mean_log_prob

    def chosen(self, by: str) -> int:
        """The index of the best candidate by that score (the first one on a tie)."""
        scores = [self.score(c, by) for c in self.candidates]
        return scores.index(max(scores))

    def ranks(self, by: str) -> list[int]:
        """Each candidate's rank by that score, 1 = best (ties share the order of the candidates)."""
        order = sorted(range(len(self.candidates)), key=lambda i: -self.score(self.candidates[i], by))
        ranks = [0] * len(order)
        for rank, index in enumerate(order, start=1):
            ranks[index] = rank
        return ranks


def best_of_n(texts: Sequence[str], token_counts: Sequence[int], log_probs: Sequence[float], ended: Sequence[bool],
              seconds: float) -> BestOfN:
    """The candidates with their scores, from N samples whichever backend drew them."""
    candidates = tuple(Candidate(text, count, total, total / max(count, 1), end)
                       for text, count, total, end in zip(texts, token_counts, log_probs, ended))
    return BestOfN(candidates, seconds, sum(token_counts))


def sample_best_of_n(lm: LanguageModel, prompt_ids: torch.Tensor, settings: SamplingSettings, n: int,
                     max_new_tokens: int, seed: int) -> BestOfN:
    """N seeded samples from a local model, scored as they are drawn (no second pass)."""
    drawn = draw_samples(lm, prompt_ids, settings, n, max_new_tokens, seed)
    rows = drawn.rows
    return best_of_n([r.text for r in rows], [len(r.token_ids) for r in rows], [r.log_prob for r in rows],
                     [r.ended for r in rows], drawn.seconds)
