"""A fresh clone with no Hub, in the browser: only the built-in registry and what the run command installs.
The language tabs fall back to the offline SmolLM2 and say so, their results show, the tokenizer tab counts,
and CLIP and text-to-image say what they need as soon as their tab opens."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from playground.core.service import ModelService
from playground.core.settings import load_settings
from tests.conftest import launched_app

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
SLOW = 90_000  # ms: the first request loads SmolLM2 on a shared 2-core CPU


@pytest.fixture(scope="module")
def offline_page(base_settings, browser_context):
    service = ModelService(load_settings(overrides={"cache_dir": str(base_settings.cache_dir)}, environ={}))
    with launched_app(service) as url:
        tab = browser_context.new_page()
        tab.set_default_timeout(90_000)
        tab.goto(url)
        yield tab
        tab.close()


def test_language_tabs_run_on_the_offline_model_and_say_so(offline_page):
    page = offline_page
    page.get_by_role("tab", name="Sampling knobs").click()
    expect(page.get_by_text(f"offline: using {SMOLLM2}").first).to_be_visible()
    page.get_by_role("button", name="Show the next-token distribution").click()
    expect(page.locator("#sampling-stage-chart")).to_contain_text("T = 1 (no change)", timeout=SLOW)
    page.get_by_role("tab", name="Few-shot builder").click()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#few-shot-probabilities")).to_contain_text("%", timeout=SLOW)
    page.get_by_role("tab", name="CoT compare").click()
    expect(page.get_by_text(f"offline: using {SMOLLM2}").last).to_be_visible()


def test_tokenizer_tab_counts_with_the_installed_files(offline_page):
    page = offline_page
    page.get_by_role("tab", name="Tokenizer language cost").click()
    page.get_by_role("button", name="Count tokens").click()
    expect(page.locator("#tokenizer-cost-table")).to_contain_text("GPT-4o (o200k_base)", timeout=SLOW)


@pytest.mark.parametrize("tab", ["CLIP zero-shot", "Text-to-image"])
def test_clip_and_text_to_image_say_at_once_what_they_need(offline_page, tab):
    page = offline_page
    page.get_by_role("tab", name=tab).click()
    expect(page.get_by_text("Nothing here can load yet.").filter(visible=True).first).to_be_visible(timeout=5_000)
    expect(page.get_by_text("python -m playground.prefetch").filter(visible=True).first).to_be_visible(timeout=5_000)
