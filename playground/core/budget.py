"""What one request may cost, estimated before any model runs, and the one check of it against `Limits`.

Each limit in `Limits` caps one dimension (samples, new tokens, labels...), but the work grows with their
product. So every model-bound request first describes its work as a `Cost`, in units that track what it
really costs, and `check` refuses it up front when any of them is over this server's per-request budget:

- language models: tokens run through the model (time on a CPU); sequential generation steps (time on a
  GPU, where one step costs about the same for 1 or 16 rows); tokens held in the KV cache at once (memory);
- diffusion: passes of a Stable-Diffusion-sized UNet at 512x512 (two a step with guidance, scaled by the
  image's area and the UNet's size: SDXL's counts three times, a tiny test model next to nothing);
- CLIP: images and label prompts to encode;
- tokenizers: sentences to tokenize.

The estimates are upper bounds (generation may stop early, never late), so a request that passes cannot
hold the model for longer than its budget allows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from playground.core.errors import PlaygroundError
from playground.core.settings import Limits

REFERENCE_SIDE = 512  # a denoising pass at 512x512 of a Stable Diffusion 1.x/2.x UNet counts as 1
REFERENCE_UNET_PARAMETERS = 865_910_724  # SD 2.1's UNet (SD-Turbo's too)


@dataclass(frozen=True)
class Cost:
    tokens: int = 0  # tokens run through a language model, every row of every call counted
    steps: int = 0  # sequential forward passes
    cached_tokens: int = 0  # tokens held in KV caches at once (the peak, not a sum)
    denoising_passes: float = 0.0  # UNet passes, in 512x512 equivalents
    encodings: int = 0  # CLIP images and text prompts
    sentences: int = 0  # sentences through a tokenizer

    def __add__(self, other: "Cost") -> "Cost":
        """Two pieces of work done one after the other: the caches are not held together."""
        summed = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return Cost(**summed | {"cached_tokens": max(self.cached_tokens, other.cached_tokens)})

    def __mul__(self, times: int) -> "Cost":
        """The same work `times` times in a row."""
        repeated = {f.name: getattr(self, f.name) * times for f in fields(self)}
        return Cost(**repeated | {"cached_tokens": self.cached_tokens if times else 0})


def forward(tokens: int, context: int = 0, rows: int = 1) -> Cost:
    """One forward pass of `rows` rows of `tokens` new tokens each, after `context` cached ones."""
    return Cost(tokens=rows * tokens, steps=1, cached_tokens=rows * (context + tokens))


def generation(prompt_tokens: int, new_tokens: int, rows: int = 1, prompt_rows: int = 1, context: int = 0) -> Cost:
    """One `generate` call: the prompt run for `prompt_rows` rows (1 when the rows share one pass over it,
    `rows` when each runs it), after `context` tokens already cached, then up to `new_tokens` steps of
    `rows` rows each."""
    prompt = forward(prompt_tokens, context=context, rows=prompt_rows)
    held = rows * (context + prompt_tokens + new_tokens)
    return prompt + Cost(tokens=rows * new_tokens, steps=new_tokens, cached_tokens=held)


def denoising(steps: int, width: int, height: int, guidance: bool,
              unet_parameters: int = REFERENCE_UNET_PARAMETERS) -> Cost:
    """One image: a UNet pass per step, two with classifier-free guidance, weighted by area and UNet size."""
    scale = width * height / REFERENCE_SIDE**2 * unet_parameters / REFERENCE_UNET_PARAMETERS
    return Cost(denoising_passes=steps * (2 if guidance else 1) * scale)


def encoding(images: int = 0, prompts: int = 0) -> Cost:
    return Cost(encodings=images + prompts)


def tokenizing(sentences: int) -> Cost:
    return Cost(sentences=sentences)


# Cost field -> (how a person reads the amount, the Limits field that caps it).
_BUDGETS = {
    "tokens": ("tokens through the model", "max_request_tokens"),
    "steps": ("generation steps one after another", "max_request_steps"),
    "cached_tokens": ("tokens held in memory at once", "max_cached_tokens"),
    "denoising_passes": ("denoising passes of an SD-sized UNet at 512x512", "max_denoising_passes"),
    "encodings": ("images and label prompts to encode", "max_clip_encodings"),
    "sentences": ("sentences to tokenize", "max_tokenized_sentences"),
}


def limit_for(limits: Limits, field: str, on_cpu: bool = False) -> float:
    if field == "denoising_passes" and on_cpu:
        return limits.max_denoising_passes_on_cpu  # a CPU takes minutes for what a GPU does in seconds
    return getattr(limits, _BUDGETS[field][1])


def check(cost: Cost, limits: Limits, what: str, lower: str, on_cpu: bool = False) -> Cost:
    """`cost` if it fits this server's per-request budget; otherwise a message that says what it would
    cost and what to lower (`what`: "This sweep"; `lower`: "fewer samples or new tokens")."""
    for field, (unit, _) in _BUDGETS.items():
        amount, limit = getattr(cost, field), limit_for(limits, field, on_cpu)
        if amount > limit:
            shown = f"{amount:,.0f}" if amount >= 10 else f"{amount:.1f}"
            raise PlaygroundError(
                f"{what} would need {shown} {unit}; this server allows {limit:,} per request, so that one "
                f"visitor cannot hold the model for everyone else. Try {lower}."
            )
    return cost
