"""The batcher: a request's result in a batch equals its result alone, seeds are per request, memory is bounded."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from playground.core.settings import Limits
from playground.language.batcher import Batcher, BatchStats, Continuation, left_padded
from playground.language.label_scoring import label_log_likelihoods
from playground.language.sampling_settings import SamplingSettings
from playground.language.sampling import processor_chain

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
PROMPTS = ["The capital of France is", "Once upon a time", "1, 2, 3,", "The best way to learn a new language is to",
           "Hello", "def fibonacci(n):"]


@pytest.fixture(scope="module", params=["tiny", "smollm2"])
def lm(request, service):
    name = service.registry.default("language") if request.param == "tiny" else SMOLLM2
    return service.load("language", name)


def batcher_for(lm, **limits) -> Batcher:
    """A batcher with a wide window, so that the threads below surely meet in one batch; it has just served a
    request (a model with traffic: an idle one serves the first request at once, without a window)."""
    batcher = Batcher(lm.model, lm.tokenizer.pad_token_id, dataclasses.replace(Limits(batch_window_ms=200), **limits))
    batcher.next_token_logits(ids_of(lm, "Hi"))
    batcher.stats = BatchStats()
    return batcher


def together(calls):
    """Run the calls on threads that start at once; their results in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def ids_of(lm, text: str) -> list[int]:
    return lm.tokenizer(text).input_ids


def test_next_token_in_a_batch_equals_alone(lm):
    alone = {}
    for text in PROMPTS:
        with torch.inference_mode():
            logits = lm.model(torch.tensor([ids_of(lm, text)]), use_cache=False).logits[0, -1].float()
        alone[text] = torch.softmax(logits, -1)
    batcher = batcher_for(lm)
    batched = together([lambda t=t: batcher.next_token_logits(ids_of(lm, t)) for t in PROMPTS])
    assert batcher.stats.largest == len(PROMPTS), batcher.stats.sizes  # one padded pass for all of them
    for text, logits in zip(PROMPTS, batched):
        torch.testing.assert_close(torch.softmax(logits[0], -1), alone[text], atol=1e-5, rtol=0)


def test_label_scores_in_a_batch_equal_scoring_alone(lm):
    labels = [ids_of(lm, word)[-2:] for word in (" positive", " negative", " neutral and calm")]
    prompts = PROMPTS[:3]
    batcher = batcher_for(lm)
    batched = together([lambda p=p: batcher.label_log_likelihoods(ids_of(lm, p), labels) for p in prompts])
    assert batcher.stats.largest > 3  # labels of several requests shared a pass
    for prompt, scores in zip(prompts, batched):
        alone = label_log_likelihoods(lm, torch.tensor([ids_of(lm, prompt)]), labels)
        torch.testing.assert_close(scores.exp(), alone.exp(), atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.softmax(scores, 0), torch.softmax(alone, 0), atol=1e-5, rtol=0)


REQUESTS = [  # (prompt, knobs, seed, samples): each student's own
    ("Once upon a time", SamplingSettings(1.0), 0, 3),
    ("The capital of France is", SamplingSettings(0.7, top_k=40), 1, 1),
    ("Hello", SamplingSettings(0.0), 5, 1),
    ("1, 2, 3,", SamplingSettings(1.3, top_p=0.9, repetition_penalty=1.2), 7, 2),
    ("Once upon a time", SamplingSettings(1.0, min_p=0.05), 0, 2),
]


def generate_with(batcher: Batcher, lm, prompt: str, knobs: SamplingSettings, seed: int, samples: int, tokens: int = 8):
    processors = tuple(p for _, _, p in processor_chain(knobs) if p is not None)
    rows = (tuple(ids_of(lm, prompt)),) * samples
    return batcher.generate(Continuation(rows, processors, knobs.greedy, tokens, seed,
                                         frozenset([lm.tokenizer.eos_token_id])))


