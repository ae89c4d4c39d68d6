"""CoT compare: the same word problem answered directly and with chain-of-thought, side by side, scored."""

from __future__ import annotations

import random

import gradio as gr

from playground.core.knobs import MIN_P, REPETITION_PENALTY, SAMPLING_KNOBS, SEED, TEMPERATURE, TOP_K, TOP_P
from playground.core.service import ModelService
from playground.language.chain_of_thought import answering, evaluation, gsm8k, prompts
from playground.language.answers import format_number
from playground.language import scale
from playground.language.sampling_settings import SamplingSettings
from playground.views import chain_of_thought as view
from serving.files import keep
from tabs import scale_panel
from tabs.common import (
    CHEAP_EVENT, knob_input, language_event, load_language, local_model_turns, model_picker, settings_parameter,
    user_errors,
)

TITLE = "CoT compare"
ORDER = 30
DEFAULT_PROBLEM = 1


def _settings(use_chat_template, max_new_tokens, exemplars, samples, temperature, top_k, top_p, min_p,
              repetition_penalty, seed) -> prompts.CotSettings:
    sampling = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
    return prompts.CotSettings(max_new_tokens, bool(use_chat_template), exemplars, samples, sampling, seed)


# The generation settings arrive as one CotSettings; the API, deep links and lessons see these names.
SETTINGS_NAMES = ["use_chat_template", "max_new_tokens", "exemplars", "samples",
                  *(knob.name for knob in SAMPLING_KNOBS), SEED.name]


