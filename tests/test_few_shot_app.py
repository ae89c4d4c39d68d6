"""The Few-shot builder through gradio_client and in a browser, on the tiny test model."""

from __future__ import annotations

import math
import re

import pytest
from gradio_client.exceptions import AppError
from playwright.sync_api import expect

from playground.language.few_shot.tasks import load_tasks

TASKS = load_tasks()
TAB = "Few-shot builder"


def form(task_id: str = "sentiment", **changes) -> dict:
    task = TASKS[task_id]
    values = dict(
        model=None, instruction=task.format.instruction,
        input_name=task.format.input_name, output_name=task.format.output_name, chat_template=False,
        examples={"headers": ["input", "output"], "data": [[e.input, e.output] for e in task.examples]},
        query=task.query, answer=task.answer, labels=", ".join(task.labels), k=2, order="as given", seed=0,
    )
    values.update(changes)
    return values


@pytest.fixture(scope="module")
def model_name(service) -> str:
    return service.registry.default("language")


def test_load_task_fills_the_form(client):
    instruction, input_name, output_name, examples, answer, labels, query, held_out = client.predict(
        "topic", api_name="/load_task")
    assert labels == "World, Sports, Business, Science" and answer == "one of the labels"
    assert input_name == "Headline" and len(examples["data"]) == 10 and len(held_out["data"]) == 16


def test_build_prompt_endpoint_shows_k_examples_and_the_token_count(client, model_name):
    prompt, tokens = client.predict(**form(model=model_name, k=3), api_name="/build_prompt")
    assert prompt.count("Review: ") == 4
    count = int(re.search(r"\*\*([\d,]+) tokens\*\*", tokens).group(1).replace(",", ""))
    assert 40 < count < 200 and "3 of 10 examples" in tokens


def test_run_endpoint_returns_an_answer_and_probabilities_summing_to_one(client, model_name):
    prompt, tokens, answer, probabilities = client.predict(
        **form("topic", model=model_name, k=4, chat_template=True), temperature=0, max_new_tokens=4,
        api_name="/run_few_shot")
    assert "<|im_start|>assistant" in prompt
    confidences = {row["label"]: row["confidence"] for row in probabilities["confidences"]}
    assert set(confidences) == set(TASKS["topic"].labels)
    assert math.isclose(sum(confidences.values()), 1.0, abs_tol=1e-6)


def test_sweep_endpoint_reports_accuracy_per_setting(client, model_name):
    values = form("sentiment", model=model_name)
    values["examples"]["data"] = values["examples"]["data"][:2]
    for name in ("query", "k", "order"):
        values.pop(name)
    held_out = {"headers": ["input", "expected"], "data": [[e.input, e.output] for e in TASKS["sentiment"].eval_set[:2]]}
    summary, chart, items = client.predict(**values, held_out=held_out, api_name="/sweep_shots")
    assert "Scored 10 of 10 items" in summary and "k=2 random labels" in summary
    assert [row[0] for row in items["data"]].count("k=0") == 2
    assert {row[5] for row in items["data"]} <= {"✓", "✗"}


@pytest.mark.parametrize("changes, message", [
    (dict(labels="Positive, Negative, Positive"), "Duplicate labels"),
    (dict(labels=""), "at least two labels"),
    (dict(k=12), "only 10 examples"),
    (dict(examples={"headers": ["input", "output"], "data": [["", ""]]}, k=1), "no examples"),
    (dict(query=""), "query is empty"),
])
def test_bad_input_is_a_clear_message_through_the_api(client, model_name, changes, message):
    with pytest.raises(AppError, match=message):
        client.predict(**form(model=model_name, **changes), api_name="/build_prompt")


def test_a_person_adds_an_example_raises_k_and_runs(page):
    page.get_by_role("tab", name=TAB).click()
    page.get_by_label("Task").click()
    page.get_by_role("option", name="Custom (start from an empty table)").click()
    for text, label in (("I loved every bite", "yum"), ("Cold and bland", "yuck")):
        page.get_by_label("New example: input").fill(text)
        page.get_by_label("New example: output").fill(label)
        page.get_by_role("button", name="Add example").click()
        expect(page.locator("#few-shot-examples")).to_contain_text(text)
    expect(page.get_by_label("Labels (comma-separated; new example outputs are added)")).to_have_value("yum, yuck")
    page.get_by_label("Query").fill("Delicious soup")
    page.get_by_label("number input for Shots k").fill("2")
    page.get_by_label("number input for Shots k").press("Enter")
    page.get_by_role("button", name="Run", exact=True).click()
    prompt = page.locator("#few-shot-prompt textarea")
    expect(prompt).to_have_value(re.compile(r"I loved every bite\nOutput: yum\n\nInput: Cold and bland\nOutput: yuck"))
    expect(page.locator("#few-shot-tokens")).to_contain_text("2 of 2 examples")
    probabilities = page.locator("#few-shot-probabilities")
    expect(probabilities).to_contain_text("yum")
    expect(probabilities).to_contain_text("yuck")
    expect(probabilities).to_contain_text("%")


def test_a_person_sees_a_clear_message_for_too_many_shots(page):
    page.get_by_role("tab", name=TAB).click()
    page.get_by_label("number input for Shots k").fill("30")
    page.get_by_label("number input for Shots k").press("Enter")
    page.get_by_role("button", name="Show prompt").click()
    expect(page.get_by_text("k = 30 shots asked for, but the table has only 10 examples")).to_be_visible()
