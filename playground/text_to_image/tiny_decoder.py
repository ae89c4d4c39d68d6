"""Step previews from a real decoder: TAESD, the tiny autoencoder (`AutoencoderTiny`, madebyollin/taesd).

The linear latent map (latent_preview.py) shows layout and colour; TAESD is a small convolutional decoder
trained to turn the same latents into the picture the full VAE would, at a fraction of its cost. It reads
diffusion latents as they are (already multiplied by the VAE's scaling factor: 0.18215 for SD, 0.13025 for
SDXL), so a pipeline's `decode(latents / vae.scaling_factor)` is a no-op division for it. One TAESD fits one
latent space: `taesd` for SD 1.x/2.x (SD-Turbo too), `taesdxl` for SDXL.

The decoder is a registered model (kind `preview_decoder`), loaded once through the cache; an operator can
point it at a local directory. Without one that loads (offline, never downloaded), previews fall back to the
linear map and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from playground.core.errors import PlaygroundError
from playground.core.registry import ModelSpec
from playground.core.service import ModelService
from playground.core.settings import Settings
from playground.text_to_image.latent_preview import fit_preview

LINEAR = "Linear latent map"
TINY_DECODER = "TAESD (tiny autoencoder)"
PREVIEW_KINDS = (LINEAR, TINY_DECODER)


def load_preview_decoder(spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings):
    from diffusers import AutoencoderTiny

    decoder = AutoencoderTiny.from_pretrained(spec.source, torch_dtype=dtype, local_files_only=settings.offline)
    return decoder.to(device).eval()


def latent_space(pipeline) -> str | None:
    """Which TAESD fits a pipeline's latents: "sdxl", "sd", or None (other latent spaces: SD3, Flux...)."""
    unet = getattr(pipeline, "unet", None)
    if unet is None or unet.config.in_channels not in (4, 9):  # 9: inpainting UNets, same latents
        return None
    return "sdxl" if unet.config.get("addition_embed_type") == "text_time" else "sd"


def decoder_space(spec: ModelSpec) -> str:
    """The latent space a registered decoder is for, from its name: "xl" marks the SDXL one."""
    return "sdxl" if "xl" in spec.source.lower() else "sd"


@dataclass(frozen=True)
class PreviewChoice:
    decoder: Any | None  # a loaded AutoencoderTiny, or None for the linear map
    note: str  # what the previews are, and why, for the status line


def choose_previews(service: ModelService, pipeline, wanted: str) -> PreviewChoice:
    """The decoder for `wanted` previews, or the linear map with the reason TAESD is not used."""
    if wanted not in PREVIEW_KINDS:
        raise PlaygroundError(f"Unknown preview {str(wanted)[:40]!r}; choose one of: {', '.join(PREVIEW_KINDS)}.")
    if wanted == LINEAR:
        return PreviewChoice(None, "previews: the linear latent map")
    space = latent_space(pipeline)
    specs = [spec for spec in service.registry.specs("preview_decoder") if decoder_space(spec) == space]
    if space is None or not specs:
        return PreviewChoice(None, "previews: the linear latent map (no TAESD is registered for this model's "
                                   "latents)")
    try:
        return PreviewChoice(service.load_spec(specs[0]), f"previews: decoded by {specs[0].name}")
    except PlaygroundError:
        return PreviewChoice(None, f"previews: the linear latent map ({specs[0].name} is not available on this "
                                   "server; an operator can fetch it with `python -m playground.prefetch --kind "
                                   "preview_decoder` or register a local copy)")


@torch.inference_mode()
def decoded_preview(decoder, latents: torch.Tensor, scale: float, size: tuple[int, int]) -> Image.Image | None:
    """The first image of a latent batch through TAESD, fitted to the preview box like the linear map."""
    if latents.ndim != 4 or latents.shape[1] != decoder.config.latent_channels:
        return None
    sample = decoder.decode(latents[:1].to(decoder.device, decoder.dtype) * scale).sample[0]
    pixels = (sample.float() / 2 + 0.5).clamp(0, 1).mul(255).round().to(torch.uint8)
    return fit_preview(Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy()), size)
