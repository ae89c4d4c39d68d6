"""What the sampling tab shows, as plain values: HTML strings and tables (no Gradio here).

The `*_view` functions run one request through `playground.language.sampling_requests` and turn its result
(stages, a step session, sweep columns, search results) into what the tab's output components display.
"""

from __future__ import annotations

import html
import math
from typing import Callable, Hashable

import pandas as pd
import torch

from playground.core.paths import ASSETS
from playground.core.settings import Limits
from playground.language.backend import Capabilities, LanguageBackend
from playground.language.remote.operations import RemoteStepSession
from playground.language.results import NextToken, SearchResult, SweepColumn
from playground.language.sampling import Stage, descending_order, tail_points
from playground.language.sampling_requests import (
    Steer, continue_steps, greedy_vs_beams, next_token, steer, temperature_sweep,
)
from playground.language.sampling_settings import SamplingSettings
from playground.language.step_sessions import StepSessionStore
from playground.language.steps import StepSession
from playground.language.token_text import visible

TOP_ROWS = 12  # tokens shown in the stage chart (the model's favourites and the final favourites)
STAGE_COLUMNS = ["stage", "knob", "surviving tokens", "entropy (bits)", "mass removed", "top token", "top probability"]
STEP_COLUMNS = ["step", "token", "model probability", "probability drawn with", "model rank", "entropy (bits)",
                "alternatives"]
ALTERNATIVE_COLUMNS = ["step", "1", "2", "3", "4", "5"]
FORCED = " (forced)"


def _percent(p: float) -> str:
    if p == 0:
        return "0"
    if p >= 0.001:
        return f"{p:.1%}"
    return f"{p:.1e}"


def _bits(value: float) -> float:
    return round(max(0.0, value), 3)  # -0.0 from rounding reads as a bug


def _shown_stages(stages: list[Stage]) -> list[Stage]:
    """The raw logits, then each knob of the chain; an unused repetition penalty is left out."""
    return [s for s in stages if s.name != "repetition penalty" or s.active]


