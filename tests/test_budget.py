"""One request cannot hold the model or the memory: every model-bound request is priced before it runs and
refused up front, with what to lower, when over its budget; the price bounds the work really done; the
work grows with what the request returns (one pass over a prompt, however many samples or labels); and
a request nobody waits for stops within one model call."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import replace

import pytest
import torch

from playground.core import budget

from playground.language.chain_of_thought import answering, evaluation, gsm8k, prompts

from playground.language import label_scoring

from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.core.stopping import Stopped, watching
from playground.language.few_shot.request import FewShotSettings, examples_from_rows
from playground.language.few_shot.run import prompt_for, run_few_shot
from playground.language.few_shot.scoring import label_token_ids
from playground.language.label_scoring import label_log_likelihoods
from playground.language.few_shot.sweep import few_shot_sweep_cost, sweep, sweep_prompts
from playground.language.sampling_settings import SamplingSettings
from playground.language.generation import encode_prompt
from playground.language.step_sessions import StepSessionStore
from playground.language.steps import advance, start_session
from playground.language.sweep import compare_search, temperature_sweep
from playground.text_to_image.pipeline import IMAGE_LOWER, ImageRequest, check_budget, denoise_with_previews
from playground.tokenizers import cost as tokenizer_cost
from playground.views.clip import classification
from playground.language.sampling_requests import search_cost, sweep_cost as temperature_sweep_cost
from playground.views.sampling import search_view, steps_view, sweep_view

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
LIMITS = Limits()
LABELS = "one of the labels"


@pytest.fixture(scope="module")
def tiny(service):
    return service.load("language", service.registry.default("language"))


@pytest.fixture(scope="module")
def smollm2(service):
    return service.load("language", SMOLLM2)


class ModelWork:
    """What really ran through a model: calls, tokens (every row), and the widest batch."""

    def __init__(self) -> None:
        self.calls = self.tokens = self.rows = self.longest = 0

    def __call__(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls += 1
        self.tokens += ids.numel()
        self.rows = max(self.rows, ids.shape[0])
        self.longest = max(self.longest, ids.shape[1])


@contextmanager
def counted(model: torch.nn.Module):
    work = ModelWork()
    handle = model.register_forward_pre_hook(work, with_kwargs=True)
    try:
        yield work
    finally:
        handle.remove()


def few_shot_request(labels: list[str], examples: int = 2, query: str = "a query", k: int = 2):
    rows = [[f"example {i}", labels[i % len(labels)]] for i in range(examples)]
    return FewShotSettings("Classify.", "Input", "Label", False, rows, query, LABELS, ", ".join(labels), k,
                           "as given", 0).checked(LIMITS, query_required=bool(query))


def test_the_attacks_that_held_the_server_are_refused_before_any_model_call(smollm2, service):
    """The measured attacks (2k-token sweep, 40 x 7 x 100 few-shot sweep, 100-problem CoT batch, 1024² x 50
    steps with guidance, 100 labels x 80 templates) with the default limits: refused, naming what to lower."""
    long_prompt = "word " * 1590  # 7,950 characters, under the character cap: 1,590 tokens
    labels = [f"label number {i} with some more words" for i in range(100)]
    request = few_shot_request(labels, examples=8, query="")
    eval_set = examples_from_rows([[f"item {i}", labels[i]] for i in range(40)], LIMITS, cap=40)
    settings = prompts.CotSettings(256, True, 8, 16, SamplingSettings(temperature=0.7)).validated(LIMITS)
    clip = service.load("clip")
    attacks = [
        (lambda: sweep_view(smollm2, long_prompt, False, SamplingSettings(), "1", 16, 64, 0, LIMITS),
         "tokens held in memory at once"),
        (lambda: next(sweep(smollm2, request, eval_set, LIMITS)), "tokens through the model"),
        (lambda: next(evaluation.evaluate(smollm2, range(1, 101), prompts.MODES, settings, 16, LIMITS)),
         "tokens through the model"),
        (lambda: next(evaluation.evaluate(smollm2, range(1, 9), prompts.MODES[:3], replace(settings, max_new_tokens=200),
                                          1, LIMITS)), "generation steps one after another"),
        (lambda: budget.check(budget.denoising(50, 1024, 1024, guidance=True), LIMITS, "This image",
                              IMAGE_LOWER), "denoising passes"),  # priced for an SD-sized UNet (SD-Turbo's)
        (lambda: classification(clip, None, "\n".join(labels), "80 templates (OpenAI's ImageNet ensemble)", 0,
                                LIMITS), "images and label prompts to encode"),
    ]
    for attack, unit in attacks:
        with counted(smollm2.model) as work:
            with pytest.raises(PlaygroundError, match=rf"would need [0-9,.]+ {unit}[^;]*; this server allows .* Try "):
                attack()
        assert work.calls == 0


def test_each_budget_is_named_in_its_message():
    tight = Limits(max_request_tokens=10, max_request_steps=10, max_cached_tokens=10, max_denoising_passes=1,
                   max_denoising_passes_on_cpu=1, max_clip_encodings=10, max_tokenized_sentences=10)
    costs = [budget.forward(11), budget.generation(1, 11), budget.forward(5, context=6),
             budget.denoising(2, 512, 512, False), budget.encoding(5, 6), budget.tokenizing(11)]
    messages = set()
    for cost in costs:
        with pytest.raises(PlaygroundError, match="Try fewer") as refused:
            budget.check(cost, tight, "This", "fewer")
        messages.add(str(refused.value).split(";")[0])
    assert len(messages) == len(costs)
    assert budget.check(budget.denoising(2, 512, 512, True), Limits(), "This", "fewer", on_cpu=True)
    assert (budget.forward(3) + budget.forward(2, context=7)).cached_tokens == 9  # one after another: the peak
    assert (budget.generation(1, 4, rows=2) * 3).tokens == 3 * (1 + 8)


def test_estimates_bound_the_work_really_done(tiny, service):
    """Each request's price, from the function its endpoint checks, is at least what the model then runs."""
    prompt = encode_prompt(tiny, "The weather today is", False)
    n = prompt.shape[1]

    def run_sweep():
        temperature_sweep(tiny, prompt, SamplingSettings(), [0.0, 0.8, 1.5], 4, 6, 0)

    def run_search():
        compare_search(tiny, prompt, 3, 5)

    def run_steps():
        advance(tiny, start_session(("t",), prompt, 0), SamplingSettings(), 7, 100)

    labels = ["Positive", "Negative", "Mixed feelings about it"]
    request = few_shot_request(labels, examples=3, k=2)
    prompt_tokens = prompt_for(tiny, request, LIMITS).token_count
    labels_ids = label_token_ids(tiny, labels, False)
    eval_set = examples_from_rows([["good", "Positive"], ["bad", "Negative"]], LIMITS)
    plan = sweep_prompts(tiny, request, eval_set, LIMITS)
    cases = [
        (run_sweep, temperature_sweep_cost(n, [0.0, 0.8, 1.5], 4, 6)),
        (run_search, search_cost(n, 3, 5)),
        (run_steps, budget.generation(n, 7)),
        (lambda: run_few_shot(tiny, request, SamplingSettings(temperature=0), 5, LIMITS),
         budget.generation(prompt_tokens, 5) + label_scoring.label_scoring_cost(tiny, prompt_tokens, labels_ids)),
        (lambda: list(sweep(tiny, request, eval_set, LIMITS)), few_shot_sweep_cost(tiny, plan, labels_ids, 0)),
    ]
    for run, estimate in cases:
        with counted(tiny.model) as work:
            run()
        assert 0 < work.tokens <= estimate.tokens and work.calls <= estimate.steps, (work.__dict__, estimate)


