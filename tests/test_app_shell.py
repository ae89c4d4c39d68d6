"""The app shell: flags, the tab list, the cache status endpoint, and the page a person sees."""

from __future__ import annotations

import re

from playwright.sync_api import expect

import app
from tabs import tab_modules


def test_model_flag_adds_a_model_and_makes_it_the_default(tmp_path):
    args = app.parse_args(["--model", f"language={tmp_path}", "--device", "cpu", "--preload", "language"])
    settings = app.settings_from_args(args)
    assert settings.models["language"] == (str(tmp_path),)
    assert settings.device == "cpu" and settings.preload == ("language",)


def test_cache_status_endpoint_lists_loaded_models(service, client):
    service.load("language")
    summary, table = client.predict(api_name="/cache_status")
    assert "Device **cpu**" in summary
    assert service.registry.get("language", None).name in [row[1] for row in table["data"]]  # its name, not its path


def test_page_shows_every_tab_and_the_loaded_models(service, page):
    expect(page.get_by_role("heading", name="Foundation Models Playground")).to_be_visible()
    for module in tab_modules():
        expect(page.get_by_role("tab", name=module.TITLE)).to_be_visible()
    service.load("language")
    page.get_by_text("Loaded models").click()
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#cache-status")).to_contain_text(re.compile("tiny-llama-random"))
