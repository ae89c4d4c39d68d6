"""Sampling knobs: how temperature, top-k, top-p, min-p and the repetition penalty reshape the next token."""

from __future__ import annotations

import gradio as gr

from playground.core.knobs import SAMPLING_KNOBS
from playground.core.service import ModelService
from playground.language.sampling_settings import SamplingSettings
from playground.language.sampling_requests import MAX_FORCED_CHARS, Steer
from playground.views.sampling import (
    ALTERNATIVE_COLUMNS, STAGE_COLUMNS, STEP_COLUMNS, current_alternatives, next_token_view, search_view,
    steer_view, step_text, steps_view, sweep_view,
)
from tabs.common import (
    CHEAP_EVENT, language_event, load_language, local_model_turns, prompt_and_knobs, settings_parameter,
    user_errors,
)

TITLE = "Sampling knobs"
ORDER = 10

INTRO = """A language model gives a probability for every token in its vocabulary; **sampling** picks one.
The knobs reshape that distribution first, in the order transformers applies them: repetition penalty →
temperature → top-k → top-p → min-p. The chart shows each stage, which tokens each knob cut (✂) and how the
remaining mass is renormalised. Temperature 0 is greedy decoding: always the most likely token."""


def build(service: ModelService) -> None:
    language = language_event(service)  # queue settings of the events that run a language model
    limits = service.settings.limits
    gr.Markdown(INTRO)
    model_choice, chat_template, prompt_box, knob_inputs, seed_box = prompt_and_knobs(service)

    with gr.Tab("Next token"):
        show = gr.Button("Show the next-token distribution", variant="primary")
        chart = gr.HTML(label="Stages of the chain")
        stages = gr.Dataframe(headers=STAGE_COLUMNS, label="Per stage", interactive=False)
        tail = gr.LinePlot(x="log10 rank", y="log10 probability", color="stage", label="The tail, log-log",
                           caption="Every token by rank; a curve ends where a knob cut the rest.")
    with gr.Tab("Step by step"):
        with gr.Row():
            step_one = gr.Button("Step one token", variant="primary")
            run_n = gr.Button("Run N tokens")
            n_tokens = gr.Number(20, label="N", precision=0, minimum=1, maximum=limits.max_new_tokens)
            restart = gr.Button("Start over")
        steps_html = gr.HTML(step_text(None, ""))
        with gr.Row():
            forced_box = gr.Textbox(label="Force a token", placeholder="one token, with its leading space: ' Paris'",
                                    max_length=MAX_FORCED_CHARS)
            force_button = gr.Button("Force this token")
            back_button = gr.Button("Go back one step")
        alternatives = gr.Dataframe(headers=ALTERNATIVE_COLUMNS, interactive=False, elem_id="sampling-alternatives",
                                    label="Each step's likeliest tokens: click one to continue from it instead")
        with gr.Row():
            picked_step = gr.Number(1, label="Step", precision=0, minimum=1)
            picked_alternative = gr.Number(1, label="Alternative", precision=0, minimum=1, maximum=5)
            pick_button = gr.Button("Continue from this alternative")
        steps_table = gr.Dataframe(headers=STEP_COLUMNS, label="Each token and its alternatives", interactive=False)
    with gr.Tab("Temperature sweep"):
        with gr.Row():
            temperature_list = gr.Textbox("0, 0.7, 1.0, 1.5", label="Temperatures")
            sample_count = gr.Number(4, label="Samples per temperature", precision=0, minimum=1, maximum=limits.max_samples)
            sweep_tokens = gr.Number(24, label="New tokens", precision=0, minimum=1, maximum=limits.max_sweep_new_tokens)
        run_sweep = gr.Button("Sample", variant="primary")
        sweep_samples = gr.Dataframe(label="Samples (same seed in every column)", interactive=False, wrap=True)
        diversity = gr.Dataframe(label="Diversity", interactive=False)
    with gr.Tab("Greedy vs beam search"):
        with gr.Row():
            beam_count = gr.Slider(2, limits.max_beams, 4, step=1, label="Beams")
            search_tokens = gr.Number(24, label="New tokens", precision=0, minimum=1, maximum=limits.max_sweep_new_tokens)
        run_search = gr.Button("Compare", variant="primary")
        searches = gr.Dataframe(label="Higher log-probability = the model finds the whole continuation likelier",
                                interactive=False, wrap=True)

    # Parameter names are the API's (and deep links') names, so they say what each value is; the knobs arrive
    # as one SamplingSettings, their names declared once in playground.core.knobs.
    knobs = settings_parameter("sampling", [knob.name for knob in SAMPLING_KNOBS], SamplingSettings)

    @user_errors
    @local_model_turns(service)
    @knobs
    def next_token(model, prompt, use_chat_template, sampling, progress=gr.Progress()):
        lm = load_language(service, model, progress)
        return next_token_view(lm, prompt, use_chat_template, sampling, limits)

    @local_model_turns(service)
    def steps(model, prompt, use_chat_template, sampling, seed, tokens, request: gr.Request, progress):
        # The session (and its KV cache) stays on the server, in one store for all visitors, keyed by visitor.
        lm = load_language(service, model, progress)
        return steps_view(lm, service.step_sessions, request.session_hash, prompt, use_chat_template, sampling, seed,
                          tokens, limits)

    @user_errors
    @knobs
    def generate_steps(model, prompt, use_chat_template, sampling, seed, tokens, request: gr.Request,
                       progress=gr.Progress()):
        return steps(model, prompt, use_chat_template, sampling, seed, tokens, request, progress)

    @user_errors
    @knobs
    def step_one_token(model, prompt, use_chat_template, sampling, seed, request: gr.Request, progress=gr.Progress()):
        return steps(model, prompt, use_chat_template, sampling, seed, 1, request, progress)

    @user_errors
    def start_over(request: gr.Request):
        if request.session_hash is not None:
            service.step_sessions.drop(request.session_hash)
        return step_text(None, ""), None

    def steer(model, prompt, use_chat_template, sampling, seed, change, request, progress):
        lm = load_language(service, model, progress)
        return steer_view(lm, service.step_sessions, request.session_hash, prompt, use_chat_template, sampling, seed,
                          change, limits)

    @user_errors
    @local_model_turns(service)
    @knobs
    def force_token(model, prompt, use_chat_template, sampling, seed, forced_token, request: gr.Request,
                    progress=gr.Progress()):
        return steer(model, prompt, use_chat_template, sampling, seed, Steer(force=forced_token), request, progress)

    @user_errors
    @local_model_turns(service)
    @knobs
    def step_back(model, prompt, use_chat_template, sampling, seed, request: gr.Request, progress=gr.Progress()):
        return steer(model, prompt, use_chat_template, sampling, seed, Steer(back=True), request, progress)

    @user_errors
    @local_model_turns(service)
    @knobs
    def continue_from_alternative(model, prompt, use_chat_template, sampling, seed, step, alternative,
                                  request: gr.Request, progress=gr.Progress()):
        return steer(model, prompt, use_chat_template, sampling, seed, Steer(step=step, alternative=alternative),
                     request, progress)

    def pick_cell(event: gr.SelectData):
        row, column = event.index
        return row + 1, max(column, 1)

    @user_errors
    def alternatives_now(model, request: gr.Request):
        return current_alternatives(load_language(service, model, None), service.step_sessions, request.session_hash)

    @user_errors
    @local_model_turns(service)
    @settings_parameter("sampling", [knob.name for knob in SAMPLING_KNOBS[1:]],
                        lambda **knobs: SamplingSettings(temperature=1.0, **knobs))  # each column sets its temperature
    def sweep(model, prompt, use_chat_template, sampling, temperatures, samples, tokens, seed, progress=gr.Progress()):
        lm = load_language(service, model, progress)
        return sweep_view(lm, prompt, use_chat_template, sampling, temperatures, samples, tokens, seed, limits)

    @user_errors
    @local_model_turns(service)
    def compare_search(model, prompt, use_chat_template, beams, tokens, progress=gr.Progress()):
        lm = load_language(service, model, progress)
        return search_view(lm, prompt, use_chat_template, beams, tokens, limits)

    gr.on([show.click, prompt_box.submit, *(knob.change for knob in knob_inputs)], next_token,
          [model_choice, prompt_box, chat_template, *knob_inputs], [chart, stages, tail], api_name="next_token",
          trigger_mode="always_last", **language)
    step_inputs = [model_choice, prompt_box, chat_template, *knob_inputs, seed_box]
    step_outputs = [steps_html, steps_table]
    for event in (run_n.click(generate_steps, [*step_inputs, n_tokens], step_outputs, api_name="generate_steps",
                              **language),
                  step_one.click(step_one_token, step_inputs, step_outputs, api_name="step_one_token", **language)):
        event.then(alternatives_now, model_choice, alternatives, api_visibility="private", **CHEAP_EVENT)
    restart.click(start_over, None, step_outputs, api_name="start_over", queue=False).then(
        lambda: None, None, alternatives, api_visibility="private", queue=False)
    steer_outputs = [*step_outputs, alternatives]
    force_button.click(force_token, [*step_inputs, forced_box], steer_outputs, api_name="force_token", **language)
    forced_box.submit(force_token, [*step_inputs, forced_box], steer_outputs, api_visibility="private", **language)
    back_button.click(step_back, step_inputs, steer_outputs, api_name="step_back", **language)
    pick_button.click(continue_from_alternative, [*step_inputs, picked_step, picked_alternative], steer_outputs,
                      api_name="continue_from_alternative", **language)
    alternatives.select(pick_cell, None, [picked_step, picked_alternative], api_visibility="private",
                        **CHEAP_EVENT).then(continue_from_alternative, [*step_inputs, picked_step, picked_alternative],
                                            steer_outputs, api_visibility="private", **language)
    run_sweep.click(sweep, [model_choice, prompt_box, chat_template, *knob_inputs[1:], temperature_list, sample_count,
                            sweep_tokens, seed_box], [sweep_samples, diversity], api_name="sweep", **language)
    run_search.click(compare_search, [model_choice, prompt_box, chat_template, beam_count, search_tokens], searches,
                     api_name="compare_search", **language)
