"""One local language model, many people at once: their requests run together in padded batches.

A room of thirty students clicking "show the next token" asks one model thirty small questions. One at a
time, each waits for all the others; together, they are one forward pass that costs a GPU about what one
costs. The batcher collects what arrives within a short window (`Limits.batch_window_ms`), runs it as one
left-padded pass, and hands each request its own rows back.

- **Forward jobs** (next-token logits, which also score labels one token long): one padded pass per batch;
  a request reads the last position of its row.
- **Generation jobs**: one step loop for the batch; every request keeps its own knobs (its processor chain
  runs on its rows only), its own `torch.Generator` (seeded per request: nothing touches torch's global
  seed, so neither batching nor concurrency can change what a student gets) and its own stop rule.
- **Exclusive jobs**: work that keeps its own KV cache between calls or searches (step-by-step sessions,
  beam search, labels longer than a token packed after their prompt's cache) cannot share a pass; it runs alone, in turn with the batches.

A request's result does not depend on the batch it ran in: left padding is masked and positions are counted
from each row's first real token, so its probabilities equal those it gets alone to float rounding (tested
to 1e-5), and its seeded tokens are the same.

There is no background thread: the first waiting request runs batches (its own and whoever else's is
waiting) until its own is done, then the next waiting one takes over. Memory stays bounded: a batch holds at
most `max_batch_rows` rows and `max_batch_tokens` padded tokens; what does not fit waits for the next batch (a single request larger than that runs alone: its size was priced by
`playground.core.budget` before it got here).
"""

from __future__ import annotations

import contextvars
import inspect
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from transformers import LogitsProcessor

from playground.core.settings import Limits
from playground.core.stopping import Stopped, still_wanted


