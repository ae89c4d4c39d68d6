"""A local model's prompt ids and one continuation with the sampling knobs."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

import torch

from playground.core import checks
from playground.core.errors import PlaygroundError
from playground.language.results import Generation
from playground.language.sampling_settings import SamplingSettings
from playground.language.batcher import Continuation
from playground.language.sampling import chain_of, end_token_ids

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
    """One continuation of the prompt, drawn by the model's batcher with a generator of its own: the tokens
    `model.generate` gives after `torch.manual_seed(seed)`, whoever else generates at the same time.
    No seed: a fresh one, so the run does not repeat."""
    settings = sampling.validated()
    seed = secrets.randbelow(2**63) if seed is None else int(seed)
    start = time.perf_counter()
    [new] = lm.batcher.generate(Continuation(
        (tuple(prompt_ids[0].tolist()),), chain_of(settings), settings.greedy, max_new_tokens, seed,
        frozenset(end_token_ids(lm))))
    text = lm.tokenizer.decode(new, skip_special_tokens=True)
    return Generation(text, len(new), time.perf_counter() - start)
