"""What the few-shot tab shows: the prompt's token summary (and when label scores are estimates), and the
sweep's summary line, chart data and per-item table."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from playground.core.user_text import markdown_text
from playground.language.backend import Capabilities
from playground.language.few_shot.request import FewShotRequest
from playground.language.few_shot.sweep import ItemResult, accuracy_by_setting

ITEM_COLUMNS = ["setting", "item", "input", "expected", "predicted", "correct", "p(expected)"]


def token_summary(request: FewShotRequest, token_count: int, model_name: str, capabilities: Capabilities | None = None,
                  bounded_labels: tuple[str, ...] = ()) -> str:
    """The prompt's size and make-up; with `bounded_labels`, which label scores are upper bounds and why."""
    form = "through the chat template" if request.fmt.use_chat_template else "as plain text"
    summary = (f"**{token_count:,} tokens** for {model_name}'s tokenizer · {request.k} of "
               f"{len(request.examples)} examples ({request.order}) · {form}")
    if bounded_labels and capabilities is not None and not capabilities.label_scores_exact:
        top = capabilities.top_n
        summary += (f"\n\n**Label probabilities are estimates** for {', '.join(map(markdown_text, bounded_labels))}: "
                    f"a token fell outside the server's top {top}, so it was counted as the {top}th most likely, "
                    "an upper bound.")
    return summary


def sweep_outputs(results: Sequence[ItemResult], total: int, seed: int) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The summary line, accuracy per setting (the chart's data), and one row per scored item."""
    accuracies = accuracy_by_setting(results)
    summary = f"Scored {len(results)} of {total} items (seed {seed}). Accuracy: " + " · ".join(
        f"{a.setting} **{a.accuracy:.0%}**" for a in accuracies)
    chart = pd.DataFrame({"setting": [a.setting for a in accuracies], "accuracy": [a.accuracy for a in accuracies]})
    items = pd.DataFrame(
        [[r.setting, r.item, r.input, r.expected, r.predicted, "✓" if r.correct else "✗",
          "" if r.expected_probability is None else f"{r.expected_probability:.2f}"] for r in results],
        columns=ITEM_COLUMNS,
    )
    return summary, chart, items
