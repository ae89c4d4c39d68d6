"""N seeded samples of one prompt from a local model, drawn by its batcher, with each token's log-probability.

The samples are one `Continuation` (so they may share passes with other people's requests, and draw what
`model.generate(do_sample=True, num_return_sequences=N)` draws after `torch.manual_seed(seed)`). An optional
grammar stage joins the request's own processor chain where `generate` puts a `logits_processor`: after the
repetition penalty, before the sampling warpers. A recorder at the head of the chain keeps the model's own
log-probability (before any knob) of every drawn token: what best-of-N scores with.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from transformers import LogitsProcessor

from playground.core import budget
from playground.language.batcher import Continuation
from playground.language.grammar import GrammarProcessor
from playground.language.results import ScoredRow, ScoredSamples
from playground.language.sampling import end_token_ids, processor_chain
from playground.language.sampling_settings import SamplingSettings

if TYPE_CHECKING:  # the local backend calls these with itself
    from playground.language.local import LocalLanguageModel


class _LogProbRecorder(LogitsProcessor):
    """First in the chain: keeps the raw log-softmax of the last step, read once the batcher has drawn."""

    def __init__(self, rows: int):
        self.last: torch.Tensor | None = None
        self.log_probs: list[list[float]] = [[] for _ in range(rows)]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.last = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def on_step(self, new: list[list[int]]) -> None:
        """The batcher's report after each draw: every row's tokens so far (finished rows stop growing)."""
        for row, tokens in enumerate(new):
            if len(tokens) < len(self.log_probs[row]):  # the batcher ran the request again from its start
                del self.log_probs[row][len(tokens) - 1:]
            if len(tokens) > len(self.log_probs[row]):
                self.log_probs[row].append(float(self.last[row, tokens[-1]]))


def samples_cost(prompt_tokens: int, rows: int, new_tokens: int) -> budget.Cost:
    """The samples share one pass over the prompt, then one step for all rows."""
    return budget.generation(prompt_tokens, new_tokens, rows=rows)


def draw_samples(lm: LocalLanguageModel, prompt_ids: torch.Tensor, settings: SamplingSettings, rows: int,
                 max_new_tokens: int, seed: int, grammar: GrammarProcessor | None = None) -> ScoredSamples:
    """`rows` continuations of `prompt_ids` (1 × n), seeded; with `grammar` (one matcher per row) each obeys it."""
    settings = settings.validated()
    recorder = _LogProbRecorder(rows)
    processors: list[LogitsProcessor] = [recorder]
    for name, _, processor in processor_chain(settings):
        processors += [processor] if processor is not None else []
        if name == "repetition penalty" and grammar is not None:  # where generate runs a logits_processor
            processors.append(grammar)
    end_ids = frozenset(end_token_ids(lm))
    prompt = tuple(prompt_ids[0].tolist())
    start = time.perf_counter()
    new = lm.batcher.generate(Continuation((prompt,) * rows, tuple(processors), settings.greedy, max_new_tokens,
                                           int(seed), end_ids, on_step=recorder.on_step))
    seconds = time.perf_counter() - start
    sampled = []
    for tokens, log_probs in zip(new, recorder.log_probs):
        ended = bool(tokens) and tokens[-1] in end_ids
        text = lm.tokenizer.decode(tokens[:-1] if ended else tokens, skip_special_tokens=True)
        sampled.append(ScoredRow(text, len(tokens), sum(log_probs), ended, tuple(tokens)))
    steps = max((len(tokens) for tokens in new), default=0)
    return ScoredSamples(tuple(sampled), seconds, steps, grammar.seconds if grammar else 0.0)
