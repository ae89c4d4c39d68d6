"""CoT compare: the same word problem answered directly and with chain-of-thought, side by side, scored."""

from __future__ import annotations

import random

import gradio as gr
import pandas as pd

from playground.core.service import ModelService
from playground.language import chain_of_thought as cot
from playground.language.answers import format_number
from playground.language import scale
from playground.language.generation import SamplingSettings
from serving.files import keep
from tabs import scale_panel
from tabs.common import (
    CHEAP_EVENT, language_event, load_with_progress, local_model_turns, model_picker, user_errors,
)

TITLE = "CoT compare"
ORDER = 30
DEFAULT_PROBLEM = 1


def _settings(use_chat_template, max_new_tokens, exemplars, samples, temperature, top_k, top_p, min_p,
              repetition_penalty, seed) -> cot.CotSettings:
    sampling = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
    return cot.CotSettings(max_new_tokens, bool(use_chat_template), exemplars, samples, sampling, seed)


def build(service: ModelService) -> None:
    language = language_event(service)  # queue settings of the events that run a language model
    limits = service.settings.limits
    first = cot.gsm8k_problem(DEFAULT_PROBLEM)
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
        number = gr.Number(DEFAULT_PROBLEM, label=f"GSM8K test problem (1–{len(cot.gsm8k_test())})", precision=0)
        load = gr.Button("Load problem", size="sm")
        pick_random = gr.Button("Random problem", size="sm")
    with gr.Row():
        question = gr.Textbox(first.question, label="Question (edit it, or type your own)", lines=3, scale=4)
        reference = gr.Textbox(format_number(first.reference), label="Reference answer (a number; empty: not scored)")
    modes = gr.CheckboxGroup(list(cot.MODES), value=list(cot.MODES), label="Modes")
    with gr.Accordion("Generation settings", open=False):
        with gr.Row():
            max_new_tokens = gr.Slider(1, limits.max_new_tokens, min(160, limits.max_new_tokens), step=1,
                                       label="Max new tokens per answer")
            exemplars = gr.Slider(1, len(cot.gsm8k_exemplars()), 4, step=1, label="Worked examples (few-shot)")
            samples = gr.Slider(2, limits.max_samples, min(5, limits.max_samples), step=1,
                                label="Self-consistency samples (k)")
        with gr.Row():
            temperature = gr.Slider(0, 2, 0.7, step=0.05, label="Temperature (self-consistency)")
            top_k = gr.Number(0, label="Top-k (0 = off)", precision=0)
            top_p = gr.Slider(0.01, 1, 0.95, step=0.01, label="Top-p")
            min_p = gr.Slider(0, 1, 0, step=0.01, label="Min-p")
            repetition_penalty = gr.Slider(0.5, 2, 1, step=0.05, label="Repetition penalty")
            seed = gr.Number(0, label="Seed", precision=0)
    knobs = [use_chat_template, max_new_tokens, exemplars, samples, temperature, top_k, top_p, min_p,
             repetition_penalty, seed]
    with gr.Row():
        run = gr.Button("Compare", variant="primary")
        stop = gr.Button("Stop")
    verdicts, texts = [], []
    with gr.Row():
        for mode in cot.MODES:
            with gr.Column(min_width=220):
                gr.Markdown(f"### {mode}")
                verdicts.append(gr.Markdown("—", elem_id=f"cot-verdict-{cot.MODES.index(mode)}"))
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
        chart = gr.BarPlot(x="mode", y="accuracy %", y_lim=[0, 100], title="Accuracy by mode", sort=list(cot.MODES))
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
        problem = cot.gsm8k_problem(value)
        return problem.question, format_number(problem.reference)

    @user_errors
    @local_model_turns(service)
    def compare(model, question, reference, modes, use_chat_template, max_new_tokens, exemplars, samples,
                temperature, top_k, top_p, min_p, repetition_penalty, seed, progress=gr.Progress()):
        problem = cot.custom_problem(question, reference, limits)
        chosen = cot.check_modes(modes)
        settings = _settings(use_chat_template, max_new_tokens, exemplars, samples, temperature, top_k, top_p,
                             min_p, repetition_penalty, seed).validated(limits, chosen)
        lm = load_with_progress(service, "language", model, progress)
        cot.check_compare_budget(lm, problem, chosen, settings, limits)
        shown = {mode: ("_waiting…_" if mode in chosen else "not run", "") for mode in cot.MODES}
        for mode in chosen:
            for result in cot.stream_mode(lm, mode, problem, settings):
                shown[mode] = (cot.verdict(result), cot.shown_text(result))
                yield [shown[m][0] for m in cot.MODES] + [shown[m][1] for m in cot.MODES]

    @user_errors
    @local_model_turns(service)
    def measure(model, first_problem, problems, batch_size, modes, use_chat_template, max_new_tokens, exemplars,
                samples, temperature, top_k, top_p, min_p, repetition_penalty, seed, progress=gr.Progress()):
        numbers = cot.check_problem_range(first_problem, problems, limits)
        chosen = cot.check_modes(modes)
        settings = _settings(use_chat_template, max_new_tokens, exemplars, samples, temperature, top_k, top_p,
                             min_p, repetition_penalty, seed).validated(limits, chosen)
        lm = load_with_progress(service, "language", model, progress)
        for state in cot.evaluate(lm, numbers, chosen, settings, batch_size, limits):
            progress(state.steps_done / state.steps_total, desc=f"{state.steps_done}/{state.steps_total} batches")
            done = state.steps_done == state.steps_total
            yield _batch_view(state.outcomes, chosen, done)

    @user_errors
    def measure_sizes(models, scale_first_problem, scale_problems, batch_size, scale_modes, max_new_tokens, exemplars,
                      progress=gr.Progress()):
        numbers = cot.check_problem_range(scale_first_problem, scale_problems, limits)
        settings = cot.CotSettings(max_new_tokens=max_new_tokens, exemplars=exemplars)
        yield from scale_panel.streamed(service, lambda: scale.compare_cot(
            service, models, numbers, scale_modes, settings, batch_size, limits), progress)

    load.click(show_problem, number, [question, reference], api_name="cot_problem", **CHEAP_EVENT)
    number.submit(show_problem, number, [question, reference], api_visibility="private", **CHEAP_EVENT)
    pick_random.click(lambda: random.randint(1, len(cot.gsm8k_test())), None, number, api_visibility="private",
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


def _batch_view(outcomes, modes, done: bool) -> tuple:
    """Summary line, chart, per-problem table, and (when finished) the CSV file."""
    finished = [o for o in outcomes if len(o.results) == len(modes)]
    accuracy = cot.accuracy_by_mode(finished, modes)
    chart = pd.DataFrame({"mode": [a.mode for a in accuracy], "accuracy %": [100 * a.accuracy for a in accuracy]})
    summary = f"{len(finished)} of {len(outcomes)} problems done. " + " · ".join(
        f"**{a.mode}** {a.correct}/{a.scored} right, {a.new_tokens / max(1, len(finished)):.0f} tokens/problem"
        for a in accuracy
    )
    rows = [
        {name: ("✓" if value is True else "✗" if value is False else value) for name, value in row.items()
         if not name.endswith((": tokens", ": seconds"))} | {"question": str(row["question"])[:90]}
        for row in cot.outcome_rows(finished, modes)
    ]
    csv_path = None
    if done:
        csv_path = keep("cot_accuracy.csv", cot.outcomes_csv(outcomes, modes).encode("utf-8"))
    return summary, chart, pd.DataFrame(rows), csv_path
