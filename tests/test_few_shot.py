"""Few-shot prompts, label scoring and the shot sweep, on the tiny random model and the real SmolLM2."""

from __future__ import annotations

import math

import pytest
import torch

from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.language.few_shot.prompts import AS_GIVEN, RANDOM_LABELS, SHUFFLED, build_few_shot_prompt, choose_shots
from playground.language.few_shot.request import FewShotSettings, checked_eval_set, labels_with_outputs
from playground.language.few_shot.run import prompt_for, run_few_shot
from playground.language.few_shot.scoring import label_probabilities, label_token_ids
from playground.language.few_shot.sweep import accuracy_by_setting, sweep, sweep_settings
from playground.language.few_shot.tasks import FREE_TEXT, LABELS, Example, load_tasks
from playground.language.label_scoring import label_log_likelihoods, shared_prefix
from playground.language.sampling_settings import SamplingSettings

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
LIMITS = Limits()
TASKS = load_tasks()


@pytest.fixture(scope="module")
def tiny(service):
    return service.load("language", None)


@pytest.fixture(scope="module")
def smollm2(service):
    return service.load("language", SMOLLM2)


def request_for(task_id: str, k: int = 2, order: str = AS_GIVEN, seed: int = 0, chat: bool = False,
                examples: int | None = None, labels: str | None = None, query: str | None = None):
    task = TASKS[task_id]
    rows = [[e.input, e.output] for e in task.examples[:examples]]
    return FewShotSettings(
        task.format.instruction, task.format.input_name, task.format.output_name, chat, rows,
        task.query if query is None else query, task.answer, ", ".join(task.labels) if labels is None else labels,
        k, order, seed,
    ).checked(LIMITS)


def unbatched_log_likelihood(lm, prompt_ids: torch.Tensor, label_ids: list[int]) -> float:
    """The reference: the whole prompt + label sequence alone, no cache, no padding."""
    sequence = torch.cat([prompt_ids, torch.tensor([label_ids], device=prompt_ids.device)], dim=1)
    with torch.inference_mode():
        log_probs = lm.model(sequence).logits[0].float().log_softmax(-1)
    start = prompt_ids.shape[1] - 1
    return sum(log_probs[start + j, token].item() for j, token in enumerate(label_ids))


@pytest.mark.parametrize("chat", [False, True])
def test_prompt_for_k_shots_contains_exactly_k_examples(tiny, chat):
    task = TASKS["sentiment"]
    for k in (0, 1, 3, 8):
        prompt = prompt_for(tiny, request_for("sentiment", k=k, chat=chat), LIMITS)
        assert prompt.text.count("Review: ") == k + 1  # k shots and the query
        for index, example in enumerate(task.examples):
            assert (example.input in prompt.text) == (index < k)
        answers = prompt.text.count("<|im_start|>assistant\n") - 1 if chat else prompt.text.count("Sentiment: ")
        assert answers == k
        assert prompt.token_count == len(tiny.tokenizer(prompt.text, add_special_tokens=not chat).input_ids)


def test_plain_prompt_ends_where_the_label_goes(tiny):
    prompt = prompt_for(tiny, request_for("sentiment", k=1), LIMITS)
    assert prompt.text.startswith(TASKS["sentiment"].format.instruction)
    assert prompt.text.endswith(f"Review: {TASKS['sentiment'].query}\nSentiment:")


def test_shuffled_keeps_the_shots_and_random_labels_keeps_the_inputs():
    examples = TASKS["topic"].examples
    labels = TASKS["topic"].labels
    given = choose_shots(examples, 8, AS_GIVEN, 3)
    shuffled = choose_shots(examples, 8, SHUFFLED, 3)
    assert sorted(shuffled, key=examples.index) == given and shuffled != given
    assert choose_shots(examples, 8, SHUFFLED, 3) == shuffled  # seeded
    random_labels = choose_shots(examples, 8, RANDOM_LABELS, 3, labels)
    assert [s.input for s in random_labels] == [s.input for s in given]
    assert {s.output for s in random_labels} <= set(labels)
    assert [s.output for s in random_labels] != [s.output for s in given]


