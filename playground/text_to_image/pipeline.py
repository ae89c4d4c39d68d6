"""Text-to-image with its knobs, and the denoising made visible.

`ImageRequest` is the one description of the knobs (validated against the server's Limits).
`denoise_with_previews` runs a diffusers pipeline and yields a cheap preview after every denoising
step, then the image; `generate_image` is the same without previews. Each request gets its own light copy
of the cached pipeline (shared weights, its own scheduler), so one person's scheduler choice or Stop
never touches another's run.
"""

from __future__ import annotations

import copy
import math
import queue
import random
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import torch
from PIL import Image

from playground.core import budget, checks
from playground.core.errors import PlaygroundError
from playground.core.knobs import SEED
from playground.core.registry import ModelSpec
from playground.core.settings import Limits
from playground.core.stopping import Stopped, check_wanted, start_thread
from playground.text_to_image.latent_preview import latents_to_rgb, model_input_scale
from playground.text_to_image.tiny_decoder import decoded_preview

# Name shown -> diffusers scheduler class; "Model default" keeps the one the model ships with.
SCHEDULERS = {
    "Model default": None,
    "Euler": "EulerDiscreteScheduler",
    "Euler ancestral": "EulerAncestralDiscreteScheduler",
    "DPM++ 2M": "DPMSolverMultistepScheduler",
    "DDIM": "DDIMScheduler",
}
# Stable Diffusion's own DDIM settings, for configs written for another scheduler that lack them.
SCHEDULER_OPTIONS = {"DDIMScheduler": {"clip_sample": False, "set_alpha_to_one": False}}
RANDOM_SEED = -1  # asks for a fresh seed, reported with the result so it can be reproduced
MAX_SEED = int(SEED.maximum)  # the one seed range (core.knobs), plus -1 for a random seed
MIN_SIDE = 64
FEW_STEP_MARKERS = ("turbo", "lightning", "lcm", "hyper")  # distilled models: 1-4 steps, no guidance


@dataclass(frozen=True)
class ModelDefaults:
    steps: int
    guidance: float
    side: int
    hint: str


def model_defaults(spec: ModelSpec) -> ModelDefaults:
    """Knob settings that suit a model, guessed from its name (no load needed): distilled few-step models
    (SD-Turbo, LCM, Lightning) want 1-4 steps and guidance 0, SDXL-sized ones 1024 pixels."""
    source = spec.source.lower()
    side = 1024 if "xl" in source and "turbo" not in source else 512
    note = f" ({spec.note})" if spec.note else ""
    if any(marker in source for marker in FEW_STEP_MARKERS):
        return ModelDefaults(4, 0.0, side, f"**{spec.name}**{note} is distilled for **1-4 steps** and "
                                          "**guidance 0**: more steps or guidance above 1 make it worse, not better.")
    return ModelDefaults(25, 7.5, side, f"**{spec.name}**{note}: about **20-50 steps** with **guidance 5-9** suit "
                                        "a classic diffusion model.")


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    negative_prompt: str = ""
    steps: int = 4
    guidance: float = 0.0
    seed: int = 0
    scheduler: str = "Model default"
    width: int = 512
    height: int = 512

    @property
    def uses_guidance(self) -> bool:
        """diffusers runs classifier-free guidance (two UNet passes a step) only above 1."""
        return self.guidance > 1

    def validated(self, limits: Limits) -> "ImageRequest":
        """The same request with exact types and a concrete seed; a clear message for anything out of range."""
        prompt = _text("prompt", self.prompt, limits)
        if not prompt.strip():
            raise PlaygroundError("Enter a prompt: describe the picture you want.")
        negative = _text("negative prompt", self.negative_prompt or "", limits)
        steps = checks.whole_number(self.steps, "The number of steps", 1, limits.max_diffusion_steps,
                                    "the server's limit; SD-Turbo needs 1-4, classic models 20-50")
        guidance = _number("guidance scale", self.guidance, 0, limits.max_guidance_scale)
        seed = checks.whole_number(self.seed, "The seed", RANDOM_SEED, MAX_SEED, "-1 picks a random seed")
        if self.scheduler not in SCHEDULERS:
            raise PlaygroundError(f"Unknown scheduler {str(self.scheduler)[:40]!r}; "
                                  f"choose one of {', '.join(SCHEDULERS)}.")
        width, height = _side("width", self.width, limits), _side("height", self.height, limits)
        if seed == RANDOM_SEED:
            seed = random.randint(0, MAX_SEED)
        return replace(self, prompt=prompt, negative_prompt=negative, steps=steps, guidance=guidance, seed=seed,
                       width=width, height=height)

    def parameters(self, model: str) -> str:
        """The settings in the "parameters" text that AUTOMATIC1111 writes into its PNGs (tools read it back)."""
        negative = f"\nNegative prompt: {self.negative_prompt}" if self.negative_prompt else ""
        return (f"{self.prompt}{negative}\nSteps: {self.steps}, Sampler: {self.scheduler}, "
                f"CFG scale: {self.guidance:g}, Seed: {self.seed}, Size: {self.width}x{self.height}, Model: {model}")


