"""What the "Inside the language model" tab shows: structured output, best-of-N, sampler order and the logit
lens, as HTML and tables (no Gradio here). Each `*_view` runs one request through
`playground.language.inside_the_model` (checked, priced, run on any backend) and renders its result."""

from __future__ import annotations

import html

import pandas as pd

from playground.core.settings import Limits
from playground.language import inside_the_model as requests
from playground.language.backend import LanguageBackend
from playground.language.best_of_n import SCORES, BestOfN
from playground.language.results import Lens
from playground.language.sampling_settings import SamplingSettings
from playground.language.structured_output import Comparison
from playground.language.token_text import visible
from playground.views.sampling import _percent, stage_chart, stage_table

LENS_POSITIONS = 12  # prompt positions shown in the heatmap (the last ones)
KIND_CHOICES = requests.KIND_CHOICES


# ---- structured output

def structured_view(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                    kind: str, spec: str, samples: int, new_tokens: int, seed: int, limits: Limits
                    ) -> tuple[str, pd.DataFrame, str]:
    """The grammar stage of the first token (or why this backend cannot show it), the samples side by side,
    and the summary."""
    result = requests.structured_output(lm, prompt, use_chat_template, settings, kind, spec, samples, new_tokens,
                                        seed, limits)
    if result.stage is not None:
        chart = stage_chart(result.stage.stages, result.stage.label)
    else:
        chart = f'<div id="grammar-stage-unavailable" style="color:#0f172a">{html.escape(result.why_no_stage)}</div>'
    return chart, structured_table(result.comparison), structured_summary(result.comparison)


def structured_table(result: Comparison) -> pd.DataFrame:
    rows = [[number, free.text, free_verdict, constrained.text, constrained_verdict]
            for number, (free, free_verdict, constrained, constrained_verdict) in enumerate(zip(
                result.free.rows, result.free_verdicts, result.constrained.rows, result.constrained_verdicts), start=1)]
    return pd.DataFrame(rows, columns=["sample", "prompt only", "verdict", "with the grammar", "verdict "])


def structured_summary(result: Comparison) -> str:
    n = len(result.free_verdicts)
    free, constrained = Comparison.rate(result.free_verdicts), Comparison.rate(result.constrained_verdicts)
    cut = result.free_verdicts.count("cut off")
    lines = [
        f"<b>Valid:</b> prompt only {result.free_verdicts.count('valid')} of {n} ({free:.0%}); with the grammar "
        f"{result.constrained_verdicts.count('valid')} of {n} ({constrained:.0%}).",
        f"Cut off at the token limit before finishing: {cut} of {n} without the grammar, "
        f"{result.constrained_verdicts.count('cut off')} with it (counted apart from invalid texts).",
        (f"<b>Cost of the mask:</b> {result.mask_ms_per_step:.2f} ms per step for all {n} rows; time per step with / "
         f"without the grammar = {result.step_ratio:.2f}×." if result.mask_ms_per_step is not None else
         f"<b>Cost:</b> the server masks with its own grammar engine; time per token with / without it = "
         f"{result.step_ratio:.2f}× (requests, network included)."),
    ]
    return f'<div id="structured-summary" style="color:#0f172a">{"<br>".join(lines)}</div>'


# ---- best-of-N

BEST_COLUMNS = ["candidate", "text", "tokens", "log-probability (sum)", "per token (mean)", "rank by sum",
                "rank by mean"]


def best_of_n_view(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                   candidates: int, new_tokens: int, seed: int, limits: Limits) -> tuple[str, pd.DataFrame, str]:
    result = requests.best_of_n(lm, prompt, use_chat_template, settings, candidates, new_tokens, seed, limits)
    return best_of_n_table(result), best_of_n_scores(result), best_of_n_summary(result)


