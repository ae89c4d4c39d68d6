"""`SamplingSettings`: the one description of the sampling knobs, a plain value every language tab and
every backend reads (the sampling tab draws its distributions with it, the few-shot and CoT tabs generate
with it), so all of them sample alike. Ranges come from `playground.core.knobs`."""

from __future__ import annotations

from dataclasses import dataclass

from playground.core.errors import PlaygroundError
from playground.core.knobs import MIN_P, REPETITION_PENALTY, TEMPERATURE, TOP_K, TOP_P

MIN_TEMPERATURE = 1e-8  # below this (but above 0) float32 logits / T can overflow


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = TEMPERATURE.default  # 0 means greedy: the exact limit of temperature -> 0
    top_k: int = TOP_K.default  # 0 = off
    top_p: float = TOP_P.default  # 1 = off
    min_p: float = MIN_P.default  # 0 = off
    repetition_penalty: float = REPETITION_PENALTY.default  # 1 = off

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def validated(self) -> "SamplingSettings":
        """These knobs with exact types (float, int), if each is a finite number in its range; otherwise a
        message saying which is not. transformers' processors insist on the types (an int 2 temperature is refused)."""
        if self.top_p == 0 and not isinstance(self.top_p, bool):
            raise PlaygroundError("top-p must be above 0 (it keeps the smallest set of tokens reaching that mass).")
        checked = SamplingSettings(TEMPERATURE.check(self.temperature), TOP_K.check(self.top_k),
                                   TOP_P.check(self.top_p), MIN_P.check(self.min_p),
                                   REPETITION_PENALTY.check(self.repetition_penalty))
        if 0 < checked.temperature < MIN_TEMPERATURE:
            # logits / T would overflow float32 and turn the distribution into NaN; 0 is the exact limit.
            raise PlaygroundError(
                f"temperature {checked.temperature:g} is too close to 0 to compute; use 0 for greedy "
                f"(its exact limit) or at least {MIN_TEMPERATURE:g}."
            )
        return checked

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