def test_a_sweep_runs_the_prompt_once_and_samples_as_generate_does(tiny):
    """Samples share one pass over the prompt (not one each), and draw exactly what `num_return_sequences` draws."""
    prompt = encode_prompt(tiny, "Once upon a time there was a lighthouse keeper who", False)
    with counted(tiny.model) as work:
        column = temperature_sweep(tiny, prompt, SamplingSettings(top_k=50), [1.3], 5, 8, 3)[0]
    assert work.tokens == prompt.shape[1] + 5 * (8 - 1)  # the prompt once, then a token a step per sample
    torch.manual_seed(3)
    with torch.inference_mode():
        output = tiny.model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8, do_sample=True,
                                     num_return_sequences=5, top_k=50, temperature=1.3, top_p=None,
                                     pad_token_id=tiny.tokenizer.pad_token_id)
    expected = [tiny.tokenizer.decode(row, skip_special_tokens=True) for row in output[:, prompt.shape[1]:]]
    assert list(column.texts) == expected


def test_labels_share_the_prompt_cache_in_chunks_and_score_as_if_alone(smollm2, monkeypatch):
    """Forty labels over a long prompt: one row at a time (the prompt's cache is never copied per label), in
    several chunks, and each score equal to that label scored alone."""
    labels = [f"label {i} " + "very " * (i % 5) + "long" for i in range(40)]
    prompt = prompt_for(smollm2, few_shot_request(labels[:2], examples=6, k=6), LIMITS)
    labels_ids = label_token_ids(smollm2, labels, False)
    monkeypatch.setattr(label_scoring, "LABEL_CHUNK_LOGIT_BYTES", 4 * len(smollm2.tokenizer) * 30)  # 30 tokens a chunk
    with counted(smollm2.model) as work:
        scores = label_log_likelihoods(smollm2, prompt.ids, labels_ids)
    fed = sum(len(ids) - 1 for ids in labels_ids)
    assert work.rows == 1 and work.calls >= 1 + math.ceil(fed / 30) and work.tokens == prompt.token_count + fed
    for index in (0, 17, 39):
        sequence = torch.cat([prompt.ids, torch.tensor([labels_ids[index]])], dim=1)
        with torch.inference_mode():
            log_probs = smollm2.model(sequence).logits[0].float().log_softmax(-1)
        start = prompt.token_count - 1
        alone = sum(float(log_probs[start + j, token]) for j, token in enumerate(labels_ids[index]))
        assert float(scores[index]) == pytest.approx(alone, abs=3e-4)


