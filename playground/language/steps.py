"""Generation one token at a time, with every step's distribution kept for display.

A `StepSession` holds the sequence, the model's KV cache (so each step feeds one new token instead
of the whole text again) and its own seeded random generator. Drawing N tokens in one call or in
N calls gives the same text, and the same text `model.generate` gives after `torch.manual_seed(seed)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from playground.core import checks
from playground.core.stopping import check_wanted
from playground.language.sampling_settings import SamplingSettings
from playground.language.sampling import draw_token, end_token_ids, last_logits, next_token_stages
from playground.language.token_text import readable_token

if TYPE_CHECKING:  # the local backend calls these with itself
    from playground.language.local import LocalLanguageModel

ALTERNATIVES = 5  # candidates shown per generated token


@dataclass(frozen=True)
class Candidate:
    token: str
    raw_probability: float  # the model's own probability
    probability: float  # after the knobs: what the draw used


@dataclass(frozen=True)
class Step:
    token_id: int
    token: str  # readable label
    text: str  # the token's text as it reads in the continuation
    raw_probability: float
    probability: float
    raw_rank: int  # 1 = the model's favourite
    entropy_bits: float  # of the distribution the token was drawn from
    survivors: int
    alternatives: tuple[Candidate, ...]


@dataclass
class StepSession:
    """One prompt being continued step by step. Its identity says when a new request must restart it."""

    identity: tuple
    prompt_ids: torch.Tensor  # (1, n)
    seed: int
    ids: torch.Tensor = field(init=False)
    generator: torch.Generator = field(init=False)
    cache: object = None  # the model's past_key_values, covering ids[:, :cached]
    cached: int = 0
    steps: list[Step] = field(default_factory=list)
    finished: str = ""  # why no more tokens can come, once that is so

    def __post_init__(self) -> None:
        self.ids = self.prompt_ids
        self.generator = torch.Generator(device=self.prompt_ids.device).manual_seed(self.seed)

    @property
    def new_ids(self) -> list[int]:
        return self.ids[0, self.prompt_ids.shape[1]:].tolist()


def start_session(identity: tuple, prompt_ids: torch.Tensor, seed: object) -> StepSession:
    return StepSession(identity, prompt_ids, checks.seed(seed))


def _next_logits(lm: LocalLanguageModel, session: StepSession) -> torch.Tensor:
    """Logits for the next position, feeding only the tokens the cache has not seen yet."""
    logits, session.cache = last_logits(lm, session.ids[:, session.cached:], session.cache)
    session.cached = session.ids.shape[1]
    return logits


def _step(lm: LocalLanguageModel, session: StepSession, settings: SamplingSettings) -> Step:
    stages = next_token_stages(_next_logits(lm, session), session.ids, settings)
    token_id = draw_token(stages, session.generator)
    raw, final = stages[0].probs, stages[-1].probs
    top = torch.topk(final, ALTERNATIVES)  # ties in the final stage keep the raw order
    candidates = tuple(
        Candidate(readable_token(lm.tokenizer, i), float(raw[i]), float(p))
        for p, i in zip(top.values.tolist(), top.indices.tolist()) if p > 0
    )
    step = Step(
        token_id=token_id,
        token=readable_token(lm.tokenizer, token_id),
        text=lm.tokenizer.decode([token_id], skip_special_tokens=False),
        raw_probability=float(raw[token_id]),
        probability=float(final[token_id]),
        raw_rank=int((raw > raw[token_id]).sum()) + 1,
        entropy_bits=stages[-1].entropy_bits,
        survivors=stages[-1].survivors,
        alternatives=candidates,
    )
    session.ids = torch.cat([session.ids, torch.tensor([[token_id]], device=session.ids.device)], dim=1)
    session.steps.append(step)
    return step


def _why_finished(lm: LocalLanguageModel, session: StepSession, end_tokens: set[int], max_total: int) -> str:
    if session.steps and session.steps[-1].token_id in end_tokens:
        return "the model chose an end-of-text token"
    if len(session.steps) >= max_total:
        return f"reached this server's limit of {max_total} generated tokens"
    if session.ids.shape[1] >= lm.context_length:
        return f"the model's context ({lm.context_length:,} tokens) is full"
    return ""


def tokens_to_draw(session: StepSession, tokens: int, max_total: int) -> int:
    return 0 if session.finished else max(0, min(tokens, max_total - len(session.steps)))


def advance(lm: LocalLanguageModel, session: StepSession, settings: SamplingSettings, tokens: int, max_total: int) -> StepSession:
    """Draw up to `tokens` more tokens; stops at an end-of-text token, the context length or `max_total`.
    Between tokens it checks the request is still wanted (`Stopped` otherwise; the tokens drawn stay)."""
    settings = settings.validated()
    end_tokens = end_token_ids(lm)
    for _ in range(tokens):
        if _why_finished(lm, session, end_tokens, max_total):
            break
        check_wanted()
        _step(lm, session, settings)
    session.finished = _why_finished(lm, session, end_tokens, max_total)
    return session
