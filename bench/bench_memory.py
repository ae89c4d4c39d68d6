"""Peak memory of one request per endpoint, at the largest settings this server's `Limits` allow (the budgets
of playground/core/budget.py included), over the memory of the loaded models; and its seconds.

    .venv/bin/python -m bench.bench_memory                    # every endpoint, each in a fresh process
    .venv/bin/python -m bench.bench_memory sweep few_shot_run  # some of them

Each request runs in a fresh process: load the models, run a small request (warm-up), hand freed memory back
to the system, then reset the peak and run the request once. Peak RSS from /proc (Linux); on a GPU also the
peak CUDA memory. Models: SmolLM2-135M (offline demo) for the language tabs, ViT-B-32 and the tiny diffusion
pipeline with random weights (tests/factories: the architecture, not the values, sets the cost), GPT-2 and
o200k tokenizers. Goal (issue: safe to put on the internet): no request above 2 GB over the models on CPU.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import os
import re
import subprocess
import sys
import time
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see tests/conftest.py: spinning threads on a shared CPU
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import bench.common  # noqa: E402,F401  (sets the environment, imports playground first)
import torch  # noqa: E402

from playground.core.registry import SMOLLM2_SOURCE  # noqa: E402
from playground.core.service import ModelService  # noqa: E402
from playground.core.settings import Limits, load_settings  # noqa: E402
from playground.language.sampling_settings import SamplingSettings  # noqa: E402

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
LIMITS = Limits()
DIGITS = "0123456789"  # one token each for SmolLM2: the most tokens a character limit lets through


def digits(tokens: int) -> str:
    return (DIGITS * (tokens // 10 + 1))[:tokens]


def service() -> ModelService:
    from tests.factories import REPO, factory_modules

    base = load_settings(overrides={"cache_dir": str(REPO / ".cache" / "playground")}, environ={})
    models = {module.KIND: [module.build(base)] for module in factory_modules()}
    models["language"] = [SMOLLM2_SOURCE]
    return ModelService(load_settings(overrides={"cache_dir": str(base.cache_dir), "models": models}, environ={}))


# ---- the requests: name -> (what, build(service) -> (warm-up, the request)) ---------------------------

def _language(service: ModelService):
    return service.load("language", SMOLLM2)


def next_token(service):
    from playground.views.sampling import next_token_view
    lm = _language(service)
    return (lambda: next_token_view(lm, "Hi", False, SamplingSettings(), LIMITS),
            lambda: next_token_view(lm, digits(8000), False, SamplingSettings(), LIMITS))


def steps(service):
    from playground.views.sampling import steps_view
    lm, store = _language(service), service.step_sessions
    return (lambda: steps_view(lm, store, "warm", "Hi", False, SamplingSettings(), 0, 2, LIMITS),
            lambda: steps_view(lm, store, "bench", digits(7900), False, SamplingSettings(), 0, 256, LIMITS))


def step_sessions(service):
    """Many visitors each keeping a long step session: the store's budget holds them all."""
    from playground.views.sampling import steps_view
    lm, store = _language(service), service.step_sessions

    def many() -> None:
        for visitor in range(4):
            steps_view(lm, store, visitor, f"{visitor} " + digits(7800), False, SamplingSettings(), 0, 1, LIMITS)
        print(f"  4 sessions asked for, {len(store)} kept: {store.bytes_held / 2**20:.0f} MB of KV caches "
              f"(budget {store.budget_bytes / 2**20:.0f} MB)")

    return lambda: steps_view(lm, store, "warm", "Hi", False, SamplingSettings(), 0, 1, LIMITS), many


def sweep(service):
    from playground.views.sampling import sweep_view
    lm = _language(service)
    return (lambda: sweep_view(lm, "Hi", False, SamplingSettings(), "1", 2, 2, 0, LIMITS),
            lambda: sweep_view(lm, digits(1400), False, SamplingSettings(), "0.3, 0.6, 0.9, 1.2, 1.5, 2", 16, 64, 0,
                               LIMITS))


def compare_search(service):
    from playground.views.sampling import search_view
    lm = _language(service)
    return (lambda: search_view(lm, "Hi", False, 2, 2, LIMITS),
            lambda: search_view(lm, digits(2900), False, 8, 64, LIMITS))


def _few_shot_request(labels: list[str], example_tokens: int, examples: int, query: str = ""):
    from playground.language.few_shot.request import FewShotSettings
    rows = [[digits(example_tokens), labels[i % len(labels)]] for i in range(examples)]
    return FewShotSettings("", "", "", False, rows, query, "one of the labels", ", ".join(labels), examples,
                           "as given", 0).checked(LIMITS, query_required=bool(query))


