"""Few-shot builder: in-context learning you can measure (prompt, label probabilities, accuracy vs k)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from playground.core.errors import PlaygroundError
from playground.core.knobs import SEED, TEMPERATURE
from playground.core.service import ModelService
from playground.language.few_shot.prompts import AS_GIVEN, ORDERS
from playground.language.few_shot.request import (
    SETTINGS_NAMES, FewShotSettings, checked_eval_set, examples_from_rows, labels_with_outputs,
)
from playground.language.few_shot.run import prompt_for, run_few_shot
from playground.language.few_shot.sweep import sweep, sweep_settings
from playground.language.few_shot.tasks import ANSWER_TYPES, LABELS, load_tasks
from playground.language.sampling_settings import SamplingSettings
from playground.language.scale import compare_few_shot
from playground.views.few_shot import ITEM_COLUMNS, sweep_outputs, token_summary
from tabs import scale_panel
from tabs.common import (
    CHEAP_EVENT, knob_input, language_event, load_language, local_model_turns, model_picker, settings_parameter,
    user_errors,
)

TITLE = "Few-shot builder"
ORDER = 20

TASKS = load_tasks()
EXAMPLE_HEADERS = ["input", "output"]
EVAL_HEADERS = ["input", "expected"]


def _rows(table: Any) -> Any:
    """The table's rows whether the value came from the browser (a list) or a client (headers + data)."""
    if isinstance(table, dict):
        return table.get("data")
    if isinstance(table, pd.DataFrame):
        return table.values.tolist()
    return table


def _settings(**values: Any) -> FewShotSettings:
    return FewShotSettings(**{**values, "examples": _rows(values["examples"])})


# The sweeps set k, the order and the query themselves; the size comparison also the template and the seed.
SWEEP_NAMES = [name for name in SETTINGS_NAMES if name not in ("query", "k", "order")]
SIZES_NAMES = [name for name in SWEEP_NAMES if name not in ("chat_template", SEED.name)]


def _task_values(task_id: str) -> list:
    if task_id not in TASKS:
        raise PlaygroundError(f"Unknown task {str(task_id)[:40]!r}. Choose one of: {', '.join(TASKS)}.")
    task = TASKS[task_id]
    return [
        task.format.instruction, task.format.input_name, task.format.output_name,
        [[e.input, e.output] for e in task.examples] or [["", ""]], task.answer, ", ".join(task.labels),
        task.query, [[e.input, e.output] for e in task.eval_set] or [["", ""]],
    ]


