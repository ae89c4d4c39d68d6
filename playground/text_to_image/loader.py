"""Text-to-image pipelines through diffusers, from a Hub id or a local directory."""

from __future__ import annotations

from typing import Any

import torch

from playground.core.registry import ModelSpec
from playground.core.settings import Settings


def load_text_to_image(spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings):
    from diffusers import AutoPipelineForText2Image, DiffusionPipeline

    # Never run code shipped with a model (no trust_remote_code, no custom_pipeline).
    options: dict[str, Any] = {"dtype": dtype, "local_files_only": settings.offline}
    config = DiffusionPipeline.load_config(spec.source, local_files_only=settings.offline)
    if "safety_checker" in config:
        # The classifier adds ~1.2 GB and a download; a classroom demo shows what the model makes.
        options |= {"safety_checker": None, "requires_safety_checker": False}
    pipeline = None
    if dtype == torch.float16:
        try:  # Hub repos often ship half-size fp16 weights: half the download and the load time
            pipeline = AutoPipelineForText2Image.from_pretrained(spec.source, variant="fp16", **options)
        except (OSError, ValueError):
            pipeline = None  # no fp16 variant: load the full weights and convert them below
    if pipeline is None:
        pipeline = AutoPipelineForText2Image.from_pretrained(spec.source, **options)
    pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