def test_seeded_generation_in_a_batch_equals_alone_and_leaves_the_global_seed_alone(lm):
    alone = [generate_with(batcher_for(lm, batch_window_ms=0), lm, *request) for request in REQUESTS]
    torch.manual_seed(1234)
    global_state = torch.random.get_rng_state()
    batcher = batcher_for(lm)
    batched = together([lambda r=r: generate_with(batcher, lm, *r) for r in REQUESTS])
    assert batcher.stats.largest == sum(samples for *_, samples in REQUESTS), batcher.stats.sizes
    assert batched == alone
    assert torch.equal(torch.random.get_rng_state(), global_state)  # per-request generators only
    assert all(len(rows) == samples for rows, (*_, samples) in zip(batched, REQUESTS))


def test_a_seeded_request_alone_draws_what_generate_draws(service):
    """Several prompts of different lengths and samples each, left-padded as `generate` pads them."""
    lm = service.load("language", service.registry.default("language"))
    _, knobs, seed, _ = REQUESTS[3]
    rows = [tuple(ids_of(lm, text)) for text in ("1, 2, 3,", "The capital of France is") for _ in range(2)]
    ids, mask, _ = left_padded(rows, lm.tokenizer.pad_token_id, lm.device)
    torch.manual_seed(seed)
    with torch.inference_mode():
        reference = lm.model.generate(ids, attention_mask=mask, max_new_tokens=8,
                                      pad_token_id=lm.tokenizer.pad_token_id, **knobs.validated().generate_kwargs())
    processors = tuple(p for _, _, p in processor_chain(knobs) if p is not None)
    ours = batcher_for(lm, batch_window_ms=0).generate(Continuation(tuple(rows), processors, False, 8, seed))
    assert ours == [row[ids.shape[1]:].tolist() for row in reference]


def test_a_batch_that_would_not_fit_splits_and_results_do_not_change(lm):
    texts = PROMPTS * 2
    wide = batcher_for(lm)
    reference = together([lambda t=t: wide.next_token_logits(ids_of(lm, t)) for t in texts])
    longest = max(len(ids_of(lm, t)) for t in texts)
    narrow = batcher_for(lm, max_batch_tokens=3 * longest, max_batch_rows=5)
    split = together([lambda t=t: narrow.next_token_logits(ids_of(lm, t)) for t in texts])
    assert narrow.stats.rows == len(texts) and narrow.stats.batches >= 3
    assert narrow.stats.largest <= 5 and max(narrow.stats.padded_tokens) <= 3 * longest
    for a, b in zip(reference, split):
        torch.testing.assert_close(torch.softmax(a, -1), torch.softmax(b, -1), atol=1e-5, rtol=0)


def test_next_token_requests_are_answered_between_the_steps_of_a_long_generation(service):
    lm = service.load("language", service.registry.default("language"))
    batcher = batcher_for(lm, batch_window_ms=0)
    started = threading.Event()
    order: list[str] = []

    def long_generation():
        def on_step(new):
            started.set()
        generate_with_steps = batcher.generate(Continuation((tuple(ids_of(lm, "Hello")),), greedy=True,
                                                            max_new_tokens=200, on_step=on_step))
        order.append("generation")
        return generate_with_steps

    worker = threading.Thread(target=long_generation)
    worker.start()
    started.wait(30)
    batcher.next_token_logits(ids_of(lm, "The capital of France is"))
    order.append("next token")
    worker.join()
    assert order == ["next token", "generation"]


def test_a_turn_keeps_batches_off_the_model_until_it_ends(service):
    lm = service.load("language", service.registry.default("language"))
    batcher = batcher_for(lm, batch_window_ms=0)
    answered = threading.Event()
    with batcher.turn():
        waiting = threading.Thread(target=lambda: (batcher.next_token_logits(ids_of(lm, "Hello")), answered.set()))
        waiting.start()
        assert not answered.wait(0.5)  # a streaming sweep holds the model: the next token waits its turn
    waiting.join(30)
    assert answered.is_set()
