"""Several continuations in one request to the model's batcher: prompts, stop strings, and per-row token
counts and finishing times, streamed or not.

Batching is what makes "accuracy on N problems" affordable: a GPU runs 16 short rows in about the
time of one. Sampling goes through the same processor chain as the sampling tab (`chain_of`), so a
seeded run here samples exactly as it would there, and as `model.generate` would.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Iterator, Sequence


from playground.core import budget
from playground.core.stopping import start_thread
from playground.language.batcher import Continuation
from playground.language.results import BatchOutput, RowOutput
from playground.language.sampling import chain_of, end_token_ids
from playground.language.sampling_settings import SamplingSettings

if TYPE_CHECKING:  # the local backend calls these with itself
    from playground.language.local import LocalLanguageModel

# Stop strings are short, so the last few tokens of a row always contain one that just appeared.
_STOP_TAIL_TOKENS = 6


class _RowTracker:
    """Follows the rows as the batcher draws them: notes when each ends (end token or stop string), ends
    every row when asked to (a cancelled stream), and hands the text so far to a stream."""

    def __init__(self, lm: LocalLanguageModel, rows: int, stop_strings: Sequence[str],
                 cancel: threading.Event, snapshots: queue.Queue | None):
        self.tokenizer = lm.tokenizer
        self.stop_strings = tuple(stop_strings)
        self.end_ids = end_token_ids(lm)
        self.cancel = cancel
        self.snapshots = snapshots
        self.start = time.perf_counter()
        self.finished_at: list[int | None] = [None] * rows
        self.finished_seconds: list[float] = [0.0] * rows
        self.generated: list[list[int]] = [[] for _ in range(rows)]

    def row_done(self, tokens: list[int]) -> bool:
        """Called by the batcher after each token a row draws: True ends the row."""
        return self.cancel.is_set() or self._ends(tokens)

    def on_step(self, generated: list[list[int]]) -> None:
        self.generated = generated
        for row, tokens in enumerate(generated):
            if self.finished_at[row] is None and self._ends(tokens):
                self.finished_at[row] = len(tokens)
                self.finished_seconds[row] = time.perf_counter() - self.start
        if self.snapshots is not None:
            self.snapshots.put(self.snapshot(finished=False))

    def _ends(self, tokens: list[int]) -> bool:
        if tokens and tokens[-1] in self.end_ids:
            return True
        if not self.stop_strings:
            return False
        tail = self.tokenizer.decode(tokens[-_STOP_TAIL_TOKENS:], skip_special_tokens=True)
        return any(stop in tail for stop in self.stop_strings)

    def snapshot(self, finished: bool) -> BatchOutput:
        elapsed = time.perf_counter() - self.start
        rows = []
        for row, tokens in enumerate(self.generated):
            end = self.finished_at[row] or len(tokens)
            text = _cut_at_stop(self.tokenizer.decode(tokens[:end], skip_special_tokens=True), self.stop_strings)
            seconds = self.finished_seconds[row] if self.finished_at[row] else elapsed
            rows.append(RowOutput(text, int(end), seconds))
        return BatchOutput(tuple(rows), elapsed, finished)


def _cut_at_stop(text: str, stop_strings: Sequence[str]) -> str:
    cut = min((text.find(stop) for stop in stop_strings if stop in text), default=len(text))
    return text[:cut]


def _run(lm: LocalLanguageModel, prompts: Sequence[Sequence[int]], sampling: SamplingSettings, max_new_tokens: int,
         seed: int, stop_strings: Sequence[str], samples_per_prompt: int, tracker_args: dict) -> _RowTracker:
    """All rows as one request to the model's batcher: one chain and one seeded generator for the call, so it
    draws what `model.generate` draws after `torch.manual_seed(seed)`; other requests may share its passes."""
    settings = sampling.validated()
    rows = tuple(tuple(prompt) for prompt in prompts for _ in range(samples_per_prompt))
    tracker = _RowTracker(lm, len(rows), stop_strings, **tracker_args)
    lm.batcher.generate(Continuation(rows, chain_of(settings), settings.greedy, max_new_tokens, int(seed),
                                     frozenset(tracker.end_ids), tracker.row_done, tracker.on_step))
    return tracker


def batch_cost(prompts: Sequence[Sequence[int]], max_new_tokens: int, samples_per_prompt: int = 1) -> budget.Cost:
    """What one `generate_batch` or `stream_batch` call may run: the left-padded prompts once, then every
    row (prompts x samples) for up to `max_new_tokens` steps."""
    width = max(len(prompt) for prompt in prompts)
    return budget.generation(width, max_new_tokens, rows=len(prompts) * samples_per_prompt, prompt_rows=len(prompts))


def generate_batch(lm: LocalLanguageModel, prompts: Sequence[Sequence[int]], sampling: SamplingSettings,
                   max_new_tokens: int, seed: int = 0, stop_strings: Sequence[str] = (),
                   samples_per_prompt: int = 1) -> BatchOutput:
    """`samples_per_prompt` continuations of each prompt, rows grouped by prompt; seeded, so it repeats."""
    tracker_args = {"cancel": threading.Event(), "snapshots": None}
    tracker = _run(lm, prompts, sampling, max_new_tokens, seed, stop_strings, samples_per_prompt, tracker_args)
    return tracker.snapshot(finished=True)


def stream_batch(lm: LocalLanguageModel, prompts: Sequence[Sequence[int]], sampling: SamplingSettings,
                 max_new_tokens: int, seed: int = 0, stop_strings: Sequence[str] = (),
                 samples_per_prompt: int = 1) -> Iterator[BatchOutput]:
    """Like `generate_batch`, yielding the text so far as it grows; the last item has `finished=True`.
    Closing the iterator early (a cancelled request) stops the generation at its next step."""
    snapshots: queue.Queue = queue.Queue()
    cancel = threading.Event()
    failure: list[BaseException] = []
    done = object()

    def work() -> None:
        try:
            tracker = _run(lm, prompts, sampling, max_new_tokens, seed, stop_strings, samples_per_prompt,
                           {"cancel": cancel, "snapshots": snapshots})
            snapshots.put(tracker.snapshot(finished=True))
        except BaseException as error:  # re-raised in the caller's thread below
            failure.append(error)
        finally:
            snapshots.put(done)

    worker = start_thread(work, "generation")
    try:
        while True:
            item = snapshots.get()
            while item is not done and not snapshots.empty():  # skip to the newest when the reader lags
                newer = snapshots.get()
                if newer is done:
                    snapshots.put(done)
                    break
                item = newer
            if item is done:
                break
            yield item
    finally:
        cancel.set()
        worker.join()
    if failure:
        raise failure[0]
