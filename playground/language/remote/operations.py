"""What the language tabs compute, done by an OpenAI-compatible server instead of a local model.

A server returns log-probabilities for the top N tokens only (`logprobs`/`top_logprobs`), not the
whole vocabulary, so the next-token chain here is computed over those N; everything else (text,
label scores by `echo`, many samples) is exact. Requests that do not depend on each other (the
samples of a sweep, the votes of self-consistency) go to the server together: it batches them.
"""

from __future__ import annotations

import contextvars
import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterator, Sequence, TypeVar

import torch

from playground.core import checks
from playground.core.errors import PlaygroundError
from playground.core.stopping import check_wanted
from playground.language.remote.openai_api import Completion
from playground.language.results import Generation, LabelScores, ScoredRow, ScoredSamples, SweepColumn
from playground.language.sampling import TRANSFORMERS_ORDER, Stage, next_token_stages
from playground.language.sampling_settings import SamplingSettings

if TYPE_CHECKING:  # the backend calls these functions; they only read its fields
    from playground.language.remote.backend import RemoteLanguageModel

T = TypeVar("T")
PARALLEL_REQUESTS = 8  # per tab request; the server's own scheduler decides how many run at once
END_OF_TEXT = "the model chose an end-of-text token"


def _wanted_then(job: Callable[[], T]) -> T:
    check_wanted()  # a request nobody waits for sends no more requests to the server
    return job()


def parallel(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """Run independent requests at once and keep their order (the first failure is raised)."""
    if len(jobs) <= 1:
        return [_wanted_then(job) for job in jobs]
    contexts = [contextvars.copy_context() for _ in jobs]  # each job asks whether its request is still wanted
    with ThreadPoolExecutor(max_workers=min(len(jobs), PARALLEL_REQUESTS)) as pool:
        return list(pool.map(lambda context, job: context.run(_wanted_then, job), contexts, jobs))


def render_prompt(lm: RemoteLanguageModel, text: str, use_chat_template: bool) -> str:
    """The text the server reads: the prompt, or the prompt inside the model's chat template."""
    if use_chat_template:
        checks.chat_template(lm.tokenizer, lm.name)
        text = lm.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                add_generation_prompt=True)
    check_fits(lm, text, 1)
    return text


def check_fits(lm: RemoteLanguageModel, text: str, new_tokens: int) -> None:
    length = len(lm.tokenizer(text, add_special_tokens=False).input_ids)
    if length + new_tokens > lm.context_length:
        raise PlaygroundError(f"The prompt is {length:,} tokens and {new_tokens} new tokens are asked for; "
                              f"{lm.name} reads at most {lm.context_length:,}.")


# ---- the next token: the top N the server returns ------------------------------------------------

@dataclass(frozen=True)
class TopTokens:
    """The server's top-N next tokens, most likely first, with the model's own (raw) log-probabilities."""

    tokens: tuple[str, ...]
    logprobs: torch.Tensor  # (N,) float32

    @property
    def returned_mass(self) -> float:
        return float(self.logprobs.exp().sum().clamp(max=1.0))


def top_tokens(completion: Completion, position: int = 0) -> TopTokens:
    top = completion.top_logprobs[position] if len(completion.top_logprobs) > position else {}
    if not top:
        raise PlaygroundError("The server returned no log-probabilities; it must support `logprobs` on /v1/completions.")
    ranked = sorted(top.items(), key=lambda item: -item[1])
    return TopTokens(tuple(token for token, _ in ranked), torch.tensor([lp for _, lp in ranked], dtype=torch.float32))


def next_top_tokens(lm: RemoteLanguageModel, prompt: str) -> TopTokens:
    """One generated token with the top N alternatives (greedy, so nothing random is involved)."""
    return top_tokens(lm.complete(prompt, 1, logprobs=lm.top_logprobs))


def remote_stages(lm: RemoteLanguageModel, top: TopTokens, settings: SamplingSettings) -> list[Stage]:
    """The chain over the N returned tokens, in the server's order. The repetition penalty is left to
    the server: it needs the token ids of the whole text, which the API does not return."""
    without_penalty = replace(settings.validated(), repetition_penalty=1.0)
    no_history = torch.zeros((1, 0), dtype=torch.long)
    return next_token_stages(top.logprobs, no_history, without_penalty, lm.endpoint.kind.order or TRANSFORMERS_ORDER)