def few_shot_run(service):
    from playground.language.few_shot.run import run_few_shot
    lm = _language(service)
    labels = [f"label {i:03d} " + "z" * 90 for i in range(100)]  # 100 labels of 100 characters, ~50 tokens
    small = _few_shot_request(labels[:2], 10, 2, "a query")
    big = _few_shot_request(labels, 1500, 2, digits(1500))
    return (lambda: run_few_shot(lm, small, SamplingSettings(temperature=0), 2, LIMITS),
            lambda: run_few_shot(lm, big, SamplingSettings(temperature=0), 256, LIMITS))


def few_shot_sweep(service):
    from playground.language.few_shot.request import examples_from_rows
    from playground.language.few_shot.sweep import sweep as sweep_items
    lm = _language(service)
    labels = ["Positive", "Negative", "Neutral"]
    request = _few_shot_request(labels, 30, 8)
    items = examples_from_rows([[digits(20 + i), labels[i % 3]] for i in range(40)], LIMITS, cap=40)
    return (lambda: next(sweep_items(lm, request, items[:1], LIMITS)),
            lambda: list(sweep_items(lm, request, items, LIMITS)))


def cot_compare(service):
    from playground.language.chain_of_thought import answering, evaluation, gsm8k, prompts
    lm = _language(service)
    settings = prompts.CotSettings(255, True, 8, 16, SamplingSettings(temperature=0.7)).validated(LIMITS)

    def run() -> None:
        answering.check_compare_budget(lm, gsm8k.gsm8k_problem(1), prompts.MODES, settings, LIMITS)
        for mode in prompts.MODES:
            list(answering.stream_mode(lm, mode, gsm8k.gsm8k_problem(1), settings))

    warm = prompts.CotSettings(2, True, 1, 2, SamplingSettings(temperature=0.7)).validated(LIMITS)
    return lambda: list(answering.stream_mode(lm, prompts.DIRECT, gsm8k.gsm8k_problem(1), warm)), run


def cot_accuracy(service):
    from playground.language.chain_of_thought import answering, evaluation, gsm8k, prompts
    lm = _language(service)
    settings = prompts.CotSettings(256, True, 8, 5, SamplingSettings(temperature=0.7)).validated(LIMITS)
    modes = prompts.MODES[:3]
    return (lambda: list(evaluation.evaluate(lm, range(1, 2), prompts.MODES[:1], settings, 1, LIMITS)),
            lambda: list(evaluation.evaluate(lm, range(1, 8), modes, settings, 16, LIMITS)))


def _clip_labels(count: int) -> str:
    return "\n".join(f"a photo of thing number {i}" for i in range(count))


def clip_classify(service):
    from playground.clip.gallery import GALLERY_DIR
    from playground.views.clip import classification
    clip, image = service.load("clip"), str(GALLERY_DIR / "cat.jpg")
    ensemble = "80 templates (OpenAI's ImageNet ensemble)"
    return (lambda: classification(clip, image, "cat\ndog", None, 0, LIMITS),
            lambda: classification(clip, image, _clip_labels(25), ensemble, 0, LIMITS))


def clip_matrix(service):
    from playground.clip.gallery import gallery
    from playground.views.clip import similarity_heatmap
    clip, names = service.load("clip"), [photo.name for photo in gallery()]
    ensemble = "80 templates (OpenAI's ImageNet ensemble)"
    return (lambda: similarity_heatmap(clip, names[:1], "cat", None, LIMITS),
            lambda: similarity_heatmap(clip, names, _clip_labels(25), ensemble, LIMITS))


def clip_gallery_accuracy(service):
    from playground.views.clip import gallery_accuracy
    from playground.clip.zero_shot import template_sets
    clip = service.load("clip")
    return lambda: None, lambda: gallery_accuracy(clip, list(template_sets()), LIMITS)


def text_to_image(service):
    from playground.text_to_image.pipeline import ImageRequest, check_budget, denoise_with_previews
    pipeline = service.load("text_to_image")
    small = ImageRequest("a cat", steps=1, width=64, height=64).validated(LIMITS)
    big = ImageRequest("a lighthouse", steps=LIMITS.max_diffusion_steps, guidance=7.5, width=LIMITS.max_image_side,
                       height=LIMITS.max_image_side).validated(LIMITS)

    def run() -> None:
        check_budget(pipeline, [big], LIMITS, "This image")
        list(denoise_with_previews(pipeline, big, "bench"))

    return lambda: list(denoise_with_previews(pipeline, small, "bench")), run


