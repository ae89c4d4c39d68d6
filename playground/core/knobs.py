"""Each knob declared once: its API name, range, step, default, label and help.

The tabs' sliders (`tabs.common.knob_input`), the validation (`Knob.check`), the deep links (which read the
components' ranges) and the lessons' presets (checked against those components) all read these. A tab may
give a knob another default or label (the CoT tab samples at 0.7, the few-shot tab answers greedily), never
another range. The names are the public API's parameter names: tests/test_knobs.py keeps them in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from playground.core.errors import PlaygroundError


@dataclass(frozen=True)
class Knob:
    name: str  # the callback parameter, gradio_client keyword, deep-link and lessons.toml key
    label: str
    minimum: float
    maximum: float
    step: float
    default: float
    info: str = ""
    integer: bool = False
    what: str = ""  # how messages name it ("top-k"); the label when empty

    @property
    def said(self) -> str:
        return self.what or self.label.lower()

    def check(self, value: Any) -> float | int:
        """The value with its exact type (int or float) if it is a number in range; otherwise a message."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PlaygroundError(f"{self.said} must be a number, got {value!r}.")
        if self.integer and math.isfinite(value) and value != int(value):
            raise PlaygroundError(f"{self.said} must be a whole number, got {value}.")
        if not math.isfinite(value) or not self.minimum <= value <= self.maximum:
            raise PlaygroundError(f"{self.said} must be between {self.minimum:g} and {self.maximum:g}, got {value}.")
        return int(value) if self.integer else float(value)


TEMPERATURE = Knob("temperature", "Temperature", 0.0, 3.0, 0.01, 1.0, "0 = greedy")
TOP_K = Knob("top_k", "Top-k", 0, 1_000_000, 1, 0, "keep the k most likely (0 = off)", integer=True, what="top-k")
TOP_P = Knob("top_p", "Top-p", 0.01, 1.0, 0.01, 1.0, "smallest set with this mass (1 = off)", what="top-p")
MIN_P = Knob("min_p", "Min-p", 0.0, 1.0, 0.01, 0.0, "drop tokens below min-p × the top one (0 = off)", what="min-p")
REPETITION_PENALTY = Knob("repetition_penalty", "Repetition penalty", 0.5, 2.0, 0.01, 1.0, "1 = off")
# One seed range for every tab: 32 bits is what inference servers (and torch generators, portably) take.
SEED = Knob("seed", "Seed", 0, 2**32 - 1, 1, 0, integer=True)

SAMPLING_KNOBS = (TEMPERATURE, TOP_K, TOP_P, MIN_P, REPETITION_PENALTY)  # SamplingSettings' fields, in order
KNOBS = {knob.name: knob for knob in (*SAMPLING_KNOBS, SEED)}
