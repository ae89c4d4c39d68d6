"""CLIP models through open_clip: a pretrained tag from the Hub, or a local checkpoint file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from playground.registry import ModelSpec
from playground.settings import Settings
from playground.torchvision_compat import ensure_torchvision_importable


@dataclass
class ClipModel:
    name: str
    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]
    tokenizer: Callable[[list[str]], torch.Tensor]
    device: torch.device

    def torch_modules(self) -> list[torch.nn.Module]:
        return [self.model]


def parse_clip_source(source: str) -> tuple[str, str | None]:
    """`ARCHITECTURE:WEIGHTS` (a pretrained tag or a checkpoint path), or an `hf-hub:` id."""
    if source.startswith("hf-hub:"):
        return source, None
    architecture, _, weights = source.partition(":")
    return architecture, weights or None


def load_clip_model(spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings) -> ClipModel:
    ensure_torchvision_importable()
    import open_clip

    architecture, weights = parse_clip_source(spec.source)
    precision = "fp16" if dtype == torch.float16 else "bf16" if dtype == torch.bfloat16 else "fp32"
    model, _, preprocess = open_clip.create_model_and_transforms(
        architecture, pretrained=weights, device=device, precision=precision
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(architecture)
    return ClipModel(spec.name, model, preprocess, tokenizer, torch.device(device))
