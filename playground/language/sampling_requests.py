"""The sampling tab's four requests on any backend: each checked, priced (`core.budget`), then run.

Everything a visitor typed is checked here, before any model work; the backends compute, and
`playground.views.sampling` draws the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

from playground.core import budget, checks
from playground.core.settings import Limits
from playground.language.backend import LanguageBackend
from playground.language.results import NextToken, SearchResult, SweepColumn
from playground.language.sampling_settings import SamplingSettings
from playground.language.step_sessions import StepSessionStore
from playground.language.sweep import parse_temperatures

STEPS_LOWER = "fewer tokens at once, or a shorter prompt"
MAX_FORCED_CHARS = 200  # one token's text is far shorter


def next_token(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
               limits: Limits) -> NextToken:
    """Every stage of the chain for the prompt's next token."""
    settings = settings.validated()
    lm.check_sampling(settings)  # a knob this backend cannot apply gets its message here, as it would when generating
    rendered = lm.render_prompt(checks.prompt(prompt, limits), bool(use_chat_template))
    budget.check(budget.forward(rendered.token_count), limits, "This prompt", "a shorter prompt")
    return lm.next_token(rendered, settings)


def _owners_session(lm: LanguageBackend, sessions: StepSessionStore, owner: Hashable | None, prompt: str,
                    use_chat_template: bool, seed: int, limits: Limits):
    """The owner's step session, or a new one when the model, prompt, template choice or seed changed."""
    identity = (lm.name, prompt, bool(use_chat_template), seed)
    session = sessions.get(owner) if owner is not None else None
    if session is not None and session.identity != identity:
        sessions.drop(owner)  # a new prompt: free the old cache before building the new one
        session = None
    if session is None:
        rendered = lm.render_prompt(checks.prompt(prompt, limits), bool(use_chat_template))
        session = lm.start_steps(identity, rendered, checks.seed(seed))
    return session


def continue_steps(lm: LanguageBackend, sessions: StepSessionStore, owner: Hashable | None, prompt: str,
                   use_chat_template: bool, settings: SamplingSettings, seed: int, tokens: int, limits: Limits):
    """Continue the owner's step session by `tokens` tokens; a new model, prompt, template choice or seed starts
    over. The session stays in `sessions` (server-side) between clicks, even when a run is stopped midway;
    a caller without a session (`owner` None) gets a fresh one each time, not kept.

    Knob changes apply from the next token on, so a person can, say, cool the temperature mid-sentence.
    """
    settings = settings.validated()
    tokens = checks.new_tokens(tokens, limits)
    session = _owners_session(lm, sessions, owner, prompt, use_chat_template, seed, limits)
    keep = sessions.put if owner is not None else lambda *_: None
    budget.check(lm.steps_cost(session, tokens, limits.max_new_tokens), limits, "These steps", STEPS_LOWER)
    try:
        lm.advance(session, settings, tokens, limits.max_new_tokens)
    finally:
        keep(owner, session)  # the tokens drawn so far stay, even if this request was stopped midway
    return session


@dataclass(frozen=True)
class Steer:
    """What a person did to the step-by-step text: force a typed token, go back one step, or pick
    alternative `alternative` (1-based, as shown) of step `step`."""

    force: str | None = None
    back: bool = False
    step: object = None
    alternative: object = None


def steer(lm: LanguageBackend, sessions: StepSessionStore, owner: Hashable | None, prompt: str,
          use_chat_template: bool, settings: SamplingSettings, seed: int, change: Steer, limits: Limits):
    """Apply `change` to the owner's step session (a new one for a new model, prompt or seed, as in
    `continue_steps`). One forward pass at most: priced like one step."""
    settings = settings.validated()
    if not lm.capabilities.internals:
        raise lm.capabilities.unsupported("Steering (forcing a token, going back, picking an alternative)",
                                          "pick a local model to steer")
    step = alternative = 0
    if change.step is not None:
        step = checks.whole_number(change.step, "The step", 1, limits.max_new_tokens)
        alternative = checks.whole_number(change.alternative, "The alternative", 1, 5)
    session = _owners_session(lm, sessions, owner, prompt, use_chat_template, seed, limits)
    keep = sessions.put if owner is not None else lambda *_: None
    budget.check(lm.steps_cost(session, 1, limits.max_new_tokens), limits, "This step", STEPS_LOWER)
    try:
        if change.back:
            lm.step_back(session)
        elif change.step is not None:
            lm.choose_alternative(session, settings, step, alternative - 1, limits.max_new_tokens)
        else:
            checks.text(change.force, "token to force", MAX_FORCED_CHARS)  # kept as typed: a space is a token
            lm.force_token(session, settings, change.force, limits.max_new_tokens)
    finally:
        keep(owner, session)
    return session


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


def temperature_sweep(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                      temperatures: str, samples: int, new_tokens: int, seed: int, limits: Limits) -> list[SweepColumn]:
    settings = settings.validated()
    values = parse_temperatures(temperatures, limits)
    samples = checks.whole_number(samples, "Samples per temperature", 1, limits.max_samples)
    new_tokens = checks.new_tokens(new_tokens, limits, limits.max_sweep_new_tokens)
    seed = checks.seed(seed)
    rendered = lm.render_prompt(checks.prompt(prompt, limits), bool(use_chat_template))
    budget.check(sweep_cost(rendered.token_count, values, samples, new_tokens), limits, "This sweep",
                 "fewer temperatures, samples or new tokens, or a shorter prompt")
    return lm.temperature_sweep(rendered, settings, values, samples, new_tokens, seed)


def greedy_vs_beams(lm: LanguageBackend, prompt: str, use_chat_template: bool, beams: int, new_tokens: int,
                    limits: Limits) -> list[SearchResult]:
    beams = checks.whole_number(beams, "Beams", 2, limits.max_beams)
    new_tokens = checks.new_tokens(new_tokens, limits, limits.max_sweep_new_tokens)
    if not lm.capabilities.beam_search:
        raise lm.capabilities.unsupported("Beam search", "pick a local model for this comparison")
    rendered = lm.render_prompt(checks.prompt(prompt, limits), bool(use_chat_template))
    budget.check(search_cost(rendered.token_count, beams, new_tokens), limits, "This comparison",
                 "fewer beams or new tokens, or a shorter prompt")
    return lm.beam_search(rendered, beams, new_tokens)
