"""What a language backend hands back, whichever backend it is: plain values the tabs' logic and views read.

A local model and an inference server fill the same types; where a server cannot know something (its
distribution after the knobs, the entropy of what it sampled) the field says so (None) rather than the
type changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from playground.language.sampling import Stage


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt exactly as the backend reads it: its text (chat template markup included) and its token ids
    (1 × n, on the backend's device). A local model runs the ids; a server is sent the text."""

    text: str
    ids: torch.Tensor

    @property
    def token_count(self) -> int:
        return int(self.ids.shape[1])


@dataclass(frozen=True)
class NextToken:
    """Every stage of the sampling chain for the next token, in the order the backend applies the knobs."""

    stages: list[Stage]
    label: Callable[[int], str]  # a token's index in the stages -> readable text
    unseen_mass: float = 0.0  # probability of the tokens the backend did not return (a server's top N)
    returned: int | None = None  # how many tokens were returned; None: the whole vocabulary


@dataclass(frozen=True)
class Generation:
    text: str
    new_tokens: int
    seconds: float


@dataclass(frozen=True)
class RowOutput:
    text: str  # the continuation, cut before any stop string
    new_tokens: int  # tokens the model produced for this row (its end token included)
    seconds: float  # from the start of the call until this row finished


@dataclass(frozen=True)
class BatchOutput:
    rows: tuple[RowOutput, ...]
    seconds: float
    finished: bool = True  # False for the snapshots a stream yields while generating

    @property
    def new_tokens(self) -> int:
        return sum(row.new_tokens for row in self.rows)


@dataclass(frozen=True)
class SweepColumn:
    temperature: float
    texts: tuple[str, ...]
    mean_entropy_bits: float | None  # per generated token, of the distribution drawn from (None: not known)

    @property
    def distinct(self) -> int:
        return len({text.strip() for text in self.texts})


@dataclass(frozen=True)
class SearchResult:
    method: str
    text: str
    tokens: int
    log_prob: float  # natural log of the model's probability of the whole continuation

    @property
    def mean_log_prob(self) -> float:
        return self.log_prob / max(self.tokens, 1)


@dataclass(frozen=True)
class LabelScores:
    log_likelihoods: torch.Tensor  # one sum of log p(label tokens | prompt) per label
    bounded: tuple[bool, ...]  # per label: a token fell outside a server's top N, so its sum is an upper bound

    def probabilities(self) -> torch.Tensor:
        """Each label's share of the mass the model puts on the label set (float64, sums to 1)."""
        return torch.softmax(self.log_likelihoods.double(), dim=0)


@dataclass(frozen=True)
class ScoredRow:
    """One sample with the model's own log-probability of its tokens (before any knob): best-of-N's score."""

    text: str  # the continuation, without its end token
    tokens: int  # tokens drawn, the end token included
    log_prob: float  # the sum, natural log
    ended: bool  # False: cut off at the token limit
    token_ids: tuple[int, ...] = ()  # the tokens drawn, where the backend knows them (a local model)

    @property
    def mean_log_prob(self) -> float:
        """Per token: the length-normalised score, which does not favour short texts."""
        return self.log_prob / max(self.tokens, 1)


@dataclass(frozen=True)
class ScoredSamples:
    rows: tuple[ScoredRow, ...]
    seconds: float  # the whole draw, model calls included
    steps: int  # sequential model calls (a server: the longest row's tokens)
    grammar_seconds: float | None = 0.0  # of `seconds`, spent masking (None: done by a server, not measured)

    @property
    def tokens(self) -> int:
        return sum(row.tokens for row in self.rows)


@dataclass(frozen=True)
class Lens:
    positions: tuple[str, ...]  # readable input tokens; position i predicts the token after it
    layers: tuple[str, ...]  # "embeddings", "layer 1", ... "layer L"
    top_ids: torch.Tensor  # (layers, positions) each layer's favourite next token at each position
    top_probs: torch.Tensor  # (layers, positions) its probability
    last_top_ids: torch.Tensor  # (layers, TOP_TOKENS) the favourites at the last position
    last_top_probs: torch.Tensor  # (layers, TOP_TOKENS)
    answer_probs: torch.Tensor  # (layers,) the final answer's probability at the last position
    label: Callable[[int], str]  # a token id -> readable text

    @property
    def answer_id(self) -> int:
        """The model's own favourite next token (the last layer's top token at the last position)."""
        return int(self.top_ids[-1, -1])

    @property
    def first_layer(self) -> int | None:
        """The first layer (index into `layers`) at which the final answer is the top token."""
        hits = (self.top_ids[:, -1] == self.answer_id).nonzero()
        return int(hits[0, 0]) if hits.numel() else None

    @property
    def settled_layer(self) -> int:
        """The layer from which on the final answer stays the top token up to the last."""
        tops = self.top_ids[:, -1].tolist()
        index = len(tops) - 1
        while index > 0 and tops[index - 1] == self.answer_id:
            index -= 1
        return index
