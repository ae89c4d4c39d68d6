"""Structured output: the grammar stage keeps exactly the tokens llguidance allows, constrained samples always
obey the constraint (even from a random-weight model), constrained sampling is `generate` with the grammar as a
logits processor, and every unusable constraint gets a message that says what is wrong."""

from __future__ import annotations

import json

import pytest
import torch
from llguidance import LLMatcher
from transformers import LogitsProcessorList

from playground.core.errors import PlaygroundError
from playground.language.generation import encode_prompt
from playground.language.constraints import parse_constraint
from playground.language.grammar import (
    GrammarProcessor, allowed_tokens, engine_grammar, engine_tokenizer, matcher_for, vocab_width,
)
from playground.language.sampling import end_token_ids
from playground.language.sampling_settings import SamplingSettings
from playground.language.samples import draw_samples
from playground.language.structured_output import VALID, Comparison

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
PERSON = json.dumps({"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                                      "age": {"type": "integer"}},
                     "required": ["name", "age"], "additionalProperties": False})


@pytest.fixture(scope="module")
def tiny(service):
    return service.load("language", service.registry.default("language"))


@pytest.fixture(scope="module")
def smollm2(service):
    return service.load("language", SMOLLM2)


def test_grammar_stage_keeps_exactly_the_engines_allowed_set(smollm2):
    constraint = parse_constraint("json_schema", PERSON, 8000)
    prompt = smollm2.render_prompt("A person as JSON:", False)
    stages = smollm2.grammar_stage(prompt, SamplingSettings(0.7, top_k=20), constraint).stages
    names = [stage.name for stage in stages]
    assert names[:3] == ["raw", "repetition penalty", "grammar"]
    grammar = stages[2]
    # A matcher built here, straight from llguidance, not through the playground's compile step.
    engine = engine_tokenizer(smollm2.tokenizer, vocab_width(smollm2.model))
    expected = allowed_tokens(LLMatcher(engine, engine_grammar(constraint)), grammar.scores.shape[-1])
    assert torch.equal(grammar.kept, expected)
    assert 0 < grammar.survivors < 100 and grammar.removed_mass > 0
    assert abs(float(grammar.probs.sum()) - 1) < 1e-5 and float(grammar.probs[~expected].sum()) == 0
    # Every kept token is one the engine accepts as the next token.
    checker = LLMatcher(engine, engine_grammar(constraint))
    assert all(checker.validate_tokens([token]) == 1 for token in torch.nonzero(expected)[:, 0].tolist())


def test_twenty_constrained_samples_all_validate_against_the_schema(smollm2):
    constraint = parse_constraint("json_schema", PERSON, 8000)
    prompt = smollm2.render_prompt("Describe a person as a JSON object with a name and an age.", True)
    drawn = smollm2.sample_scored(prompt, SamplingSettings(1.0), 40, 20, 0, constraint)
    assert all(row.ended and constraint.validates(row.text) for row in drawn.rows)
    for row in drawn.rows:
        person = json.loads(row.text)
        assert set(person) == {"name", "age"} and isinstance(person["age"], int) and len(person["name"]) <= 12
    assert len({row.text for row in drawn.rows}) > 10 and drawn.grammar_seconds > 0


@pytest.mark.parametrize("kind, spec", [("regex", "[0-9]{3}-[0-9]{4}"), ("choice", "red\ngreen\nblue")])
def test_a_random_model_obeys_a_regex_and_choices_every_time(tiny, kind, spec):
    constraint = parse_constraint(kind, spec, 8000)
    prompt = tiny.render_prompt("Pick:", False)
    result = Comparison(constraint, tiny.sample_scored(prompt, SamplingSettings(1.0), 12, 20, 1),
                        tiny.sample_scored(prompt, SamplingSettings(1.0), 12, 20, 1, constraint))
    assert result.constrained_verdicts == (VALID,) * 20
    assert result.free_verdicts.count(VALID) == 0  # random weights never hit it by chance
    assert result.constrained.grammar_seconds > 0 and result.step_ratio > 0 and result.mask_ms_per_step > 0
    assert len({row.text for row in result.constrained.rows}) > 1  # still sampled, not one forced text


def test_constrained_sampling_is_generate_with_the_grammar_processor(tiny):
    constraint = parse_constraint("regex", "(ab|cd)+[0-9]{2}", 8000)
    prompt = encode_prompt(tiny, "Hello", False)
    settings = SamplingSettings(1.3, top_k=50)
    matcher, ends = matcher_for(tiny, constraint), end_token_ids(tiny)
    ours = draw_samples(tiny, prompt, settings, 3, 10, 7,
                        GrammarProcessor([matcher.deep_copy() for _ in range(3)], prompt.shape[1], ends))
    torch.manual_seed(7)
    theirs = tiny.model.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=10, num_return_sequences=3,
        pad_token_id=tiny.tokenizer.pad_token_id, **settings.generate_kwargs(),
        logits_processor=LogitsProcessorList([GrammarProcessor([matcher.deep_copy() for _ in range(3)],
                                                               prompt.shape[1], ends)]))
    for row, sampled in zip(theirs, ours.rows):
        assert row[prompt.shape[1]:].tolist()[:len(sampled.token_ids)] == list(sampled.token_ids)


@pytest.mark.parametrize("kind, spec, message", [
    ("json_schema", "{not json", "not valid JSON"),
    ("json_schema", '{"type": "nosuch"}', "not a valid JSON schema"),
    ("json_schema", '[1, 2]', "must be a JSON object"),
    ("json_schema", '{"type": "string", "minLength": 5, "maxLength": 2}', "minLength (5) is greater than maxLength"),
    ("json_schema", '{"not": {"type": "string"}}', "Unimplemented keys"),
    ("regex", "(ab", "does not compile"),
    ("regex", r"[^\s\S]", "admits no text at all"),
    ("regex", "a{0}", "admits only the empty text"),
    ("choice", "\n  \n", "empty"),
    ("json_schema", "", "empty"),
    ("grammar", "x", "Unknown kind"),
])
def test_unusable_constraints_get_a_clear_message(tiny, kind, spec, message):
    with pytest.raises(PlaygroundError, match=message.replace("(", r"\(").replace(")", r"\)")):
        matcher_for(tiny, parse_constraint(kind, spec, 8000))


def test_a_constraint_longer_than_the_limit_is_refused():
    with pytest.raises(PlaygroundError, match="accepts up to 100"):
        parse_constraint("regex", "a" * 101, 100)