def best_of_n_table(result: BestOfN) -> str:
    """Every candidate with both scores; the row each score chooses is highlighted and labelled."""
    chosen = {by: result.chosen(by) for by in SCORES}
    ranks = {by: result.ranks(by) for by in SCORES}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in BEST_COLUMNS + ["chosen by"])
    body = []
    for index, c in enumerate(result.candidates):
        by = [f"the {s}" for s in SCORES if chosen[s] == index]
        style = ' class="bon-chosen" style="background:#dcfce7;font-weight:600"' if by else ""
        text = html.escape(visible(c.text)) + ("" if c.ended else " <i>(cut off)</i>")
        body.append(f"<tr{style}><td>{index + 1}</td><td style='white-space:pre-wrap'>{text}</td><td>{c.tokens}</td>"
                    f"<td>{c.log_prob:.3f}</td><td>{c.mean_log_prob:.3f}</td><td>{ranks['sum'][index]}</td>"
                    f"<td>{ranks['mean'][index]}</td><td>{' and '.join(by)}</td></tr>")
    return (f'<table id="best-of-n-table" style="border-collapse:collapse;font-size:13px;color:#0f172a;'
            f'background:#fff;width:100%"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def best_of_n_scores(result: BestOfN) -> pd.DataFrame:
    """Long form for a bar chart: one bar per candidate and score."""
    return pd.DataFrame([[f"#{i + 1}", by, round(result.score(c, by), 4)]
                         for by in SCORES for i, c in enumerate(result.candidates)],
                        columns=["candidate", "score", "log-probability"])


def best_of_n_summary(result: BestOfN) -> str:
    by_sum, by_mean = result.chosen("sum") + 1, result.chosen("mean") + 1
    agree = "Both scores choose the same candidate." if by_sum == by_mean else (
        "The two scores disagree: the sum favours a shorter text, the mean the one likelier per token.")
    return (f'<div id="best-of-n-summary" style="color:#0f172a">Chosen by the sum: <b>#{by_sum}</b>; by the mean per '
            f"token: <b>#{by_mean}</b>. {agree}<br>Cost: {result.samples.tokens} tokens generated in "
            f"{result.samples.seconds:.2f} s ({len(result.candidates)} candidates drawn together).</div>")


# ---- sampler order

def sampler_order_view(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                       limits: Limits) -> tuple[str, str, str, pd.DataFrame]:
    result, raw = requests.sampler_order(lm, prompt, use_chat_template, settings, limits)
    label = raw.label
    only = ", ".join(label(i) for i in result.only_first[:15]) or "none"
    only_second = ", ".join(label(i) for i in result.only_second[:15]) or "none"
    order = " → ".join(lm.capabilities.sampler_order)
    scope = ("" if raw.returned is None else f"<br>Over the {raw.returned} tokens the server returned (their share "
             f"of the probability: {_percent(1 - raw.unseen_mass)}), without the repetition penalty.")
    summary = (f'<div id="sampler-order-summary" style="color:#0f172a"><b>Total variation distance</b> between the '
               f"two final distributions: <b>{result.total_variation:.3f}</b> (0 = identical, 1 = disjoint).<br>"
               f"Survive transformers' order only ({len(result.only_first)}): {html.escape(only)}<br>"
               f"Survive llama.cpp's order only ({len(result.only_second)}): {html.escape(only_second)}<br>"
               f"This model's backend applies: {html.escape(order)}.{scope}</div>")
    both = pd.concat([stage_table(result.first, label).assign(order="transformers"),
                      stage_table(result.second, label).assign(order="llama.cpp")])
    return (summary, stage_chart(result.first, label).replace('id="sampling-stage-chart"', 'id="order-transformers"'),
            stage_chart(result.second, label).replace('id="sampling-stage-chart"', 'id="order-llama-cpp"'), both)


# ---- the logit lens

def lens_view(lm: LanguageBackend, prompt: str, use_chat_template: bool, limits: Limits) -> tuple[str, pd.DataFrame]:
    lens = requests.logit_lens(lm, prompt, use_chat_template, limits)
    return lens_heatmap(lens), lens_last_position(lens)


def _heat(p: float) -> str:
    return f"rgba(37, 99, 235, {0.08 + 0.8 * p:.2f})"


def lens_heatmap(lens: Lens) -> str:
    """Layers bottom to top, the last prompt positions left to right: each cell the layer's top next token."""
    label = lens.label
    start = max(0, len(lens.positions) - LENS_POSITIONS)
    head = "<th>layer</th>" + "".join(f"<th title='position {i + 1}'>{html.escape(lens.positions[i])}</th>"
                                      for i in range(start, len(lens.positions)))
    rows = []
    for layer in reversed(range(len(lens.layers))):
        cells = []
        for position in range(start, len(lens.positions)):
            token, p = int(lens.top_ids[layer, position]), float(lens.top_probs[layer, position])
            is_answer = position == len(lens.positions) - 1 and token == lens.answer_id
            mark = ";outline:2px solid #16a34a" if is_answer else ""
            cells.append(f"<td title='{html.escape(label(token))} {_percent(p)}' style='background:{_heat(p)}{mark}'>"
                         f"{html.escape(label(token))}<br><small>{_percent(p)}</small></td>")
        rows.append(f"<tr><th>{html.escape(lens.layers[layer])}</th>{''.join(cells)}</tr>")
    first = lens.first_layer
    found = (f"The final answer <b>{html.escape(label(lens.answer_id))}</b> is first the top token at "
             f"<b>{html.escape(lens.layers[first])}</b> and stays on top from <b>{html.escape(lens.layers[lens.settled_layer])}"
             "</b>." if first is not None else "")
    caption = ("Each column is a position of the prompt; each cell the token the layer would predict next there, "
               "darker = likelier. Green outline: the final answer at the last position. The embeddings row mostly "
               "echoes the input token (models that tie their embeddings read it straight back).")
    return (f'<div id="logit-lens" style="color:#0f172a"><p id="logit-lens-answer">{found}</p>'
            f'<table id="logit-lens-heatmap" style="border-collapse:collapse;font-size:12px;background:#fff">'
            f"<caption style='text-align:left'>{caption}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def lens_last_position(lens: Lens) -> pd.DataFrame:
    """Per layer, the five likeliest next tokens at the last position and the final answer's probability."""
    label = lens.label
    rows = [[lens.layers[layer], round(float(lens.answer_probs[layer]), 4)]
            + [f"{label(int(t))} {_percent(float(p))}" for t, p in zip(lens.last_top_ids[layer], lens.last_top_probs[layer])]
            for layer in range(len(lens.layers))]
    return pd.DataFrame(rows, columns=["layer", f"p({label(lens.answer_id)})", "1", "2", "3", "4", "5"])
