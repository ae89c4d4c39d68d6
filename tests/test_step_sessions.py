"""Step-by-step sessions live in one server-side store: each holds only its KV cache and tokens, all of
them stay under one memory budget (least recently used dropped first, its owner told to start over), and
their memory really comes back after Start over, after the time-to-live and when the owner leaves."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from playground.core.settings import Limits
from playground.language.sampling_settings import SamplingSettings
from playground.language.step_sessions import SessionDropped, StepSessionStore, tensor_bytes
from playground.views.sampling import steps_view

LIMITS = Limits()


@pytest.fixture(scope="module")
def tiny(service):
    return service.load("language", service.registry.default("language"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def step(lm, store, owner: str, prompt: str, tokens: int = 3) -> None:
    steps_view(lm, store, owner, prompt, False, SamplingSettings(), 0, tokens, LIMITS)


def cache_tensor(store, owner: str) -> weakref.ref:
    """A weak reference to one of the owner's KV cache tensors: dead once the cache is freed."""
    return weakref.ref(store.get(owner).cache.layers[0].keys)


def test_a_session_holds_its_kv_cache_and_nothing_more(tiny):
    store = StepSessionStore(2**30, 60)
    step(tiny, store, "a", "word " * 300, tokens=4)
    session = store.get("a")
    config = tiny.model.config
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) * 4
    kv_cache = session.cached * per_token
    assert kv_cache <= store.bytes_held <= kv_cache * 1.1 + 64 * 1024  # the cache, the token ids, no logits
    assert tensor_bytes(session) == store.bytes_held


def test_past_the_budget_the_least_recently_used_session_is_dropped_and_its_owner_told(tiny):
    probe = StepSessionStore(2**30, 60)
    step(tiny, probe, "x", "word " * 200)
    store = StepSessionStore(int(probe.bytes_held * 2.5), 60)  # room for two such sessions
    for owner in ("first", "second"):
        step(tiny, store, owner, "word " * 200)
    freed = cache_tensor(store, "first")
    step(tiny, store, "second", "word " * 200, tokens=1)  # "second" is now the most recently used
    step(tiny, store, "third", "word " * 200)
    assert len(store) == 2 and store.bytes_held <= store.budget_bytes
    gc.collect()
    assert freed() is None
    with pytest.raises(SessionDropped, match="to make room for other visitors.*Press Start over"):
        step(tiny, store, "first", "word " * 200)
    step(tiny, store, "first", "word " * 200)  # told once; the next click starts afresh
    assert store.get("first") is not None


def test_start_over_and_the_time_to_live_free_the_memory(tiny):
    clock = Clock()
    store = StepSessionStore(2**30, ttl_seconds=600, clock=clock)
    for owner in ("leaves", "idles"):
        step(tiny, store, owner, "word " * 200)
    left, idle = cache_tensor(store, "leaves"), cache_tensor(store, "idles")
    held = store.bytes_held
    store.drop("leaves")  # Start over, or the page was closed
    gc.collect()
    assert left() is None and 0 < store.bytes_held <= held / 2
    clock.now = 601
    store.expire()
    gc.collect()
    assert idle() is None and store.bytes_held == 0 and len(store) == 0
    with pytest.raises(SessionDropped, match="after 10 minutes without a step"):
        store.get("idles")


def test_idle_sessions_expire_with_nobody_clicking(tiny):
    store = StepSessionStore(2**30, ttl_seconds=0.3)
    step(tiny, store, "gone home", "word " * 50)
    freed = cache_tensor(store, "gone home")
    deadline = time.monotonic() + 20
    while len(store) and time.monotonic() < deadline:
        time.sleep(0.1)
    gc.collect()
    assert len(store) == 0 and freed() is None
