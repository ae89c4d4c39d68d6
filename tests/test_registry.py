"""Registry and settings: only registered models load, failures explain themselves, overrides work."""

from __future__ import annotations

import pytest

from playground.core.errors import ModelUnavailableError, PlaygroundError
from playground.core.registry import SMOLLM2_SOURCE, Registry
from playground.core.service import ModelService
from playground.core.settings import load_settings


@pytest.mark.parametrize("name", ["../../etc", "/etc/passwd", "https://evil.example/model", "no/such-model", "", None])
def test_only_registered_names_resolve(service, name):
    if name in ("", None):  # blank means the default
        assert service.registry.get("language", name).name == service.registry.default("language")
        return
    with pytest.raises(PlaygroundError, match="Unknown language model.*Choose one of"):
        service.registry.get("language", name)


def test_settings_layers_config_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "playground.toml"
    config.write_text('device = "cpu"\n[models]\nlanguage = ["from-file/model"]\n[limits]\nmax_new_tokens = 64\n')
    environ = {"PLAYGROUND_LANGUAGE_MODELS": "from-env/model", "PLAYGROUND_MAX_NEW_TOKENS": "32"}
    settings = load_settings(config, overrides={"dtype": "float32"}, environ=environ)
    assert settings.device == "cpu" and settings.dtype == "float32"
    assert settings.models["language"] == ("from-env/model",)
    assert settings.limits.max_new_tokens == 32
    registry = Registry.from_settings(settings)
    assert registry.default("language") == "from-env/model"
    assert "Qwen/Qwen2.5-0.5B-Instruct" in registry.names("language")  # built-ins stay selectable


def test_unknown_settings_are_rejected(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("devcie = 'cpu'\n")
    with pytest.raises(ValueError, match="Unknown settings: devcie"):
        load_settings(config, environ={})


def test_hub_model_unavailable_offline_says_how_to_fix(base_settings):
    service = ModelService(base_settings)
    with pytest.raises(ModelUnavailableError, match="offline.*prefetch"):
        service.load("language", "Qwen/Qwen2.5-0.5B-Instruct")


def test_missing_local_directory_is_named(base_settings, tmp_path):
    missing = str(tmp_path / "not-there")
    settings = load_settings(overrides={"cache_dir": str(base_settings.cache_dir), "models": {"language": [missing]}},
                             environ={})
    service = ModelService(settings)
    with pytest.raises(ModelUnavailableError, match="local path does not exist"):
        service.load("language", "local: not-there")


def test_local_sources_show_names_not_paths():
    settings = load_settings(environ={}, overrides={"models": {
        "language": ["/srv/models/llama", "/home/me/other/llama"], "clip": ["ViT-B-32:/srv/clip/weights.safetensors"]}})
    registry = Registry.from_settings(settings)
    assert registry.names("language")[:2] == ["local: llama", "local: llama (2)"]  # one name, one model
    assert registry.default("clip") == "local: ViT-B-32 weights.safetensors"
    assert registry.get("language", "local: llama (2)").source == "/home/me/other/llama"


def test_offline_demo_model_is_real_and_answers(service):
    from playground.language.sampling_settings import SamplingSettings
    from playground.language.generation import encode_prompt, generate

    lm = service.load("language", "SmolLM2-135M-Instruct (offline demo)")
    assert service.registry.get("language", "SmolLM2-135M-Instruct (offline demo)").source == SMOLLM2_SOURCE
    ids = encode_prompt(lm, "What is the capital of France?", use_chat_template=True)
    answer = generate(lm, ids, SamplingSettings(temperature=0), max_new_tokens=12).text
    assert "Paris" in answer
