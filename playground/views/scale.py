"""What a comparison across model sizes shows (the CoT and few-shot tabs alike): a status line, a chart of
accuracy against parameter count with one line per mode or shot count, and a table that says what every
model shared. Plain values, no Gradio."""

from __future__ import annotations

import html

import pandas as pd

from playground.language.scale import ScaleProgress

CHART_X = "parameters (millions)"
CHART_Y = "accuracy %"
CHART_COLOR = "line"


def millions(count: int) -> str:
    return f"{count / 1e6:,.1f}M"


def chart(progress: ScaleProgress) -> pd.DataFrame:
    """One row per finished (model, line): x the model's parameter count, y its accuracy."""
    return pd.DataFrame({
        CHART_X: [point.parameters / 1e6 for point in progress.points],
        CHART_Y: [100 * point.accuracy for point in progress.points],
        CHART_COLOR: [point.line for point in progress.points],
        "model": [point.model for point in progress.points],
    }, columns=[CHART_X, CHART_Y, CHART_COLOR, "model"])


def table(progress: ScaleProgress) -> pd.DataFrame:
    """One row per finished model, smallest first: its size, then each line's score."""
    rows = []
    for size in sorted(progress.sizes, key=lambda size: size.parameters):
        row: dict[str, object] = {
            "model": size.name, "parameters": millions(size.parameters),
            "of which embedding": f"{millions(size.embedding_parameters)} "
                                  f"({100 * size.embedding_parameters / size.parameters:.0f}%)",
        }
        for point in progress.points:
            if point.model == size.name:
                row[point.line] = f"{point.correct}/{point.scored} ({100 * point.accuracy:.0f}%)"
        rows.append(row)
    return pd.DataFrame(rows)


def summary(progress: ScaleProgress) -> str:
    """The status, what was shared (fairness), and the licence of every offline model compared."""
    lines = [f"**{html.escape(progress.status)}** ({progress.done} of {progress.total} items)",
             f"Shared by every model: {progress.fairness} Parameter counts are read from each model's weights "
             "(tied input and output embeddings counted once)."]
    lines += [f"{html.escape(model)}: {html.escape(licence)}." for model, licence in progress.licences]
    return "\n\n".join(lines)
