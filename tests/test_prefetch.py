"""Prefetch: local and offline models are readied, unreachable ones are reported, not fatal."""

from __future__ import annotations

from playground.core.registry import SMOLLM2_SOURCE, Registry
from playground.core.settings import load_settings
from playground.prefetch import models_to_fetch, prefetch


def test_prefetch_readies_local_models_and_reports_unreachable_ones(base_settings, tmp_path, capsys):
    settings = load_settings(
        overrides={"cache_dir": str(base_settings.cache_dir), "models": {"language": [SMOLLM2_SOURCE, str(tmp_path)]}},
        environ={},
    )
    specs = models_to_fetch(Registry.from_settings(settings), ["language"], everything=True)
    failures = prefetch(specs, settings)
    printed = capsys.readouterr().out
    assert "local, nothing to download" in printed
    assert "converted to" in printed  # the offline GGUF is dequantised into the cache once
    failed = {spec.source for spec, _ in failures}
    assert "Qwen/Qwen2.5-0.5B-Instruct" in failed  # no hub here: reported with its reason
    assert SMOLLM2_SOURCE not in failed and str(tmp_path) not in failed


def test_default_prefetch_takes_one_model_per_kind():
    registry = Registry.from_settings(load_settings(environ={}))
    specs = models_to_fetch(registry, ["language", "clip", "text_to_image"], everything=False)
    assert [spec.name for spec in specs] == [registry.default(k) for k in ("language", "clip", "text_to_image")]
