"""The Sampling knobs tab through the running app: its named endpoints from gradio_client, bad input
as a message, and a person changing the temperature and seeing the chart change."""

from __future__ import annotations

import re

import pytest
from gradio_client.exceptions import AppError
from playwright.sync_api import expect

PROMPT = "The capital of France is"


def test_next_token_endpoint_returns_every_stage(client):
    chart, stages, tail = client.predict(prompt=PROMPT, temperature=0.5, top_k=20, top_p=0.9, min_p=0.0,
                                         repetition_penalty=1.0, api_name="/next_token")
    assert 'id="sampling-stage-chart"' in chart and "T = 0.5" in chart and "k = 20" in chart
    rows = {row[0]: row for row in stages["data"]}
    assert list(rows) == ["raw", "temperature", "top-k", "top-p", "min-p"]
    assert rows["top-k"][2] == 20 and rows["top-p"][2] <= 20 and rows["min-p"][1] == "off"


def test_generate_steps_is_seeded_and_continues_until_started_over(client):
    # The client's session keeps the step state (and KV cache) between calls, as a browser tab does.
    client.predict(api_name="/start_over")
    html, table = client.predict(prompt=PROMPT, temperature=1.2, seed=5, tokens=6, api_name="/generate_steps")
    assert len(table["data"]) == 6 and 'id="sampling-steps"' in html and html.count("title=") == 6
    _, longer = client.predict(prompt=PROMPT, temperature=1.2, seed=5, api_name="/step_one_token")
    assert longer["data"][:6] == table["data"] and len(longer["data"]) == 7
    client.predict(api_name="/start_over")
    _, again = client.predict(prompt=PROMPT, temperature=1.2, seed=5, tokens=7, api_name="/generate_steps")
    assert again["data"] == longer["data"]  # 6 + 1 steps draw what 7 at once draw


def test_sweep_and_search_endpoints(client):
    samples, diversity = client.predict(prompt=PROMPT, temperatures="0, 1.5", samples=3, tokens=4, seed=1,
                                        api_name="/sweep")
    assert samples["headers"] == ["sample", "T = 0", "T = 1.5"] and len(samples["data"]) == 3
    assert [row[1] for row in diversity["data"]][0] == "1 of 3"
    searches = client.predict(prompt=PROMPT, beams=2, tokens=4, api_name="/compare_search")
    assert [row[0] for row in searches["data"]] == ["greedy", "beam search (2 beams), beam 1", "beam search (2 beams), beam 2"]


@pytest.mark.parametrize("arguments, message", [
    ({"prompt": "", "api_name": "/next_token"}, "empty"),
    ({"prompt": PROMPT, "temperature": 1e-30, "api_name": "/next_token"}, "too close to 0"),
    ({"prompt": PROMPT, "top_p": 0, "api_name": "/next_token"}, "less than minimum value 0.01"),
    ({"prompt": PROMPT, "temperatures": "warm", "api_name": "/sweep"}, "not a temperature"),
    ({"prompt": PROMPT, "model": "../../etc/passwd", "api_name": "/compare_search"}, "not in the list of choices"),
])
def test_bad_input_is_a_message_and_the_app_keeps_serving(client, arguments, message):
    with pytest.raises(AppError, match=message):
        client.predict(**arguments)
    assert client.predict(prompt=PROMPT, api_name="/next_token")[1]["data"]


def bits(header_text: str) -> float:
    return float(re.search(r"([0-9.]+) bits", header_text).group(1))


def test_changing_the_temperature_changes_the_chart(page):
    page.get_by_role("tab", name="Sampling knobs").click()
    page.get_by_role("button", name="Show the next-token distribution").click()
    chart = page.locator("#sampling-stage-chart")
    expect(chart).to_contain_text("T = 1 (no change)")
    final = chart.locator("th.smp-final")
    before = bits(final.inner_text())
    temperature = page.get_by_label("number input for Temperature")
    temperature.fill("0.3")
    temperature.press("Enter")
    expect(chart).to_contain_text("T = 0.3")
    assert bits(final.inner_text()) < before  # a cooler distribution is more certain: fewer bits
