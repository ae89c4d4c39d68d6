"""Knowing before anyone clicks what can load here; an instant, clean answer for what cannot; the ZeroGPU plan."""

from __future__ import annotations

import inspect
import re
import time

import gradio as gr
import pytest

from playground.core.availability import OPEN_CLIP_HUB_REPOS
from playground.core.errors import ModelUnavailableError
from playground.core.service import ModelService
from playground.core.settings import MODEL_KINDS, load_settings
from serving.zero_gpu import DURATIONS, MAX_SECONDS, MIN_SECONDS, gpu_events, run_model_events_on_gpu, zero_gpu_enabled
from tabs.common import availability_note, model_choices

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"


@pytest.fixture(scope="module")
def builtin_service(base_settings) -> ModelService:
    """Only the built-in registry, offline, as on a fresh clone after the run command's install step."""
    return ModelService(load_settings(overrides={"cache_dir": str(base_settings.cache_dir)}, environ={}))


def test_offline_defaults_fall_back_to_what_loads_and_say_so(builtin_service):
    service = builtin_service
    assert service.default_name("language") == SMOLLM2
    assert service.default_name("tokenizer") == "GPT-4o (o200k_base)"
    assert availability_note(service, "language").startswith(
        f"offline: using {SMOLLM2}; Qwen/Qwen2.5-0.5B-Instruct needs `python -m playground.prefetch")
    labels = dict((value, label) for label, value in model_choices(service, "language"))
    assert labels[SMOLLM2] == SMOLLM2 and labels["Qwen/Qwen2.5-0.5B-Instruct"].endswith("(needs download)")
    for kind in ("clip", "text_to_image"):  # no weights at all: said at once, when the tab is built
        assert availability_note(service, kind).startswith("Nothing here can load yet.")


def test_a_click_on_a_model_that_cannot_load_answers_at_once_in_one_sentence(builtin_service):
    for kind, name in (("language", "Qwen/Qwen2.5-0.5B-Instruct"), ("clip", "ViT-B-32:openai"),
                       ("text_to_image", "stabilityai/sd-turbo"), ("tokenizer", "Llama-2")):
        start = time.perf_counter()
        with pytest.raises(ModelUnavailableError) as refused:
            builtin_service.load(kind, name)
        assert time.perf_counter() - start < 2
        message = str(refused.value)
        assert message.count(". ") == 0 and message.endswith(".") and not re.search(r"[.:;,]{2}", message)
        assert f"--kind {kind} --model" in message and "prefetch" in message


def test_every_kind_of_built_in_model_has_an_offline_answer(builtin_service):
    for kind in MODEL_KINDS:
        for name in builtin_service.registry.names(kind):  # a cache check per kind: none raises
            assert isinstance(builtin_service.availability(kind, name).loadable, bool)


def test_every_tokenizer_the_install_step_fetches_loads_offline(builtin_service):
    loadable = [name for name in builtin_service.registry.names("tokenizer")
                if builtin_service.availability("tokenizer", name).loadable]
    for name in ("GPT-4o (o200k_base)", "GPT-3.5/GPT-4 (cl100k_base)", "GPT-2 (gpt2)", "Llama-3", "Qwen3", "Gemma 3",
                 "Mistral 7B v0.1", "Mistral NeMo (Tekken)", "CLIP ViT-B/32", f"{SMOLLM2} (language model)"):
        assert name in loadable
        assert builtin_service.load("tokenizer", name).encode("Hello", False)


def test_open_clip_repos_match_open_clip():
    import open_clip

    for (architecture, tag), repo in OPEN_CLIP_HUB_REPOS.items():
        assert open_clip.get_pretrained_cfg(architecture, tag)["hf_hub"].rstrip("/") == repo


def test_zero_gpu_is_detected_by_its_flag_only():
    assert zero_gpu_enabled({"SPACES_ZERO_GPU": "true"}) and zero_gpu_enabled({"SPACES_ZERO_GPU": "1"})
    assert not zero_gpu_enabled({}) and not zero_gpu_enabled({"SPACES_ZERO_GPU": "false", "SPACE_ID": "a/b"})


def test_zero_gpu_plan_sizes_each_model_event_and_wraps_nothing_else(service):
    import spaces  # the real package: off ZeroGPU its GPU() returns the function itself

    from app import build_app

    demo = build_app(service)
    events = gpu_events(demo.fns)
    assert set(DURATIONS) <= set(events)  # no stale names
    before = {name: block_fn.fn for name, block_fn in events.items()}
    plan = run_model_events_on_gpu(demo.fns, spaces)
    assert all(events[name].fn is before[name] for name in events)  # identity off ZeroGPU
    assert set(plan) == set(events)  # every model event, private ones (lessons, knobs) too
    cheap = [fn for fn in demo.fns.values() if fn.fn is not None and fn not in events.values()]
    assert cheap and not any(hasattr(fn.fn, "zerogpu") for fn in cheap)

    def seconds(name: str, **arguments) -> int:
        function = events[name].fn
        parameters = list(inspect.signature(function).parameters)
        args = [arguments.get(p, gr.Progress() if p == "progress" else None) for p in parameters]
        return plan[name](*args)  # positionally, as Gradio calls, a Progress included

    small = seconds("generate", steps=1, width=512, height=512)
    large = seconds("generate", steps=50, width=1024, height=1024)
    assert MIN_SECONDS <= small < 60 < large <= MAX_SECONDS  # ZeroGPU's default 60 s would cut this one
    grid = seconds("same_seed_grid", width=512, height=512, guidance_values="0, 4, 8", step_counts="1, 2, 4")
    assert small < grid <= MAX_SECONDS
    assert seconds("sweep", temperatures="0, 0.7, 1.0, 1.5", tokens=64) > seconds("next_token")
    assert seconds("cot_accuracy", problems="nonsense", max_new_tokens=float("nan")) == MAX_SECONDS  # never raises
