"""What the CoT tab shows: each mode's verdict line and answer text, and the accuracy run's summary, chart
data, per-problem table and its CSV."""

from __future__ import annotations

import csv
import io
from typing import Sequence

import pandas as pd

from playground.language.answers import format_number
from playground.language.chain_of_thought.answering import ModeResult
from playground.language.chain_of_thought.evaluation import ProblemOutcome, accuracy_by_mode
from playground.language.chain_of_thought.prompts import SELF_CONSISTENCY


def verdict(result: ModeResult) -> str:
    """One line for a person: the answer, right or wrong, and what it cost."""
    if not result.finished:
        return f"_writing… {result.new_tokens} tokens, {result.seconds:.1f} s_"
    answer = "no number found" if result.answer is None else f"**{format_number(result.answer)}**"
    if result.correct is None:
        score = "not scored (no reference answer)"
    else:
        score = f"{'✓ right' if result.correct else '✗ wrong'} (reference {format_number(result.reference)})"
    cost = f"{result.new_tokens} tokens · {result.seconds:.1f} s"
    votes = ""
    if result.mode == SELF_CONSISTENCY:
        votes = " · votes: " + ", ".join(f"{value} ×{count}" for value, count in result.votes())
    return f"{answer} {score} · {cost}{votes}"


def shown_text(result: ModeResult) -> str:
    """The answer as written; self-consistency's samples one after another, each with its number."""
    if len(result.texts) == 1:
        return result.texts[0]
    parts = []
    for index, text in enumerate(result.texts):
        number = f" → {format_number(result.answers[index])}" if result.answers else ""
        parts.append(f"── sample {index + 1}{number} ──\n{text}")
    return "\n\n".join(parts)


def batch_tables(outcomes: Sequence[ProblemOutcome], modes: Sequence[str]) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """Summary line, accuracy per mode (the chart's data), and the finished problems' table."""
    finished = [o for o in outcomes if len(o.results) == len(modes)]
    accuracy = accuracy_by_mode(finished, modes)
    chart = pd.DataFrame({"mode": [a.mode for a in accuracy], "accuracy %": [100 * a.accuracy for a in accuracy]})
    summary = f"{len(finished)} of {len(outcomes)} problems done. " + " · ".join(
        f"**{a.mode}** {a.correct}/{a.scored} right, {a.new_tokens / max(1, len(finished)):.0f} tokens/problem"
        for a in accuracy
    )
    rows = [
        {name: ("✓" if value is True else "✗" if value is False else value) for name, value in row.items()
         if not name.endswith((": tokens", ": seconds"))} | {"question": str(row["question"])[:90]}
        for row in outcome_rows(finished, modes)
    ]
    return summary, chart, pd.DataFrame(rows)


def outcome_rows(outcomes: Sequence[ProblemOutcome], modes: Sequence[str]) -> list[dict[str, object]]:
    """One row per problem: its number, question, reference, and per mode the answer, verdict and cost."""
    rows = []
    for outcome in outcomes:
        row: dict[str, object] = {
            "problem": outcome.number, "question": outcome.problem.question,
            "reference": format_number(outcome.problem.reference),
        }
        for mode in modes:
            result = outcome.results.get(mode)
            row[f"{mode}: answer"] = format_number(result.answer) if result else ""
            row[f"{mode}: correct"] = "" if result is None else result.correct
            row[f"{mode}: tokens"] = result.new_tokens if result else ""
            row[f"{mode}: seconds"] = round(result.seconds, 3) if result else ""
        rows.append(row)
    return rows


def outcomes_csv(outcomes: Sequence[ProblemOutcome], modes: Sequence[str]) -> str:
    rows = outcome_rows(outcomes, modes)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
