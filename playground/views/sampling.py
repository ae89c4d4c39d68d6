"""What the sampling tab shows, as plain values: HTML strings and tables (no Gradio here).

Each function takes the results of `playground.language.sampling`, `token_steps` or `sampling_sweep` and
returns what one output component displays.
"""

from __future__ import annotations

import functools
import html
import math
from typing import Callable, Hashable

import pandas as pd
import torch

from playground.core import budget
from playground.core.errors import PlaygroundError
from playground.language.generation import SamplingSettings, check_new_tokens, check_prompt, encode_prompt
from playground.language.loader import LanguageModel
from playground.language.remote.operations import (
    RemoteStepSession, TopTokens, advance_remote, next_top_tokens, remote_stages, remote_temperature_sweep, render_prompt,
)
from playground.language.remote.model import RemoteLanguageModel
from playground.language.sampling import TRANSFORMERS_ORDER, Stage, descending_order, next_token_distribution, tail_points
from playground.language.sweep import (
    SearchResult, SweepColumn, check_count, compare_search, parse_temperatures, temperature_sweep,
)
from playground.core.settings import Limits
from playground.language.step_sessions import StepSessionStore
from playground.language.steps import StepSession, advance, check_seed, start_session, tokens_to_draw
from playground.language.token_text import readable_token, visible

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


_CHART_STYLE = """<style>
.smp-chart{border-collapse:collapse;font-size:13px;width:100%;color:#0f172a;background:#fff}
.smp-chart th,.smp-chart td{border-bottom:1px solid #e2e8f0;padding:3px 6px;text-align:left;vertical-align:top}
.smp-chart th{font-weight:600;background:#f8fafc}
.smp-chart th small{display:block;font-weight:400;color:#475569}
.smp-chart td{min-width:90px}
.smp-tok{font-family:ui-monospace,monospace;white-space:pre;background:#f1f5f9;border-radius:3px;padding:0 3px}
.smp-bar{height:8px;border-radius:2px}
.smp-p{font-variant-numeric:tabular-nums}
.smp-cut{color:#b91c1c;text-decoration:line-through}
.smp-gone{color:#94a3b8}
.smp-final{background:#eff6ff}
</style>"""


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


def _prompt_ids(lm: LanguageModel, prompt: str, use_chat_template: bool, limits: Limits) -> torch.Tensor:
    return encode_prompt(lm, check_prompt(prompt, limits), bool(use_chat_template))


def _token_count(lm: LanguageModel, text: str) -> int:
    """Tokens of a prompt already rendered for a server (the tokenizer is local, so the budget is the same)."""
    return len(lm.tokenizer(text, add_special_tokens=False).input_ids)


def sweep_cost(prompt_tokens: int, temperatures: list[float], samples: int, new_tokens: int) -> budget.Cost:
    """The prompt once, then per temperature its samples (one row when greedy) continue from it together."""
    columns = [budget.generation(1, new_tokens, rows=rows, prompt_rows=rows, context=prompt_tokens - 1)
               for rows in (1 if t == 0 else samples for t in temperatures)]
    return sum(columns, budget.forward(prompt_tokens - 1))


def search_cost(prompt_tokens: int, beams: int, new_tokens: int, shown_beams: int = 3) -> budget.Cost:
    """The prompt once; greedy (one row) and beam search (`beams` rows) from it; then each result scored."""
    context = prompt_tokens - 1
    runs = (budget.generation(1, new_tokens, context=context)
            + budget.generation(1, new_tokens, rows=beams, prompt_rows=beams, context=context))
    return budget.forward(context) + runs + budget.forward(new_tokens, context=context) * (1 + min(beams, shown_beams))


def next_token_view(lm: LanguageModel, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                    limits: Limits) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The stage chart, the per-stage table and the tail curves for the prompt's next token."""
    settings = settings.validated()
    if isinstance(lm, RemoteLanguageModel):
        return remote_next_token_view(lm, prompt, use_chat_template, settings, limits)
    ids = _prompt_ids(lm, prompt, use_chat_template, limits)
    budget.check(budget.forward(ids.shape[1]), limits, "This prompt", "a shorter prompt")
    stages = next_token_distribution(lm, ids, settings)
    label = functools.partial(readable_token, lm.tokenizer)
    return stage_chart(stages, label), stage_table(stages, label), tail_frame(stages)


