"""Every check of what a person typed, once: text, whole numbers, seeds, label lists, number lists.

Messages name the field as the UI does, so a visitor knows which box to fix.
"""

from __future__ import annotations

import math
import re
from typing import Any

from playground.core.errors import PlaygroundError
from playground.core.knobs import SEED, Knob
from playground.core.settings import Limits

NO_CHAT_TEMPLATE = "{name} has no chat template; switch the chat template off."


def whole_number(value: Any, what: str, low: int, high: int, why: str = "") -> int:
    """`value` as an int if it is a whole number from `low` to `high`; `what` starts the message ("The seed"),
    `why` says where the range comes from ("the server's limit")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise PlaygroundError(f"{what} must be a whole number, got {str(value)[:40]!r}.")
    if not low <= value <= high:
        because = f" ({why})" if why else ""
        raise PlaygroundError(f"{what} must be a whole number from {low:,} to {high:,}{because}, got {int(value)}.")
    return int(value)


def seed(value: Any) -> int:
    return whole_number(value, "The seed", int(SEED.minimum), int(SEED.maximum))


def new_tokens(value: Any, limits: Limits, high: int | None = None) -> int:
    return whole_number(value, "New tokens", 1, limits.max_new_tokens if high is None else high)


def text(value: Any, what: str, max_chars: int, required: bool = False) -> str:
    """Stripped text of at most `max_chars`; empty allowed unless `required`."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise PlaygroundError(f"The {what} must be text, got {type(value).__name__}.")
    if required and not value.strip():
        raise PlaygroundError(f"The {what} is empty: type something first.")
    if len(value) > max_chars:
        raise PlaygroundError(f"The {what} has {len(value):,} characters; this server accepts up to {max_chars:,}.")
    return value.strip()


def prompt(value: Any, limits: Limits) -> str:
    """A prompt as typed (not stripped: leading spaces are tokens too); empty or too long is refused."""
    if not isinstance(value, str) or not value.strip():
        raise PlaygroundError("The prompt is empty: type some text first.")
    if len(value) > limits.max_prompt_chars:
        raise PlaygroundError(
            f"The prompt has {len(value):,} characters; this server accepts up to {limits.max_prompt_chars:,}."
        )
    return value


def split_list(text: Any) -> list[str]:
    """The one syntax for a list a person types (labels): one item per line, or a single line split on commas
    (so a label on its own line may hold a comma); blank items are dropped, the rest stripped."""
    if not isinstance(text, str):
        return []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        lines = [part.strip() for part in lines[0].split(",") if part.strip()]
    return lines


def labels(value: Any, limits: Limits) -> tuple[str, ...]:
    """Comma-separated labels; at least two, no duplicates, each short enough to score."""
    if value is not None and not isinstance(value, str):
        raise PlaygroundError(f"The labels must be text, got {type(value).__name__}.")
    parsed = tuple(split_list(value))
    if len(parsed) < 2:
        raise PlaygroundError(
            "A classification needs at least two labels, separated by commas (e.g. Positive, Negative); "
            "or choose the free-text answer type."
        )
    if len(parsed) > limits.max_labels:
        raise PlaygroundError(f"{len(parsed)} labels given; this server scores up to {limits.max_labels}.")
    duplicates = sorted({label for label in parsed if parsed.count(label) > 1})
    if duplicates:
        raise PlaygroundError(f"Duplicate labels: {', '.join(duplicates)}. Each label must appear once.")
    long = [label for label in parsed if len(label) > limits.max_label_chars]
    if long:
        raise PlaygroundError(f"A label has {len(long[0]):,} characters; labels may have up to {limits.max_label_chars}.")
    return parsed


def numbers(value: Any, knob: Knob, most: int, example: str) -> list[float]:
    """'0, 0.7, 1.2' -> [0.0, 0.7, 1.2], each in the knob's range, repeats dropped (commas, semicolons or
    spaces between them)."""
    if not isinstance(value, str) or not value.strip():
        raise PlaygroundError(f"List at least one {knob.said}, e.g. {example}.")
    parts = [part for part in re.split(r"[,;\s]+", value.strip()) if part]
    if len(parts) > most:
        raise PlaygroundError(f"At most {most} {knob.said}s at once, got {len(parts)}.")
    values = []
    for part in parts:
        try:
            number = float(part)
        except ValueError:
            raise PlaygroundError(f"{part[:20]!r} is not a {knob.said}; write numbers like {example}.") from None
        values.append(knob.check(number))
    return list(dict.fromkeys(values))


def chat_template(tokenizer: Any, name: str) -> None:
    """Refuse a chat prompt for a model whose tokenizer has no chat template (base models)."""
    if not getattr(tokenizer, "chat_template", None):
        raise PlaygroundError(NO_CHAT_TEMPLATE.format(name=name))
