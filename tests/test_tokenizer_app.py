"""The tokenizer language-cost tab through the running app: named endpoints from gradio_client (table,
token view, corpus CSV, clear messages for bad input), and a person seeing Burmese's premium over English."""

from __future__ import annotations

import csv

import pytest
from gradio_client.exceptions import AppError
from playwright.sync_api import expect

from playground.tokenizers import cost

TOKENIZERS = ["GPT-4o (o200k_base)", "Gemma 3"]


def rows(*languages: str) -> dict:
    return {"headers": ["language", "text"], "data": cost.flores_rows(list(languages), "devtest", 1)}


def count(client, sentences=None, tokenizers=TOKENIZERS, hub_id="", base="English", price=2.5, context=8192,
          with_special=False):
    return client.predict(sentences or rows("English", "Burmese"), tokenizers, hub_id, base, price, context,
                          with_special, api_name="/count_tokens")


def test_count_tokens_endpoint_gives_premiums_and_states_the_policy(client, service):
    summary, chart, table = count(client)
    assert "text alone" in summary and "adds `<bos>`" in summary
    by_row = {(row[0], row[1]): dict(zip(table["headers"], row)) for row in table["data"]}
    burmese = by_row[("Burmese", "GPT-4o (o200k_base)")]
    english = by_row[("English", "GPT-4o (o200k_base)")]
    o200k = service.load("tokenizer", "GPT-4o (o200k_base)").backend.encoding
    assert english["tokens"] == len(o200k.encode_ordinary(cost.flores_sentences("eng_Latn", "devtest")[0]))
    assert burmese["premium ×"] == round(burmese["tokens"] / english["tokens"], 2) > 1
    assert {tuple(r) for r in chart["data"]} >= {("Burmese", "Gemma 3", by_row[("Burmese", "Gemma 3")]["premium ×"])}
    _, _, with_bos = count(client, with_special=True)
    gemma = [r for r in with_bos["data"] if r[1] == "Gemma 3"]
    assert [r[2] for r in gemma] == [by_row[(r[0], "Gemma 3")]["tokens"] + 1 for r in gemma]


def test_flores_and_show_tokens_endpoints(client):
    sentences = client.predict(["English", "Amharic"], "dev", 2, api_name="/flores_sentences")
    assert [row[0] for row in sentences["data"]] == ["English", "Amharic"]
    html = client.predict(sentences, "Amharic", "English", ["GPT-2 (gpt2)"], "", False, api_name="/show_tokens")
    assert "GPT-2 (gpt2)" in html and "× English" in html and "&lt;0xE1" in html and "\ufffd" not in html


def test_corpus_endpoint_gives_a_sortable_table_and_a_csv(client):
    summary, chart, table, csv_path = client.predict(["GPT-2 (gpt2)"], "", "dev", "English", 1.0, False,
                                                     api_name="/corpus_premiums")
    assert table["headers"] == ["language", "script", "GPT-2 (gpt2)"]
    assert len(table["data"]) == len(cost.flores_languages()) and table["data"][-1][0] == "English"
    with open(csv_path, encoding="utf-8") as handle:
        figures = list(csv.DictReader(handle))
    burmese = next(row for row in figures if row["code"] == "mya_Mymr")
    assert float(burmese["premium ×"]) == next(row[2] for row in table["data"] if row[0] == "Burmese") > 5


@pytest.mark.parametrize("change, message", [
    ({"sentences": {"headers": ["language", "text"], "data": [["", ""]]}}, "at least one language"),
    ({"tokenizers": [], "hub_id": ""}, "Choose at least one tokenizer"),
    ({"tokenizers": ["No such tokenizer"]}, "not in the list of choices"),  # Gradio checks choices
    ({"hub_id": "../../etc/passwd"}, "not a Hugging Face Hub id"),
    ({"hub_id": "someone/not-cached"}, "not available offline"),
    ({"tokenizers": ["Llama-2"]}, "gated"),
    ({"price": 1e9}, "price"),  # NaN cannot travel as JSON; Gradio refuses negatives itself
    ({"context": 10**12}, "context window"),
    ({"base": "Klingon"}, "base language"),
])
def test_bad_input_gets_a_clear_message(client, change, message):
    with pytest.raises(AppError, match=message):
        count(client, **change)


def test_a_person_picks_burmese_and_sees_its_premium_over_english(page):
    page.get_by_role("tab", name="Tokenizer language cost").click()
    page.get_by_role("button", name="Count tokens").click()
    expect(page.locator("#token-view")).to_contain_text("English", timeout=60_000)  # the first click loads 5 tokenizers
    picker = page.get_by_label("Show the tokens of")
    picker.click()
    picker.fill("Burmese")
    page.get_by_role("option", name="Burmese").click()
    page.get_by_role("button", name="Show tokens").click()
    expect(page.locator("#token-view")).to_contain_text("GPT-4o (o200k_base): Burmese")
    expect(page.locator("#token-view")).to_contain_text("× English")
    expect(page.locator("#tokenizer-cost-table")).to_contain_text("Burmese")


def test_corpus_endpoint_joined_method_gives_petrov_et_al_counts(client):
    _, _, table, csv_path = client.predict(["GPT-2 (gpt2)"], "", "dev+devtest", "English", 1.0, False,
                                           "joined corpus", api_name="/corpus_premiums")
    with open(csv_path, encoding="utf-8") as handle:
        figures = {row["code"]: row for row in csv.DictReader(handle)}
    assert len(figures) == 204 and csv_path.endswith("_joined.csv")
    # Petrov et al. 2023's published GPT-2 counts (tests/data/petrov2023_counts.csv).
    assert (int(figures["eng_Latn"]["tokens"]), int(figures["shn_Mymr"]["tokens"])) == (52567, 986091)
    assert float(figures["shn_Mymr"]["premium ×"]) == 18.76


def test_spread_endpoint_shows_boxes_and_percentiles(client):
    page, table = client.predict(["GPT-2 (gpt2)"], "", ["Burmese", "French"], "dev", "English", False,
                                 api_name="/premium_spread")
    assert "<svg" in page and "Burmese" in page and "French" in page and "5th to 95th" in page
    rows = {row[0]: dict(zip(table["headers"], row)) for row in table["data"]}
    assert rows["Burmese"]["5th pct"] < rows["Burmese"]["median"] < rows["Burmese"]["95th pct"]
    assert rows["French"]["median"] < rows["Burmese"]["median"] and rows["Burmese"]["sentences"] == 997
    with pytest.raises(AppError, match="no language of that name"):
        client.predict(["GPT-2 (gpt2)"], "", ["Burmese"], "dev", "Klingon", False, api_name="/premium_spread")
    with pytest.raises(AppError, match="at least one language"):
        client.predict(["GPT-2 (gpt2)"], "", [], "dev", "English", False, api_name="/premium_spread")


def test_a_person_sees_the_spread_of_sentence_premiums(page):
    page.get_by_role("tab", name="Tokenizer language cost").click()
    page.get_by_text("Whole corpus: all 204 FLORES languages").click()
    page.get_by_role("button", name="Show the spread").click()
    spread = page.locator("#premium-spread")
    expect(spread).to_contain_text("5th to 95th percentile", timeout=120_000)
    expect(spread.locator("svg text", has_text="Burmese")).to_have_count(1)
    expect(spread.locator("svg rect").first).to_be_visible()
