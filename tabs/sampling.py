"""Sampling knobs: how temperature, top-k, top-p, min-p and the repetition penalty reshape the next token."""

from __future__ import annotations

import gradio as gr

from playground.language.generation import SamplingSettings
from playground.language.steps import back, choose_alternative, force, token_of_text
from playground.views.sampling import (
    ALTERNATIVE_COLUMNS, STAGE_COLUMNS, STEP_COLUMNS, current_alternatives, next_token_view, search_view,
    steer_view, step_text, steps_view, sweep_view,
)
from playground.core.service import ModelService
from tabs.common import CHEAP_EVENT, language_event, load_with_progress, local_model_turns, model_picker, user_errors

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
    with gr.Row():
        model_choice = model_picker(service, "language")
        chat_template = gr.Checkbox(False, label="Use the chat template", info="for instruct models; plain text otherwise")
    prompt_box = gr.Textbox("The capital of France is", label="Prompt", lines=2, max_length=limits.max_prompt_chars)
    with gr.Row():
        temperature_slider = gr.Slider(0, 3, 1.0, step=0.01, label="Temperature", info="0 = greedy")
        top_k_box = gr.Number(0, label="Top-k", info="keep the k most likely (0 = off)", precision=0, minimum=0)
        top_p_slider = gr.Slider(0.01, 1, 1.0, step=0.01, label="Top-p", info="smallest set with this mass (1 = off)")
        min_p_slider = gr.Slider(0, 1, 0.0, step=0.01, label="Min-p", info="drop tokens below min-p × the top one (0 = off)")
        penalty_slider = gr.Slider(0.5, 2, 1.0, step=0.01, label="Repetition penalty", info="1 = off")
        seed_box = gr.Number(0, label="Seed", precision=0, minimum=0)
    knob_inputs = [temperature_slider, top_k_box, top_p_slider, min_p_slider, penalty_slider]

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
                                    max_length=200)
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

    # Parameter names are the API's (and deep links') names, so they say what each value is.
    @user_errors
    @local_model_turns(service)
    def next_token(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty,
                   progress=gr.Progress()):
        lm = load_with_progress(service, "language", model, progress)
        knobs = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        return next_token_view(lm, prompt, use_chat_template, knobs, limits)

    @user_errors
    @local_model_turns(service)
    def generate_steps(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty, seed,
                       tokens, request: gr.Request, progress=gr.Progress()):
        # The session (and its KV cache) stays on the server, in one store for all visitors, keyed by visitor.
        lm = load_with_progress(service, "language", model, progress)
        knobs = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        return steps_view(lm, service.step_sessions, request.session_hash, prompt, use_chat_template, knobs, seed,
                          tokens, limits)

    @user_errors
    def step_one_token(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty, seed,
                       request: gr.Request, progress=gr.Progress()):
        return generate_steps(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty,
                              seed, 1, request, progress)

    @user_errors
    def start_over(request: gr.Request):
        if request.session_hash is not None:
            service.step_sessions.drop(request.session_hash)
        return step_text(None, ""), None

    def steer(model, prompt, use_chat_template, knobs, seed, request, progress, change):
        lm = load_with_progress(service, "language", model, progress)
        return steer_view(lm, service.step_sessions, request.session_hash, prompt, use_chat_template, knobs, seed,
                          limits, lambda session: change(lm, session, knobs.validated()))

    @user_errors
    @local_model_turns(service)
    def force_token(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty, seed,
                    forced_token, request: gr.Request, progress=gr.Progress()):
        knobs = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        return steer(model, prompt, use_chat_template, knobs, seed, request, progress, lambda lm, session, k: force(
            lm, session, k, token_of_text(lm, forced_token), limits.max_new_tokens))

    @user_errors
    @local_model_turns(service)
    def step_back(model, prompt, use_chat_template, temperature, top_k, top_p, min_p, repetition_penalty, seed,
                  request: gr.Request, progress=gr.Progress()):
        knobs = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        return steer(model, prompt, use_chat_template, knobs, seed, request, progress,
                     lambda lm, session, k: back(session))

    @user_errors
    @local_model_turns(service)
    def continue_from_alternative(model, prompt, use_chat_template, temperature, top_k, top_p, min_p,
                                  repetition_penalty, seed, step, alternative, request: gr.Request,
                                  progress=gr.Progress()):
        knobs = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
        return steer(model, prompt, use_chat_template, knobs, seed, request, progress, lambda lm, session, k:
                     choose_alternative(lm, session, k, int(step), int(alternative) - 1, limits.max_new_tokens))

    def pick_cell(event: gr.SelectData):
        row, column = event.index
        return (row + 1, column) if column >= 1 else (row + 1, 1)

    @user_errors
    def alternatives_now(request: gr.Request):
        return current_alternatives(service.step_sessions, request.session_hash)

    @user_errors
    @local_model_turns(service)
    def sweep(model, prompt, use_chat_template, top_k, top_p, min_p, repetition_penalty, temperatures, samples,
              tokens, seed, progress=gr.Progress()):
        lm = load_with_progress(service, "language", model, progress)
        knobs = SamplingSettings(1.0, top_k, top_p, min_p, repetition_penalty)  # each column sets its temperature
        return sweep_view(lm, prompt, use_chat_template, knobs, temperatures, samples, tokens, seed, limits)

    @user_errors
    @local_model_turns(service)
    def compare_search(model, prompt, use_chat_template, beams, tokens, progress=gr.Progress()):
        lm = load_with_progress(service, "language", model, progress)
        return search_view(lm, prompt, use_chat_template, beams, tokens, limits)

    gr.on([show.click, prompt_box.submit, *(knob.change for knob in knob_inputs)], next_token,
          [model_choice, prompt_box, chat_template, *knob_inputs], [chart, stages, tail], api_name="next_token",
          trigger_mode="always_last", **language)
    step_inputs = [model_choice, prompt_box, chat_template, *knob_inputs, seed_box]
    step_outputs = [steps_html, steps_table]
    run_n.click(generate_steps, [*step_inputs, n_tokens], step_outputs, api_name="generate_steps", **language).then(
        alternatives_now, None, alternatives, api_visibility="private", **CHEAP_EVENT)
    step_one.click(step_one_token, step_inputs, step_outputs, api_name="step_one_token", **language).then(
        alternatives_now, None, alternatives, api_visibility="private", **CHEAP_EVENT)
    restart.click(start_over, None, step_outputs, api_name="start_over", queue=False).then(
        alternatives_now, None, alternatives, api_visibility="private", **CHEAP_EVENT)
    steer_outputs = [*step_outputs, alternatives]
    force_button.click(force_token, [*step_inputs, forced_box], steer_outputs, api_name="force_token", **language)
    forced_box.submit(force_token, [*step_inputs, forced_box], steer_outputs, api_visibility="private", **language)
    back_button.click(step_back, step_inputs, steer_outputs, api_name="step_back", **language)
    pick_button.click(continue_from_alternative, [*step_inputs, picked_step, picked_alternative], steer_outputs,
                      api_name="continue_from_alternative", **language)
    alternatives.select(pick_cell, None, [picked_step, picked_alternative], api_visibility="private", **CHEAP_EVENT).then(
        continue_from_alternative, [*step_inputs, picked_step, picked_alternative], steer_outputs,
        api_visibility="private", **language)
    run_sweep.click(sweep, [model_choice, prompt_box, chat_template, *knob_inputs[1:], temperature_list, sample_count,
                            sweep_tokens, seed_box], [sweep_samples, diversity], api_name="sweep", **language)
    run_search.click(compare_search, [model_choice, prompt_box, chat_template, beam_count, search_tokens], searches,
                     api_name="compare_search", **language)
