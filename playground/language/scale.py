"""Does scale matter? The same measurement on two or more registered models of different sizes: the CoT
tab's GSM8K slice (direct answer, zero-shot CoT, few-shot CoT) or the few-shot tab's sweep (k = 0, 1, 4, 8),
as accuracy against each model's parameter count, read from its weights.

The comparison is fair by construction: every model reads the same prompt text (plain "Q:/A:" or
"Input:/Output:" blocks, never a chat template, which base models such as Gemma-3-270M lack) with the same
shots, and decodes greedily (no random draws, so no seed can differ). Models take turns through the one cache: a model this
comparison had to load is released when its turn ends (the last one stays for the next request), so the
comparison never holds two models at once. The whole comparison is priced before any model loads, each
model's share with its own tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from playground.core import budget
from playground.core.cache import CacheKey
from playground.core.errors import PlaygroundError
from playground.core.offline_models import offline_gguf
from playground.core.registry import ModelSpec
from playground.core.service import ModelService
from playground.core.settings import Limits
from playground.core.stopping import check_wanted
from playground.language.chain_of_thought.evaluation import accuracy_by_mode, evaluate, evaluation_cost, evaluation_plan
from playground.language.chain_of_thought.gsm8k import gsm8k_problem
from playground.language.chain_of_thought.prompts import (
    DIRECT, FEW_SHOT, SELF_CONSISTENCY, ZERO_SHOT, CotSettings, build_cot_prompt, check_modes, prompt_token_ids,
)
from playground.language.backend import LanguageBackend
from playground.language.few_shot.prompts import AS_GIVEN
from playground.language.few_shot.request import FewShotRequest
from playground.language.few_shot.scoring import label_token_ids
from playground.language.few_shot.sweep import (
    SWEEP_LOWER, SweepSetting, accuracy_by_setting, answer_tokens, few_shot_sweep_cost, sweep, sweep_prompts,
)
from playground.language.few_shot.tasks import Example
from playground.language.generation import encode_prompt
from playground.language.local import context_length_of
from playground.language.results import RenderedPrompt
from playground.language.weights import weights_location

COT_MODES = (DIRECT, ZERO_SHOT, FEW_SHOT)  # self-consistency samples: not one shared greedy prompt
SHOT_COUNTS = (0, 1, 4, 8)


@dataclass(frozen=True)
class ModelSize:
    name: str
    parameters: int  # every weight, tied ones once
    embedding_parameters: int  # of which the input embedding (most of a small model with a large vocabulary)


def model_size(lm: LanguageBackend) -> ModelSize:
    """Parameters counted in the loaded weights (a model served elsewhere has none here to count)."""
    modules = lm.torch_modules()
    seen: set[int] = set()
    total = 0
    for module in modules:
        for parameter in module.parameters():
            if parameter.data_ptr() not in seen:
                seen.add(parameter.data_ptr())
                total += parameter.numel()
    if total == 0:
        raise PlaygroundError(f"{lm.name} has no weights here, so its parameter count cannot be read.")
    embeddings = [module.get_input_embeddings() for module in modules if hasattr(module, "get_input_embeddings")]
    return ModelSize(lm.name, total, sum(embedding.weight.numel() for embedding in embeddings))


def check_models(service: ModelService, names: Sequence[str] | None) -> list[ModelSpec]:
    """Two or more distinct registered models whose weights load here (a size axis needs a count)."""
    chosen = list(dict.fromkeys(name for name in names or () if isinstance(name, str) and name.strip()))
    specs = [service.registry.get("language", name) for name in chosen]
    if len(specs) < 2:
        raise PlaygroundError("Pick two or more models to compare: one model gives one point, not a curve.")
    remote = [spec.name for spec in specs if spec.is_remote]
    if remote:
        raise PlaygroundError(f"{remote[0]} runs on an inference server: its parameter count cannot be read here. "
                              "Compare models whose weights load in this app.")
    return specs


def comparable_models(service: ModelService) -> list[str]:
    """The registered models whose weights load here, in registry order."""
    return [spec.name for spec in service.registry.specs("language") if not spec.is_remote]


def default_models(service: ModelService) -> list[str]:
    """What a comparison starts with: the default model and the offline models (listed only where installed),
    topped up to two from the registry, models that can load now first."""
    specs = [spec for spec in service.registry.specs("language") if not spec.is_remote]
    default = service.default_name("language")
    chosen = [spec.name for spec in specs if spec.name == default or offline_gguf(spec.source) is not None]
    rest = sorted((spec.name for spec in specs if spec.name not in chosen),
                  key=lambda name: not service.availability("language", name).loadable)
    return chosen + rest[:max(0, 2 - len(chosen))]


@dataclass
class PromptModel:
    """A registered model's tokenizer and context length without its weights: enough to build and price its
    prompts before it loads (it stands in for the backend where prompts are built and priced)."""

    name: str
    tokenizer: PreTrainedTokenizerBase
    context_length: int
    device: torch.device = torch.device("cpu")
    has_chat_template: bool = False  # the comparison's prompts never use one

    def torch_modules(self) -> list[torch.nn.Module]:
        return []

    def render_prompt(self, text: str, use_chat_template: bool) -> RenderedPrompt:
        """The ids a local model would run for plain `text` (the comparison never uses a chat template)."""
        return RenderedPrompt(text, encode_prompt(self, text))


def prompt_model(service: ModelService, spec: ModelSpec) -> PromptModel:
    """Through the cache, under its own key: a second comparison does not read the tokenizer files again."""
    def load() -> PromptModel:
        location = weights_location(spec, service.settings)
        offline = service.settings.offline
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
        config = AutoConfig.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
        return PromptModel(spec.name, tokenizer, context_length_of(config))

    return service.cache.get(CacheKey("language prompts", spec.source, "cpu", "-"), load)


@dataclass(frozen=True)
class ScalePoint:
    model: str
    parameters: int
    line: str  # the mode or shot count: one line of the chart
    correct: int
    scored: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.scored if self.scored else 0.0


@dataclass(frozen=True)
class ScaleProgress:
    sizes: tuple[ModelSize, ...]  # the models finished so far, in turn order
    points: tuple[ScalePoint, ...]  # their accuracies, one per model and line
    running: str  # the model now loading or running; "" once all are done
    done: int  # items scored (model x problem x mode, or model x item x k)
    total: int
    fairness: str  # what every model shared, said in the table
    status: str  # what is happening now, for a person
    licences: tuple[tuple[str, str], ...]  # (model, licence) of the offline models compared

    @property
    def finished(self) -> bool:
        return not self.running


def _turn(service: ModelService, spec: ModelSpec, keep: bool) -> Iterator[LanguageBackend]:
    """The model for one turn. Unless `keep`, a model the turn had to load is released when it ends, so the
    next model loads into the memory this one held. Callers must not keep the model past their turn."""
    loaded_before = service.is_loaded("language", spec.name)
    yield service.load("language", spec.name)
    if not keep and not loaded_before:
        service.cache.release(service.key(spec))


Run = Callable[[LanguageBackend], Iterator[tuple[int, list[tuple[str, int, int]]]]]


def _compare(service: ModelService, specs: Sequence[ModelSpec], fairness: str, per_model: int,
             price: Callable[[PromptModel], budget.Cost], lower: str, limits: Limits, run: Run) -> Iterator[ScaleProgress]:
    """Price every model's share with its own tokenizer, then each model in turn: `run(lm)` yields (items done,
    finished lines as (line, correct, scored))."""
    sizes: list[ModelSize] = []
    points: list[ScalePoint] = []
    total = per_model * len(specs)
    licences = tuple((spec.name, offline_gguf(spec.source).licence) for spec in specs if offline_gguf(spec.source))

    def progress(running: str, done: int, status: str) -> ScaleProgress:
        return ScaleProgress(tuple(sizes), tuple(points), running, done, total, fairness, status, licences)

    yield progress(specs[0].name, 0, "Pricing the comparison with each model's tokenizer (an offline model's first "
                                     "use converts it once: minutes on a CPU)…")
    cost = budget.Cost()
    for spec in specs:
        cost += price(prompt_model(service, spec))
    budget.check(cost, limits, "This comparison", f"fewer models, or {lower}")
    for position, spec in enumerate(specs):
        base = per_model * position
        turn = f"model {position + 1} of {len(specs)}"
        loaded = service.is_loaded("language", spec.name)
        yield progress(spec.name, base, f"{'Running' if loaded else 'Loading'} {spec.name} ({turn})…")
        check_wanted()  # Stop between models: before the next one loads
        for lm in _turn(service, spec, keep=position == len(specs) - 1):
            size = model_size(lm)
            lines: list[tuple[str, int, int]] = []
            for done, lines in run(lm):
                yield progress(spec.name, base + done, f"Running {spec.name} ({turn}): {done} of {per_model} done")
            del lm  # before the next model loads
        sizes.append(size)
        points.extend(ScalePoint(spec.name, size.parameters, line, correct, scored) for line, correct, scored in lines)
    yield progress("", total, f"Done: {len(specs)} models compared.")


# ---- the CoT tab: one GSM8K slice ----------------------------------------------------------------------

def check_cot_modes(modes: Sequence[str] | None) -> tuple[str, ...]:
    chosen = check_modes(modes)
    if SELF_CONSISTENCY in chosen:
        raise PlaygroundError(f"Compare sizes with {', '.join(COT_MODES)}: self-consistency samples, so its "
                              "answers do not come from one shared greedy prompt.")
    return chosen


def cot_fairness(settings: CotSettings) -> str:
    return (f"Every model read the same prompts (plain Q:/A: text, no chat template; few-shot CoT with "
            f"{settings.exemplars} worked GSM8K solutions) and decoded greedily (no random draws, so no seed can "
            f"differ), up to {settings.max_new_tokens} new tokens; every answer was read and scored by one rule.")


def compare_cot(service: ModelService, names: Sequence[str], numbers: Sequence[int], modes: Sequence[str],
                settings: CotSettings, batch_size: int, limits: Limits) -> Iterator[ScaleProgress]:
    """GSM8K test problems `numbers` in each mode on each model, one model after another."""
    modes = check_cot_modes(modes)
    settings = replace(settings, use_chat_template=False).validated(limits, modes)
    specs = check_models(service, names)
    numbers = list(numbers)
    problems = [gsm8k_problem(number) for number in numbers]
    plan = evaluation_plan(len(problems), modes, settings, batch_size)

    def price(prompts: PromptModel) -> budget.Cost:
        ids = {mode: [prompt_token_ids(prompts, build_cot_prompt(prompts, mode, p.question, settings), settings)
                      for p in problems] for mode in modes}
        return evaluation_cost(ids, plan, settings)

    def run(lm: LanguageBackend) -> Iterator[tuple[int, list[tuple[str, int, int]]]]:
        progress = None
        for progress in evaluate(lm, numbers, modes, settings, batch_size, limits):
            yield sum(len(outcome.results) for outcome in progress.outcomes), []
        accuracies = accuracy_by_mode(progress.outcomes, modes)
        yield len(numbers) * len(modes), [(a.mode, a.correct, a.scored) for a in accuracies]

    yield from _compare(service, specs, cot_fairness(settings), len(numbers) * len(modes), price,
                        "problems or modes, or fewer new tokens", limits, run)


# ---- the few-shot tab: the sweep over k -------------------------------------------------------------------

def shot_settings(available: int) -> list[SweepSetting]:
    """k = 0, 1, 4, 8 as given, capped by the examples available."""
    counts = sorted({min(k, available) for k in SHOT_COUNTS})
    return [SweepSetting(f"k={k}", k, AS_GIVEN) for k in counts]


def few_shot_fairness(request: FewShotRequest) -> str:
    scoring = "the likeliest label" if request.labels else "the greedy answer's first line"
    return (f"Every model read the same prompts (plain text, no chat template) with the same shots: the first k "
            f"examples in the table's order. Decoding is greedy (no random draws, so no seed can differ); each "
            f"answer is {scoring}.")


def compare_few_shot(service: ModelService, names: Sequence[str], request: FewShotRequest,
                     eval_set: Sequence[Example], limits: Limits) -> Iterator[ScaleProgress]:
    """The sweep over k on the held-out set, on each model, one model after another."""
    specs = check_models(service, names)
    request = replace(request, fmt=replace(request.fmt, use_chat_template=False))
    settings = shot_settings(len(request.examples))

    def price(prompts: PromptModel) -> budget.Cost:
        labels_ids = label_token_ids(prompts, request.labels, False) if request.labels else []
        plan = sweep_prompts(prompts, request, eval_set, limits, settings)
        return few_shot_sweep_cost(prompts, plan, labels_ids, answer_tokens(prompts, eval_set, limits))

    def run(lm: LanguageBackend) -> Iterator[tuple[int, list[tuple[str, int, int]]]]:
        results = []
        for result in sweep(lm, request, eval_set, limits, settings):
            results.append(result)
            yield len(results), []
        yield len(results), [(a.setting, a.correct, a.scored) for a in accuracy_by_setting(results)]

    yield from _compare(service, specs, few_shot_fairness(request), len(settings) * len(eval_set), price,
                        SWEEP_LOWER, limits, run)
