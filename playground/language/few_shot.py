"""In-context learning you can measure: few-shot prompts, the model's probability of each label, and
generated answers, with no weight updates.

A prompt is an instruction, k worked examples and a query, as plain text ("Review: ...\\nSentiment:
Positive") or as chat turns through the model's template (examples become user/assistant turns).
Labels are scored by the log-likelihood of their tokens after the prompt, so a person sees confidence
move as shots are added, not only whether a string matched.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from playground.core import budget, checks
from playground.core.errors import PlaygroundError
from playground.core.paths import ASSETS
from playground.core.settings import Limits
from playground.core.user_text import cell_text
from playground.language.backend import LanguageBackend
from playground.language.label_scoring import label_scoring_cost
from playground.language.results import Generation, LabelScores, RenderedPrompt
from playground.language.sampling_settings import SamplingSettings

TASKS_DIR = ASSETS / "few_shot"
TASK_ORDER = ("sentiment", "topic", "translation", "dates", "custom")

LABELS = "one of the labels"  # classification: score every label, predict the likeliest
FREE_TEXT = "free text"  # generation: the greedy answer is compared with the expected one
ANSWER_TYPES = (LABELS, FREE_TEXT)

AS_GIVEN, SHUFFLED, RANDOM_LABELS = "as given", "shuffled", "random labels"
ORDERS = (AS_GIVEN, SHUFFLED, RANDOM_LABELS)


@dataclass(frozen=True)
class Example:
    input: str
    output: str


@dataclass(frozen=True)
class PromptFormat:
    instruction: str = ""
    input_name: str = "Input"
    output_name: str = "Output"
    use_chat_template: bool = False


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    answer: str
    format: PromptFormat
    labels: tuple[str, ...]
    query: str
    examples: tuple[Example, ...]
    eval_set: tuple[Example, ...]


def load_tasks(directory: Path = TASKS_DIR) -> dict[str, Task]:
    """The shipped task sets, keyed by file name, in TASK_ORDER."""
    tasks = {}
    for task_id in TASK_ORDER:
        raw = json.loads((directory / f"{task_id}.json").read_text(encoding="utf-8"))
        tasks[task_id] = Task(
            id=task_id, title=raw["title"], answer=raw["answer"],
            format=PromptFormat(raw["instruction"], raw["input_name"], raw["output_name"]),
            labels=tuple(raw["labels"]), query=raw["query"],
            examples=tuple(Example(*pair) for pair in raw["examples"]),
            eval_set=tuple(Example(*pair) for pair in raw["eval"]),
        )
    return tasks


# ---- checking what a person typed -------------------------------------------------------------

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


# ---- choosing shots and assembling the prompt -----------------------------------------------------

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


# ---- scoring labels -----------------------------------------------------------------------------

def label_token_ids(lm: LanguageBackend, labels: Sequence[str], chat: bool) -> list[list[int]]:
    """Each label's tokens as they follow the prompt: after "Sentiment:" a space comes first; after
    the chat template's assistant header the answer starts directly."""
    ids = [lm.tokenizer((label if chat else " " + label), add_special_tokens=False).input_ids for label in labels]
    empty = [label for label, tokens in zip(labels, ids) if not tokens]
    if empty:
        raise PlaygroundError(f"The label {empty[0]!r} produced no tokens.")
    return ids


def label_scores(lm: LanguageBackend, prompt: FewShotPrompt, labels: Sequence[str]) -> LabelScores:
    return next(lm.score_labels([prompt], label_token_ids(lm, labels, prompt.chat)))


def label_probabilities(lm: LanguageBackend, prompt: FewShotPrompt, labels: Sequence[str]) -> dict[str, float]:
    """Each label's share of the probability mass the model puts on the label set (sums to 1)."""
    return dict(zip(labels, label_scores(lm, prompt, labels).probabilities().tolist()))


# ---- one run ------------------------------------------------------------------------------------

def answer_text(generation: Generation, chat: bool) -> str:
    """A plain prompt invites the model to go on with more examples: the answer is its first line."""
    text = generation.text.strip()
    return text if chat else text.split("\n", 1)[0].strip()


@dataclass(frozen=True)
class FewShotRequest:
    """Everything one run needs, as a person gave it (checked by `checked_request`)."""

    fmt: PromptFormat
    examples: tuple[Example, ...]
    query: str
    answer: str
    labels: tuple[str, ...]
    k: int
    order: str
    seed: int


def checked_request(
    instruction: Any, input_name: Any, output_name: Any, use_chat_template: Any, example_rows: Any, query: Any,
    answer: Any, labels_text: Any, k: Any, order: Any, seed: Any, limits: Limits, query_required: bool = True,
) -> FewShotRequest:
    fmt = PromptFormat(
        check_text(instruction, "instruction", limits),
        check_text(input_name, "input field name", limits) or "Input",
        check_text(output_name, "output field name", limits) or "Output",
        bool(use_chat_template),
    )
    examples = tuple(examples_from_rows(example_rows, limits))
    answer = check_answer_type(answer)
    labels: tuple[str, ...] = ()
    if answer == LABELS:
        labels = checks.labels(labels_text, limits)
        check_outputs_are_labels(examples, labels)
    query = check_text(query, "query", limits, required=query_required)
    return FewShotRequest(fmt, examples, query, answer, labels, check_shots(k, len(examples), limits),
                          check_order(order), checks.seed(seed))


def prompt_for(lm: LanguageBackend, request: FewShotRequest, limits: Limits) -> FewShotPrompt:
    shots = choose_shots(request.examples, request.k, request.order, request.seed, request.labels)
    prompt = build_few_shot_prompt(lm, request.fmt, shots, request.query, limits)
    budget.check(budget.forward(prompt.token_count), limits, "This prompt", "fewer or shorter examples")
    return prompt


@dataclass(frozen=True)
class FewShotResult:
    prompt: FewShotPrompt
    answer: str
    generation: Generation
    probabilities: dict[str, float] = field(default_factory=dict)  # empty for free-text answers
    # Over a server: labels with a token outside its top N, scored as the N-th token (an upper bound).
    bounded_labels: tuple[str, ...] = ()


def run_few_shot(
    lm: LanguageBackend, request: FewShotRequest, sampling: SamplingSettings, max_new_tokens: int, limits: Limits
) -> FewShotResult:
    sampling = sampling.validated()
    max_new_tokens = checks.new_tokens(max_new_tokens, limits)
    prompt = prompt_for(lm, request, limits)
    cost = budget.generation(prompt.token_count, max_new_tokens)
    if request.labels:
        cost += label_scoring_cost(lm, prompt.token_count, label_token_ids(lm, request.labels, prompt.chat))
    budget.check(cost, limits, "This run", "fewer or shorter labels, fewer examples or new tokens")
    generation = lm.generate(prompt, sampling, max_new_tokens, seed=request.seed)
    probabilities, bounded = {}, ()
    if request.labels:
        scores = label_scores(lm, prompt, request.labels)
        probabilities = dict(zip(request.labels, scores.probabilities().tolist()))
        bounded = tuple(label for label, outside in zip(request.labels, scores.bounded) if outside)
    return FewShotResult(prompt, answer_text(generation, prompt.chat), generation, probabilities, bounded)

