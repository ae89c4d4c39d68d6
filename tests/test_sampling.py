"""The sampling math: the chain shown equals what `model.generate` samples from, greedy is the exact
limit of temperature 0, step generation repeats seeded `generate` through the KV cache, and the
sweep and beam comparison measure what they claim. Tiny random model for most, real SmolLM2 where
real language matters."""

from __future__ import annotations

import copy
import math
import random
import re

import pytest
import torch
from transformers import LogitsProcessorList

from playground.core.errors import PlaygroundError
from playground.language.sampling_settings import SamplingSettings
from playground.language.generation import encode_prompt
from playground.language.sampling import draw_token, next_token_distribution, next_token_stages, tail_points
from playground.language.step_sessions import StepSessionStore
from playground.language.steps import advance, start_session
from playground.language.sweep import compare_search, continuation_log_prob, parse_temperatures, temperature_sweep
from playground.language.token_text import readable_token
from playground.views.sampling import next_token_view, search_view, steps_view, sweep_view

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"


@pytest.fixture(scope="module")
def tiny(service):
    return service.load("language", service.registry.default("language"))


@pytest.fixture(scope="module")
def smollm2(service):
    return service.load("language", SMOLLM2)


def random_settings(rng: random.Random) -> SamplingSettings:
    return SamplingSettings(
        temperature=rng.choice([0.0, 1.0, 1e-6, rng.uniform(0.05, 3.0)]),
        top_k=rng.choice([0, 1, 5, 50, 10**6]),
        top_p=rng.choice([1.0, rng.uniform(0.05, 0.99)]),
        min_p=rng.choice([0.0, rng.uniform(0.0, 0.5)]),
        repetition_penalty=rng.choice([1.0, rng.uniform(0.5, 2.0)]),
    )


def processors_generate_builds(lm, monkeypatch, prompt_ids, settings) -> LogitsProcessorList:
    """The processor list `model.generate` itself builds for these settings (captured from a real call)."""
    captured = []
    original = lm.model._get_logits_processor

    def spy(*args, **kwargs):
        captured.append(original(*args, **kwargs))
        return captured[-1]

    monkeypatch.setattr(lm.model, "_get_logits_processor", spy)
    with torch.inference_mode():
        lm.model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=1,
                          pad_token_id=lm.tokenizer.pad_token_id, **settings.generate_kwargs())
    return captured[-1]


def test_chain_equals_the_processors_generate_uses_on_random_settings(tiny, monkeypatch):
    # A model whose own generation config has other defaults (as Qwen's does): the knobs must override them.
    config = copy.deepcopy(tiny.model.generation_config)
    config.update(do_sample=True, temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.05)
    monkeypatch.setattr(tiny.model, "generation_config", config)
    rng = random.Random(0)
    prompt_ids = torch.tensor([[5, 17, 17, 300, 5, 9]])
    vocab = tiny.model.config.vocab_size
    for trial in range(24):
        settings = random_settings(rng).validated()
        processors = processors_generate_builds(tiny, monkeypatch, prompt_ids, settings)
        # Peaked and flat logits, with ties, so every knob has something to cut.
        torch.manual_seed(trial)
        logits = torch.randn(1, vocab) * rng.choice([0.5, 3.0, 12.0])
        logits[0, 17] = logits[0, 300] = logits.max() + 1
        stages = next_token_stages(logits, prompt_ids, settings)
        expected = processors(prompt_ids, logits.clone())
        if settings.greedy:
            assert stages[-1].probs.nonzero().flatten().tolist() == [int(torch.argmax(expected))]
        else:
            assert torch.equal(stages[-1].scores, expected), settings
            assert torch.allclose(stages[-1].probs, torch.softmax(expected[0], -1)), settings
        assert torch.isfinite(stages[-1].probs).all() and stages[-1].probs.sum() == pytest.approx(1, abs=1e-5)