def same_seed_grid(service):
    from playground.text_to_image.pipeline import ImageRequest, check_budget, denoise_with_previews, grid_requests
    pipeline = service.load("text_to_image")
    side = LIMITS.max_image_side
    base = ImageRequest("a lighthouse", steps=1, width=side, height=side).validated(LIMITS)
    requests = grid_requests(base, "1.5, 7.5, 15", "10, 11, 12", LIMITS)  # 9 images, 99 steps, guidance on

    def run() -> None:
        check_budget(pipeline, requests, LIMITS, "This grid")
        images = [list(denoise_with_previews(pipeline, request, "bench", previews=False))[-1].image
                  for request in requests]
        assert len(images) == 9

    small = ImageRequest("a cat", steps=1, width=64, height=64).validated(LIMITS)
    return lambda: list(denoise_with_previews(pipeline, small, "bench", previews=False)), run


def tokenizer_corpus(service):
    from playground.tokenizers import cost
    names = ("GPT-4o (o200k_base)", "Mistral 7B v0.1", "Llama-3")  # the budget allows three cold at once
    tokenizers = [service.load("tokenizer", name) for name in names]
    return lambda: None, lambda: cost.corpus_costs(tokenizers, "dev+devtest", "English", 1.0, False, LIMITS)


REQUESTS: dict[str, tuple[str, Callable]] = {
    "next_token": ("8,000-token prompt", next_token),
    "generate_steps": ("256 tokens after a 7,900-token prompt", steps),
    "step_sessions": ("4 visitors' sessions of 7,800 tokens", step_sessions),
    "sweep": ("6 temperatures x 16 samples x 64 tokens, 1,400-token prompt", sweep),
    "compare_search": ("8 beams x 64 tokens, 2,900-token prompt", compare_search),
    "few_shot_run": ("100 labels of ~50 tokens, 4,500-token prompt, 256 new tokens", few_shot_run),
    "sweep_shots": ("40 items x 7 settings x 3 labels, 8 shots", few_shot_sweep),
    "cot_compare": ("4 modes x 255 tokens, 8 worked examples, 16 votes", cot_compare),
    "cot_accuracy": ("7 problems x 3 modes x 256 tokens, 16 a batch", cot_accuracy),
    "classify": ("25 labels x 80 templates (ViT-B-32)", clip_classify),
    "similarity_matrix": ("10 photos x 25 labels x 80 templates", clip_matrix),
    "batch_accuracy": ("10 photos x all 3 template sets", clip_gallery_accuracy),
    "generate": ("1024x1024, 50 steps, guidance 7.5 (tiny UNet)", text_to_image),
    "same_seed_grid": ("9 images at 1024x1024, 99 steps, guidance on (tiny UNet)", same_seed_grid),
    "corpus_premiums": ("3 tokenizers, cold, 410k sentences each", tokenizer_corpus),
}


def _megabytes(field: str) -> float:
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1)) / 1024


def _settle() -> None:
    """Free what can be freed and hand it back to the system, so the baseline is the models alone."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        ctypes.CDLL(name).malloc_trim(0)


def run_one(name: str) -> None:
    what, build = REQUESTS[name]
    warm_up, request = build(service())
    warm_up()
    _settle()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets the peak (VmHWM) to the current RSS
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        cuda_before = torch.cuda.memory_allocated()
    before = _megabytes("VmRSS")
    start, cpu_start = time.perf_counter(), time.process_time()
    request()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = _megabytes("VmHWM") - before
    cuda_peak = f"  CUDA peak +{(torch.cuda.max_memory_allocated() - cuda_before) / 2**20:,.0f} MB" if cuda else ""
    print(f"{name:18} {what:62} models {before:6,.0f} MB  peak +{peak:6,.0f} MB  {seconds:6.1f} s "
          f"(CPU {cpu_seconds:6.1f} s){cuda_peak}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"requests to measure (default: all): {', '.join(REQUESTS)}")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in REQUESTS]
    if unknown:
        parser.error(f"unknown request {unknown[0]!r}; choose from {', '.join(REQUESTS)}")
    if args.in_process:
        run_one(args.names[0])
        return
    print(f"torch threads {torch.get_num_threads()}; each line is a fresh process; 'peak' is over the models; "
          "CPU seconds / threads is about the time on an otherwise idle machine")
    for name in args.names or REQUESTS:
        done = subprocess.run([sys.executable, "-m", "bench.bench_memory", "--in-process", name],
                              capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        print("\n".join(lines) if done.returncode == 0 else f"{name:18} failed: {done.stderr.strip()[-400:]}",
              flush=True)


if __name__ == "__main__":
    main()
