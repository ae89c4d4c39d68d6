"""N seeded samples of one prompt, drawn the way `generate` draws them, with what the views need kept per token.

`draw_samples` runs the same processors in the same order as `model.generate(do_sample=True,
num_return_sequences=N)` (an optional grammar stage where `generate` puts a `logits_processor`), pads finished
rows the same way and draws from a per-request `torch.Generator`: seeded with the same number it gives the same
texts as `generate` after `torch.manual_seed`. On the way it keeps each token's log-probability under the model
(before any knob), which best-of-N scores with, and the time the grammar stage took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from playground.core import budget
from playground.core.stopping import check_wanted
from playground.language.generation import SamplingSettings
from playground.language.grammar import GrammarProcessor
from playground.language.sampling import _forward_kwargs, end_token_ids, processor_chain

if TYPE_CHECKING:
    from playground.language.loader import LanguageModel


@dataclass(frozen=True)
class SampledRow:
    text: str  # the continuation, without its end token
    token_ids: tuple[int, ...]  # every token drawn, the end token included
    log_probs: tuple[float, ...]  # the model's own natural-log probability of each drawn token
    ended: bool  # False: cut off at the token limit before an end token

    @property
    def log_prob(self) -> float:
        """The whole continuation's log-probability (the sum)."""
        return sum(self.log_probs)

    @property
    def mean_log_prob(self) -> float:
        """Per token: the length-normalised score, which does not favour short texts."""
        return self.log_prob / max(len(self.log_probs), 1)


@dataclass(frozen=True)
class Samples:
    rows: tuple[SampledRow, ...]
    seconds: float  # the whole draw, model calls included
    steps: int  # sequential model calls
    grammar_seconds: float = 0.0  # of `seconds`, spent in the grammar stage

    @property
    def tokens(self) -> int:
        return sum(len(row.token_ids) for row in self.rows)


def samples_cost(prompt_tokens: int, rows: int, new_tokens: int) -> budget.Cost:
    """Like `generate` with N return sequences: the prompt run once per row, then one step for all rows."""
    return budget.generation(prompt_tokens, new_tokens, rows=rows, prompt_rows=rows)


def draw_samples(lm: LanguageModel, prompt_ids: torch.Tensor, settings: SamplingSettings, rows: int,
                 max_new_tokens: int, seed: int, grammar: GrammarProcessor | None = None) -> Samples:
    """`rows` continuations of `prompt_ids` (1 × n), seeded; with `grammar` (one matcher per row) each is
    constrained by it. Checks between model calls that the request is still wanted."""
    settings = settings.validated()
    processors = []
    for name, _, processor in processor_chain(settings):
        processors += [processor] if processor is not None else []
        if name == "repetition penalty" and grammar is not None:  # where generate runs a logits_processor
            processors.append(grammar)
    generator = torch.Generator(device=prompt_ids.device).manual_seed(int(seed))
    end_ids = torch.tensor(sorted(end_token_ids(lm)), device=prompt_ids.device)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else int(end_ids[0])
    ids = prompt_ids.repeat(rows, 1)
    feed, cache = ids, None
    unfinished = torch.ones(rows, dtype=torch.bool, device=ids.device)
    log_probs: list[list[float]] = [[] for _ in range(rows)]
    start, steps = time.perf_counter(), 0
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            check_wanted()
            output = lm.model(input_ids=feed, past_key_values=cache, use_cache=True, **_forward_kwargs(lm.model))
            cache, steps = output.past_key_values, steps + 1
            logits = output.logits[:, -1].to(torch.float32)  # generate casts to float32 too
            scores = logits
            for processor in processors:
                scores = processor(ids, scores)
            if settings.greedy:
                drawn = torch.argmax(scores, dim=-1)
            else:
                drawn = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1, generator=generator)[:, 0]
            drawn = torch.where(unfinished, drawn, torch.full_like(drawn, pad))
            own = torch.log_softmax(logits, dim=-1).gather(1, drawn[:, None])[:, 0]
            for row in torch.nonzero(unfinished)[:, 0].tolist():
                log_probs[row].append(float(own[row]))
            ids = torch.cat([ids, drawn[:, None]], dim=1)
            feed = drawn[:, None]
            unfinished &= ~torch.isin(drawn, end_ids)
            if not unfinished.any():
                break
    seconds = time.perf_counter() - start
    width = prompt_ids.shape[1]
    ends = set(end_ids.tolist())
    sampled = []
    for row in range(rows):
        drawn_ids = ids[row, width:width + len(log_probs[row])].tolist()
        ended = bool(drawn_ids) and drawn_ids[-1] in ends
        text = lm.tokenizer.decode(drawn_ids[:-1] if ended else drawn_ids, skip_special_tokens=True)
        sampled.append(SampledRow(text, tuple(drawn_ids), tuple(log_probs[row]), ended))
    return Samples(tuple(sampled), seconds, steps, grammar.seconds if grammar else 0.0)