def _text(name: str, value: Any, limits: Limits) -> str:
    if not isinstance(value, str):
        raise PlaygroundError(f"The {name} must be text.")
    if len(value) > limits.max_prompt_chars:
        raise PlaygroundError(f"The {name} is {len(value):,} characters; the limit is {limits.max_prompt_chars:,} "
                              "(and the text encoder reads only its first 77 tokens).")
    return value


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PlaygroundError(f"The {name} must be a number, got {str(value)[:40]!r}.")
    if not low <= value <= high:
        raise PlaygroundError(f"The {name} must be between {low:g} and {high:g}, got {value:g}.")
    return float(value)


def _side(name: str, value: Any, limits: Limits) -> int:
    side = checks.whole_number(value, f"The {name}", MIN_SIDE, limits.max_image_side,
                               "the server's limit on image size")
    if side % 8:
        raise PlaygroundError(f"The {name} must be a multiple of 8 (the VAE works on 8x8 pixel blocks); "
                              f"{side} is not: try {side - side % 8 or 8} or {side - side % 8 + 8}.")
    return side


@dataclass
class Step:
    """After denoising step `index` (1-based) of `total`: an approximate picture of the latents."""

    index: int
    total: int
    timestep: float
    preview: Image.Image | None

    @property
    def caption(self) -> str:
        return f"step {self.index}/{self.total} (t={self.timestep:.0f})"


@dataclass
class Result:
    image: Image.Image  # carries its settings as the PNG text chunk "parameters"
    request: ImageRequest
    seconds: float
    steps: list[Step] = field(default_factory=list)

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.request.steps


IMAGE_LOWER = "fewer steps, a smaller image, or guidance of 1 or less (one UNet pass a step instead of two)"


def check_budget(pipeline, requests: list[ImageRequest], limits: Limits, what: str) -> None:
    """Refuse up front images whose denoising together would hold the model longer than one request may."""
    parameters = sum(parameter.numel() for parameter in pipeline.unet.parameters())
    cost = sum((budget.denoising(r.steps, r.width, r.height, r.uses_guidance, parameters) for r in requests),
               budget.Cost())
    budget.check(cost, limits, what, IMAGE_LOWER, on_cpu=pipeline.device.type == "cpu")


def request_pipeline(pipeline, scheduler: str):
    """A per-request pipeline sharing the cached one's weights, with a fresh scheduler (schedulers keep
    per-run state: timesteps, step index), so concurrent runs and scheduler choices never collide.

    A shallow copy suffices: a pipeline call only rebinds its per-run attributes (guidance scale,
    interrupt flag, ...) and setting a component replaces the copy's config, not the original's.
    (`from_pipe` would also do, but it walks every weight to cast it and re-enables progress bars.)"""
    import diffusers

    class_name = SCHEDULERS[scheduler]
    scheduler_class = type(pipeline.scheduler) if class_name is None else getattr(diffusers, class_name)
    run = copy.copy(pipeline)
    run.scheduler = scheduler_class.from_config(pipeline.scheduler.config, **SCHEDULER_OPTIONS.get(class_name, {}))
    return run


def generator_device(pipeline) -> str:
    """Noise drawn on the pipeline's device reproduces on that device; MPS generators draw on the CPU."""
    device = pipeline.device.type
    return "cpu" if device == "mps" else str(pipeline.device)


