"""Text-to-image pipelines through diffusers, from a Hub id or a local directory."""

from __future__ import annotations

import torch

from playground.registry import ModelSpec
from playground.settings import Settings


def load_text_to_image(spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings):
    from diffusers import AutoPipelineForText2Image

    pipeline = AutoPipelineForText2Image.from_pretrained(
        spec.source, torch_dtype=dtype, local_files_only=settings.offline
    )
    pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
