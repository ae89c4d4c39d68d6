"""A local model's prompt ids and one continuation with `model.generate` and the sampling knobs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from transformers import StoppingCriteriaList

from playground.core import checks
from playground.core.errors import PlaygroundError
from playground.core.stopping import StopWhenUnwanted
from playground.language.results import Generation
from playground.language.sampling_settings import SamplingSettings
from playground.language.seeding import seed_sampling

if TYPE_CHECKING:  # the local backend calls these with itself
    from playground.language.local import LocalLanguageModel


def encode_prompt(lm: LocalLanguageModel, text: str, use_chat_template: bool = False) -> torch.Tensor:
    """Token ids (1 × n) of the prompt, as plain text or wrapped in the model's chat template."""
    if use_chat_template:
        checks.chat_template(lm.tokenizer, lm.name)
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


def generate(
    lm: LocalLanguageModel,
    prompt_ids: torch.Tensor,
    sampling: SamplingSettings,
    max_new_tokens: int,
    seed: int | None = 0,
) -> Generation:
    """One continuation of the prompt with `model.generate`; seeded, so sampled runs repeat."""
    if seed is not None:
        seed_sampling(seed)
    start = time.perf_counter()
    with torch.inference_mode():
        output = lm.model.generate(
            prompt_ids,
            attention_mask=torch.ones_like(prompt_ids),
            max_new_tokens=max_new_tokens,
            pad_token_id=lm.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([StopWhenUnwanted()]),
            **sampling.validated().generate_kwargs(),
        )
    new = output[0, prompt_ids.shape[1]:]
    text = lm.tokenizer.decode(new, skip_special_tokens=True)
    return Generation(text, int(new.shape[0]), time.perf_counter() - start)