def test_each_stage_reports_what_its_knob_removed(tiny):
    torch.manual_seed(1)
    logits = torch.randn(tiny.model.config.vocab_size) * 4
    stages = next_token_stages(logits, torch.tensor([[1]]), SamplingSettings(0.8, 50, 0.9, 0.1, 1.0))
    names = [stage.name for stage in stages]
    assert names == ["raw", "repetition penalty", "temperature", "top-k", "top-p", "min-p"]
    top_k, top_p = stages[3], stages[4]
    assert top_k.survivors == 50 and top_k.removed_count == logits.numel() - 50
    removed = stages[2].kept & ~top_k.kept
    assert top_k.removed_mass == pytest.approx(float(stages[2].probs[removed].sum()))
    assert top_p.survivors < 50 and float(top_p.probs.sum()) == pytest.approx(1, abs=1e-5)
    # What top-p keeps is the smallest set reaching 0.9 of the mass before it.
    kept_before = torch.sort(top_k.probs[top_p.kept], descending=True).values
    assert float(kept_before.sum()) >= 0.9 and float(kept_before[:-1].sum()) < 0.9
    assert stages[1].active is False and stages[1].probs is stages[0].probs  # penalty 1 is off
    assert stages[2].entropy_bits < stages[0].entropy_bits  # cooler is more certain


def test_temperature_zero_is_the_exact_limit_and_tiny_temperatures_stay_finite(tiny):
    logits = torch.tensor([1.0, 3.0, 3.0, -2.0, 0.5])
    greedy = next_token_stages(logits, torch.tensor([[0]]), SamplingSettings(temperature=0))
    assert greedy[-1].probs.tolist() == [0, 1, 0, 0, 0]  # ties go to the first, as torch.argmax and generate do
    assert draw_token(greedy) == 1
    untied = torch.tensor([1.0, 3.0, 2.99, -2.0, 0.5])
    for temperature in (1e-4, 1e-6, 1e-8):
        probs = next_token_stages(untied, torch.tensor([[0]]), SamplingSettings(temperature=temperature))[-1].probs
        assert torch.isfinite(probs).all() and probs.tolist() == pytest.approx([0, 1, 0, 0, 0], abs=1e-6)
    with pytest.raises(PlaygroundError, match="too close to 0"):
        SamplingSettings(temperature=1e-30).validated()


@pytest.mark.parametrize("knobs, message", [
    ({"temperature": float("nan")}, "temperature"), ({"temperature": -1}, "temperature"),
    ({"top_k": -3}, "top-k"), ({"top_k": 2.5}, "whole number"), ({"top_p": 0}, "top-p"),
    ({"min_p": 1.5}, "min-p"), ({"repetition_penalty": float("inf")}, "repetition penalty"),
    ({"temperature": "hot"}, "must be a number"),
])
def test_nonsense_knobs_get_a_clear_message(knobs, message):
    with pytest.raises(PlaygroundError, match=message):
        SamplingSettings(**knobs).validated()


def test_whole_number_knobs_from_the_ui_become_the_types_transformers_needs(tiny):
    settings = SamplingSettings(temperature=2, top_k=5.0).validated()
    assert type(settings.temperature) is float and type(settings.top_k) is int
    assert next_token_stages(torch.randn(64), torch.tensor([[0]]), settings)[-1].survivors == 5


def test_repetition_penalty_reads_the_prompt(tiny):
    logits = torch.zeros(10)
    logits[3] = 2.0
    stages = next_token_stages(logits, torch.tensor([[3, 3, 4]]), SamplingSettings(repetition_penalty=2.0))
    penalised = stages[1].scores[0]
    assert penalised[3] == 1.0 and penalised[4] == 0.0 and penalised[5] == 0.0  # positive / 2, zero stays zero


def test_tail_points_end_where_the_knob_cut():
    probs = torch.softmax(torch.randn(5000), -1)
    ranks = [rank for rank, _ in tail_points(probs)]
    assert ranks[0] == 1 and ranks[-1] == 5000 and ranks == sorted(ranks)
    cut = probs.clone()
    cut[torch.argsort(cut)[:4900]] = 0
    assert max(rank for rank, _ in tail_points(cut / cut.sum())) <= 100


