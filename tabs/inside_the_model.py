"""Inside the language model: structured output, best-of-N, the order of the samplers and the logit lens."""

from __future__ import annotations

import gradio as gr

from playground.core.service import ModelService
from playground.language.generation import SamplingSettings
from playground.views.inside_the_model import (
    KIND_CHOICES, best_of_n_view, lens_view, sampler_order_view, structured_view,
)
from tabs.common import language_event, load_with_progress, local_model_turns, model_picker, user_errors

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
    with gr.Row():
        model_choice = model_picker(service, "language")
        chat_template = gr.Checkbox(False, label="Use the chat template", info="for instruct models; plain text otherwise")
    prompt_box = gr.Textbox("The capital of France is", label="Prompt", lines=2, max_length=limits.max_prompt_chars)
    with gr.Row():
        temperature_slider = gr.Slider(0, 3, 1.0, step=0.01, label="Temperature", info="0 = greedy")
        top_k_box = gr.Number(0, label="Top-k", info="0 = off", precision=0, minimum=0)
        top_p_slider = gr.Slider(0.01, 1, 1.0, step=0.01, label="Top-p", info="1 = off")
        min_p_slider = gr.Slider(0, 1, 0.0, step=0.01, label="Min-p", info="0 = off")
        penalty_slider = gr.Slider(0.5, 2, 1.0, step=0.01, label="Repetition penalty", info="1 = off")
        seed_box = gr.Number(0, label="Seed", precision=0, minimum=0)
    knob_inputs = [temperature_slider, top_k_box, top_p_slider, min_p_slider, penalty_slider]

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

    # Parameter names are the API's (and deep links') names.
    @user_errors
    @local_model_turns(service)
    def structured_output(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty,
                          constraint_kind, constraint, constrained_samples, constrained_tokens, seed,
                          progress=gr.Progress()):
        lm = load_with_progress(service, "language", model, progress)
        knobs = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        chart, table, summary = structured_view(lm, prompt, use_chat_template, knobs, constraint_kind, constraint,
                                                constrained_samples, constrained_tokens, seed, limits)
        return summary, chart, table

    @user_errors
    @local_model_turns(service)
    def best_of_n(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty,
                  candidates, candidate_tokens, seed, progress=gr.Progress()):
        lm = load_with_progress(service, "language", model, progress)
        knobs = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        table, scores, summary = best_of_n_view(lm, prompt, use_chat_template, knobs, candidates, candidate_tokens,
                                                seed, limits)
        return summary, table, scores

    @user_errors
    @local_model_turns(service)
    def sampler_order(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty,
                      progress=gr.Progress()):
        lm = load_with_progress(service, "language", model, progress)
        knobs = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        return sampler_order_view(lm, prompt, use_chat_template, knobs, limits)

    @user_errors
    @local_model_turns(service)
    def logit_lens(model, prompt, use_chat_template, progress=gr.Progress()):
        lm = load_with_progress(service, "language", model, progress)
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