def build(service: ModelService) -> None:
    language = language_event(service)  # queue settings of the events that run a language model
    limits = service.settings.limits
    first = gsm8k.gsm8k_problem(DEFAULT_PROBLEM)
    gr.Markdown(
        "Ask the same model the same word problem four ways: answer at once, *\"Let's think step by step\"*, "
        "after worked examples, or k sampled solutions that vote. The final number is read from each answer "
        "and scored, with the tokens and seconds it cost. Chain-of-thought was reported to help only large "
        "models: try a small and a larger one."
    )
    with gr.Row():
        model = model_picker(service, "language")
        use_chat_template = gr.Checkbox(True, label="Use the model's chat template")
    with gr.Row():
        number = gr.Number(DEFAULT_PROBLEM, label=f"GSM8K test problem (1–{len(gsm8k.gsm8k_test())})", precision=0)
        load = gr.Button("Load problem", size="sm")
        pick_random = gr.Button("Random problem", size="sm")
    with gr.Row():
        question = gr.Textbox(first.question, label="Question (edit it, or type your own)", lines=3, scale=4)
        reference = gr.Textbox(format_number(first.reference), label="Reference answer (a number; empty: not scored)")
    modes = gr.CheckboxGroup(list(prompts.MODES), value=list(prompts.MODES), label="Modes")
    with gr.Accordion("Generation settings", open=False):
        with gr.Row():
            max_new_tokens = gr.Slider(1, limits.max_new_tokens, min(160, limits.max_new_tokens), step=1,
                                       label="Max new tokens per answer")
            exemplars = gr.Slider(1, len(gsm8k.gsm8k_exemplars()), 4, step=1, label="Worked examples (few-shot)")
            samples = gr.Slider(2, limits.max_samples, min(5, limits.max_samples), step=1,
                                label="Self-consistency samples (k)")
        with gr.Row():
            temperature = knob_input(TEMPERATURE, value=0.7, label="Temperature (self-consistency)", info=None)
            top_k = knob_input(TOP_K, label="Top-k (0 = off)", info=None)
            top_p = knob_input(TOP_P, value=0.95, info=None)
            min_p = knob_input(MIN_P, info=None)
            repetition_penalty = knob_input(REPETITION_PENALTY, info=None)
            seed = knob_input(SEED)
    knobs = [use_chat_template, max_new_tokens, exemplars, samples, temperature, top_k, top_p, min_p,
             repetition_penalty, seed]
    with gr.Row():
        run = gr.Button("Compare", variant="primary")
        stop = gr.Button("Stop")
    verdicts, texts = [], []
    with gr.Row():
        for mode in prompts.MODES:
            with gr.Column(min_width=220):
                gr.Markdown(f"### {mode}")
                verdicts.append(gr.Markdown("—", elem_id=f"cot-verdict-{prompts.MODES.index(mode)}"))
                texts.append(gr.Textbox(label="Answer", lines=8, max_lines=20, interactive=False))

    with gr.Accordion("Accuracy on many problems", open=False):
        with gr.Row():
            first_number = gr.Number(1, label="First GSM8K test problem", precision=0)
            # A few problems, batched wide: what one request may cost (Limits' budgets) fits all four modes.
            count = gr.Number(min(4, limits.max_batch_items), label=f"Problems (up to {limits.max_batch_items})",
                              precision=0)
            batch_size = gr.Slider(1, limits.max_generation_batch, limits.max_generation_batch, step=1,
                                   label="Sequences per batch (1 = one at a time)")
        with gr.Row():
            evaluate = gr.Button("Measure accuracy", variant="primary")
            stop_batch = gr.Button("Stop")
        summary = gr.Markdown()
        chart = gr.BarPlot(x="mode", y="accuracy %", y_lim=[0, 100], title="Accuracy by mode", sort=list(prompts.MODES))
        table = gr.Dataframe(interactive=False, wrap=True, max_height=400)
        download = gr.File(label="Results (CSV)")

    with gr.Accordion("Does scale matter? Accuracy against model size", open=False):
        gr.Markdown("The same GSM8K problems in each mode on two or more models: accuracy against parameter "
                    f"count, one line per mode. {scale_panel.NOTICE}")
        scale_models = scale_panel.model_choices(service)
        with gr.Row():
            scale_first = gr.Number(1, label="First GSM8K test problem", precision=0)
            scale_count = gr.Number(2, label=f"Problems (up to {limits.max_batch_items})", precision=0)
            scale_modes = gr.CheckboxGroup(list(scale.COT_MODES), value=list(scale.COT_MODES), label="Modes (lines)",
                                           elem_id="cot-scale-modes")
        with gr.Row():
            compare_sizes = gr.Button("Plot accuracy against size", variant="primary")
            stop_sizes = gr.Button("Stop")
        scale_outputs = scale_panel.outputs("cot")

    @user_errors
    def show_problem(value):
        problem = gsm8k.gsm8k_problem(value)
        return problem.question, format_number(problem.reference)

    @user_errors
    @local_model_turns(service)
    @settings_parameter("settings", SETTINGS_NAMES, _settings)
    def compare(model, question, reference, modes, settings, progress=gr.Progress()):
        problem = gsm8k.custom_problem(question, reference, limits)
        chosen = prompts.check_modes(modes)
        settings = settings.validated(limits, chosen)
        lm = load_language(service, model, progress)
        answering.check_compare_budget(lm, problem, chosen, settings, limits)
        shown = {mode: ("_waiting…_" if mode in chosen else "not run", "") for mode in prompts.MODES}
        for mode in chosen:
            for result in answering.stream_mode(lm, mode, problem, settings):
                shown[mode] = (view.verdict(result), view.shown_text(result))
                yield [shown[m][0] for m in prompts.MODES] + [shown[m][1] for m in prompts.MODES]

    @user_errors
    @local_model_turns(service)
    @settings_parameter("settings", SETTINGS_NAMES, _settings)
    def measure(model, first_problem, problems, batch_size, modes, settings, progress=gr.Progress()):
        numbers = gsm8k.check_problem_range(first_problem, problems, limits)
        chosen = prompts.check_modes(modes)
        settings = settings.validated(limits, chosen)
        lm = load_language(service, model, progress)
        for state in evaluation.evaluate(lm, numbers, chosen, settings, batch_size, limits):
            progress(state.steps_done / state.steps_total, desc=f"{state.steps_done}/{state.steps_total} batches")
            summary, chart, table = view.batch_tables(state.outcomes, chosen)
            csv_path = None
            if state.steps_done == state.steps_total:
                csv_path = keep("cot_accuracy.csv", view.outcomes_csv(state.outcomes, chosen).encode("utf-8"))
            yield summary, chart, table, csv_path

    @user_errors
    def measure_sizes(models, scale_first_problem, scale_problems, batch_size, scale_modes, max_new_tokens, exemplars,
                      progress=gr.Progress()):
        numbers = gsm8k.check_problem_range(scale_first_problem, scale_problems, limits)
        settings = prompts.CotSettings(max_new_tokens=max_new_tokens, exemplars=exemplars)
        yield from scale_panel.streamed(service, lambda: scale.compare_cot(
            service, models, numbers, scale_modes, settings, batch_size, limits), progress)

    load.click(show_problem, number, [question, reference], api_name="cot_problem", **CHEAP_EVENT)
    number.submit(show_problem, number, [question, reference], api_visibility="private", **CHEAP_EVENT)
    pick_random.click(lambda: random.randint(1, len(gsm8k.gsm8k_test())), None, number, api_visibility="private",
                      **CHEAP_EVENT).then(show_problem, number, [question, reference], api_visibility="private",
                                          **CHEAP_EVENT)
    compared = run.click(compare, [model, question, reference, modes, *knobs], verdicts + texts,
                         api_name="cot_compare", **language)
    stop.click(None, None, None, cancels=[compared], api_visibility="private")
    measured = evaluate.click(measure, [model, first_number, count, batch_size, modes, *knobs],
                              [summary, chart, table, download], api_name="cot_accuracy", **language)
    stop_batch.click(None, None, None, cancels=[measured], api_visibility="private")
    sized = compare_sizes.click(measure_sizes, [scale_models, scale_first, scale_count, batch_size, scale_modes,
                                                max_new_tokens, exemplars], list(scale_outputs), api_name="cot_scale",
                                **language)
    stop_sizes.click(None, None, None, cancels=[sized], api_visibility="private")
