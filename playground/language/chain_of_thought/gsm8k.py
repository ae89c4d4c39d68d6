"""The GSM8K word problems (assets/gsm8k): the test set a person picks from, the eight worked train solutions the
few-shot prompts show, and a typed problem with an optional reference answer."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from playground.core import checks
from playground.core.errors import PlaygroundError
from playground.core.paths import ASSETS
from playground.core.settings import Limits
from playground.language.answers import parse_reference

GSM8K_DIR = ASSETS / "gsm8k"
DIRECT_TRIGGER = "The answer is"  # ends every worked solution; a direct answer starts with it


@dataclass(frozen=True)
class Problem:
    question: str
    reference: Fraction | None  # None: a typed question without an answer; not scored
    solution: str = ""  # GSM8K's worked solution, calculator notes removed


def worked_solution(gsm8k_answer: str) -> str:
    """GSM8K's solution as a person would write it: "<<48/2=24>>" calculator notes dropped and the
    final "#### 72" turned into "The answer is 72." (the marker the models are shown, then read back)."""
    body, _, final = gsm8k_answer.rpartition("####")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f"{body}\n{DIRECT_TRIGGER} {final.strip()}."


def _problem(line: str) -> Problem:
    row = json.loads(line)
    return Problem(row["question"], parse_reference(row["answer"].rpartition("####")[2]), worked_solution(row["answer"]))


@lru_cache(maxsize=1)
def gsm8k_test() -> tuple[Problem, ...]:
    with open(GSM8K_DIR / "test.jsonl", encoding="utf-8") as handle:
        return tuple(_problem(line) for line in handle if line.strip())


@lru_cache(maxsize=1)
def gsm8k_exemplars() -> tuple[Problem, ...]:
    """Eight short GSM8K train problems with worked solutions, for few-shot prompts."""
    with open(GSM8K_DIR / "train_exemplars.jsonl", encoding="utf-8") as handle:
        return tuple(_problem(line) for line in handle if line.strip())


def gsm8k_problem(number: int | float) -> Problem:
    """GSM8K test problem `number`, counting from 1 as the table does."""
    count = len(gsm8k_test())
    return gsm8k_test()[checks.whole_number(number, "The GSM8K test problem number", 1, count) - 1]


def custom_problem(question: str, reference: str | None, limits: Limits) -> Problem:
    if not isinstance(question, str) or not question.strip():
        raise PlaygroundError("The question is empty: type a word problem or load a GSM8K one.")
    if len(question) > limits.max_prompt_chars:
        raise PlaygroundError(
            f"The question has {len(question):,} characters; this server accepts up to {limits.max_prompt_chars:,}."
        )
    return Problem(question.strip(), parse_reference(reference))


def check_problem_range(first: int | float, count: int | float, limits: Limits) -> range:
    total = len(gsm8k_test())
    first = checks.whole_number(first, "The first problem", 1, total)
    count = checks.whole_number(count, "The number of problems", 1, limits.max_batch_items)
    if first + count - 1 > total:
        raise PlaygroundError(f"GSM8K test has {total} problems; from {first}, at most {total - first + 1} remain.")
    return range(first, first + count)
