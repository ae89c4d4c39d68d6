"""TAESD step previews: a random-weight `AutoencoderTiny` (tests/factories/preview_decoder.py) loaded through
the registry and cache decodes each step's latents exactly as a plain `decode` call does; without a TAESD on
the server the linear latent map stays, and says why."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from playground.core.errors import PlaygroundError
from playground.core.registry import Registry
from playground.core.service import ModelService
from playground.core.settings import load_settings
from playground.text_to_image.latent_preview import fit_preview, model_input_scale
from playground.text_to_image.pipeline import ImageRequest, Result, generate_image, denoise_with_previews
from playground.text_to_image.tiny_decoder import (
    LINEAR, TINY_DECODER, choose_previews, decoder_space, latent_space,
)

REQUEST = ImageRequest("a red lighthouse", steps=3, guidance=0, seed=7, scheduler="Euler", width=128, height=64)


@pytest.fixture(scope="module")
def pipeline(service):
    return service.load("text_to_image")


def plain_decode(decoder, latents: torch.Tensor, scale: float):
    """diffusers' own call, as a TAESD user writes it, on the same latents."""
    from PIL import Image

    with torch.no_grad():
        sample = decoder.decode(latents * scale).sample[0]
    pixels = (sample / 2 + 0.5).clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return fit_preview(Image.fromarray(pixels), (REQUEST.width, REQUEST.height))


def test_taesd_previews_are_the_decoders_own_output_for_each_steps_latents(service, pipeline):
    from diffusers import AutoencoderTiny

    choice = choose_previews(service, pipeline, TINY_DECODER)
    assert isinstance(choice.decoder, AutoencoderTiny) and choice.decoder is service.load("preview_decoder")
    assert "decoded by local: tiny-taesd-random-v1" in choice.note
    events = list(denoise_with_previews(pipeline, REQUEST, "tiny", decoder=choice.decoder))
    steps, result = events[:-1], events[-1]
    assert isinstance(result, Result) and len(steps) == 3

    seen = []  # the same seeded run, its latents and preview scale kept at every step

    def keep(run, index, timestep, latents):
        seen.append((latents.clone(), model_input_scale(run.scheduler)))

    plain = generate_image(pipeline, REQUEST, "tiny", on_step=keep)
    assert plain.image.tobytes() == result.image.tobytes()  # previews do not change the image
    for step, (latents, scale) in zip(steps, seen):
        assert step.preview.size == (128, 64)  # latents 16x8, decoded at 8x, fitted to the image's shape
        assert np.array_equal(np.asarray(step.preview), np.asarray(plain_decode(choice.decoder, latents, scale)))
    linear = list(denoise_with_previews(pipeline, REQUEST, "tiny"))[0].preview
    assert linear.tobytes() != steps[0].preview.tobytes()  # a different picture from the linear map


def test_without_a_taesd_the_linear_map_stays_and_says_why(test_settings, pipeline):
    # The built-in entries only (madebyollin/taesd): offline and never downloaded here.
    models = {kind: sources for kind, sources in test_settings.models.items() if kind != "preview_decoder"}
    service = ModelService(load_settings(overrides={"cache_dir": str(test_settings.cache_dir), "models": models},
                                         environ={}))
    assert service.registry.get("preview_decoder", None).source == "madebyollin/taesd"
    choice = choose_previews(service, pipeline, TINY_DECODER)
    assert choice.decoder is None
    assert choice.note.startswith("previews: the linear latent map")
    assert "madebyollin/taesd is not available on this server" in choice.note
    assert choose_previews(service, pipeline, LINEAR).decoder is None
    with pytest.raises(PlaygroundError, match="Unknown preview"):
        choose_previews(service, pipeline, "../../etc/passwd")


def test_each_latent_space_gets_its_own_taesd(pipeline):
    assert latent_space(pipeline) == "sd"  # SD 1.x/2.x latents (4 channels, no SDXL time embedding)
    specs = Registry.from_settings(load_settings(environ={})).specs("preview_decoder")
    assert {spec.source: decoder_space(spec) for spec in specs} == {
        "madebyollin/taesd": "sd", "madebyollin/taesdxl": "sdxl"}
