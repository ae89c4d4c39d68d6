"""Shared fixtures: settings that point the registry at local test models, the service, a launched
app, a gradio_client, and a headless Chromium page. Tests need no network and no GPU."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Offline and quiet before any library reads its environment.
os.environ.update(
    GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
    TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
    # Idle OpenMP threads sleep instead of spinning: on a busy shared CPU, spinning made small torch ops 50x slower.
    OMP_WAIT_POLICY="PASSIVE",
)
for _name in [name for name in os.environ if name.startswith("PLAYGROUND_")]:
    del os.environ[_name]

import pytest  # noqa: E402

import playground  # noqa: E402,F401  (makes torchvision importable before anything else imports it)
from playground.core.registry import SMOLLM2_SOURCE, smollm2_gguf_path  # noqa: E402
from playground.core.service import ModelService  # noqa: E402
from playground.core.settings import Settings, load_settings  # noqa: E402
from tests.factories import REPO, factory_modules  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings with the cache (GGUF conversions) inside the checkout and no registered test models."""
    if smollm2_gguf_path() is None:
        pytest.fail("SmolLM2 GGUF missing: run scripts/test-assets.sh (the README's test command does)")
    return load_settings(overrides={"cache_dir": str(REPO / ".cache" / "playground")}, environ={})


@pytest.fixture(scope="session")
def test_settings(base_settings: Settings) -> Settings:
    """Every kind's tiny random-weight model first (the default), then the real offline SmolLM2."""
    models: dict[str, list[str]] = {}
    for module in factory_modules():
        models.setdefault(module.KIND, []).append(module.build(base_settings))
    models.setdefault("language", []).append(SMOLLM2_SOURCE)
    return load_settings(overrides={"cache_dir": str(base_settings.cache_dir), "models": models}, environ={})


@pytest.fixture(scope="session")
def service(test_settings: Settings) -> ModelService:
    return ModelService(test_settings)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def launched_app(service: ModelService) -> Iterator[str]:
    """The whole app, launched on loopback for API and browser tests: its URL."""
    from app import build_app
    from serving import launch_options

    demo = build_app(service)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **launch_options(service.settings.limits))
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="session")
def app_url(service: ModelService):
    with launched_app(service) as url:
        yield url


@pytest.fixture(scope="session")
def client(app_url: str):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium missing: run scripts/test-assets.sh (the README's test command does)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser_context, app_url: str):
    """A fresh browser tab on the app."""
    tab = browser_context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(app_url)
    yield tab
    tab.close()