def generate_image(pipeline, request: ImageRequest, model: str,
                   on_step: Callable[[Any, int, float, torch.Tensor], None] | None = None) -> Result:
    """Run a validated request. `on_step(pipeline, index, timestep, latents)` is called after every step
    (it may raise `Stopped`); so is `check_wanted`, so a run nobody waits for ends within a step."""
    check_wanted()
    run = request_pipeline(pipeline, request.scheduler)

    def step_end(run_pipeline, index: int, timestep, tensors: dict) -> dict:
        check_wanted()
        if on_step is not None:
            on_step(run_pipeline, index + 1, float(timestep), tensors["latents"])
        return tensors

    started = time.perf_counter()
    with torch.inference_mode():
        output = run(
            prompt=request.prompt, negative_prompt=request.negative_prompt if request.uses_guidance else None,
            num_inference_steps=request.steps, guidance_scale=request.guidance, width=request.width,
            height=request.height, generator=torch.Generator(generator_device(pipeline)).manual_seed(request.seed),
            callback_on_step_end=step_end, callback_on_step_end_tensor_inputs=["latents"],
        )
    seconds = time.perf_counter() - started
    image = output.images[0]
    image.info["parameters"] = request.parameters(model)
    return Result(image, request, seconds)


def denoise_with_previews(pipeline, request: ImageRequest, model: str, previews: bool = True,
                   decoder: Any | None = None) -> Iterator[Step | Result]:
    """Yield a `Step` after every denoising step (with a preview when `previews`: the linear latent map, or
    the latents through `decoder`, a TAESD `AutoencoderTiny`), then the `Result`.
    The pipeline runs on a worker thread; closing this generator (the person pressed Stop) stops it
    at the next step and waits for it to end, so the device is free when this returns."""
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    steps: list[Step] = []
    size = (request.width, request.height)

    def on_step(run, index: int, timestep: float, latents: torch.Tensor) -> None:
        if stop.is_set():
            raise Stopped
        preview = None
        if previews:
            scale = model_input_scale(run.scheduler)
            preview = (latents_to_rgb(latents, scale, size) if decoder is None
                       else decoded_preview(decoder, latents, scale, size))
        events.put(Step(index, request.steps, timestep, preview))

    def work() -> None:
        try:
            events.put(generate_image(pipeline, request, model, on_step))
        except BaseException as error:  # handed to the consumer, who raises it in the request's thread
            events.put(error)

    worker = start_thread(work, "text-to-image")
    try:
        while True:
            event = events.get()
            if isinstance(event, BaseException):
                raise event
            if isinstance(event, Result):
                event.steps = steps
                yield event
                return
            steps.append(event)
            yield event
    finally:
        stop.set()
        worker.join()


def parse_values(name: str, text: str, low: float, high: float, whole: bool) -> list[float]:
    """'0, 1.5, 7' -> [0.0, 1.5, 7.0]: the values of one grid axis, each checked."""
    if not isinstance(text, str) or not text.strip():
        raise PlaygroundError(f"Enter the {name} for the grid, separated by commas (e.g. 1, 2, 4).")
    values = []
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            value = float(part)
        except ValueError:
            raise PlaygroundError(f"{part.strip()[:20]!r} in the {name} is not a number.") from None
        values.append(checks.whole_number(value, f"Each of the {name}", int(low), int(high), "the server's limit")
                      if whole else _number(name, value, low, high))
    return list(dict.fromkeys(values))  # a repeated value would only repeat an image


def grid_requests(base: ImageRequest, guidances: str, steps: str, limits: Limits) -> list[ImageRequest]:
    """One request per (guidance, steps) pair, all with the base request's seed, prompt and size."""
    cfg_values = parse_values("guidance values", guidances, 0, limits.max_guidance_scale, whole=False)
    step_values = parse_values("step counts", steps, 1, limits.max_diffusion_steps, whole=True)
    count = len(cfg_values) * len(step_values)
    if count > limits.max_grid_images:
        raise PlaygroundError(f"That grid has {count} images ({len(cfg_values)} guidance x {len(step_values)} steps); "
                              f"the limit is {limits.max_grid_images}.")
    total_steps = len(cfg_values) * sum(step_values)
    if total_steps > limits.max_grid_steps:
        raise PlaygroundError(f"That grid needs {total_steps} denoising steps in all; the limit is "
                              f"{limits.max_grid_steps}: use fewer or smaller step counts.")
    return [replace(base, guidance=g, steps=s) for g in cfg_values for s in step_values]
