"""Text-to-image in playground/: the knobs' validation, reproducible generation, step previews, Stop,
scheduler isolation and the same-seed grid, on the tiny random Stable Diffusion pipeline (real classes)
loaded through the registry and cache like a user's local model."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import pytest
import torch
from PIL import Image

from playground.core.errors import PlaygroundError
from playground.core.registry import ModelSpec
from playground.core.settings import Limits
from playground.text_to_image.latent_preview import latents_to_rgb, model_input_scale
from playground.text_to_image.loader import load_text_to_image
from playground.text_to_image.pipeline import (
    SCHEDULERS, ImageRequest, Result, Step, denoise_with_previews, grid_requests, model_defaults,
    request_pipeline,
)
from playground.views.text_to_image import gallery_with, png_parameters

LIMITS = Limits()
SMALL = ImageRequest("a red lighthouse", steps=3, guidance=0, seed=7, scheduler="Euler", width=64, height=64)


@pytest.fixture(scope="module")
def pipeline(service):
    return service.load("text_to_image")


def generate(pipeline, request: ImageRequest, model: str = "tiny") -> Result:
    """The app's path: the pipeline runs on denoise_with_previews' worker thread."""
    return list(denoise_with_previews(pipeline, request, model, previews=False))[-1]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="png")
    return buffer.getvalue()


@pytest.mark.parametrize("change, message", [
    ({"prompt": "   "}, "Enter a prompt"),
    ({"prompt": "x" * 9_000}, "9,000 characters"),
    ({"steps": 10_000}, r"number of steps must be a whole number from 1 to 50 \(the server's limit"),
    ({"steps": 0}, "from 1 to 50"),
    ({"steps": 2.5}, "whole number"),
    ({"guidance": math.nan}, "must be a number"),
    ({"guidance": -1}, "between 0 and 30"),
    ({"width": 100}, "multiple of 8 .*try 96 or 104"),
    ({"height": 100_000}, "height must be a whole number from 64 to 1,024"),
    ({"width": 8}, "from 64 to"),
    ({"seed": 2**40}, "seed must be a whole number from -1 to 4,294,967,295"),
    ({"scheduler": "Karras?"}, "Unknown scheduler"),
    ({"negative_prompt": None}, None),  # an absent negative prompt is simply empty
])
def test_bad_knobs_get_a_clear_message(change, message):
    request = replace(SMALL, **change)
    if message is None:
        assert request.validated(LIMITS).negative_prompt == ""
        return
    with pytest.raises(PlaygroundError, match=message):
        request.validated(LIMITS)


def test_limits_are_configurable():
    generous = Limits(max_diffusion_steps=200, max_image_side=2048)
    assert replace(SMALL, steps=150, width=2048).validated(generous).steps == 150
    with pytest.raises(PlaygroundError, match="from 1 to 50"):
        replace(SMALL, steps=150).validated(LIMITS)


def test_random_seed_is_resolved_and_reported():
    seeds = {replace(SMALL, seed=-1).validated(LIMITS).seed for _ in range(5)}
    assert len(seeds) > 1 and all(0 <= seed < 2**32 for seed in seeds)


def test_same_seed_gives_the_same_image_bytes(pipeline):
    first = generate(pipeline, SMALL, "tiny").image
    second = generate(pipeline, SMALL, "tiny").image
    other_seed = generate(pipeline, replace(SMALL, seed=8), "tiny").image
    assert first.size == (64, 64)
    assert png_bytes(first) == png_bytes(second)
    assert png_bytes(first) != png_bytes(other_seed)


def test_settings_are_embedded_in_the_png(pipeline, tmp_path):
    request = replace(SMALL, negative_prompt="blurry", guidance=2.5)
    result = generate(pipeline, request, "tiny model")
    path = tmp_path / "result.png"
    result.image.save(path, pnginfo=_text_chunks(result.image))
    assert png_parameters(path) == ("a red lighthouse\nNegative prompt: blurry\n"
                                    "Steps: 3, Sampler: Euler, CFG scale: 2.5, "
                                    "Seed: 7, Size: 64x64, Model: tiny model")
    gallery = gallery_with([(str(path), "older")] * 30, str(path), limit=24)
    assert len(gallery) == 24 and gallery[0][1].startswith("a red lighthouse · Negative prompt: blurry · Steps: 3")


def _text_chunks(image: Image.Image):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in image.info.items():
        info.add_text(key, value)
    return info


def test_every_step_yields_a_preview_then_the_image(pipeline):
    events = list(denoise_with_previews(pipeline, replace(SMALL, steps=4, width=128, height=64), "tiny"))
    steps, result = events[:-1], events[-1]
    assert [type(event) for event in events] == [Step] * 4 + [Result]
    assert [step.index for step in steps] == [1, 2, 3, 4] and result.steps == steps
    assert all(step.preview.size == (128, 64) for step in steps)  # latents are 16x8: previews at the image's shape
    assert steps[0].caption == "step 1/4 (t=999)"
    # The previews track the latents: successive steps differ, as the noise is removed.
    assert png_bytes(steps[0].preview) != png_bytes(steps[-1].preview)


def test_stop_ends_the_run_within_a_step(pipeline):
    unet_calls = []
    hook = pipeline.unet.register_forward_hook(lambda *_: unet_calls.append(1))
    try:
        run = denoise_with_previews(pipeline, replace(SMALL, steps=40), "tiny")
        assert next(run).index == 1
        run.close()  # what Gradio does when the person presses Stop
        calls_at_stop = len(unet_calls)
        assert calls_at_stop < 5, "the pipeline kept denoising after Stop"
        assert len(unet_calls) == calls_at_stop  # close() waited for the worker: nothing runs afterwards
    finally:
        hook.remove()


def test_scheduler_choice_never_touches_the_cached_pipeline(pipeline):
    cached = pipeline.scheduler
    images = {}
    for name in SCHEDULERS:
        images[name] = png_bytes(generate(pipeline, replace(SMALL, scheduler=name), "tiny").image)
        assert pipeline.scheduler is cached and pipeline.scheduler.step_index is None
    assert images["Model default"] == images["Euler"]  # the tiny model ships SD-Turbo's Euler scheduler
    assert len({images["Euler"], images["DDIM"], images["DPM++ 2M"], images["Euler ancestral"]}) == 4
    run = request_pipeline(pipeline, "DDIM")
    assert type(run.scheduler).__name__ == "DDIMScheduler" and run.unet is pipeline.unet  # weights shared


def test_guidance_above_one_uses_the_negative_prompt(pipeline):
    without = png_bytes(generate(pipeline, replace(SMALL, guidance=5), "tiny").image)
    negative = png_bytes(generate(pipeline, replace(SMALL, guidance=5, negative_prompt="fog"), "tiny").image)
    ignored = png_bytes(generate(pipeline, replace(SMALL, guidance=0, negative_prompt="fog"), "tiny").image)
    assert without != negative
    assert ignored == png_bytes(generate(pipeline, SMALL, "tiny").image)  # CFG off: negative prompt unused


def test_latent_preview_uses_the_sd_colour_map():
    latents = torch.zeros(1, 4, 2, 3)
    assert latents_to_rgb(latents, size=(24, 16)).getpixel((0, 0)) == (128, 128, 128)  # zero latents: mid grey
    latents[0, 3] = -2.0  # a negative 4th channel adds (0.42, 0.52, 1.44) to R, G, B: a pale blue
    red, green, blue = latents_to_rgb(latents, size=(24, 16)).getpixel((1, 1))
    assert blue == 255 and red < green < blue
    assert latents_to_rgb(torch.zeros(1, 4096, 64)) is None  # packed (Flux-style) latents: no preview


def test_previews_of_sigma_schedulers_are_scaled_like_the_unet_input(pipeline):
    euler = request_pipeline(pipeline, "Euler").scheduler
    euler.set_timesteps(4)
    euler._step_index = 0
    assert model_input_scale(euler) == pytest.approx((1 + float(euler.sigmas[0]) ** 2) ** -0.5)
    assert model_input_scale(euler) < 0.1
    ddim = request_pipeline(pipeline, "DDIM").scheduler
    ddim.set_timesteps(4)
    assert model_input_scale(ddim) == 1.0


def test_grid_is_every_pair_with_one_seed():
    requests = grid_requests(SMALL, "0, 2.5, 2.5", "1; 3", LIMITS)
    assert [(r.guidance, r.steps) for r in requests] == [(0, 1), (0, 3), (2.5, 1), (2.5, 3)]
    assert {r.seed for r in requests} == {SMALL.seed}


@pytest.mark.parametrize("guidances, steps, message", [
    ("", "1", "Enter the guidance values"),
    ("0, lots", "1", "'lots' in the guidance values is not a number"),
    ("0, 1, 2, 3", "1, 2, 3", "12 images .* the limit is 9"),
    ("0, 1", "40, 50", "180 denoising steps in all; the limit is 100"),
    ("0", "10000", "step counts must be a whole number from 1 to 50"),
    ("inf", "1", "must be a number"),
])
def test_bad_grids_get_a_clear_message(guidances, steps, message):
    with pytest.raises(PlaygroundError, match=message):
        grid_requests(SMALL, guidances, steps, LIMITS)


def test_defaults_follow_the_model():
    turbo = model_defaults(ModelSpec("text_to_image", "stabilityai/sd-turbo", "stabilityai/sd-turbo", "fast"))
    classic = model_defaults(ModelSpec("text_to_image", "sd21", "stabilityai/stable-diffusion-2-1-base"))
    xl = model_defaults(ModelSpec("text_to_image", "sdxl", "stabilityai/stable-diffusion-xl-base-1.0"))
    assert (turbo.steps, turbo.guidance, turbo.side) == (4, 0.0, 512) and "guidance 0" in turbo.hint
    assert (classic.steps, classic.guidance, classic.side) == (25, 7.5, 512)
    assert xl.side == 1024


def test_loader_falls_back_to_full_weights_and_halves_them(test_settings, service):
    spec = service.registry.get("text_to_image", None)
    half = load_text_to_image(spec, "cpu", torch.float16, test_settings)  # no fp16 variant in the tiny model
    assert half.unet.dtype == torch.float16 and half.text_encoder.dtype == torch.float16
    assert "safety_checker" not in half.components or half.safety_checker is None