def test_unwanted_work_stops_within_one_model_call(tiny, service):
    """Once its request is no longer wanted, each long loop makes at most one more model call, then `Stopped`."""
    prompt = encode_prompt(tiny, "The weather today is", False)
    request = few_shot_request(["Positive", "Negative"], examples=3, k=2)
    eval_set = examples_from_rows([[f"item {i}", "Positive"] for i in range(6)], LIMITS)
    settings = prompts.CotSettings(24, False, 2, 3, SamplingSettings(temperature=0.7)).validated(LIMITS)
    loops = {
        "sweep": lambda: temperature_sweep(tiny, prompt, SamplingSettings(), [0.5, 1.0, 1.5], 4, 20, 0),
        "beam search": lambda: compare_search(tiny, prompt, 4, 20),
        "steps": lambda: advance(tiny, start_session(("t",), prompt, 0), SamplingSettings(), 30, 100),
        "few-shot sweep": lambda: list(sweep(tiny, request, eval_set, LIMITS)),
        "CoT batch": lambda: list(evaluation.evaluate(tiny, range(1, 5), prompts.MODES, settings, 4, LIMITS)),
        "CoT compare": lambda: list(answering.stream_mode(tiny, prompts.SELF_CONSISTENCY, gsm8k.gsm8k_problem(1),
                                                          settings)),
    }
    for name, loop in loops.items():
        with counted(tiny.model) as work, watching(lambda: work.calls < 1):
            with pytest.raises(Stopped, match="cancelled or its page was closed"):
                loop()
        assert work.calls <= 2, name

    gpt2 = service.load("tokenizer", "GPT-2 (gpt2)")
    with watching(lambda: False), pytest.raises(Stopped):
        tokenizer_cost.corpus_costs([gpt2], "dev", "English", 1.0, False, LIMITS)

    pipeline = service.load("text_to_image")
    steps: list = []

    def still_wanted() -> bool:
        return len(steps) < 1

    request = ImageRequest("a cat", steps=20, width=64, height=64).validated(LIMITS)
    with watching(still_wanted), pytest.raises(Stopped):
        for event in denoise_with_previews(pipeline, request, "tiny", previews=False):
            steps.append(event)
    assert len(steps) == 1  # the worker thread asked too: the second step never ran


def test_step_view_prices_each_click_and_keeps_the_session_server_side(tiny):
    sessions = StepSessionStore(2**30, 60)
    tight = replace(LIMITS, max_request_tokens=30)
    with pytest.raises(PlaygroundError, match="These steps would need"):
        steps_view(tiny, sessions, "me", "word " * 40, False, SamplingSettings(), 0, 5, tight)
    assert len(sessions) == 0
    steps_view(tiny, sessions, "me", "word " * 20, False, SamplingSettings(), 0, 5, tight)
    assert len(sessions) == 1 and sessions.bytes_held > 0
    with pytest.raises(PlaygroundError, match="This comparison would need"):
        search_view(tiny, "word " * 20, False, 8, 64, tight)


def test_denoising_is_priced_by_the_unet_that_runs(service):
    """Passes are counted in SD-sized UNets: the tiny test UNet's 50 steps at 1024² with guidance cost less
    than one SD-Turbo step, and pass; SDXL's UNet (three times SD's) would count three times."""
    pipeline = service.load("text_to_image")
    request = ImageRequest("a cat", steps=50, guidance=7, width=1024, height=1024).validated(LIMITS)
    check_budget(pipeline, [request], LIMITS, "This image")
    assert budget.denoising(1, 512, 512, False).denoising_passes == 1
    assert budget.denoising(1, 1024, 1024, True, 3 * budget.REFERENCE_UNET_PARAMETERS).denoising_passes == 24