def left_padded(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device | str
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of different lengths as one tensor padded on the left (so every row ends where the next token
    goes), its attention mask, and position ids counted from each row's first real token (as if alone)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, width - len(row):] = torch.as_tensor(list(row), dtype=torch.long)
        mask[index, width - len(row):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


@dataclass
class _Job:
    rows: list[list[int]]  # token ids of each row this job runs
    result: Future = field(default_factory=Future)
    # The submitting request's context: whoever runs the batch asks it whether the request is still wanted.
    context: contextvars.Context | None = None

    @property
    def width(self) -> int:
        return max(len(row) for row in self.rows)

    def unwanted(self) -> bool:
        return self.context is not None and not self.context.run(still_wanted)


@dataclass
class _Forward(_Job):
    """The logits for the token after its one row."""


@dataclass(frozen=True)
class Continuation:
    """One request's generation: its rows (prompts, each repeated for its samples), knobs, seed and stop rule.

    Its rows are drawn together, as one `model.generate` call would draw them: its chain sees its own rows
    left-padded to its own longest (as `generate` sees a padded batch), one multinomial per step over its
    rows with its own generator. So it gets the same tokens in any batch, and alone the tokens `generate`
    gives after `torch.manual_seed(seed)`."""

    rows: tuple[tuple[int, ...], ...]
    processors: tuple[LogitsProcessor, ...] = ()  # its chain, in order (all knobs "off" = plain softmax)
    greedy: bool = False
    max_new_tokens: int = 1
    seed: int = 0
    end_ids: frozenset[int] = frozenset()
    row_done: Callable[[list[int]], bool] | None = None  # e.g. a stop string appeared in the row's new tokens
    on_step: Callable[[list[list[int]]], None] | None = None  # every row's new tokens so far (streaming)


@dataclass
class _Generate(_Job):
    request: Continuation | None = None
    generator: torch.Generator | None = None
    history: torch.Tensor | None = None  # its rows left-padded to its own width, then the new tokens
    new: list[list[int]] = field(default_factory=list)
    unfinished: list[bool] = field(default_factory=list)

    @property
    def max_new_tokens(self) -> int:
        return self.request.max_new_tokens


@dataclass
class _Exclusive(_Job):
    work: Callable[[], Any] | None = None


@dataclass
class BatchStats:
    """What ran, for tests and benches: batches and the rows they held."""

    batches: int = 0
    rows: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)
    padded_tokens: list[int] = field(default_factory=list)  # rows x width of each pass's input
    model_seconds: float = 0.0  # time inside the runner's passes: the rest of a request's wall time is the app's

    def note(self, rows: int, width: int = 1) -> None:
        self.batches += 1
        self.rows += rows
        self.largest = max(self.largest, rows)
        self.sizes.append(rows)
        self.padded_tokens.append(rows * width)


class Batcher:
    """Runs one model for every request: forward and generation jobs batched, exclusive jobs alone."""

    def __init__(self, model: torch.nn.Module, pad_id: int, limits: Limits):
        self.model = model
        self.pad_id = pad_id
        self.window_s = limits.batch_window_ms / 1000
        self.max_rows = max(1, limits.max_batch_rows)
        self.max_tokens = max(1, limits.max_batch_tokens)
        self.stats = BatchStats()
        self._pending: list[_Job] = []
        self._changed = threading.Condition()
        self._busy = False  # someone is running batches on the model
        self._last_batch = -float("inf")  # when the last batch ended (time.monotonic)
        parameters = inspect.signature(model.forward).parameters
        self._keeps_logits = "logits_to_keep" in parameters

    @property
    def busy(self) -> bool:
        """Whether the model is running someone's batch or turn now."""
        return self._busy

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---- what callers use

    def next_token_logits(self, ids: Sequence[int]) -> torch.Tensor:
        """(1, vocab) float32 logits for the token after `ids`, computed in a pass shared with others."""
        return self._submit(_Forward([list(ids)]))

    def generate(self, request: Continuation) -> list[list[int]]:
        """Each row's new token ids (up to and including its end token), drawn with the request's own
        generator: the same tokens whatever else runs beside it (see `Continuation`)."""
        return self.generate_all([request])[0]

    def generate_all(self, requests: Sequence[Continuation]) -> list[list[list[int]]]:
        """Several continuations at once (a sweep's columns): each keeps its own knobs and seed."""
        device = self.device
        jobs = [_Generate([list(row) for row in request.rows], request=request,
                          generator=torch.Generator(device=device).manual_seed(int(request.seed)))
                for request in requests]
        return self._submit_many(jobs)

    def exclusive(self, work: Callable[[], Any]) -> Any:
        """Run `work` with the model to itself, in turn with the batches (for work that cannot share a pass)."""
        return self._submit(_Exclusive([[0]], work=work))

    # ---- taking turns

    def _submit(self, job: _Job) -> Any:
        return self._submit_many([job])[0]

    def _submit_many(self, jobs: list[_Job]) -> list[Any]:
        context = contextvars.copy_context()  # the batch may run on another request's thread
        for job in jobs:
            job.context = context
        with self._changed:
            self._pending.extend(jobs)
            self._changed.notify_all()
            if not self._wait_for_turn(lambda: all(job.result.done() for job in jobs)):
                return [job.result.result() for job in jobs]
        try:
            self._lead(jobs)
        finally:
            self._release()
        return [job.result.result() for job in jobs]

    def _wait_for_turn(self, done: Callable[[], bool]) -> bool:
        """Wait (lock held) until `done()` or the model is free; True when this caller now has the model."""
        while not done():
            if not self._busy:
                self._busy = True
                return True
            self._changed.wait()
        return False

    def _release(self) -> None:
        with self._changed:
            self._busy = False
            self._changed.notify_all()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Have the model to oneself for a block (work that streams, or holds a KV cache between passes):
        batches wait until it ends. Not tied to a thread, so a generator may hold it across yields."""
        with self._changed:
            self._wait_for_turn(lambda: False)
        try:
            yield
        finally:
            self._release()

    def _lead(self, own: list[_Job]) -> None:
        """Run batches (anyone's, oldest first) until this caller's own jobs are done."""
        first = True
        while not all(job.result.done() for job in own):
            if first and self.window_s > 0:
                with self._changed:
                    room = sum(len(job.rows) for job in self._pending) < self.max_rows
                # With others about (a batch ran within the last second), wait for those who clicked at the
                # same moment to join; a request to an idle model runs at once and pays no window.
                if room and time.monotonic() - self._last_batch < 1.0:
                    time.sleep(self.window_s)
            first = False
            with self._changed:
                batch = self._take()
            if batch:
                self._run(batch)
                self._last_batch = time.monotonic()
                with self._changed:
                    self._changed.notify_all()

    def _take(self, kind: type | None = None) -> list[_Job]:
        """The oldest pending job and those of its kind that fit beside it (the caller holds the lock)."""
        pending = [job for job in self._pending if kind is None or isinstance(job, kind)]
        if not pending:
            return []
        kind = type(pending[0])
        batch = [pending[0]]
        if kind is not _Exclusive:
            for job in pending[1:]:
                if isinstance(job, kind) and self._fits(batch + [job]):
                    batch.append(job)
        for job in batch:
            self._pending.remove(job)
        return batch

    def _fits(self, batch: list[_Job]) -> bool:
        rows = sum(len(job.rows) for job in batch)
        width = max(job.width for job in batch)
        if isinstance(batch[0], _Generate):
            width += max(job.max_new_tokens for job in batch)  # the KV cache grows to this
        return rows <= self.max_rows and rows * width <= self.max_tokens

    def _run(self, batch: list[_Job]) -> None:
        live = []
        for job in batch:
            if job.unwanted():
                job.result.set_exception(Stopped("Stopped: this request was cancelled or its page was closed."))
            else:
                live.append(job)
        if not live:
            return
        try:
            self._dispatch(live)
        except Exception as error:
            if len(live) == 1:
                if not live[0].result.done():
                    live[0].result.set_exception(error)
                return
            for job in live:  # one request's failure (its own memory, its stop) must not fail the others
                if not job.result.done():
                    self._run([job])

    def _dispatch(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            if isinstance(batch[0], _Exclusive):
                self.stats.note(1)
                job = batch[0]  # run in its request's context, so its loops ask its own "still wanted?"
                job.result.set_result(job.context.run(job.work) if job.context is not None else job.work())
            elif isinstance(batch[0], _Forward):
                self._forward(batch)
            else:
                self._generate(batch)
        finally:
            self.stats.model_seconds += time.perf_counter() - started

    # ---- the model's passes

    def _forward(self, batch: list[_Forward]) -> None:
        ids, mask, positions = left_padded([job.rows[0] for job in batch], self.pad_id, self.device)
        self.stats.note(*ids.shape)
        extra = {"logits_to_keep": 1} if self._keeps_logits else {}
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                                **extra).logits[:, -1:].float()
        for row, job in enumerate(batch):
            job.result.set_result(logits[row].clone())

    def _generate(self, batch: list[_Generate]) -> None:
        """One step loop for every request of the batch; each draws from its own rows with its own chain and
        generator, exactly as `model.generate` draws for a batch of its rows alone."""
        rows = [tuple(row) for job in batch for row in job.rows]
        for job in batch:
            job.new = [[] for _ in job.rows]
            job.unfinished = [True] * len(job.rows)
            job.history = left_padded(job.rows, self.pad_id, self.device)[0]
        extra = {"logits_to_keep": 1} if self._keeps_logits else {}
        distinct = list(dict.fromkeys(rows))  # samples (and students) sharing a prompt run it once
        ids, mask, positions = left_padded(distinct, self.pad_id, self.device)
        self.stats.note(len(rows), ids.shape[1])
        with torch.inference_mode():
            output = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **extra)
            cache, logits = output.past_key_values, output.logits[:, -1].float()
            if len(distinct) < len(rows):
                where = {row: index for index, row in enumerate(distinct)}
                copies = torch.tensor([where[row] for row in rows], device=self.device)
                cache.batch_select_indices(copies)
                logits, mask = logits[copies], mask[copies]
            active = list(batch)
            while True:
                drawn, start = [], 0
                for job in active:
                    drawn.append(self._draw(job, logits[start:start + len(job.rows)]))
                    start += len(job.rows)
                done = [self._finished(job) for job in active]
                if any(done):
                    kept, start = [], 0
                    for job, finished in zip(active, done):
                        if finished and not job.result.done():
                            job.result.set_result(job.new)
                        elif not finished:
                            kept.extend(range(start, start + len(job.rows)))
                        start += len(job.rows)
                    drawn = [tokens for tokens, finished in zip(drawn, done) if not finished]
                    active = [job for job, finished in zip(active, done) if not finished]
                    if not active:
                        return
                    index = torch.tensor(kept, device=self.device)
                    cache.batch_select_indices(index)
                    mask = mask[index]
                self._serve_waiting_forwards()
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                output = self.model(input_ids=torch.cat(drawn).unsqueeze(1), attention_mask=mask,
                                    position_ids=mask.sum(-1, keepdim=True) - 1, past_key_values=cache,
                                    use_cache=True, **extra)
                cache, logits = output.past_key_values, output.logits[:, -1].float()

    def _draw(self, job: _Generate, logits: torch.Tensor) -> torch.Tensor:
        """This job's next tokens: its chain over its rows, then argmax or one multinomial with its generator;
        finished rows get the pad token, as `generate` gives them."""
        request = job.request
        scores = logits
        for processor in request.processors:
            scores = processor(job.history, scores)
        if request.greedy:
            tokens = torch.argmax(scores, dim=-1)
        else:
            probs = torch.softmax(scores, dim=-1)
            tokens = torch.multinomial(probs, num_samples=1, generator=job.generator).squeeze(1)
        for row, token in enumerate(tokens.tolist()):
            if not job.unfinished[row]:
                tokens[row] = self.pad_id
                continue
            job.new[row].append(token)
            if token in request.end_ids or (request.row_done is not None and request.row_done(job.new[row])):
                job.unfinished[row] = False
        job.history = torch.cat([job.history, tokens[:, None]], dim=1)
        if request.on_step is not None:
            request.on_step([list(new) for new in job.new])
        return tokens

    def _finished(self, job: _Generate) -> bool:
        if job.unwanted():
            job.result.set_exception(Stopped("Stopped: this request was cancelled or its page was closed."))
            return True
        return not any(job.unfinished) or max(len(new) for new in job.new) >= job.max_new_tokens

    def _serve_waiting_forwards(self) -> None:
        """Between generation steps, answer the next-token and scoring requests that came meanwhile: a
        long generation never makes a next-token request wait for more than one step."""
        with self._changed:
            batch = self._take(_Forward)
        if batch:
            self._run(batch)
            with self._changed:
                self._changed.notify_all()