def test_step_generation_repeats_seeded_generate_and_feeds_one_token_per_step(tiny, monkeypatch):
    prompt_ids = encode_prompt(tiny, "Once upon a time", False)
    settings = SamplingSettings(0.9, 40, 0.95, 0.02, 1.3)
    torch.manual_seed(7)
    with torch.inference_mode():
        expected = tiny.model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=12,
                                       pad_token_id=tiny.tokenizer.pad_token_id, **settings.generate_kwargs())
    fed = []
    forward = tiny.model.forward
    monkeypatch.setattr(tiny.model, "forward", lambda *a, **k: fed.append(k["input_ids"].shape[1]) or forward(*a, **k))
    session = start_session(("tiny",), prompt_ids, seed=7)
    advance(tiny, session, settings, 5, max_total=100)
    advance(tiny, session, settings, 7, max_total=100)  # continuing later draws what one long run draws
    assert session.new_ids == expected[0, prompt_ids.shape[1]:].tolist()
    assert fed == [prompt_ids.shape[1]] + [1] * 11  # the KV cache: never the whole text again


def test_step_generation_with_real_model_matches_generate_and_explains_each_token(smollm2):
    prompt_ids = encode_prompt(smollm2, "What is the capital of France?", True)
    settings = SamplingSettings(0.7, 0, 0.9, 0.0, 1.0)
    torch.manual_seed(3)
    with torch.inference_mode():
        expected = smollm2.model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=8,
                                          pad_token_id=smollm2.tokenizer.pad_token_id, **settings.generate_kwargs())
    session = advance(smollm2, start_session(("smol",), prompt_ids, seed=3), settings, 8, max_total=100)
    assert session.new_ids == expected[0, prompt_ids.shape[1]:].tolist()
    assert smollm2.tokenizer.decode(session.new_ids).strip()  # real words from a real model
    for step in session.steps:
        assert 0 < step.probability <= 1 and step.alternatives[0].probability >= step.alternatives[-1].probability
        assert step.token in [c.token for c in step.alternatives] or step.probability <= step.alternatives[-1].probability


def test_step_session_stops_at_the_server_limit_and_restarts_on_a_new_prompt(tiny, service):
    limits, sessions = service.settings.limits, StepSessionStore(2**30, 60)
    text, table = steps_view(tiny, sessions, "me", "Hello", False, SamplingSettings(), 0, 3, limits)
    assert len(table) == 3 and 'id="sampling-steps"' in text and "title=" in text
    session = sessions.get("me")
    _, table = steps_view(tiny, sessions, "me", "Hello", False, SamplingSettings(), 0, 2, limits)
    assert sessions.get("me") is session and len(table) == 5
    _, table = steps_view(tiny, sessions, "me", "Goodbye", False, SamplingSettings(), 0, 1, limits)
    assert sessions.get("me") is not session and len(table) == 1 and len(sessions) == 1
    capped = advance(tiny, start_session(("x",), encode_prompt(tiny, "Hi", False), 0), SamplingSettings(), 10, 4)
    assert len(capped.steps) == 4 and "limit of 4" in capped.finished


def test_readable_tokens_show_whitespace_and_bytes(smollm2):
    tokenizer = smollm2.tokenizer
    labels = [readable_token(tokenizer, i) for i in tokenizer(" the\n\n😀").input_ids]
    assert labels[0] == "␣the" and "↵" in "".join(labels)
    assert not any("\ufffd" in label for label in labels)
    assert any(re.fullmatch(r"<[0-9A-F]{2}( [0-9A-F]{2})*>", label) for label in labels)  # the emoji's byte pieces


