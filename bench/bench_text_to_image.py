"""Text-to-image: the tab's step time vs a raw diffusers call on the same pipeline and settings, the cost of
the step previews (linear map and TAESD), and the step time of a real SD-Turbo-sized UNet on this machine.

    .venv/bin/python -m bench.bench_text_to_image               # CPU: 128x128, 2 steps for the big UNet
    .venv/bin/python -m bench.bench_text_to_image --side 256 --steps 4   # closer to a demo, ~4x slower

Two pipelines, both of the real diffusers classes with random weights (no diffusion weights can be had
offline; the architecture, not the values, sets the cost):
- "tiny": the test pipeline (tests/factories/diffusion.py), where fixed per-call costs weigh the most;
- "SD-Turbo-sized": SD 2.1's UNet (865M parameters, built from sd-turbo's unet/config.json) with a tiny
  VAE and a one-layer 1024-wide text encoder, so the time is the UNet's denoising steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see tests/conftest.py: spinning threads on a shared CPU
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is built locally

import torch  # noqa: E402

from bench.common import interleaved_medians, median_seconds, report  # noqa: E402
from playground.core.service import ModelService  # noqa: E402
from playground.core.settings import load_settings  # noqa: E402
from playground.text_to_image.latent_preview import latents_to_rgb  # noqa: E402
from playground.text_to_image.pipeline import ImageRequest, denoise_with_previews  # noqa: E402

# stabilityai/sd-turbo unet/config.json (the SD 2.1 UNet).
SD_TURBO_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
    norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0, act_fn="silu",
)




def tab_run(pipeline, request: ImageRequest, previews: bool, decoder=None):
    return lambda: list(denoise_with_previews(pipeline, request, "bench", previews=previews, decoder=decoder))[-1]


def taesd():
    """TAESD's architecture (diffusers' AutoencoderTiny defaults) with random weights: its real cost."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    return AutoencoderTiny().eval()


def raw_run(pipeline, request: ImageRequest):
    """What a diffusers user would write, on the cached pipeline itself."""
    def run():
        with torch.inference_mode():
            return pipeline(prompt=request.prompt, num_inference_steps=request.steps, guidance_scale=request.guidance,
                            width=request.width, height=request.height,
                            generator=torch.Generator(str(pipeline.device)).manual_seed(request.seed)).images[0]
    return run


def sd_turbo_sized_pipeline(tiny):
    """SD 2.1's UNet with random weights, around the tiny pipeline's tokenizer, scheduler and (8x) VAE."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD_TURBO_UNET).eval()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=1024, intermediate_size=1024, num_hidden_layers=1, num_attention_heads=16,
        max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )).eval()
    pipeline = StableDiffusionPipeline(
        vae=tiny.vae, text_encoder=text_encoder, tokenizer=tiny.tokenizer, unet=unet, scheduler=tiny.scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline, sum(p.numel() for p in unet.parameters())


def measure(label: str, pipeline, request: ImageRequest, repeats: int) -> None:
    same = tab_run(pipeline, request, previews=False)().image.tobytes() == raw_run(pipeline, request)().tobytes()
    print(f"\n{label}: {request.width}x{request.height}, {request.steps} steps, guidance {request.guidance:g} "
          f"(tab and raw images identical: {same})")
    tab, raw = interleaved_medians(tab_run(pipeline, request, previews=False), raw_run(pipeline, request), repeats)
    report("tab step time / raw diffusers step time", tab / request.steps, raw / request.steps, "goal <= 1.05")
    with_previews, without = interleaved_medians(tab_run(pipeline, request, previews=True),
                                                 tab_run(pipeline, request, previews=False), repeats)
    report("step time with previews / without", with_previews / request.steps, without / request.steps,
           "goal <= 1.20")
    decoder = taesd().to(pipeline.device, pipeline.dtype)
    with_taesd, plain = interleaved_medians(tab_run(pipeline, request, True, decoder),
                                            tab_run(pipeline, request, previews=False), repeats)
    report("step time with TAESD previews / plain step", with_taesd / request.steps, plain / request.steps,
           "(TAESD decodes every step at full size)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=128, help="image width and height for the SD-Turbo-sized UNet")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from tests.factories import diffusion

    settings = load_settings(overrides={"models": {"text_to_image": [diffusion.build(load_settings(environ={}))]}},
                             environ={})
    service = ModelService(settings)
    tiny = service.load("text_to_image")
    print(f"device {service.device}, dtype {service.dtype}, torch threads {torch.get_num_threads()}")
    request = ImageRequest("a watercolor lighthouse at sunset", steps=20, guidance=0, seed=1, width=256, height=256)
    latents = torch.randn(1, 4, 64, 64)
    preview_ms = median_seconds(lambda: latents_to_rgb(latents, 0.5, (512, 512)), repeats=50) * 1e3
    print(f"one step preview of 512x512 latents (64x64x4 -> 256x256 RGB): {preview_ms:.2f} ms")
    measure("tiny pipeline", tiny, request, repeats=5)
    measure("tiny pipeline with guidance (two UNet passes a step)", tiny, replace(request, guidance=7.5), repeats=5)

    started = time.perf_counter()
    big, parameters = sd_turbo_sized_pipeline(tiny)
    big.to(service.device, service.dtype)
    print(f"\nSD-Turbo-sized UNet: {parameters / 1e6:.0f}M parameters, built in {time.perf_counter() - started:.1f} s")
    request = replace(request, steps=args.steps, width=args.side, height=args.side)
    measure("SD-Turbo-sized UNet (SD-Turbo settings)", big, request, repeats=args.repeats)
    run = list(denoise_with_previews(big, request, "bench"))[-1]
    print(f"SD-Turbo-sized UNet on {service.device}: {run.seconds_per_step:.2f} s a step at {args.side}x{args.side} "
          f"(latents {args.side // 8}x{args.side // 8}), {run.seconds:.2f} s for {args.steps} steps with previews")


if __name__ == "__main__":
    main()
