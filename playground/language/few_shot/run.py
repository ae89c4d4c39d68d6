"""One few-shot run: the request's prompt, priced, then the model's answer and each label's probability."""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.core import budget, checks
from playground.core.settings import Limits
from playground.language.backend import LanguageBackend
from playground.language.few_shot.prompts import FewShotPrompt, build_few_shot_prompt, choose_shots
from playground.language.few_shot.request import FewShotRequest
from playground.language.few_shot.scoring import label_scores, label_token_ids
from playground.language.label_scoring import label_scoring_cost
from playground.language.results import Generation
from playground.language.sampling_settings import SamplingSettings


def prompt_for(lm: LanguageBackend, request: FewShotRequest, limits: Limits) -> FewShotPrompt:
    shots = choose_shots(request.examples, request.k, request.order, request.seed, request.labels)
    prompt = build_few_shot_prompt(lm, request.fmt, shots, request.query, limits)
    budget.check(budget.forward(prompt.token_count), limits, "This prompt", "fewer or shorter examples")
    return prompt


def answer_text(generation: Generation, chat: bool) -> str:
    """A plain prompt invites the model to go on with more examples: the answer is its first line."""
    text = generation.text.strip()
    return text if chat else text.split("\n", 1)[0].strip()


@dataclass(frozen=True)
class FewShotResult:
    prompt: FewShotPrompt
    answer: str
    generation: Generation
    probabilities: dict[str, float] = field(default_factory=dict)  # empty for free-text answers
    # Over a server: labels with a token outside its top N, scored as the N-th token (an upper bound).
    bounded_labels: tuple[str, ...] = ()


def run_few_shot(
    lm: LanguageBackend, request: FewShotRequest, sampling: SamplingSettings, max_new_tokens: int, limits: Limits
) -> FewShotResult:
    sampling = sampling.validated()
    max_new_tokens = checks.new_tokens(max_new_tokens, limits)
    prompt = prompt_for(lm, request, limits)
    cost = budget.generation(prompt.token_count, max_new_tokens)
    if request.labels:
        cost += label_scoring_cost(lm, prompt.token_count, label_token_ids(lm, request.labels, prompt.chat))
    budget.check(cost, limits, "This run", "fewer or shorter labels, fewer examples or new tokens")
    generation = lm.generate(prompt, sampling, max_new_tokens, seed=request.seed)
    probabilities, bounded = {}, ()
    if request.labels:
        scores = label_scores(lm, prompt, request.labels)
        probabilities = dict(zip(request.labels, scores.probabilities().tolist()))
        bounded = tuple(label for label, outside in zip(request.labels, scores.bounded) if outside)
    return FewShotResult(prompt, answer_text(generation, prompt.chat), generation, probabilities, bounded)