@pytest.mark.parametrize("model_name", [None, SMOLLM2])
@pytest.mark.parametrize("chat", [False, True])
def test_label_probabilities_sum_to_one(service, model_name, chat):
    lm = service.load("language", model_name)
    prompt = prompt_for(lm, request_for("topic", k=2, chat=chat), LIMITS)
    probabilities = label_probabilities(lm, prompt, TASKS["topic"].labels)
    assert list(probabilities) == list(TASKS["topic"].labels)
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-9)
    assert all(0 < p < 1 for p in probabilities.values())


@pytest.mark.parametrize("chat", [False, True])
def test_batched_label_scores_equal_unbatched(smollm2, chat):
    """One prompt pass and one padded batch for all labels (multi-token ones of different lengths
    included), with and without a prefix shared across prompts, match scoring each label alone."""
    labels = ("Positive", "Negative", "Neutral", "Mixed feelings about it", "So-so")
    labels_ids = label_token_ids(smollm2, labels, chat)
    assert len({len(ids) for ids in labels_ids}) > 1
    request = request_for("sentiment", k=3, chat=chat)
    prompts = [build_few_shot_prompt(smollm2, request.fmt, request.examples[:3], item.input, LIMITS)
               for item in TASKS["sentiment"].eval_set[:3]]
    prefix = shared_prefix(smollm2, [p.ids for p in prompts])
    assert prefix is not None and prefix.length > 50
    for prompt in prompts:
        reference = torch.tensor([unbatched_log_likelihood(smollm2, prompt.ids, ids) for ids in labels_ids])
        torch.testing.assert_close(label_log_likelihoods(smollm2, prompt.ids, labels_ids), reference,
                                   atol=2e-4, rtol=1e-5)
        torch.testing.assert_close(label_log_likelihoods(smollm2, prompt.ids, labels_ids, prefix), reference,
                                   atol=2e-4, rtol=1e-5)
        assert prefix.cache.get_seq_length() == prefix.length  # handed back unchanged for the next item


def test_run_gives_an_answer_and_label_probabilities(smollm2):
    result = run_few_shot(smollm2, request_for("sentiment", k=4), SamplingSettings(temperature=0), 8, LIMITS)
    assert result.answer and "\n" not in result.answer
    assert set(result.probabilities) == {"Positive", "Negative", "Neutral"}
    assert result.prompt.text.count("Review: ") == 5


def test_free_text_run_has_no_label_probabilities(tiny):
    result = run_few_shot(tiny, request_for("translation", k=3), SamplingSettings(temperature=0), 6, LIMITS)
    assert result.probabilities == {}
    assert result.generation.new_tokens <= 6 and "\n" not in result.answer


def test_sweep_settings_are_capped_by_the_examples():
    assert [s.name for s in sweep_settings(10)] == [
        "k=0", "k=1", "k=2", "k=4", "k=8", "k=8 shuffled", "k=8 random labels"]
    assert [s.name for s in sweep_settings(3)] == ["k=0", "k=1", "k=2", "k=3", "k=3 shuffled", "k=3 random labels"]
    assert [s.name for s in sweep_settings(0)] == ["k=0"]


def test_sweep_is_reproducible_with_a_seed(smollm2):
    request = request_for("sentiment", examples=3, seed=7)
    eval_set = TASKS["sentiment"].eval_set[:3]
    first = list(sweep(smollm2, request, eval_set, LIMITS))
    again = list(sweep(smollm2, request, eval_set, LIMITS))
    assert [r.setting for r in first] == [s.name for s in sweep_settings(3) for _ in eval_set]
    assert [(r.predicted, r.correct) for r in first] == [(r.predicted, r.correct) for r in again]
    torch.testing.assert_close([r.expected_probability for r in first], [r.expected_probability for r in again])
    # Each item's p(expected) is the label probability a single run of the same prompt shows.
    k2 = prompt_for(smollm2, request_for("sentiment", k=2, examples=3, query=eval_set[0].input), LIMITS)
    single = label_probabilities(smollm2, k2, TASKS["sentiment"].labels)[eval_set[0].output]
    assert first[2 * len(eval_set)].setting == "k=2"
    assert first[2 * len(eval_set)].expected_probability == pytest.approx(single, abs=1e-4)
    accuracies = accuracy_by_setting(first)
    assert [a.scored for a in accuracies] == [3] * 6
    assert accuracies[0].correct == sum(r.correct for r in first[:3])


