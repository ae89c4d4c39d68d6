"""Best-of-N, steering a token, sampler order and the logit lens, each against its reference: seeded samples
are `generate`'s, scores are teacher-forced log-probabilities and the choice their arg-max, continuing after a
forced token is `generate` from the forced prefix, the two orders differ only through the order, and the lens's
last layer is the model's own logits."""

from __future__ import annotations

import pytest
import torch

from playground.core.errors import PlaygroundError
from playground.language.best_of_n import SCORES, BestOfN
from playground.language.generation import encode_prompt
from playground.language.logit_lens import final_norm, layer_logits
from playground.language.sampler_order import compare_orders
from playground.language.samples import draw_samples
from playground.language.sampling import next_token_distribution
from playground.language.sampling_settings import SamplingSettings
from playground.language.steps import advance, back, choose_alternative, force, start_session, token_of_text
from playground.language.sweep import continuation_log_prob

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"


@pytest.fixture(scope="module")
def tiny(service):
    return service.load("language", service.registry.default("language"))


@pytest.fixture(scope="module")
def smollm2(service):
    return service.load("language", SMOLLM2)


# ---- best-of-N

def test_samples_are_generates_with_the_same_seed(tiny):
    prompt = encode_prompt(tiny, "Once upon a time", False)
    settings = SamplingSettings(0.9, top_k=40, top_p=0.95, repetition_penalty=1.2)
    ours = draw_samples(tiny, prompt, settings, 4, 12, seed=3)
    torch.manual_seed(3)
    theirs = tiny.model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12,
                                 num_return_sequences=4, pad_token_id=tiny.tokenizer.pad_token_id,
                                 **settings.generate_kwargs())
    for row, sampled in zip(theirs, ours.rows):
        assert row[prompt.shape[1]:].tolist()[:len(sampled.token_ids)] == list(sampled.token_ids)


def test_best_of_n_scores_are_teacher_forced_log_probs_and_the_choice_is_their_arg_max(smollm2):
    rendered = smollm2.render_prompt("Write a short greeting.", True)
    prompt = rendered.ids
    result = BestOfN(smollm2.sample_scored(rendered, SamplingSettings(1.0), 16, 5, 0))
    assert len(result.candidates) == 5 and result.samples.tokens == sum(c.tokens for c in result.candidates)
    drawn = draw_samples(smollm2, prompt, SamplingSettings(1.0), 5, 16, seed=0)
    for candidate, row in zip(result.candidates, drawn.rows):
        forced = continuation_log_prob(smollm2, prompt, torch.tensor(row.token_ids))
        assert candidate.log_prob == pytest.approx(forced, abs=1e-3)
        assert candidate.mean_log_prob == pytest.approx(forced / len(row.token_ids), abs=1e-3)
    for by in SCORES:
        scores = [result.score(c, by) for c in result.candidates]
        assert result.chosen(by) == max(range(5), key=lambda i: scores[i])
        assert result.ranks(by)[result.chosen(by)] == 1


# ---- steering: force a token and continue

@pytest.mark.parametrize("settings", [SamplingSettings(0.0), SamplingSettings(1.2, top_k=30)], ids=["greedy", "sampled"])
def test_continuing_after_a_forced_token_is_generate_from_the_forced_prefix(smollm2, settings):
    prompt = encode_prompt(smollm2, "The capital of France is", False)
    session = start_session(("t",), prompt, 5)
    advance(smollm2, session, settings, 3, 64)
    forced = token_of_text(smollm2, " banana")
    force(smollm2, session, settings, forced, 64)
    state = session.generator.get_state()  # forcing drew nothing: the draws go on from here
    prefix = session.ids.clone()
    advance(smollm2, session, settings, 6, 64)
    assert session.steps[3].forced and session.steps[3].token_id == forced
    assert not any(step.forced for i, step in enumerate(session.steps) if i != 3)
    torch.set_rng_state(state)
    expected = smollm2.model.generate(prefix, attention_mask=torch.ones_like(prefix), max_new_tokens=6,
                                      pad_token_id=smollm2.tokenizer.pad_token_id, **settings.generate_kwargs())
    assert session.ids[0].tolist() == expected[0].tolist()[:session.ids.shape[1]]


