"""Choosing the shots and writing the prompt: as plain text ("Review: ...\\nSentiment: Positive") or as chat turns
through the model's template (examples become user/assistant turns)."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Sequence

from playground.core import checks
from playground.core.settings import Limits
from playground.language.backend import LanguageBackend
from playground.language.few_shot.tasks import Example, PromptFormat
from playground.language.results import RenderedPrompt

AS_GIVEN, SHUFFLED, RANDOM_LABELS = "as given", "shuffled", "random labels"
ORDERS = (AS_GIVEN, SHUFFLED, RANDOM_LABELS)


def choose_shots(
    examples: Sequence[Example], k: int, order: str, seed: int, labels: Sequence[str] = ()
) -> list[Example]:
    """The first k examples; shuffled keeps them and permutes their order; random labels keeps the order
    and replaces each output by a random label (or, for free text, another example's output)."""
    shots = list(examples[:k])
    rng = random.Random(seed)
    if order == SHUFFLED:
        rng.shuffle(shots)
    elif order == RANDOM_LABELS:
        outputs = [rng.choice(labels) for _ in shots] if labels else rng.sample([s.output for s in shots], len(shots))
        shots = [replace(shot, output=output) for shot, output in zip(shots, outputs)]
    return shots


@dataclass(frozen=True)
class FewShotPrompt(RenderedPrompt):
    """The prompt as the model reads it (chat template markup included), and how it was made."""

    shots: tuple[Example, ...]
    chat: bool


def prompt_messages(fmt: PromptFormat, shots: Sequence[Example], query: str) -> list[dict[str, str]]:
    """Chat turns: the instruction as the system message, each shot a user/assistant exchange."""
    messages = [{"role": "system", "content": fmt.instruction}] if fmt.instruction else []
    for shot in shots:
        messages += [{"role": "user", "content": f"{fmt.input_name}: {shot.input}"},
                     {"role": "assistant", "content": shot.output}]
    return messages + [{"role": "user", "content": f"{fmt.input_name}: {query}"}]


def plain_prompt(fmt: PromptFormat, shots: Sequence[Example], query: str) -> str:
    blocks = [fmt.instruction] if fmt.instruction else []
    blocks += [f"{fmt.input_name}: {shot.input}\n{fmt.output_name}: {shot.output}" for shot in shots]
    blocks.append(f"{fmt.input_name}: {query}\n{fmt.output_name}:")
    return "\n\n".join(blocks)


def build_few_shot_prompt(
    lm: LanguageBackend, fmt: PromptFormat, shots: Sequence[Example], query: str, limits: Limits
) -> FewShotPrompt:
    if fmt.use_chat_template:
        rendered = lm.render_chat(prompt_messages(fmt, shots, query))
        checks.prompt(rendered.text, limits)
    else:
        rendered = lm.render_prompt(checks.prompt(plain_prompt(fmt, shots, query), limits), False)
    return FewShotPrompt(rendered.text, rendered.ids, tuple(shots), fmt.use_chat_template)