# ---- step by step -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RemoteStep:
    token: str
    probability: float  # the model's own probability of the token
    rank: int | None  # among the returned alternatives; None when it was not among them
    alternatives: tuple[tuple[str, float], ...]


@dataclass
class RemoteStepSession:
    """A prompt continued step by step on a server: each request continues the text so far."""

    identity: tuple
    prompt: str
    seed: int
    steps: list[RemoteStep] = field(default_factory=list)
    finished: str = ""

    @property
    def text(self) -> str:
        return "".join(step.token for step in self.steps)


ALTERNATIVES = 5


def advance_remote(lm: RemoteLanguageModel, session: RemoteStepSession, settings: SamplingSettings, tokens: int,
                   max_total: int) -> RemoteStepSession:
    """Up to `tokens` more tokens in one request, each with its top alternatives."""
    tokens = min(tokens, max_total - len(session.steps))
    if session.finished or tokens <= 0:
        session.finished = session.finished or f"reached this server's limit of {max_total} generated tokens"
        return session
    prompt = session.prompt + session.text
    check_fits(lm, prompt, tokens)
    # A new seed per request: the same seed again would draw from the same random stream.
    completion = lm.complete(prompt, tokens, settings, seed=session.seed + len(session.steps), logprobs=ALTERNATIVES)
    for position, token in enumerate(completion.tokens):
        top = completion.top_logprobs[position] if position < len(completion.top_logprobs) else {}
        ranked = sorted(top.items(), key=lambda item: -item[1])
        logprob = completion.token_logprobs[position] if position < len(completion.token_logprobs) else None
        rank = next((i for i, (candidate, _) in enumerate(ranked, start=1) if candidate == token), None)
        session.steps.append(RemoteStep(token, math.exp(logprob) if logprob is not None else float("nan"), rank,
                                        tuple((t, math.exp(lp)) for t, lp in ranked[:ALTERNATIVES])))
    if completion.finish_reason == "stop":
        session.finished = END_OF_TEXT
    elif len(session.steps) >= max_total:
        session.finished = f"reached this server's limit of {max_total} generated tokens"
    return session


# ---- whole continuations ---------------------------------------------------------------------------

def generate_text(lm: RemoteLanguageModel, prompt: str, sampling: SamplingSettings, max_new_tokens: int,
                  seed: int | None = 0, stop: tuple[str, ...] = ()) -> Generation:
    check_fits(lm, prompt, max_new_tokens)
    start = time.perf_counter()
    completion = lm.complete(prompt, max_new_tokens, sampling, seed=seed, stop=stop)
    return Generation(completion.text, completion.completion_tokens, time.perf_counter() - start)


def generate_many(lm: RemoteLanguageModel, prompts: Sequence[str], sampling: SamplingSettings, max_new_tokens: int,
                  samples: int, seed: int, stop: tuple[str, ...] = ()) -> list[Generation]:
    """`samples` continuations of each prompt (seeds seed, seed+1, ... so each sample differs and repeats)."""
    jobs = [lambda p=p, s=s: generate_text(lm, p, sampling, max_new_tokens, seed + s, stop)
            for p in prompts for s in range(samples)]
    return parallel(jobs)


def sample_scored(lm: RemoteLanguageModel, prompt: str, sampling: SamplingSettings, max_new_tokens: int,
                  samples: int, seed: int, extra: dict | None = None) -> ScoredSamples:
    """`samples` continuations (seeds seed, seed+1, ...) sent together, each with the log-probability the
    server reports for every token it drew (`logprobs`); `extra` adds fields (its structured output)."""
    check_fits(lm, prompt, max_new_tokens)
    start = time.perf_counter()
    jobs = [lambda s=s: lm.complete(prompt, max_new_tokens, sampling, seed=seed + s, logprobs=1, extra=extra)
            for s in range(samples)]
    rows = []
    for completion in parallel(jobs):
        log_probs = [lp for lp in completion.token_logprobs if lp is not None]
        tokens = completion.completion_tokens or len(completion.tokens)
        rows.append(ScoredRow(completion.text, tokens, float(sum(log_probs)), completion.finish_reason == "stop"))
    return ScoredSamples(tuple(rows), time.perf_counter() - start, max((r.tokens for r in rows), default=0), None)


