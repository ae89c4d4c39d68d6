"""ZeroGPU on Hugging Face Spaces: which events hold a GPU, for how long, and which models load at start.

Built to the `spaces` package's own source (0.51.3) and the ZeroGPU docs:
- ZeroGPU is on when `SPACES_ZERO_GPU` is 1, t or true (`spaces/config.py`), not when `spaces` imports: on any
  other Space, and here, `spaces.GPU(f)` returns `f` itself (`spaces/zero/decorator.py`).
- `import spaces` must come before anything initialises CUDA (it patches torch so `.to("cuda")` works in the
  main process), hence app.py imports it first (`import_spaces_first`).
- Gradio wraps every event in `spaces.GPU` with the default 60 s on a Space when `spaces` is imported before
  it (`gradio/block_function.py`, `spaces.gradio_auto_wrap`). The app turns that off and wraps only model
  events, each once, with a duration sized from the request (`duration` may be a callable: it is called in
  the main process with exactly the event's arguments, `spaces/zero/wrappers.py`).
- Each GPU call runs in a forked worker whose globals never return to the main process, so a model loaded
  lazily inside one is lost; models move to `cuda` at start, in the main process, before `launch()`
  (`spaces/zero/gradio.py` packs every cuda tensor at the first launch): `ZERO_GPU_PRELOAD`.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from typing import Any, Callable, Mapping

log = logging.getLogger("playground")

MODEL_CONCURRENCY_IDS = ("model", "language")  # tabs/common.py: MODEL_EVENT and language_event
MIN_SECONDS, MAX_SECONDS = 10, 120  # ZeroGPU refuses what exceeds the visitor's quota; 120 s covers every budget
# Rough GPU costs (a ZeroGPU slice, Qwen2.5-0.5B and SD-Turbo): generous, since a cut request is lost work.
TOKEN_SECONDS = 0.05  # one generation step (batched rows cost about one)
PASS_SECONDS = 0.15  # one UNet pass at 512x512
START_SECONDS = 8  # scheduling, moving the packed weights onto the GPU, a first step
# Loaded at start on ZeroGPU, each kind's default that can load (the tokenizer tab runs on the CPU).
ZERO_GPU_PRELOAD = ("language", "clip", "text_to_image")


def zero_gpu_enabled(environ: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get("SPACES_ZERO_GPU", "")
    return value.strip().lower() in {"1", "t", "true"}


def import_spaces_first() -> Any | None:
    """On ZeroGPU: `spaces`, imported before gradio and CUDA, with Gradio's auto-wrapping off. Else None."""
    if not zero_gpu_enabled():
        return None
    import spaces

    spaces.disable_gradio_auto_wrap()  # we wrap model events once, with their own durations
    return spaces


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number == number and number >= 0 else default  # NaN or negative: the caller's default


def _count(text: Any) -> int:
    """How many entries a comma/space separated list typed in a box holds (temperatures, guidance values)."""
    if isinstance(text, (list, tuple)):
        return len(text)
    return len([part for part in re.split(r"[\s,;]+", str(text or "")) if part])


def _area(arguments: dict) -> float:
    return _number(arguments.get("width"), 512) * _number(arguments.get("height"), 512) / 512**2


def _tokens(arguments: dict, name: str = "tokens", default: float = 256) -> float:
    return _number(arguments.get(name), default)


# Seconds of GPU per event (api_name), from its arguments by name. The budgets in playground/core/budget.py
# already refuse what no duration covers; these only size the slot a request asks ZeroGPU for.
DURATIONS: dict[str, Callable[[dict], float]] = {
    "next_token": lambda a: START_SECONDS,
    "step_one_token": lambda a: START_SECONDS,
    "generate_steps": lambda a: START_SECONDS + TOKEN_SECONDS * _tokens(a),
    "sweep": lambda a: START_SECONDS + TOKEN_SECONDS * _tokens(a, default=64) * _count(a.get("temperatures")),
    "compare_search": lambda a: START_SECONDS + 2 * TOKEN_SECONDS * _tokens(a),
    "build_prompt": lambda a: START_SECONDS,
    "run_few_shot": lambda a: START_SECONDS + TOKEN_SECONDS * _tokens(a, "max_new_tokens"),
    "sweep_shots": lambda a: START_SECONDS + 0.5 * _number(a.get("held_out"), 40) * 7,
    "cot_compare": lambda a: START_SECONDS + TOKEN_SECONDS * _tokens(a, "max_new_tokens") * 4,
    "cot_accuracy": lambda a: START_SECONDS + TOKEN_SECONDS * _tokens(a, "max_new_tokens") * 4
    * max(1.0, _number(a.get("problems"), 100) / max(1.0, _number(a.get("batch_size"), 1))),
    "classify": lambda a: START_SECONDS + 4,
    "reclassify": lambda a: START_SECONDS + 4,
    "compare_models": lambda a: START_SECONDS + 8,
    "similarity_matrix": lambda a: START_SECONDS + 8,
    "batch_accuracy": lambda a: START_SECONDS + 20,
    "generate": lambda a: START_SECONDS + PASS_SECONDS * 2 * _number(a.get("steps"), 50) * _area(a),
    "same_seed_grid": lambda a: START_SECONDS + PASS_SECONDS * 2 * _area(a)
    * _count(a.get("guidance_values")) * sum(_number(s, 50) for s in re.split(r"[\s,;]+", str(a.get("step_counts") or "50")) if s),
}


def duration_for(function: Callable, estimate: Callable[[dict], float] | None) -> Callable[..., int]:
    """A `spaces.GPU(duration=...)` callable: binds the event's arguments by name (Gradio passes gr.Progress
    and gr.Request positionally), clamps, and never raises (an error there would fail the request)."""
    signature = inspect.signature(function)

    def seconds(*args: Any, **kwargs: Any) -> int:
        if estimate is None:
            return MAX_SECONDS
        try:
            arguments = signature.bind_partial(*args, **kwargs).arguments
            return int(min(MAX_SECONDS, max(MIN_SECONDS, estimate(arguments))))
        except Exception:  # a malformed request: ask for the most, the event itself reports the problem
            return MAX_SECONDS

    return seconds


def gpu_events(fns: dict) -> dict[str, Any]:
    """The events that run a model (api_name -> BlockFunction): those and only those hold a GPU."""
    return {block_fn.api_name or block_fn.name: block_fn for block_fn in fns.values()
            if block_fn.fn is not None and block_fn.concurrency_id in MODEL_CONCURRENCY_IDS}


def run_model_events_on_gpu(fns: dict, spaces: Any | None) -> dict[str, Callable[..., int]]:
    """Wrap each model event once in `spaces.GPU` with its duration; returns the plan (api_name -> duration)."""
    events = gpu_events(fns)
    # A function can serve several events (its API event, and a lesson's or a knob's private one, which Gradio
    # names `fn_1`…): they share the API event's estimate, found through the function itself.
    estimates = {inspect.unwrap(block_fn.fn): DURATIONS[name] for name, block_fn in events.items() if name in DURATIONS}
    plan = {}
    for name, block_fn in events.items():
        if hasattr(block_fn.fn, "zerogpu"):  # already wrapped (spaces marks its wrappers): never twice
            continue
        plan[name] = duration_for(block_fn.fn, estimates.get(inspect.unwrap(block_fn.fn)))
        if spaces is not None:
            block_fn.fn = spaces.GPU(block_fn.fn, duration=plan[name])
    return plan
