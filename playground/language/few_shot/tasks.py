"""The shipped few-shot task sets (assets/few_shot/*.json): an instruction, field names, labels, worked examples
and a held-out set per task, and the two kinds of answer a task asks for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from playground.core.paths import ASSETS

TASKS_DIR = ASSETS / "few_shot"
TASK_ORDER = ("sentiment", "topic", "translation", "dates", "custom")
LABELS = "one of the labels"  # classification: score every label, predict the likeliest
FREE_TEXT = "free text"  # generation: the greedy answer is compared with the expected one
ANSWER_TYPES = (LABELS, FREE_TEXT)


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
