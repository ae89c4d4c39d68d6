"""One loader per model kind. Each takes a registry entry and returns an object the cache owns."""

from __future__ import annotations

from typing import Any, Callable

import torch

from playground.core.registry import ModelSpec
from playground.core.settings import Settings

Loader = Callable[[ModelSpec, str, torch.dtype, Settings], Any]


def loader_for(kind: str) -> Loader:
    # Imported on demand: each kind pulls in a heavy library (transformers, open_clip, diffusers).
    if kind == "language":
        from playground.language.loader import load_language_model

        return load_language_model
    if kind == "clip":
        from playground.clip.loader import load_clip_model

        return load_clip_model
    if kind == "text_to_image":
        from playground.text_to_image.loader import load_text_to_image

        return load_text_to_image
    if kind == "preview_decoder":
        from playground.text_to_image.tiny_decoder import load_preview_decoder

        return load_preview_decoder
    if kind == "tokenizer":
        from playground.tokenizers.loader import load_tokenizer

        return load_tokenizer
    raise KeyError(f"no loader for model kind {kind!r}")
