"""Issue 19's views through the running app: each named endpoint from gradio_client, bad input as a message,
and a person clicking each view (and steering a token) in the browser."""

from __future__ import annotations

import re

import pytest
from gradio_client.exceptions import AppError
from playwright.sync_api import expect

PROMPT = "The capital of France is"
TAB = "Inside the language model"


def test_structured_output_and_best_of_n_endpoints(client):
    summary, chart, table = client.predict(prompt="Pick a colour:", constraint_kind="choices",
                                           constraint="red\ngreen\nblue", constrained_samples=4,
                                           constrained_tokens=6, seed=0, api_name="/structured_output")
    assert "with the grammar 4 of 4" in summary and 'id="sampling-stage-chart"' in chart and "grammar" in chart
    assert [row[3] for row in table["data"]] and all(row[3] in {"red", "green", "blue"} for row in table["data"])
    summary, best, scores = client.predict(prompt=PROMPT, candidates=3, candidate_tokens=4, seed=0,
                                           api_name="/best_of_n")
    assert 'class="bon-chosen"' in best and "Chosen by the sum" in summary
    assert len(scores["data"]) == 6  # two scores per candidate


def test_sampler_order_and_logit_lens_endpoints(client):
    summary, first, second, table = client.predict(prompt=PROMPT, temperature=3.0, min_p=0.1, api_name="/sampler_order")
    assert "Total variation distance" in summary and 'id="order-llama-cpp"' in second
    assert {row[-1] for row in table["data"]} == {"transformers", "llama.cpp"}
    heatmap, last = client.predict(prompt=PROMPT, api_name="/logit_lens")
    assert 'id="logit-lens-heatmap"' in heatmap and [row[0] for row in last["data"]][0] == "embeddings"


def test_forcing_a_token_going_back_and_picking_an_alternative(client):
    client.predict(api_name="/start_over")
    client.predict(prompt=PROMPT, temperature=1.0, seed=0, tokens=3, api_name="/generate_steps")
    html, steps, alternatives = client.predict(prompt=PROMPT, temperature=1.0, seed=0, forced_token=" banana",
                                               api_name="/force_token")
    assert len(steps["data"]) == 4 and steps["data"][3][1].endswith("(forced)") and 'class="smp-forced"' in html
    assert len(alternatives["data"]) == 4
    _, steps, _ = client.predict(prompt=PROMPT, temperature=1.0, seed=0, api_name="/step_back")
    assert len(steps["data"]) == 3
    _, steps, _ = client.predict(prompt=PROMPT, temperature=1.0, seed=0, step=2, alternative=2,
                                 api_name="/continue_from_alternative")
    assert len(steps["data"]) == 2 and steps["data"][1][1].endswith("(forced)")


@pytest.mark.parametrize("arguments, message", [
    ({"constraint": "{not json", "api_name": "/structured_output"}, "not valid JSON"),
    ({"constraint_kind": "regular expression", "constraint": "(ab", "api_name": "/structured_output"}, "does not compile"),
    ({"constraint_kind": "regular expression", "constraint": "[^\\s\\S]", "api_name": "/structured_output"},
     "admits no text"),
    ({"candidates": 1000, "api_name": "/best_of_n"}, "maximum"),
    ({"forced_token": " antidisestablishment", "api_name": "/force_token"}, "not one"),
])
def test_bad_input_is_a_message(client, arguments, message):
    with pytest.raises(AppError, match=message):
        client.predict(prompt=PROMPT, **arguments)


def test_clicking_each_view_shows_its_result(page):
    page.get_by_role("tab", name=TAB).click()
    page.get_by_role("tab", name="Logit lens").click()
    page.get_by_role("button", name="Look through each layer").click()
    expect(page.locator("#logit-lens-heatmap")).to_contain_text("embeddings", timeout=120_000)
    page.get_by_role("tab", name="Sampler order").click()
    page.get_by_role("button", name="Compare the two orders").click()
    expect(page.locator("#sampler-order-summary")).to_contain_text("Total variation distance", timeout=120_000)
    page.get_by_role("tab", name="Best-of-N").click()
    page.get_by_role("button", name="Sample N and pick the best").click()
    expect(page.locator("#best-of-n-summary")).to_contain_text("Chosen by the sum", timeout=120_000)
    expect(page.locator("#best-of-n-table tr.bon-chosen").first).to_be_visible()
    page.get_by_role("tab", name="Structured output").click()
    page.get_by_role("button", name="Sample with and without the grammar").click()
    expect(page.locator("#structured-summary")).to_contain_text(re.compile(r"with the grammar \d of 8"), timeout=120_000)


def test_clicking_an_alternative_continues_from_it(page):
    page.get_by_role("tab", name="Sampling knobs").click()
    page.get_by_role("tab", name="Step by step").click()
    page.get_by_role("button", name="Run N tokens").click()
    expect(page.locator("#sampling-steps span[title]")).to_have_count(20, timeout=120_000)
    cells = page.locator("#sampling-alternatives").get_by_role("gridcell")
    cells.nth(2 * 6 + 3).click()  # step 3, its third alternative
    expect(page.locator("#sampling-steps span.smp-forced")).to_have_count(1, timeout=120_000)
    expect(page.locator("#sampling-steps span[title]")).to_have_count(3)
    page.get_by_role("button", name="Go back one step").click()
    expect(page.locator("#sampling-steps span[title]")).to_have_count(2, timeout=60_000)