def test_next_token_on_real_model_puts_paris_first(smollm2, service):
    prompt_ids = encode_prompt(smollm2, "The capital of France is", False)
    stages = next_token_distribution(smollm2, prompt_ids, SamplingSettings(0.7, 40, 0.9, 0.05, 1.0))
    assert readable_token(smollm2.tokenizer, int(torch.argmax(stages[-1].probs))) == "␣Paris"
    chart, table, tail = next_token_view(smollm2, "The capital of France is", False, SamplingSettings(0.7), service.settings.limits)
    assert "␣Paris" in chart and list(table["stage"]) == ["raw", "temperature", "top-k", "top-p", "min-p"]
    assert set(tail["stage"]) == {"raw", "temperature"} and tail["log10 probability"].max() <= 0


def test_sweep_is_reproducible_and_more_diverse_when_hotter(smollm2):
    prompt_ids = encode_prompt(smollm2, "Write one word that describes the sea:", True)
    base = SamplingSettings(top_p=0.95)
    first = temperature_sweep(smollm2, prompt_ids, base, [0.0, 0.7, 1.5], samples=4, max_new_tokens=4, seed=11)
    again = temperature_sweep(smollm2, prompt_ids, base, [0.0, 0.7, 1.5], samples=4, max_new_tokens=4, seed=11)
    assert first == again
    greedy, cool, hot = first
    assert greedy.distinct == 1 and greedy.mean_entropy_bits == 0 and len(greedy.texts) == 4
    assert hot.distinct == 4 and hot.distinct >= cool.distinct and hot.mean_entropy_bits > cool.mean_entropy_bits


def test_beam_search_scores_are_the_models_log_probabilities(smollm2):
    prompt_ids = encode_prompt(smollm2, "The capital of France is", False)
    results = compare_search(smollm2, prompt_ids, beams=3, max_new_tokens=6)
    greedy, best_beam = results[0], results[1]
    assert greedy.method == "greedy" and best_beam.method.startswith("beam search (3 beams)") and len(results) == 4
    assert best_beam.log_prob > greedy.log_prob  # on this prompt the wider search finds a likelier continuation
    ids = smollm2.tokenizer(greedy.text, add_special_tokens=False, return_tensors="pt").input_ids[0]
    step_by_step = 0.0
    with torch.inference_mode():
        for position in range(len(ids)):
            prefix = torch.cat([prompt_ids[0], ids[:position]])[None]
            step_by_step += float(torch.log_softmax(smollm2.model(prefix).logits[0, -1], -1)[ids[position]])
    assert continuation_log_prob(smollm2, prompt_ids, ids) == pytest.approx(step_by_step, abs=1e-3)


def test_bad_requests_get_clear_messages(tiny, service):
    limits, sessions = service.settings.limits, StepSessionStore(2**30, 60)
    ok = SamplingSettings()
    cases = [
        (lambda: next_token_view(tiny, "   ", False, ok, limits), "empty"),
        (lambda: next_token_view(tiny, "x" * (limits.max_prompt_chars + 1), False, ok, limits), "characters"),
        (lambda: next_token_view(tiny, "word " * 1100, False, ok, limits), "reads at most"),
        (lambda: steps_view(tiny, sessions, "me", "Hi", False, ok, -1, 1, limits), "seed"),
        (lambda: steps_view(tiny, sessions, "me", "Hi", False, ok, 0, 10**6, limits), "New tokens"),
        (lambda: sweep_view(tiny, "Hi", False, ok, "hot, cold", 2, 4, 0, limits), "not a temperature"),
        (lambda: sweep_view(tiny, "Hi", False, ok, "1 2 3 4 5 6 7", 2, 4, 0, limits), "At most"),
        (lambda: sweep_view(tiny, "Hi", False, ok, "1", 0, 4, 0, limits), "Samples"),
        (lambda: search_view(tiny, "Hi", False, 1, 4, limits), "Beams"),
        (lambda: search_view(tiny, "Hi", False, 4, math.inf, limits), "New tokens"),
    ]
    for call, message in cases:
        with pytest.raises(PlaygroundError, match=message):
            call()
    assert parse_temperatures("0; 0.7 0.7, 1.2", limits) == [0.0, 0.7, 1.2]