def top_n_notice(lm: RemoteLanguageModel, top: TopTokens, settings: SamplingSettings) -> str:
    """What a top-N view can and cannot say, with this prompt's numbers."""
    n, returned = len(top.tokens), top.returned_mass
    order = " → ".join(lm.endpoint.kind.order or TRANSFORMERS_ORDER)
    lines = [
        f"<b>{html.escape(lm.endpoint.kind.label)} returned only its top {n} next tokens</b> "
        f"({_percent(returned)} of the probability; the other {max(len(lm.tokenizer) - n, 0):,} tokens share "
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


def remote_next_token_view(lm: RemoteLanguageModel, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                           limits: Limits) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    lm.sampling_fields(settings)  # a knob this server cannot apply gets its message here, as it would when generating
    text = render_prompt(lm, check_prompt(prompt, limits), bool(use_chat_template))
    budget.check(budget.forward(_token_count(lm, text)), limits, "This prompt", "a shorter prompt")
    top = next_top_tokens(lm, text)
    stages = remote_stages(lm, top, settings)

    def label(index: int) -> str:
        return visible(top.tokens[index])

    unseen = 1 - top.returned_mass
    chart = top_n_notice(lm, top, settings) + stage_chart(stages, label, unseen)
    return chart, stage_table(stages, label, unseen), tail_frame(stages)


STEPS_LOWER = "fewer tokens at once, or a shorter prompt"


def steps_view(lm: LanguageModel, sessions: StepSessionStore, owner: Hashable | None, prompt: str,
               use_chat_template: bool, settings: SamplingSettings, seed: int, tokens: int, limits: Limits
               ) -> tuple[str, pd.DataFrame]:
    """Continue the owner's session by `tokens` tokens; a new model, prompt, template choice or seed starts
    over. The session stays in `sessions` (server-side) between clicks, even when a run is stopped midway;
    a caller without a session (`owner` None) gets a fresh one each time, not kept.

    Knob changes apply from the next token on, so a person can, say, cool the temperature mid-sentence.
    """
    settings = settings.validated()
    tokens = check_new_tokens(tokens, limits)
    identity = (lm.name, prompt, bool(use_chat_template), seed)
    session = sessions.get(owner) if owner is not None else None
    keep = sessions.put if owner is not None else lambda *_: None
    if session is not None and session.identity != identity:
        sessions.drop(owner)  # a new prompt: free the old cache before building the new one
    if isinstance(lm, RemoteLanguageModel):
        if not isinstance(session, RemoteStepSession) or session.identity != identity:
            text = render_prompt(lm, check_prompt(prompt, limits), bool(use_chat_template))
            session = RemoteStepSession(identity, text, check_seed(seed))
        context = _token_count(lm, session.prompt) + len(session.steps)
        budget.check(budget.generation(context, tokens), limits, "These steps", STEPS_LOWER)
        try:
            advance_remote(lm, session, settings, tokens, limits.max_new_tokens)
        finally:
            keep(owner, session)
        return remote_step_text(session, prompt), remote_step_table(session)
    if not isinstance(session, StepSession) or session.identity != identity:
        session = start_session(identity, _prompt_ids(lm, prompt, use_chat_template, limits), seed)
    uncached = session.ids.shape[1] - session.cached
    drawn = tokens_to_draw(session, tokens, limits.max_new_tokens)
    budget.check(budget.generation(uncached, drawn, context=session.cached), limits, "These steps", STEPS_LOWER)
    try:
        advance(lm, session, settings, tokens, limits.max_new_tokens)
    finally:
        keep(owner, session)  # the tokens drawn so far stay, even if this request was stopped midway
    return step_text(session, prompt), step_table(session)


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


def sweep_view(lm: LanguageModel, prompt: str, use_chat_template: bool, settings: SamplingSettings,
               temperatures: str, samples: int, new_tokens: int, seed: int, limits: Limits
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    settings = settings.validated()
    values = parse_temperatures(temperatures, limits)
    samples = check_count("Samples per temperature", samples, 1, limits.max_samples)
    new_tokens = check_count("New tokens", new_tokens, 1, limits.max_sweep_new_tokens)
    seed = check_seed(seed)
    lower = "fewer temperatures, samples or new tokens, or a shorter prompt"
    if isinstance(lm, RemoteLanguageModel):
        text = render_prompt(lm, check_prompt(prompt, limits), bool(use_chat_template))
        budget.check(sweep_cost(_token_count(lm, text), values, samples, new_tokens), limits, "This sweep", lower)
        return sweep_tables(remote_temperature_sweep(lm, text, settings, values, samples, new_tokens, seed))
    ids = _prompt_ids(lm, prompt, use_chat_template, limits)
    budget.check(sweep_cost(ids.shape[1], values, samples, new_tokens), limits, "This sweep", lower)
    return sweep_tables(temperature_sweep(lm, ids, settings, values, samples, new_tokens, seed))


def search_view(lm: LanguageModel, prompt: str, use_chat_template: bool, beams: int, new_tokens: int,
                limits: Limits) -> pd.DataFrame:
    beams = check_count("Beams", beams, 2, limits.max_beams)
    new_tokens = check_count("New tokens", new_tokens, 1, limits.max_sweep_new_tokens)
    if isinstance(lm, RemoteLanguageModel):
        raise PlaygroundError("Beam search is not part of the OpenAI API, so an inference server cannot show it "
                              "here; pick a local model for this comparison.")
    ids = _prompt_ids(lm, prompt, use_chat_template, limits)
    budget.check(search_cost(ids.shape[1], beams, new_tokens), limits, "This comparison",
                 "fewer beams or new tokens, or a shorter prompt")
    return search_table(compare_search(lm, ids, beams, new_tokens))


def steer_view(lm: LanguageModel, sessions: StepSessionStore, owner: Hashable | None, prompt: str,
               use_chat_template: bool, settings: SamplingSettings, seed: int, limits: Limits,
               change: Callable[[StepSession], object]) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """Apply `change` (force a token, go back, pick an alternative) to the owner's step session, starting one
    for this prompt and seed if there is none. One forward pass at most: priced like one step."""
    settings = settings.validated()
    if isinstance(lm, RemoteLanguageModel):
        raise PlaygroundError("Forcing a token needs the model's distribution at every step, which an inference "
                              "server does not return; pick a local model to steer.")
    identity = (lm.name, prompt, bool(use_chat_template), seed)
    session = sessions.get(owner) if owner is not None else None
    if not isinstance(session, StepSession) or session.identity != identity:
        if session is not None:
            sessions.drop(owner)
        session = start_session(identity, _prompt_ids(lm, prompt, use_chat_template, limits), seed)
    uncached = session.ids.shape[1] - session.cached
    budget.check(budget.generation(uncached, 1, context=session.cached), limits, "This step", STEPS_LOWER)
    try:
        change(session)
    finally:
        if owner is not None:
            sessions.put(owner, session)
    return step_text(session, prompt), step_table(session), alternatives_table(session)


def current_alternatives(sessions: StepSessionStore, owner: Hashable | None) -> pd.DataFrame:
    session = sessions.get(owner) if owner is not None else None
    return alternatives_table(session if isinstance(session, StepSession) else None)