def test_free_text_sweep_compares_generated_answers(tiny):
    request = request_for("dates", examples=2)
    results = list(sweep(tiny, request, TASKS["dates"].eval_set[:2], LIMITS))
    assert len(results) == 2 * len(sweep_settings(2))
    assert all(r.expected_probability is None for r in results)
    assert all(r.correct == (r.predicted.strip().casefold() == r.expected.casefold()) for r in results)


def test_labels_follow_new_example_outputs():
    examples = [Example("a", "good"), Example("b", "bad"), Example("c", "good")]
    assert labels_with_outputs("", examples) == "good, bad"
    assert labels_with_outputs("meh, good", examples) == "meh, good, bad"


@pytest.mark.parametrize("change, message", [
    (dict(examples=0, k=1), "the table has no examples"),
    (dict(k=11), "only 10 examples"),
    (dict(k=-1), "whole number from 0"),
    (dict(k=float("nan")), "whole number"),
    (dict(k=1.5), "whole number"),
    (dict(labels=""), "at least two labels"),
    (dict(labels="Positive"), "at least two labels"),
    (dict(labels="Positive, Negative, Positive, Neutral"), "Duplicate labels: Positive"),
    (dict(labels="Positive, Negative"), "output 'Neutral' is not one of the labels"),
    (dict(query="   "), "query is empty"),
    (dict(query="x" * 100_000), "100,000 characters"),
    (dict(order="../../etc"), "order must be one of"),
    (dict(seed=-3), "seed"),
])
def test_bad_input_gets_a_clear_message(change, message):
    with pytest.raises(PlaygroundError, match=message):
        request_for("sentiment", **change)


@pytest.mark.parametrize("rows, message", [
    ([["good food", ""]], "has no output"),
    ("not a table", "rows of \\[input, output\\]"),
    ([["x", "y"]] * 65, "up to 64"),
])
def test_bad_example_tables_get_a_clear_message(rows, message):
    with pytest.raises(PlaygroundError, match=message):
        FewShotSettings(examples=rows, query="q", answer=FREE_TEXT).checked(LIMITS)


def test_bad_held_out_sets_get_a_clear_message():
    request = request_for("sentiment")
    with pytest.raises(PlaygroundError, match="held-out set is empty"):
        checked_eval_set([["", ""]], request, LIMITS)
    with pytest.raises(PlaygroundError, match="Held-out item 1's output 'Great'"):
        checked_eval_set([["lovely", "Great"]], request, LIMITS)
    with pytest.raises(PlaygroundError, match="up to 40"):
        checked_eval_set([["lovely", "Positive"]] * 41, request, LIMITS)


def test_chat_template_on_a_model_without_one_is_refused(tiny, monkeypatch):
    monkeypatch.setattr(tiny.tokenizer, "chat_template", None)
    with pytest.raises(PlaygroundError, match="no chat template"):
        prompt_for(tiny, request_for("sentiment", chat=True), LIMITS)


def test_shipped_task_sets_are_consistent():
    assert {"sentiment", "topic", "translation", "dates", "custom"} <= set(TASKS)
    for task in TASKS.values():
        assert task.answer in (LABELS, FREE_TEXT)
        if task.id != "custom":
            assert len(task.examples) >= 8 and 12 <= len(task.eval_set) <= 20
            assert not {e.input for e in task.examples} & {e.input for e in task.eval_set}
        if task.answer == LABELS and task.labels:
            assert {e.output for e in task.examples + task.eval_set} == set(task.labels)
    assert len(TASKS["topic"].labels) == 4