@dataclass(frozen=True)
class StreamSnapshot:
    texts: tuple[str, ...]  # one per (prompt, sample), in the order `generate_many` returns them
    finished: bool
    seconds: float


def stream_many(lm: RemoteLanguageModel, prompts: Sequence[str], sampling: SamplingSettings, max_new_tokens: int,
                samples: int, seed: int, stop: tuple[str, ...] = ()) -> Iterator[StreamSnapshot]:
    """`generate_many`, streamed: every continuation is requested at once and the texts so far are
    yielded as pieces arrive (at most one snapshot per piece), then once more when all are done."""
    for prompt in prompts:
        check_fits(lm, prompt, max_new_tokens)
    jobs = [(prompt, seed + s) for prompt in prompts for s in range(samples)]
    texts = [""] * len(jobs)
    pieces: queue.Queue = queue.Queue()
    abandoned = threading.Event()  # the reader stopped (cancelled or failed): close the other streams too
    start = time.perf_counter()

    def run(index: int, prompt: str, job_seed: int) -> None:
        try:
            for piece in lm.stream_text(prompt, max_new_tokens, sampling, seed=job_seed, stop=stop):
                if abandoned.is_set():
                    return  # leaving the loop closes the HTTP stream, which tells the server to stop
                pieces.put((index, piece))
            pieces.put((index, None))
        except Exception as error:  # handed to the reader, which raises it in the request's thread
            pieces.put((index, error))

    with ThreadPoolExecutor(max_workers=min(len(jobs), PARALLEL_REQUESTS)) as pool:
        try:
            for index, (prompt, job_seed) in enumerate(jobs):
                pool.submit(run, index, prompt, job_seed)
            running = len(jobs)
            while running:
                index, piece = pieces.get()
                if isinstance(piece, Exception):
                    raise piece
                if piece is None:
                    running -= 1
                    continue
                texts[index] += piece
                yield StreamSnapshot(tuple(texts), False, time.perf_counter() - start)
        finally:
            abandoned.set()
    yield StreamSnapshot(tuple(texts), True, time.perf_counter() - start)


def remote_temperature_sweep(lm: RemoteLanguageModel, prompt: str, base: SamplingSettings, temperatures: list[float],
                             samples: int, max_new_tokens: int, seed: int) -> list[SweepColumn]:
    """One column per temperature, all requests sent together; one sample when greedy (they would agree)."""
    counts = [1 if t == 0 else samples for t in temperatures]
    jobs = [lambda t=t, s=s: generate_text(lm, prompt, replace(base, temperature=t), max_new_tokens, seed + s).text
            for t, count in zip(temperatures, counts) for s in range(count)]
    texts = iter(parallel(jobs))
    return [SweepColumn(t, tuple([next(texts) for _ in range(count)] * (samples // count)), None)
            for t, count in zip(temperatures, counts)]


# ---- scoring given continuations (few-shot labels) -------------------------------------------------

def top_n_label_scores(lm: RemoteLanguageModel, prompt: str, labels_ids: Sequence[Sequence[int]]) -> LabelScores:
    """Sum of log p(label tokens | prompt) for every label, token by token from the server's top N.

    Each token's log-probability is read from the next-token top N after the prompt and the label's
    earlier tokens (labels sharing a beginning share the request). A token outside the top N gets the
    N-th one's log-probability, an upper bound: such a label is unlikely either way. Prompt echo would
    score in one request, but llama-cpp-python 0.3.36 echoes each token's log-probability from the
    wrong position (one off, measured against transformers), so the top-N walk is used on every server.
    """
    pieces = [[lm.tokenizer.decode([token]) for token in ids] for ids in labels_ids]
    prefixes = sorted({"".join(label[:j]) for label in pieces for j in range(len(label))})
    tops = dict(zip(prefixes, parallel([lambda p=p: next_top_tokens(lm, prompt + p) for p in prefixes])))
    scores, bounded = [], []
    for label in pieces:
        total, outside = 0.0, False
        for j, piece in enumerate(label):
            top = tops["".join(label[:j])]
            found = [lp for token, lp in zip(top.tokens, top.logprobs.tolist()) if token == piece]
            total += found[0] if found else float(top.logprobs[-1])
            outside = outside or not found
        scores.append(total)
        bounded.append(outside)
    return LabelScores(torch.tensor(scores, dtype=torch.float64), tuple(bounded))
