"""What a person typed into the few-shot form, checked: the examples table, the labels, k and the order, and the
held-out set of a sweep. Each message names the box to fix."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

from playground.core import checks
from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.core.user_text import cell_text
from playground.language.few_shot.prompts import AS_GIVEN, ORDERS
from playground.language.few_shot.tasks import ANSWER_TYPES, LABELS, Example, PromptFormat


def check_text(value: Any, what: str, limits: Limits, required: bool = False) -> str:
    return checks.text(value, what, limits.max_sentence_chars, required)


def check_answer_type(answer: Any) -> str:
    if answer not in ANSWER_TYPES:
        raise PlaygroundError(f"The answer type must be one of: {', '.join(ANSWER_TYPES)}; got {str(answer)[:40]!r}.")
    return answer


def check_order(order: Any) -> str:
    if order not in ORDERS:
        raise PlaygroundError(f"The example order must be one of: {', '.join(ORDERS)}; got {str(order)[:40]!r}.")
    return order


def check_shots(k: Any, available: int, limits: Limits) -> int:
    k = checks.whole_number(k, "The number of shots k", 0, limits.max_examples)
    if k > available:
        have = "no examples" if available == 0 else f"only {available} example{'s' * (available != 1)}"
        raise PlaygroundError(f"k = {k} shots asked for, but the table has {have}: add examples or lower k.")
    return k


def examples_from_rows(rows: Any, limits: Limits, what: str = "example", cap: int | None = None) -> list[Example]:
    """Table rows [input, output] as examples; blank rows are skipped, half-filled rows are an error."""
    if rows is None:
        return []
    if not isinstance(rows, (list, tuple)) or any(not isinstance(row, (list, tuple)) for row in rows):
        raise PlaygroundError(f"The {what} table must be rows of [input, output].")
    cap = limits.max_examples if cap is None else cap
    examples = []
    for number, row in enumerate(rows, start=1):
        cells = [check_text(cell_text(cell), f"{what} {number}", limits) for cell in row[:2]]
        cells += [""] * (2 - len(cells))
        if not any(cells):
            continue
        if not all(cells):
            missing = "output" if cells[0] else "input"
            raise PlaygroundError(f"{what.capitalize()} {number} has no {missing}: fill it in or clear the row.")
        examples.append(Example(*cells))
    if len(examples) > cap:
        raise PlaygroundError(f"The {what} table has {len(examples)} rows; this server takes up to {cap}.")
    return examples


def labels_with_outputs(labels_text: str, examples: Sequence[Example]) -> str:
    """The labels box after the examples changed: the person's labels, plus any new example output."""
    labels = checks.split_list(labels_text)
    for example in examples:
        if example.output not in labels:
            labels.append(example.output)
    return ", ".join(labels)


def check_outputs_are_labels(examples: Sequence[Example], labels: Sequence[str], what: str = "Example") -> None:
    for number, example in enumerate(examples, start=1):
        if example.output not in labels:
            raise PlaygroundError(
                f"{what} {number}'s output {example.output[:40]!r} is not one of the labels ({', '.join(labels)})."
            )


@dataclass(frozen=True)
class FewShotRequest:
    """Everything one run needs, as a person gave it (checked by `FewShotSettings.checked`)."""

    fmt: PromptFormat
    examples: tuple[Example, ...]
    query: str
    answer: str
    labels: tuple[str, ...]
    k: int
    order: str
    seed: int


@dataclass(frozen=True)
class FewShotSettings:
    """The few-shot form as a person filled it in, before any check: the prompt's parts and how the shots are
    chosen. The field names are the public ones (the API's parameters, deep links, lessons.toml); a tab's
    callback receives one of these (`tabs.common.settings_parameter`) instead of a value per field."""

    instruction: Any = ""
    input_name: Any = "Input"
    output_name: Any = "Output"
    chat_template: Any = False
    examples: Any = ()  # table rows [input, output]
    query: Any = ""
    answer: Any = LABELS
    labels: Any = ""  # comma-separated, or one per line
    k: Any = 0
    order: Any = AS_GIVEN
    seed: Any = 0

    def checked(self, limits: Limits, query_required: bool = True) -> FewShotRequest:
        """The request these settings describe, every value checked, or a message naming the one to fix."""
        fmt = PromptFormat(
            check_text(self.instruction, "instruction", limits),
            check_text(self.input_name, "input field name", limits) or "Input",
            check_text(self.output_name, "output field name", limits) or "Output",
            bool(self.chat_template),
        )
        examples = tuple(examples_from_rows(self.examples, limits))
        answer = check_answer_type(self.answer)
        labels: tuple[str, ...] = ()
        if answer == LABELS:
            labels = checks.labels(self.labels, limits)
            check_outputs_are_labels(examples, labels)
        query = check_text(self.query, "query", limits, required=query_required)
        return FewShotRequest(fmt, examples, query, answer, labels, check_shots(self.k, len(examples), limits),
                              check_order(self.order), checks.seed(self.seed))


SETTINGS_NAMES = tuple(field.name for field in fields(FewShotSettings))  # in the form's (and the API's) order


def checked_eval_set(rows: object, request: FewShotRequest, limits: Limits) -> list[Example]:
    eval_set = examples_from_rows(rows, limits, what="held-out item", cap=limits.max_eval_items)
    if not eval_set:
        raise PlaygroundError("The held-out set is empty: add labelled items (input, expected) to sweep.")
    if request.answer == LABELS:
        check_outputs_are_labels(eval_set, request.labels, what="Held-out item")
    return eval_set
