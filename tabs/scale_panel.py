"""The "Does scale matter?" panel that the CoT and few-shot tabs share: the models to compare, a progress bar
over models x items with Stop, the chart of accuracy against parameter count, and the table."""

from __future__ import annotations

from typing import Callable, Iterator

import gradio as gr

from playground.core.service import ModelService
from playground.language.scale import ScaleProgress, comparable_models, default_models
from playground.views import scale as view

NOTICE = ("What to notice: every model reads the same prompts; the curve shows whether accuracy grows with "
          "size. Below a billion parameters it mostly does not: the gains the papers report appear in much "
          "larger models.")


def model_choices(service: ModelService) -> gr.CheckboxGroup:
    return gr.CheckboxGroup(comparable_models(service), value=default_models(service),
                            label="Models to compare (two or more; they load one after another)")


def outputs(prefix: str) -> tuple[gr.Markdown, gr.LinePlot, gr.Dataframe]:
    summary = gr.Markdown(elem_id=f"{prefix}-scale-summary")
    chart = gr.LinePlot(x=view.CHART_X, y=view.CHART_Y, color=view.CHART_COLOR, y_lim=[0, 100], height=320,
                        title="Accuracy against parameter count", tooltip="all", elem_id=f"{prefix}-scale-chart")
    table = gr.Dataframe(interactive=False, wrap=True, label="Per model", elem_id=f"{prefix}-scale-table")
    return summary, chart, table


def streamed(service: ModelService, updates: Callable[[], Iterator[ScaleProgress]], progress: gr.Progress):
    """The comparison's updates as (summary, chart, table), the table and chart only when a model finishes.
    Every compared model is local, so the whole comparison takes the local models' turn."""
    with service.local_turn:
        shown = -1
        for update in updates():
            progress(update.done / max(1, update.total), desc=update.status)
            if len(update.sizes) != shown or update.finished:
                shown = len(update.sizes)
                yield view.summary(update), view.chart(update), view.table(update)
            else:
                yield view.summary(update), gr.skip(), gr.skip()