def _top_token_ids(stages: list[Stage], rows: int) -> list[int]:
    """The model's favourites and the final favourites, in the order the knobs see them."""
    ordering = next(s for s in stages if s.name == "repetition penalty").probs  # later stages keep this order
    wanted = set(torch.topk(stages[0].probs, rows).indices.tolist()) | set(torch.topk(stages[-1].probs, rows).indices.tolist())
    return sorted(wanted, key=lambda i: -float(ordering[i]))[: rows + rows // 2]


def stage_table(stages: list[Stage], label: Callable[[int], str], unseen_mass: float = 0.0) -> pd.DataFrame:
    """One row per stage; with `unseen_mass` (a server's top N) the raw row keeps the model's own probability."""
    rows = []
    for stage in _shown_stages(stages):
        top = int(torch.argmax(stage.probs))
        scale = 1 - unseen_mass if stage is stages[0] else 1
        rows.append([stage.name, stage.knob, stage.survivors, _bits(stage.entropy_bits),
                     round(stage.removed_mass, 4), label(top), round(float(stage.probs[top]) * scale, 4)])
    return pd.DataFrame(rows, columns=STAGE_COLUMNS)


def _bar_cell(p: float, removed_here: bool, final: bool) -> str:
    if removed_here:
        return '<td class="smp-cut" title="removed by this knob">✂ removed</td>'
    if p == 0:
        return '<td class="smp-gone">–</td>'
    width = max(1.0, 100 * p)
    colour = "#2563eb" if final else "#64748b"
    return (f'<td><div class="smp-bar" style="width:{width:.1f}%;background:{colour}"></div>'
            f'<span class="smp-p">{_percent(p)}</span></td>')


_CHART_STYLE = f"<style>{(ASSETS / 'css' / 'sampling.css').read_text(encoding='utf-8')}</style>"  # read once


def stage_chart(stages: list[Stage], label: Callable[[int], str], unseen_mass: float = 0.0) -> str:
    """A table: one row per top token, one column per stage, bars for probabilities, ✂ where a knob cut.

    `unseen_mass` > 0 means the stages cover only the tokens a server returned: the raw column then shows
    the model's own probabilities (not renormalised) and a last row holds the mass of the tokens not returned.
    """
    shown = _shown_stages(stages)
    head = ["<th>token</th>"]
    for stage in shown:
        state = stage.knob if stage.active else f"{stage.knob} (no change)"
        details = f"{stage.survivors:,} token{'' if stage.survivors == 1 else 's'} · {_bits(stage.entropy_bits)} bits"
        if stage.removed_count:
            details += f" · cut {stage.removed_count:,} ({_percent(stage.removed_mass)} of the mass), renormalised"
        final = ' class="smp-final"' if stage is shown[-1] else ""
        head.append(f"<th{final}>{html.escape(stage.name)}<small>{html.escape(state)}</small><small>{details}</small></th>")
    body = []
    for token_id in _top_token_ids(stages, TOP_ROWS):
        cells = [f'<td><span class="smp-tok">{html.escape(label(token_id))}</span></td>']
        for stage in shown:
            removed_here = stage.previous is not None and bool(stage.previous.kept[token_id]) and not bool(stage.kept[token_id])
            p = float(stage.probs[token_id]) * (1 - unseen_mass if stage is shown[0] else 1)
            cells.append(_bar_cell(p, removed_here and stage.active, stage is shown[-1]))
        body.append("<tr>" + "".join(cells) + "</tr>")
    if unseen_mass > 0:
        cells = ['<td><i>all the tokens the server did not return</i></td>', _bar_cell(unseen_mass, False, False)]
        cells += ['<td class="smp-gone" title="not returned: left out of every later stage">not returned</td>'] * (len(shown) - 1)
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = ("Each column is one step of the chain transformers applies, left to right; the last column is the "
               "distribution the next token is drawn from.")
    return (f'{_CHART_STYLE}<table class="smp-chart" id="sampling-stage-chart"><caption style="text-align:left">'
            f"{caption}</caption><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def tail_frame(stages: list[Stage]) -> pd.DataFrame:
    """log10 probability by log10 rank, for the raw distribution and after each active knob."""
    raw_order = descending_order(stages[0].probs)
    penalty = stages[1]
    knob_order = descending_order(penalty.probs) if penalty.active else raw_order  # later stages keep this ranking
    rows = []
    for stage in _shown_stages(stages):
        if stage.active:
            order = raw_order if stage is stages[0] else knob_order
            rows += [(math.log10(rank), math.log10(p), stage.name) for rank, p in tail_points(stage.probs, order)]
    return pd.DataFrame(rows, columns=["log10 rank", "log10 probability", "stage"])


def _token_colour(p: float) -> str:
    """Unlikely tokens glow orange; the model's confident picks stay pale (colour-blind safe, one hue)."""
    return f"rgba(234, 88, 12, {0.08 + 0.75 * (1 - p) ** 2:.2f})"


def _step_title(step) -> str:
    alternatives = ", ".join(f"{c.token} {_percent(c.probability)}" for c in step.alternatives)
    return (f"{step.token}: model {_percent(step.raw_probability)} (rank {step.raw_rank}), drawn with "
            f"{_percent(step.probability)} · {step.survivors:,} candidates, {_bits(step.entropy_bits)} bits · "
            f"top after the knobs: {alternatives}")


def step_text(session: StepSession | None, prompt: str) -> str:
    """The prompt, then each generated token coloured by the model's probability of it (hover for details)."""
    if session is None or not session.steps:
        return '<div id="sampling-steps">Press <b>Step one token</b> or <b>Run N tokens</b> to start.</div>'
    spans = [_token_span(step.text if step.text and "\ufffd" not in step.text else step.token, step.raw_probability,
                         ("forced: " if step.forced else "") + _step_title(step), step.forced)
             for step in session.steps]
    return _steps_html(prompt, spans, session.finished, "Darker orange = the model found the token less likely; "
                       "an outlined token was forced. Hover a token for its probability and the alternatives.")


def _token_span(text: str, probability: float, title: str, forced: bool = False) -> str:
    outline = ";outline:2px solid #7c3aed" if forced else ""
    marker = ' class="smp-forced"' if forced else ""
    return (f'<span{marker} title="{html.escape(title)}" style="background:{_token_colour(probability)};'
            f'border-radius:3px;white-space:pre-wrap{outline}">{html.escape(text)}</span>')


def _steps_html(prompt: str, spans: list[str], finished: str, legend: str) -> str:
    """The prompt in grey, then the coloured generated tokens, why generation stopped, and a legend."""
    status = f"<p><i>Stopped: {html.escape(finished)}.</i></p>" if finished else ""
    return (f'<div id="sampling-steps" style="line-height:1.8;color:#0f172a;background:#fff;padding:8px">'
            f'<span style="color:#64748b;white-space:pre-wrap">{html.escape(prompt[-2000:])}</span>{"".join(spans)}'
            f"{status}<p style='font-size:12px;color:#475569'>{legend}</p></div>")


def step_table(session: StepSession | None) -> pd.DataFrame:
    rows = []
    for number, step in enumerate(session.steps if session else [], start=1):
        alternatives = ", ".join(f"{c.token} {_percent(c.probability)}" for c in step.alternatives)
        rows.append([number, step.token + (FORCED if step.forced else ""), round(step.raw_probability, 4),
                     round(step.probability, 4), step.raw_rank, _bits(step.entropy_bits), alternatives])
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def alternatives_table(session: StepSession | None) -> pd.DataFrame:
    """Per step, the five likeliest tokens after the knobs: a cell to click to continue from it instead."""
    rows = [[number] + [f"{c.token} {_percent(c.probability)}" for c in step.alternatives]
            + [""] * (len(ALTERNATIVE_COLUMNS) - 1 - len(step.alternatives))
            for number, step in enumerate(session.steps if session else [], start=1)]
    return pd.DataFrame(rows, columns=ALTERNATIVE_COLUMNS)


def sweep_tables(columns: list[SweepColumn]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples side by side (one column per temperature), and the diversity of each column."""
    texts = pd.DataFrame({f"T = {c.temperature:g}": list(c.texts) for c in columns})
    texts.insert(0, "sample", range(1, len(texts) + 1))
    diversity = pd.DataFrame(
        [[f"T = {c.temperature:g}", f"{c.distinct} of {len(c.texts)}",
          "not reported by a server" if c.mean_entropy_bits is None else _bits(c.mean_entropy_bits)] for c in columns],
        columns=["temperature", "distinct continuations", "mean entropy per token (bits)"],
    )
    return texts, diversity


def search_table(results: list[SearchResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [[r.method, r.text, r.tokens, round(r.log_prob, 3), round(r.mean_log_prob, 3)] for r in results],
        columns=["method", "continuation", "tokens", "log-probability (nats)", "per token"],
    )


def next_token_view(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                    limits: Limits) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The stage chart, the per-stage table and the tail curves for the prompt's next token."""
    result = next_token(lm, prompt, use_chat_template, settings, limits)
    chart = stage_chart(result.stages, result.label, result.unseen_mass)
    if result.returned is not None:
        chart = top_n_notice(lm.capabilities, len(lm.tokenizer), result, settings) + chart
    return chart, stage_table(result.stages, result.label, result.unseen_mass), tail_frame(result.stages)


def top_n_notice(capabilities: Capabilities, vocabulary: int, result: NextToken, settings: SamplingSettings) -> str:
    """What a top-N view can and cannot say, with this prompt's numbers."""
    n, returned = result.returned, 1 - result.unseen_mass
    order = " → ".join(capabilities.sampler_order)
    lines = [
        f"<b>{html.escape(capabilities.computed_by)} returned only its top {n} next tokens</b> "
        f"({_percent(returned)} of the probability; the other {max(vocabulary - n, 0):,} tokens share "
        f"{_percent(1 - returned)}).",
        f"Every stage after <i>raw</i> is computed over these {n} tokens as if the rest did not exist: exact for "
        f"top-k up to {n}, and for top-p and min-p whenever their cut falls inside these tokens.",
        f"This server applies the knobs in the order {html.escape(order)}.",
    ]
    if settings.temperature > 1:
        lines.append(f"At temperature {settings.temperature:g} the unseen tail gains mass the server never reported, "
                     "so the last column overstates these tokens.")
    if settings.repetition_penalty != 1:
        lines.append("The repetition penalty is applied by the server while generating; it is not shown here "
                     "(it needs the ids of every token so far, which the API does not return).")
    return ('<div id="sampling-remote-notice" style="border-left:4px solid #d97706;background:#fffbeb;color:#0f172a;'
            f'padding:6px 10px;margin-bottom:6px">{"<br>".join(lines)}</div>')


def steps_view(lm: LanguageBackend, sessions: StepSessionStore, owner: Hashable | None, prompt: str,
               use_chat_template: bool, settings: SamplingSettings, seed: int, tokens: int, limits: Limits
               ) -> tuple[str, pd.DataFrame]:
    """The owner's step session, continued by `tokens` tokens (see `continue_steps`), as text and table."""
    session = continue_steps(lm, sessions, owner, prompt, use_chat_template, settings, seed, tokens, limits)
    if lm.capabilities.knobs_after_sampling:
        return step_text(session, prompt), step_table(session)
    return remote_step_text(session, prompt), remote_step_table(session)


def remote_step_text(session: RemoteStepSession, prompt: str) -> str:
    """The prompt and each token from the server, coloured by the model's probability of it."""
    spans = []
    for step in session.steps:
        alternatives = ", ".join(f"{visible(t)} {_percent(p)}" for t, p in step.alternatives)
        rank = f"rank {step.rank}" if step.rank else "not in the top returned"
        title = f"{visible(step.token)}: model {_percent(step.probability)} ({rank}) · top: {alternatives}"
        spans.append(_token_span(step.token or "∅", step.probability, title))
    return _steps_html(prompt, spans, session.finished, "Tokens from the inference server; darker orange = the "
                       "model found the token less likely. Each request draws with seed + tokens so far.")


def remote_step_table(session: RemoteStepSession) -> pd.DataFrame:
    """The server reports the model's probabilities, not those after its knobs: those columns say so."""
    rows = [[number, visible(step.token), round(step.probability, 4), "not reported by a server", step.rank or "–",
             "not reported", ", ".join(f"{visible(t)} {_percent(p)}" for t, p in step.alternatives)]
            for number, step in enumerate(session.steps, start=1)]
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def sweep_view(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
               temperatures: str, samples: int, new_tokens: int, seed: int, limits: Limits
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    return sweep_tables(temperature_sweep(lm, prompt, use_chat_template, settings, temperatures, samples, new_tokens,
                                          seed, limits))


def search_view(lm: LanguageBackend, prompt: str, use_chat_template: bool, beams: int, new_tokens: int,
                limits: Limits) -> pd.DataFrame:
    return search_table(greedy_vs_beams(lm, prompt, use_chat_template, beams, new_tokens, limits))


def steer_view(lm: LanguageBackend, sessions: StepSessionStore, owner: Hashable | None, prompt: str,
               use_chat_template: bool, settings: SamplingSettings, seed: int, change: Steer, limits: Limits
               ) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The owner's step session after forcing a token, going back or picking an alternative (see `steer`)."""
    session = steer(lm, sessions, owner, prompt, use_chat_template, settings, seed, change, limits)
    return step_text(session, prompt), step_table(session), alternatives_table(session)


def current_alternatives(lm: LanguageBackend, sessions: StepSessionStore, owner: Hashable | None) -> pd.DataFrame:
    """The owner's alternatives table as it stands (after a step or a restart); empty where none can be picked
    (a server's steps cannot be steered)."""
    session = sessions.get(owner) if owner is not None and lm.capabilities.internals else None
    return alternatives_table(session)
