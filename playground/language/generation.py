"""Text generation with the sampling knobs, shared by every language-model tab.

`SamplingSettings` is the one description of the knobs: the sampling tab draws its distributions
from it and the few-shot and chain-of-thought tabs generate with it, so all of them sample alike.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from playground.core.errors import PlaygroundError
from playground.core.settings import Limits

if TYPE_CHECKING:  # the loader imports the remote model, which samples with SamplingSettings from here
    from playground.language.loader import LanguageModel


MIN_TEMPERATURE = 1e-8  # below this (but above 0) float32 logits / T can overflow


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0  # 0 means greedy: the exact limit of temperature -> 0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    min_p: float = 0.0  # 0 = off
    repetition_penalty: float = 1.0  # 1 = off

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def validated(self) -> "SamplingSettings":
        """These knobs with exact types (float, int), if each is a finite number in its range; otherwise a
        message saying which is not."""
        checks = (
            ("temperature", self.temperature, 0.0, 100.0),
            ("top-k", self.top_k, 0, 1_000_000),
            ("top-p", self.top_p, 0.0, 1.0),
            ("min-p", self.min_p, 0.0, 1.0),
            ("repetition penalty", self.repetition_penalty, 0.01, 100.0),
        )
        for name, value, low, high in checks:
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PlaygroundError(f"{name} must be a number, got {value!r}.")
            if not math.isfinite(value) or not low <= value <= high:
                raise PlaygroundError(f"{name} must be between {low} and {high}, got {value}.")
        if self.top_p == 0:
            raise PlaygroundError("top-p must be above 0 (it keeps the smallest set of tokens reaching that mass).")
        if 0 < self.temperature < MIN_TEMPERATURE:
            # logits / T would overflow float32 and turn the distribution into NaN; 0 is the exact limit.
            raise PlaygroundError(
                f"temperature {self.temperature:g} is too close to 0 to compute; use 0 for greedy "
                f"(its exact limit) or at least {MIN_TEMPERATURE:g}."
            )
        if self.top_k != int(self.top_k):
            raise PlaygroundError(f"top-k must be a whole number, got {self.top_k}.")
        # transformers' processors insist on these types (e.g. a temperature of int 2 is refused).
        return SamplingSettings(
            float(self.temperature), int(self.top_k), float(self.top_p), float(self.min_p), float(self.repetition_penalty)
        )

    def generate_kwargs(self) -> dict:
        """Arguments for `model.generate` that apply exactly these knobs, in transformers' order."""
        kwargs: dict = {"repetition_penalty": self.repetition_penalty}
        if self.greedy:
            return {**kwargs, "do_sample": False, "temperature": None, "top_k": None, "top_p": None}
        return {
            **kwargs,
            "do_sample": True,
            "temperature": self.temperature,
            "top_k": self.top_k or None,
            "top_p": self.top_p,
            "min_p": self.min_p or None,
        }


def check_prompt(text: str, limits: Limits) -> str:
    if not isinstance(text, str) or not text.strip():
        raise PlaygroundError("The prompt is empty: type some text first.")
    if len(text) > limits.max_prompt_chars:
        raise PlaygroundError(
            f"The prompt has {len(text):,} characters; this server accepts up to {limits.max_prompt_chars:,}."
        )
    return text


def encode_prompt(lm: LanguageModel, text: str, use_chat_template: bool = False) -> torch.Tensor:
    """Token ids (1 × n) of the prompt, as plain text or wrapped in the model's chat template."""
    if use_chat_template:
        if not lm.has_chat_template:
            raise PlaygroundError(f"{lm.name} has no chat template; switch the chat template off.")
        encoded = lm.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        ids = encoded["input_ids"]
    else:
        ids = lm.tokenizer(text, return_tensors="pt").input_ids
    if ids.shape[1] == 0:
        raise PlaygroundError("The prompt produced no tokens.")
    if ids.shape[1] >= lm.context_length:
        raise PlaygroundError(
            f"The prompt is {ids.shape[1]:,} tokens; {lm.name} reads at most {lm.context_length:,}."
        )
    return ids.to(lm.device)


def check_new_tokens(max_new_tokens: int, limits: Limits) -> int:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, float)) or not math.isfinite(max_new_tokens):
        raise PlaygroundError(f"The number of new tokens must be a whole number, got {max_new_tokens!r}.")
    if not 1 <= max_new_tokens <= limits.max_new_tokens:
        raise PlaygroundError(f"New tokens must be between 1 and {limits.max_new_tokens}, got {max_new_tokens}.")
    return int(max_new_tokens)


@dataclass(frozen=True)
class Generation:
    text: str
    new_tokens: int
    seconds: float


def generate(
    lm: LanguageModel,
    prompt_ids: torch.Tensor,
    sampling: SamplingSettings,
    max_new_tokens: int,
    seed: int | None = 0,
) -> Generation:
    """One continuation of the prompt, drawn by the model's batcher with a generator of its own: the tokens
    `model.generate` gives after `torch.manual_seed(seed)`, whoever else generates at the same time.
    No seed: a fresh one, so the run does not repeat."""
    # Imported here: the sampling module imports SamplingSettings from this one.
    from playground.language.batcher import Continuation
    from playground.language.sampling import chain_of, end_token_ids

    settings = sampling.validated()
    seed = secrets.randbelow(2**63) if seed is None else int(seed)
    start = time.perf_counter()
    [new] = lm.batcher.generate(Continuation(
        (tuple(prompt_ids[0].tolist()),), chain_of(settings), settings.greedy, max_new_tokens, seed,
        frozenset(end_token_ids(lm))))
    text = lm.tokenizer.decode(new, skip_special_tokens=True)
    return Generation(text, len(new), time.perf_counter() - start)
