"""Cheap pictures of the latents during denoising, without running the VAE decoder.

Stable Diffusion's VAE latents are 4 channels at 1/8 of the image size; a fixed linear map of those
4 channels to RGB (fitted by the community on SD 1.x images, used by AUTOMATIC1111 and ComfyUI)
already shows the layout and colours. It costs a 4x3 matrix product per latent pixel instead of a
decoder pass, so it can run after every step.
"""

from __future__ import annotations

import torch
from PIL import Image

# Rows: latent channels; columns: R, G, B contributions (AUTOMATIC1111 `sd_vae_approx.cheap_approximation`).
SD_LATENT_RGB_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
PREVIEW_SIDE = 256  # previews fit in this box: enough to see the picture form, small to stream


def model_input_scale(scheduler) -> float:
    """Sigma-based schedulers (Euler, ...) keep latents at a variance of 1 + sigma²; the UNet sees them
    divided by sqrt(1 + sigma²). Previews do the same, or early steps are only saturated noise."""
    if getattr(scheduler, "init_noise_sigma", 1.0) == 1.0 or getattr(scheduler, "step_index", None) is None:
        return 1.0  # variance-preserving schedulers (DDIM, DPM-Solver, ...) already keep them at 1
    sigmas = scheduler.sigmas
    sigma = float(sigmas[min(scheduler.step_index, len(sigmas) - 1)])
    return (1.0 + sigma * sigma) ** -0.5


def latents_to_rgb(latents: torch.Tensor, scale: float = 1.0, size: tuple[int, int] | None = None) -> Image.Image | None:
    """The first image of a (batch, channels, h, w) latent batch as an approximate RGB picture, resized to
    fit `size` (width, height) within PREVIEW_SIDE. Latents that are not SD's 4 channels show their
    first three channels, each stretched to its own range: the shapes, not the colours. None for
    latents that are not image-shaped (e.g. Flux packs them into token sequences)."""
    if latents.ndim != 4 or latents.shape[1] < 3:
        return None
    latent = latents[0].float() * scale
    if latent.shape[0] == 4:
        factors = torch.tensor(SD_LATENT_RGB_FACTORS, device=latent.device)
        rgb = ((torch.einsum("chw,cr->hwr", latent, factors) + 1) / 2).clamp(0, 1)
    else:
        channels = latent[:3].permute(1, 2, 0)
        low, high = channels.amin(dim=(0, 1)), channels.amax(dim=(0, 1))
        rgb = (channels - low) / (high - low).clamp_min(1e-6)
    pixels = (rgb * 255).round().to(torch.uint8).cpu().numpy()
    image = Image.fromarray(pixels)
    return fit_preview(image, size or (image.width * 8, image.height * 8))


def fit_preview(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A preview resized to the image's shape (width, height), shrunk to fit within PREVIEW_SIDE."""
    width, height = size
    shrink = min(1.0, PREVIEW_SIDE / max(width, height))
    return image.resize((max(1, round(width * shrink)), max(1, round(height * shrink))), Image.Resampling.BILINEAR)
