"""The "Inside the language model" tab's requests on any backend: each checked, priced (`core.budget`), then
run through the `LanguageBackend`. What a backend cannot show (the grammar mask, the logit lens on a server)
it says through `Capabilities.unsupported`; `playground.views.inside_the_model` draws the results."""

from __future__ import annotations

from dataclasses import dataclass, replace

from playground.core import budget, checks
from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.language.backend import LanguageBackend
from playground.language.best_of_n import BestOfN
from playground.language.constraints import KIND_LABELS, parse_constraint
from playground.language.results import Lens, NextToken, RenderedPrompt
from playground.language.sampler_order import OrderComparison, compare_orders
from playground.language.samples import samples_cost
from playground.language.sampling_settings import SamplingSettings
from playground.language.structured_output import Comparison

KIND_CHOICES = {label: kind for kind, label in KIND_LABELS.items()}  # what the radio shows -> the kind
SAMPLES_LOWER = "fewer samples or new tokens, or a shorter prompt"


def _render(lm: LanguageBackend, prompt: str, use_chat_template: bool, limits: Limits) -> RenderedPrompt:
    return lm.render_prompt(checks.prompt(prompt, limits), bool(use_chat_template))


@dataclass(frozen=True)
class Structured:
    comparison: Comparison
    stage: NextToken | None  # the grammar stage of the first token; None where the backend cannot show it
    why_no_stage: str = ""


def structured_output(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                      kind: str, spec: str, samples: int, new_tokens: int, seed: int, limits: Limits) -> Structured:
    """The grammar stage of the first token, and N seeded samples without and with the constraint."""
    settings = settings.validated()
    lm.check_sampling(settings)
    constraint = parse_constraint(KIND_CHOICES.get(kind, kind), spec, limits.max_prompt_chars)
    samples = checks.whole_number(samples, "Samples", 1, limits.max_samples)
    new_tokens = checks.new_tokens(new_tokens, limits, limits.max_sweep_new_tokens)
    seed = checks.seed(seed)
    rendered = _render(lm, prompt, use_chat_template, limits)
    cost = budget.forward(rendered.token_count) + samples_cost(rendered.token_count, samples, new_tokens) * 2
    budget.check(cost, limits, "This comparison", SAMPLES_LOWER)
    stage, why = None, ""
    if lm.capabilities.internals:
        stage = lm.grammar_stage(rendered, settings, constraint)
    else:
        why = str(lm.capabilities.unsupported("The grammar stage (the tokens the constraint removes)",
                                              "the samples use the server's own structured output"))
    constrained = lm.sample_scored(rendered, settings, new_tokens, samples, seed, constraint)
    free = lm.sample_scored(rendered, settings, new_tokens, samples, seed)
    return Structured(Comparison(constraint, free, constrained), stage, why)


def best_of_n(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
              candidates: int, new_tokens: int, seed: int, limits: Limits) -> BestOfN:
    """N seeded samples, each scored by the model's own log-probability (summed and per token)."""
    settings = settings.validated()
    lm.check_sampling(settings)
    candidates = checks.whole_number(candidates, "N (candidates)", 2, limits.max_samples)
    new_tokens = checks.new_tokens(new_tokens, limits, limits.max_sweep_new_tokens)
    seed = checks.seed(seed)
    rendered = _render(lm, prompt, use_chat_template, limits)
    budget.check(samples_cost(rendered.token_count, candidates, new_tokens), limits, "Best-of-N",
                 "fewer candidates or new tokens, or a shorter prompt")
    return BestOfN(lm.sample_scored(rendered, settings, new_tokens, candidates, seed))


def sampler_order(lm: LanguageBackend, prompt: str, use_chat_template: bool, settings: SamplingSettings,
                  limits: Limits) -> tuple[OrderComparison, NextToken]:
    """The model's raw next-token scores through the same knobs in both orders. A server returns its top N
    only, so there the comparison covers those tokens, without the repetition penalty (as its chain view)."""
    settings = settings.validated()
    rendered = _render(lm, prompt, use_chat_template, limits)
    budget.check(budget.forward(rendered.token_count), limits, "This prompt", "a shorter prompt")
    raw = lm.next_token(rendered, SamplingSettings())
    history = rendered.ids
    if not lm.capabilities.full_vocabulary:
        settings, history = replace(settings, repetition_penalty=1.0), rendered.ids[:, :0]
    return compare_orders(raw.stages[0].scores, history, settings), raw


def logit_lens(lm: LanguageBackend, prompt: str, use_chat_template: bool, limits: Limits) -> Lens:
    if not lm.capabilities.internals:
        raise lm.capabilities.unsupported("The logit lens (each layer's hidden state)",
                                          "pick a local model to look inside it")
    rendered = _render(lm, prompt, use_chat_template, limits)
    if rendered.token_count > limits.max_lens_tokens:
        raise PlaygroundError(f"The prompt is {rendered.token_count:,} tokens; the logit lens reads at most "
                              f"{limits.max_lens_tokens:,} (it runs the output head once per layer).")
    # One pass keeping every layer, then the output head once per layer on every position.
    budget.check(budget.forward(rendered.token_count) * 2, limits, "The logit lens", "a shorter prompt")
    return lm.logit_lens(rendered)
