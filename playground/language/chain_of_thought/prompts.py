"""The four ways of asking, as prompts: the modes, their settings, and the prompt text and token ids each mode
gives the model (plain "Q: ...\\nA:" blocks or chat turns)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from playground.core import checks
from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.language.backend import LanguageBackend
from playground.language.chain_of_thought.gsm8k import DIRECT_TRIGGER, gsm8k_exemplars
from playground.language.sampling_settings import SamplingSettings

DIRECT = "Direct answer"
ZERO_SHOT = "Zero-shot CoT"
FEW_SHOT = "Few-shot CoT"
SELF_CONSISTENCY = "Self-consistency"
MODES = (DIRECT, ZERO_SHOT, FEW_SHOT, SELF_CONSISTENCY)
ZERO_SHOT_TRIGGER = "Let's think step by step."
# Plain prompts are "Q: ...\nA: ..." blocks; a model that starts the next block has finished its answer.
_NEXT_QUESTION = ("\nQ:", "\nQuestion:")


@dataclass(frozen=True)
class CotSettings:
    max_new_tokens: int = 160
    use_chat_template: bool = True
    exemplars: int = 4  # worked solutions shown in few-shot prompts
    samples: int = 5  # k, the self-consistency votes
    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(temperature=0.7))
    seed: int = 0  # for the sampled self-consistency answers; the other modes are greedy

    def validated(self, limits: Limits, modes: Sequence[str] = MODES) -> "CotSettings":
        """Self with whole numbers where counts are meant, or a message naming the bad value."""
        settings = replace(
            self,
            max_new_tokens=checks.new_tokens(self.max_new_tokens, limits),
            exemplars=checks.whole_number(self.exemplars, "The number of worked examples", 1, len(gsm8k_exemplars())),
            samples=checks.whole_number(self.samples, "The number of self-consistency samples", 2, limits.max_samples),
            seed=checks.seed(self.seed),
            sampling=self.sampling.validated(),
        )
        if SELF_CONSISTENCY in modes and settings.sampling.greedy:
            raise PlaygroundError(
                "Self-consistency needs temperature above 0: greedy decoding gives the same answer k times."
            )
        return settings


def check_modes(modes: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(mode for mode in MODES if mode in (modes or ()))
    unknown = [mode for mode in modes or () if mode not in MODES]
    if unknown:
        raise PlaygroundError(f"Unknown mode {str(unknown[0])[:40]!r}; modes are: {', '.join(MODES)}.")
    if not chosen:
        raise PlaygroundError("Pick at least one mode to run.")
    return chosen


@dataclass(frozen=True)
class Prompt:
    text: str  # exactly what the model reads, chat template included
    answer_start: str  # the beginning of the answer written for the model; shown with its output
    stop_strings: tuple[str, ...]


def build_cot_prompt(lm: LanguageBackend, mode: str, question: str, settings: CotSettings) -> Prompt:
    exemplars = gsm8k_exemplars()[: settings.exemplars] if mode in (FEW_SHOT, SELF_CONSISTENCY) else ()
    answer_start = {DIRECT: DIRECT_TRIGGER, ZERO_SHOT: ZERO_SHOT_TRIGGER}.get(mode, "")
    # A direct answer is one line; reasoning may take several, until the model starts a new question.
    stops = ("\n",) if mode == DIRECT else _NEXT_QUESTION
    if settings.use_chat_template:
        checks.chat_template(lm.tokenizer, lm.name)
        messages = []
        for example in exemplars:
            messages += [{"role": "user", "content": example.question}, {"role": "assistant", "content": example.solution}]
        messages.append({"role": "user", "content": question})
        rendered = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return Prompt(rendered + answer_start, answer_start, stops)
    shots = "".join(f"Q: {example.question}\nA: {example.solution}\n\n" for example in exemplars)
    return Prompt(f"{shots}Q: {question}\nA:" + (f" {answer_start}" if answer_start else ""), answer_start, stops)


def prompt_token_ids(lm: LanguageBackend, prompt: Prompt, settings: CotSettings) -> list[int]:
    # A rendered chat template already holds its special tokens; plain text gets the tokenizer's usual ones.
    ids = lm.tokenizer(prompt.text, add_special_tokens=not settings.use_chat_template).input_ids
    if len(ids) + settings.max_new_tokens > lm.context_length:
        raise PlaygroundError(
            f"The prompt is {len(ids):,} tokens and {settings.max_new_tokens} new tokens are asked for; "
            f"{lm.name} reads at most {lm.context_length:,}. Use fewer worked examples or fewer new tokens."
        )
    return ids
