"""Best-of-N: sample N continuations, keep the one the model itself finds likeliest.

Two scores, both from the model's own log-probabilities of the tokens it drew (before any knob): the sum,
which is the probability of the whole text and favours short ones, and the mean per token, which does not.
The choice can differ between them, and showing both is the point. Any backend draws the samples
(`LanguageBackend.sample_scored`): a local model records the log-probabilities as it draws, a server
returns them (`logprobs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from playground.language.results import ScoredRow, ScoredSamples

SCORES = ("sum", "mean")  # the log-probability summed over the tokens; averaged per token


@dataclass(frozen=True)
class BestOfN:
    samples: ScoredSamples

    @property
    def candidates(self) -> tuple[ScoredRow, ...]:
        return self.samples.rows

    @staticmethod
    def score(candidate: ScoredRow, by: str) -> float:
        return candidate.log_prob if by == "sum" else candidate.mean_log_prob

    def chosen(self, by: str) -> int:
        """The index of the best candidate by that score (the first one on a tie)."""
        scores = [self.score(c, by) for c in self.candidates]
        return scores.index(max(scores))

    def ranks(self, by: str) -> list[int]:
        """Each candidate's rank by that score, 1 = best (ties keep the order of the candidates)."""
        order = sorted(range(len(self.candidates)), key=lambda i: -self.score(self.candidates[i], by))
        ranks = [0] * len(order)
        for rank, index in enumerate(order, start=1):
            ranks[index] = rank
        return ranks
