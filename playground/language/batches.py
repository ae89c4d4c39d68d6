"""Several continuations in one `model.generate` call: left-padded prompts, stop strings, and per-row
token counts and finishing times, streamed or not.

Batching is what makes "accuracy on N problems" affordable: a GPU runs 16 short rows in about the
time of one. Sampling goes through `SamplingSettings.generate_kwargs`, the same knobs as the
sampling tab, so a seeded run here samples exactly as it would there.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Iterator, Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from playground.core import budget
from playground.core.stopping import StopWhenUnwanted, start_thread
from playground.language.results import BatchOutput, RowOutput
from playground.language.sampling import end_token_ids
from playground.language.sampling_settings import SamplingSettings
from playground.language.seeding import seed_sampling

if TYPE_CHECKING:  # the local backend calls these with itself
    from playground.language.local import LocalLanguageModel

# Stop strings are short, so the last few tokens of a row always contain one that just appeared.
_STOP_TAIL_TOKENS = 6


class _RowTracker(StoppingCriteria):
    """Called by `generate` after every step: notes when each row ends (end token or stop string),
    stops the whole call when asked to (a cancelled request), and hands the text so far to a stream."""

    def __init__(self, lm: LocalLanguageModel, prompt_width: int, stop_strings: Sequence[str],
                 cancel: threading.Event, snapshots: queue.Queue | None):
        self.tokenizer = lm.tokenizer
        self.prompt_width = prompt_width
        self.stop_strings = tuple(stop_strings)
        self.end_ids = end_token_ids(lm)
        self.cancel = cancel
        self.snapshots = snapshots
        self.start = time.perf_counter()
        self.finished_at: list[int | None] = []
        self.finished_seconds: list[float] = []
        self.generated: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        generated = input_ids[:, self.prompt_width:]
        self.generated = generated
        if not self.finished_at:
            self.finished_at = [None] * generated.shape[0]
            self.finished_seconds = [0.0] * generated.shape[0]
        step = generated.shape[1]
        for row, finished in enumerate(self.finished_at):
            if finished is None and self._ends(generated[row]):
                self.finished_at[row] = step
                self.finished_seconds[row] = time.perf_counter() - self.start
        if self.snapshots is not None:
            self.snapshots.put(self.snapshot(finished=False))
        done = [finished is not None or self.cancel.is_set() for finished in self.finished_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _ends(self, tokens: torch.Tensor) -> bool:
        if int(tokens[-1]) in self.end_ids:
            return True
        if not self.stop_strings:
            return False
        tail = self.tokenizer.decode(tokens[-_STOP_TAIL_TOKENS:], skip_special_tokens=True)
        return any(stop in tail for stop in self.stop_strings)

    def snapshot(self, finished: bool) -> BatchOutput:
        elapsed = time.perf_counter() - self.start
        if self.generated is None:
            return BatchOutput((), elapsed, finished)
        rows = []
        for row, tokens in enumerate(self.generated):
            end = self.finished_at[row] or tokens.shape[0]
            text = _cut_at_stop(self.tokenizer.decode(tokens[:end], skip_special_tokens=True), self.stop_strings)
            seconds = self.finished_seconds[row] if self.finished_at[row] else elapsed
            rows.append(RowOutput(text, int(end), seconds))
        return BatchOutput(tuple(rows), elapsed, finished)


def _cut_at_stop(text: str, stop_strings: Sequence[str]) -> str:
    cut = min((text.find(stop) for stop in stop_strings if stop in text), default=len(text))
    return text[:cut]


def left_padded(prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths as one tensor, padded on the left so every row ends where
    generation starts; the attention mask hides the padding."""
    width = max(len(prompt) for prompt in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


def _shared_prompts(lm: LocalLanguageModel, ids: torch.Tensor, mask: torch.Tensor, samples: int):
    """Each prompt run once, its cache (all tokens but the last) copied for its `samples` rows: what
    `num_return_sequences` would do, without running every prompt once per sample. Positions are
    counted as `generate` counts them, from the first real token of each left-padded row."""
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        cache = lm.model(ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1], use_cache=True,
                         logits_to_keep=1).past_key_values
    cache.batch_repeat_interleave(samples)
    return ids.repeat_interleave(samples, dim=0), mask.repeat_interleave(samples, dim=0), cache


def _run(lm: LocalLanguageModel, prompts: Sequence[Sequence[int]], sampling: SamplingSettings, max_new_tokens: int,
         seed: int, stop_strings: Sequence[str], samples_per_prompt: int, tracker_args: dict) -> _RowTracker:
    pad_id = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    ids, mask = left_padded(prompts, pad_id, lm.device)
    cache = None
    if samples_per_prompt > 1 and ids.shape[1] > 1:
        ids, mask, cache = _shared_prompts(lm, ids, mask, samples_per_prompt)
    tracker = _RowTracker(lm, ids.shape[1], stop_strings, **tracker_args)
    seed_sampling(seed)
    with torch.inference_mode():
        lm.model.generate(
            ids, attention_mask=mask, past_key_values=cache, max_new_tokens=max_new_tokens, pad_token_id=pad_id,
            stopping_criteria=StoppingCriteriaList([tracker, StopWhenUnwanted()]),
            **sampling.validated().generate_kwargs(),
        )
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