def build(service: ModelService) -> None:
    language = language_event(service)  # queue settings of the events that run a language model
    limits = service.settings.limits
    start = _task_values("sentiment")
    with gr.Row():
        task = gr.Dropdown([(t.title, t.id) for t in TASKS.values()], value="sentiment", label="Task", scale=2)
        model = model_picker(service, "language")
        chat = gr.Checkbox(False, label="Use the model's chat template (examples become user/assistant turns)")
    instruction = gr.Textbox(start[0], label="Instruction", lines=1)
    examples = gr.Dataframe(
        start[3], headers=EXAMPLE_HEADERS, column_count=2, type="array", interactive=True, wrap=True,
        label="Examples (edit any cell; the first k are the shots)", elem_id="few-shot-examples",
    )
    with gr.Row(equal_height=True):
        new_input = gr.Textbox(label="New example: input", scale=3)
        new_output = gr.Textbox(label="New example: output", scale=1)
        add = gr.Button("Add example", scale=0)
    with gr.Row():
        input_name = gr.Textbox(start[1], label="Input field name", scale=1)
        output_name = gr.Textbox(start[2], label="Output field name", scale=1)
        answer = gr.Radio(list(ANSWER_TYPES), value=start[4], label="Answer", scale=1)
        labels = gr.Textbox(start[5], label="Labels (comma-separated; new example outputs are added)", scale=2)
    query = gr.Textbox(start[6], label="Query", lines=1)
    with gr.Row():
        k = gr.Slider(0, limits.max_examples, value=2, step=1, label="Shots k")
        order = gr.Radio(list(ORDERS), value=AS_GIVEN, label="Examples")
        seed = knob_input(SEED, label="Seed (shuffling, random labels, sampling)")
        temperature = knob_input(TEMPERATURE, value=0, label="Temperature (0 = greedy)", info=None)
        max_new_tokens = gr.Slider(1, limits.max_new_tokens, value=24, step=1, label="Max new tokens")
    with gr.Row():
        show = gr.Button("Show prompt")
        run = gr.Button("Run", variant="primary")
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt, exactly as the model reads it", lines=14, max_lines=30,
                                interactive=False, elem_id="few-shot-prompt")
            tokens = gr.Markdown(elem_id="few-shot-tokens")
        with gr.Column(scale=2):
            generated = gr.Textbox(label="Generated answer", interactive=False, elem_id="few-shot-answer")
            probabilities = gr.Label(label="Label probabilities (log-likelihood of each label's tokens)",
                                     elem_id="few-shot-probabilities")
    with gr.Accordion("Sweep: accuracy on a held-out set as shots are added", open=True):
        eval_table = gr.Dataframe(start[7], headers=EVAL_HEADERS, column_count=2, type="array", interactive=True,
                                  wrap=True, max_height=300, label="Held-out labelled items (never used as shots)")
        with gr.Row():
            sweep_button = gr.Button("Sweep k = 0, 1, 2, 4, 8 + shuffled + random labels", variant="primary")
            stop = gr.Button("Stop", variant="stop")
        sweep_summary = gr.Markdown(elem_id="few-shot-sweep-summary")
        chart = gr.BarPlot(x="setting", y="accuracy", y_lim=[0, 1], label="Accuracy by setting", height=300)
        items = gr.Dataframe(headers=ITEM_COLUMNS, interactive=False, wrap=True, max_height=400,
                             label="Per-item results")

    with gr.Accordion("Does scale matter? Accuracy against model size", open=False):
        gr.Markdown("The sweep over k = 0, 1, 4, 8 on the held-out set above, on two or more models: accuracy "
                    f"against parameter count, one line per k. {scale_panel.NOTICE}")
        scale_models = scale_panel.model_choices(service)
        with gr.Row():
            compare_sizes = gr.Button("Plot accuracy against size", variant="primary")
            stop_sizes = gr.Button("Stop", variant="stop")
        scale_outputs = scale_panel.outputs("few-shot")

    form = [model, instruction, input_name, output_name, chat, examples, query, answer, labels, k, order, seed]

    @user_errors
    @local_model_turns(service)
    @settings_parameter("settings", SETTINGS_NAMES, _settings)
    def show_prompt(model, settings, progress=gr.Progress()):
        request = settings.checked(limits)
        lm = load_language(service, model, progress)
        built = prompt_for(lm, request, limits)
        return built.text, token_summary(request, built.token_count, lm.name)

    @user_errors
    @local_model_turns(service)
    @settings_parameter("settings", SETTINGS_NAMES, _settings)
    @settings_parameter("sampling", [TEMPERATURE.name], SamplingSettings)
    def run_few_shot_once(model, settings, sampling, max_new_tokens, progress=gr.Progress()):
        request = settings.checked(limits)
        lm = load_language(service, model, progress)
        result = run_few_shot(lm, request, sampling, max_new_tokens, limits)
        summary = token_summary(request, result.prompt.token_count, lm.name, lm.capabilities, result.bounded_labels)
        return result.prompt.text, summary, result.answer, result.probabilities or None

    @user_errors
    @local_model_turns(service)
    @settings_parameter("settings", SWEEP_NAMES, _settings)
    def sweep_shots(model, settings, held_out, progress=gr.Progress()):
        request = settings.checked(limits, query_required=False)  # each held-out item takes the query's place
        eval_set = checked_eval_set(_rows(held_out), request, limits)
        lm = load_language(service, model, progress)
        swept = sweep_settings(len(request.examples))
        total, results = len(swept) * len(eval_set), []
        for result in sweep(lm, request, eval_set, limits):
            results.append(result)
            progress(len(results) / total, desc=f"{result.setting}: item {result.item} of {len(eval_set)}")
            if len(results) % len(eval_set):  # mid-setting: only the count moves
                yield f"Scored {len(results)} of {total} items …", gr.skip(), gr.skip()
            else:
                summary, chart, items = sweep_outputs(results, total, request.seed)
                yield summary, gr.BarPlot(chart, sort=[s.name for s in swept]), items

    @user_errors
    @settings_parameter("settings", SIZES_NAMES, _settings)
    def sweep_sizes(models, settings, held_out, progress=gr.Progress()):
        request = settings.checked(limits, query_required=False)
        eval_set = checked_eval_set(_rows(held_out), request, limits)
        yield from scale_panel.streamed(service, lambda: compare_few_shot(service, models, request, eval_set, limits),
                                        progress)

    @user_errors
    def add_example(example_table, input_text, output_text, answer_type, labels_text):
        new = examples_from_rows([[input_text, output_text]], limits, what="new example")
        if not new:
            raise PlaygroundError("Type the new example's input and output first.")
        rows = [[e.input, e.output] for e in examples_from_rows(_rows(example_table), limits) + new]
        examples_from_rows(rows, limits)  # the table may not grow past the limit
        if answer_type == LABELS:
            labels_text = labels_with_outputs(labels_text, new)
        return rows, labels_text, "", ""

    @user_errors
    def refresh_labels(example_table, answer_type, labels_text):
        if answer_type != LABELS:
            return labels_text
        return labels_with_outputs(labels_text, examples_from_rows(_rows(example_table), limits))

    task.change(user_errors(_task_values), task,
                [instruction, input_name, output_name, examples, answer, labels, query, eval_table],
                api_name="load_task", **CHEAP_EVENT)
    add.click(add_example, [examples, new_input, new_output, answer, labels], [examples, labels, new_input, new_output],
              api_visibility="private", **CHEAP_EVENT)
    examples.input(refresh_labels, [examples, answer, labels], labels, api_visibility="private", **CHEAP_EVENT)
    show.click(show_prompt, form, [prompt, tokens], api_name="build_prompt", **language)
    run.click(run_few_shot_once, [*form, temperature, max_new_tokens], [prompt, tokens, generated, probabilities],
              api_name="run_few_shot", **language)
    sweep_inputs = [model, instruction, input_name, output_name, chat, examples, answer, labels, seed, eval_table]
    sweeping = sweep_button.click(sweep_shots, sweep_inputs, [sweep_summary, chart, items], api_name="sweep_shots",
                                  **language)
    stop.click(None, None, None, cancels=[sweeping], api_visibility="private", **CHEAP_EVENT)
    sized = compare_sizes.click(sweep_sizes, [scale_models, instruction, input_name, output_name, examples, answer,
                                              labels, eval_table], list(scale_outputs), api_name="few_shot_scale",
                                **language)
    stop_sizes.click(None, None, None, cancels=[sized], api_visibility="private", **CHEAP_EVENT)
