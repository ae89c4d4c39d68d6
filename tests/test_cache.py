"""The one pipeline cache: a model is loaded once, later requests pay no load, eviction frees memory."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
import torch

from playground.core.cache import CacheKey, PipelineCache, memory_bytes
from playground.core.errors import PlaygroundError


def key(name: str) -> CacheKey:
    return CacheKey("language", name, "cpu", "float32")


def linear_loader(counter: list[int], size: int = 256, delay: float = 0.0):
    def load() -> torch.nn.Module:
        counter.append(1)
        time.sleep(delay)  # widen the window in which concurrent requests arrive
        return torch.nn.Linear(size, size)

    return load


def test_concurrent_first_requests_share_one_load():
    cache, loads = PipelineCache(), []
    results: list[torch.nn.Module] = []
    start = threading.Barrier(8)

    def request() -> None:
        start.wait()
        results.append(cache.get(key("m"), linear_loader(loads, delay=0.3)))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(results) == 8 and all(result is results[0] for result in results)
    assert cache.load_counts[key("m")] == 1


def test_second_request_reuses_the_loaded_model():
    cache, loads = PipelineCache(), []
    first = cache.get(key("m"), linear_loader(loads))
    second = cache.get(key("m"), linear_loader(loads))
    assert second is first and len(loads) == 1
    assert cache.status()[0]["requests"] == 2


def test_a_failed_load_reaches_every_waiter_and_can_be_retried():
    cache = PipelineCache()

    def broken() -> torch.nn.Module:
        raise PlaygroundError("weights missing")

    with pytest.raises(PlaygroundError, match="weights missing"):
        cache.get(key("m"), broken)
    loads: list[int] = []
    assert isinstance(cache.get(key("m"), linear_loader(loads)), torch.nn.Linear)


def test_memory_is_counted_from_parameters_and_buffers():
    module = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.BatchNorm1d(10))
    expected = sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
    assert memory_bytes(module) == expected


def test_least_recently_used_model_is_evicted_and_its_memory_freed():
    one_model = memory_bytes(torch.nn.Linear(256, 256))
    cache, loads = PipelineCache(budget_bytes=int(one_model * 2.5)), []
    first = cache.get(key("a"), linear_loader(loads))
    first_ref = weakref.ref(first)
    cache.get(key("b"), linear_loader(loads))
    cache.get(key("a"), linear_loader(loads))  # touch a: b is now the least recently used
    del first
    cache.get(key("c"), linear_loader(loads))
    loaded = {row["model"] for row in cache.status()}
    assert loaded == {"a", "c"}
    assert sum(row["memory_mb"] for row in cache.status()) * 2**20 <= cache.budget_bytes
    cache.release(key("a"))
    gc.collect()
    assert first_ref() is None, "a released model must not be kept alive by the cache"


def test_out_of_memory_during_a_load_releases_other_models_and_retries():
    cache, loads = PipelineCache(), []
    cache.get(key("resident"), linear_loader(loads))
    attempts: list[int] = []

    def needs_room() -> torch.nn.Module:
        attempts.append(1)
        if len(attempts) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return torch.nn.Linear(4, 4)

    assert isinstance(cache.get(key("big"), needs_room), torch.nn.Linear)
    assert [row["model"] for row in cache.status()] == ["big"]


def test_service_loads_a_real_model_once_and_reports_it(service):
    name = service.registry.default("language")
    first = service.load("language", name)
    assert service.load("language", name) is first
    row = next(r for r in service.cache.status() if r["model"] == service.registry.get("language", name).source)
    assert row["device"] == "cpu" and row["dtype"] == "float32" and row["memory_mb"] > 0
    assert service.cache.load_counts[service.key(service.registry.get("language", name))] == 1


def test_preload_warms_the_models_a_lesson_needs(test_settings):
    from playground.core.service import ModelService

    service = ModelService(test_settings)
    service.preload(("language", "clip"))
    assert service.is_loaded("language", None) and service.is_loaded("clip", None)
    assert {row["kind"] for row in service.cache.status()} == {"language", "clip"}
