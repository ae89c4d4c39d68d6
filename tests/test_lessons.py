"""Lessons: every preset runs through its tab's endpoint; links open tabs with values filled in."""

from __future__ import annotations

import re
from urllib.parse import quote, urlparse

import pytest
from playwright.sync_api import expect

from bench.load_test import client_arguments
from playground.core.lessons import deep_link_query, load_lessons
from tabs import tab_modules

LESSONS = load_lessons()
PRESETS = [(tab, preset) for tab, lesson in LESSONS.items() for preset in lesson.presets]
TITLES = {module.__name__.rsplit(".", 1)[-1]: module.TITLE for module in tab_modules()}


def test_every_tab_has_a_lesson_with_two_to_five_presets():
    assert set(LESSONS) == set(TITLES)
    for lesson in LESSONS.values():
        assert 2 <= len(lesson.presets) <= 5, lesson.tab
        assert 0 < len(lesson.explanation.split()) < 200, f"{lesson.tab}: keep the explanation short"


@pytest.mark.parametrize(("tab", "preset"), PRESETS, ids=[f"{tab}-{preset.id}" for tab, preset in PRESETS])
def test_preset_runs_through_its_endpoint(client, tab, preset):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert preset.endpoint in api, f"{tab}/{preset.id} names a missing endpoint"
    names = {parameter["parameter_name"] for parameter in api[preset.endpoint]["parameters"]}
    assert set(preset.values) <= names, f"unknown parameters {set(preset.values) - names}"
    result = client.predict(**client_arguments(dict(preset.values)), api_name=preset.endpoint)
    assert result is not None


def test_a_deep_link_opens_the_tab_with_its_values(page, app_url):
    page.goto(app_url + deep_link_query("sampling", {"prompt": "Once upon a time", "temperature": 0.3}))
    expect(page.get_by_role("tab", name=TITLES["sampling"], selected=True)).to_be_visible()
    expect(page.get_by_label("Prompt", exact=False).first).to_have_value("Once upon a time")


def test_a_bad_deep_link_is_ignored_with_a_note(page, app_url):
    page.goto(app_url + "?tab=sampling&temperature=NaN&nonsense=1")
    expect(page.get_by_text(re.compile("Ignored link values"))).to_be_visible()


def test_a_link_cannot_put_its_html_in_the_page(page, app_url):
    """A link is anyone's to write: what it says shows as text, and nothing is fetched from a host it names."""
    hosts = []
    page.on("request", lambda request: hosts.append(urlparse(request.url).hostname))
    tag = "<img src=//evil.invalid/tab.png>"
    page.goto(app_url + "?tab=" + quote(tag))
    expect(page.get_by_text(f"This link names an unknown tab '{tag}'")).to_be_visible()

    link = "<a href=//evil.invalid/login>login</a>"
    page.goto(app_url + f"?tab=sampling&preset={quote(link)}&{quote('<img src=//evil.invalid/name.png>')}=1")
    expect(page.get_by_text(re.compile(re.escape("preset=<a href=//evil.invalid/login>")))).to_be_visible()
    expect(page.locator("a[href*='evil.invalid']")).to_have_count(0)

    # Labels from a link, echoed into the result's Markdown once the visitor presses Classify.
    labels = "<img src=//evil.invalid/a.png>\n![b](//evil.invalid/b.png)"
    page.goto(app_url + f"?tab=clip_zero_shot&labels={quote(labels)}")
    page.locator("#clip-gallery .gallery-item").nth(1).click()  # the cat photo
    expect(page.locator("#clip-image img")).to_be_visible()
    page.get_by_role("button", name="Classify", exact=True).click()
    expect(page.locator("#clip-summary")).to_contain_text("evil.invalid", timeout=60_000)
    assert "evil.invalid" not in hosts


# Where each tab's first preset shows its result, and what it must contain.
FIRST_PRESET_RESULT = {
    "sampling": ("#sampling-stage-chart", "0 (greedy)"),
    "few_shot": ("#few-shot-probabilities", "Neutral"),  # the sentiment preset
    "chain_of_thought": ("#cot-verdict-0", "reference 11"),
    "clip_zero_shot": ("#clip-probabilities", "a bird"),
    "tokenizer_cost": ("#tokenizer-cost-table", "Burmese"),
    "text_to_image": ("#t2i-grid-status", "2/2 images"),
    "inside_the_model": ("#structured-summary", "with the grammar"),
}


@pytest.mark.parametrize("tab", sorted(LESSONS))
def test_clicking_a_preset_shows_its_result(page, tab):
    page.get_by_role("tab", name=TITLES[tab]).click()
    preset = LESSONS[tab].presets[0]
    page.get_by_role("button", name=preset.label).click()
    selector, text = FIRST_PRESET_RESULT[tab]
    expect(page.locator(selector)).to_contain_text(text, timeout=120_000)
