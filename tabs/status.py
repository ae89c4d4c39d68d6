"""The cache status panel: which models are loaded, where, how much memory, how long each load took."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from playground.core.device import dtype_name
from playground.core.service import ModelService
from tabs.common import CHEAP_EVENT

COLUMNS = ["kind", "model", "device", "dtype", "memory_mb", "load_s", "requests", "idle_s"]


def status_table(service: ModelService) -> pd.DataFrame:
    rows = [row | {"model": service.registry.name_of(row["kind"], row["model"])} for row in service.cache.status()]
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(service: ModelService) -> str:
    budget = service.cache.budget_bytes
    used = sum(row["memory_mb"] for row in service.cache.status())
    budget_text = f" of a {budget / 2**30:.1f} GiB budget" if budget else ""
    return (
        f"Device **{service.device}** ({dtype_name(service.dtype)}); "
        f"{used:,.0f} MiB of models loaded{budget_text}."
        + (" Offline mode (HF_HUB_OFFLINE=1)." if service.settings.offline else "")
    )


def build(service: ModelService) -> None:
    with gr.Accordion("Loaded models", open=False):
        text = gr.Markdown(summary(service))
        table = gr.Dataframe(status_table(service), interactive=False, elem_id="cache-status")
        refresh = gr.Button("Refresh", size="sm")
    outputs = [text, table]
    refresh.click(lambda: (summary(service), status_table(service)), None, outputs, api_name="cache_status",
                  **CHEAP_EVENT)
    gr.Timer(5).tick(lambda: (summary(service), status_table(service)), None, outputs, api_visibility="private",
                     queue=False)