def test_the_same_seed_and_forced_choices_give_the_same_text_and_going_back_redraws_it(tiny):
    prompt = encode_prompt(tiny, "Hello there", False)
    settings = SamplingSettings(1.0)

    def run():
        session = start_session(("t",), prompt, 11)
        advance(tiny, session, settings, 2, 64)
        force(tiny, session, settings, 42, 64)
        return advance(tiny, session, settings, 4, 64)

    first, second = run(), run()
    assert first.new_ids == second.new_ids
    before = list(first.new_ids)
    back(first, 3)
    assert first.new_ids == before[:4]
    advance(tiny, first, settings, 3, 64)
    assert first.new_ids == before
    # Clicking an alternative of step 2 goes back to it and forces that token instead.
    alternative = first.steps[1].alternatives[2]
    choose_alternative(tiny, first, settings, 2, 2, 64)
    assert len(first.steps) == 2 and first.steps[1].token_id == alternative.token_id and first.steps[1].forced


def test_a_forced_token_must_be_one_token(smollm2):
    with pytest.raises(PlaygroundError, match=r"is \d+ tokens.*not one"):
        token_of_text(smollm2, " antidisestablishment")
    with pytest.raises(PlaygroundError, match="Type the token"):
        token_of_text(smollm2, "")
    assert smollm2.tokenizer.decode([token_of_text(smollm2, " Paris")]) == " Paris"


# ---- sampler order

def test_temperature_last_keeps_fewer_tokens_under_min_p_at_a_high_temperature(smollm2):
    prompt = encode_prompt(smollm2, "The capital of France is", False)
    logits = next_token_distribution(smollm2, prompt, SamplingSettings())[0].scores
    result = compare_orders(logits, prompt, SamplingSettings(3.0, min_p=0.1))
    assert [s.name for s in result.first][1:] == ["repetition penalty", "temperature", "top-k", "top-p", "min-p"]
    assert [s.name for s in result.second][1:] == ["repetition penalty", "top-k", "top-p", "min-p", "temperature"]
    assert result.first[-1].survivors > result.second[-1].survivors and result.only_first and not result.only_second
    assert result.total_variation > 0.1
    assert result.total_variation == pytest.approx(0.5 * float((result.first[-1].probs - result.second[-1].probs)
                                                               .abs().sum()), abs=1e-6)
    same = compare_orders(logits, prompt, SamplingSettings(1.0, top_k=20, top_p=0.9, min_p=0.05))
    assert same.total_variation < 1e-6 and not same.only_first and not same.only_second  # T = 1: order is moot


# ---- the logit lens

@pytest.mark.parametrize("model", ["tiny", "smollm2"])
def test_the_lens_last_layer_is_the_models_own_logits(request, model):
    lm = request.getfixturevalue(model)
    prompt = encode_prompt(lm, "The capital of France is", False)
    with torch.inference_mode():
        output = lm.model(input_ids=prompt, use_cache=False, output_hidden_states=True)
    per_layer = list(layer_logits(lm.model, output.hidden_states))
    assert len(per_layer) == lm.model.config.num_hidden_layers + 1
    assert torch.equal(per_layer[-1], output.logits)
    assert not torch.equal(per_layer[-2], output.logits)
    assert final_norm(lm.model) is lm.model.model.norm


def test_the_lens_finds_paris_at_the_last_layer_of_smollm2(smollm2):
    prompt = encode_prompt(smollm2, "The capital of France is", False)
    lens = smollm2.logit_lens(smollm2.render_prompt("The capital of France is", False))
    assert smollm2.tokenizer.decode([lens.answer_id]) == " Paris"
    assert lens.layers[0] == "embeddings" and len(lens.layers) == 31
    assert lens.top_ids.shape == (31, prompt.shape[1]) and lens.last_top_ids.shape == (31, 5)
    assert lens.first_layer is not None and lens.first_layer <= lens.settled_layer == 30
    assert float(lens.answer_probs[-1]) == pytest.approx(float(lens.top_probs[-1, -1]))
    assert float(lens.answer_probs[-1]) > 0.5 > float(lens.answer_probs[10])
