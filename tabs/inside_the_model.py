"""Inside the language model: structured output, best-of-N, the order of the samplers and the logit lens."""

from __future__ import annotations

import gradio as gr

from playground.core.knobs import SAMPLING_KNOBS
from playground.core.service import ModelService
from playground.language.sampling_settings import SamplingSettings
from playground.views.inside_the_model import (
    KIND_CHOICES, best_of_n_view, lens_view, sampler_order_view, structured_view,
)
from tabs.common import (
    language_event, load_language, local_model_turns, prompt_and_knobs, settings_parameter, user_errors,
)

TITLE = "Inside the language model"
ORDER = 15

INTRO = """Four looks behind the sampling knobs: a **grammar** that masks every token which would break a JSON
schema, a regular expression or a list of choices; **best-of-N**, which keeps the sample the model itself finds
likeliest; the **order** the knobs run in; and the **logit lens**, what the model would predict after each layer."""

PERSON_SCHEMA = """{"type": "object",
 "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
 "required": ["name", "age"], "additionalProperties": false}"""


def build(service: ModelService) -> None:
    language = language_event(service)
    limits = service.settings.limits
    gr.Markdown(INTRO)
    model_choice, chat_template, prompt_box, knob_inputs, seed_box = prompt_and_knobs(service)

    with gr.Tab("Structured output"):
        with gr.Row():
            kind_choice = gr.Radio(list(KIND_CHOICES), value="JSON schema", label="Constraint")
            sample_count = gr.Number(8, label="Samples", precision=0, minimum=1, maximum=limits.max_samples)
            structured_tokens = gr.Number(40, label="New tokens", precision=0, minimum=1,
                                          maximum=limits.max_sweep_new_tokens)
        constraint_box = gr.Code(PERSON_SCHEMA, label="Schema, regular expression, or choices one per line", lines=5)
        run_structured = gr.Button("Sample with and without the grammar", variant="primary")
        structured_summary = gr.HTML()
        grammar_chart = gr.HTML(label="The first token: the grammar as a stage of the chain")
        structured_table = gr.Dataframe(label="Same seed, without and with the grammar", interactive=False, wrap=True)
    with gr.Tab("Best-of-N"):
        with gr.Row():
            candidate_count = gr.Number(6, label="N (candidates)", precision=0, minimum=2, maximum=limits.max_samples)
            best_tokens = gr.Number(24, label="New tokens", precision=0, minimum=1, maximum=limits.max_sweep_new_tokens)
        run_best = gr.Button("Sample N and pick the best", variant="primary")
        best_summary = gr.HTML()
        best_table = gr.HTML()
        best_chart = gr.BarPlot(x="candidate", y="log-probability", color="score", label="Scores (higher is better)")
    with gr.Tab("Sampler order"):
        run_order = gr.Button("Compare the two orders", variant="primary")
        order_summary = gr.HTML()
        with gr.Row():
            first_chart = gr.HTML(label="transformers: temperature first")
            second_chart = gr.HTML(label="llama.cpp: temperature last")
        order_table = gr.Dataframe(label="Per stage, in each order", interactive=False)
    with gr.Tab("Logit lens"):
        run_lens = gr.Button("Look through each layer", variant="primary")
        lens_heatmap = gr.HTML()
        lens_table = gr.Dataframe(label="The last position, layer by layer", interactive=False)

    # Parameter names are the API's (and deep links') names; the knobs arrive as one SamplingSettings.
    knobs = settings_parameter("sampling", [knob.name for knob in SAMPLING_KNOBS], SamplingSettings)

    @user_errors
    @local_model_turns(service)
    @knobs
    def structured_output(model, prompt, use_chat_template, sampling, constraint_kind, constraint, constrained_samples,
                          constrained_tokens, seed, progress=gr.Progress()):
        lm = load_language(service, model, progress)
        chart, table, summary = structured_view(lm, prompt, use_chat_template, sampling, constraint_kind, constraint,
                                                constrained_samples, constrained_tokens, seed, limits)
        return summary, chart, table

    @user_errors
    @local_model_turns(service)
    @knobs
    def best_of_n(model, prompt, use_chat_template, sampling, candidates, candidate_tokens, seed,
                  progress=gr.Progress()):
        lm = load_language(service, model, progress)
        table, scores, summary = best_of_n_view(lm, prompt, use_chat_template, sampling, candidates, candidate_tokens,
                                                seed, limits)
        return summary, table, scores

    @user_errors
    @local_model_turns(service)
    @knobs
    def sampler_order(model, prompt, use_chat_template, sampling, progress=gr.Progress()):
        lm = load_language(service, model, progress)
        return sampler_order_view(lm, prompt, use_chat_template, sampling, limits)

    @user_errors
    @local_model_turns(service)
    def logit_lens(model, prompt, use_chat_template, progress=gr.Progress()):
        lm = load_language(service, model, progress)
        return lens_view(lm, prompt, use_chat_template, limits)

    common = [model_choice, prompt_box, chat_template]
    run_structured.click(structured_output, [*common, *knob_inputs, kind_choice, constraint_box, sample_count,
                                             structured_tokens, seed_box],
                         [structured_summary, grammar_chart, structured_table], api_name="structured_output", **language)
    run_best.click(best_of_n, [*common, *knob_inputs, candidate_count, best_tokens, seed_box],
                   [best_summary, best_table, best_chart], api_name="best_of_n", **language)
    run_order.click(sampler_order, [*common, *knob_inputs], [order_summary, first_chart, second_chart, order_table],
                    api_name="sampler_order", **language)
    run_lens.click(logit_lens, common, [lens_heatmap, lens_table], api_name="logit_lens", **language)
