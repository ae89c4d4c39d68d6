"""A preset is computed once per model: thirty identical clicks cost one computation, a new model recomputes."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from bench.load_test import student_address
from playground.core.lessons import load_lessons
from playground.core.preset_cache import PresetCache, fingerprint
from playground.core.service import ModelService
from tests.conftest import launched_app


def test_thirty_identical_requests_compute_once_and_a_changed_model_computes_again():
    cache, model, calls = PresetCache(), ["model-a", 1], []
    start = threading.Barrier(30)

    def compute():
        calls.append(1)
        threading.Event().wait(0.2)  # the others arrive while it computes
        return f"result of {model[0]}"

    def student(results, index):
        start.wait()
        results[index] = cache.get("preset", lambda: tuple(model), compute)

    results = [None] * 30
    threads = [threading.Thread(target=student, args=(results, i)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and results == ["result of model-a"] * 30
    model[1] = 2  # the same model loaded again (an operator replaced its files): computed afresh
    assert cache.get("preset", lambda: tuple(model), compute) == "result of model-a" and len(calls) == 2
    model[0] = "model-b"
    assert cache.get("preset", lambda: tuple(model), compute) == "result of model-b" and len(calls) == 3


def test_a_failed_computation_is_not_stored():
    cache = PresetCache()
    try:
        cache.get("k", lambda: (), lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    assert cache.get("k", lambda: (), lambda: 7) == 7 and cache.computations == 2


def test_equal_values_share_a_fingerprint_however_they_arrived(tmp_path):
    assert fingerprint(0) == fingerprint(0.0) and fingerprint(True) != fingerprint(1)
    table = {"headers": ["input", "output"], "data": [["a", "b"]]}
    assert fingerprint(pd.DataFrame([["a", "b"]], columns=["input", "output"])) == fingerprint(table)
    first, second = tmp_path / "one.jpg", tmp_path / "two.jpg"
    first.write_bytes(b"same bytes")
    second.write_bytes(b"same bytes")
    assert fingerprint(str(first)) == fingerprint(str(second))  # an upload lands at a new path


@pytest.fixture(scope="module")
def own_app(test_settings):
    """An app with a service of its own: this test loads the model again, which no other test should see."""
    service = ModelService(test_settings)
    with launched_app(service) as url:
        yield url, service


def test_a_preset_over_the_api_is_computed_once_per_model(own_app):
    from gradio_client import Client

    app_url, service = own_app
    greedy = next(p for p in load_lessons()["sampling"].presets if p.id == "greedy")
    clients = [Client(app_url, verbose=False, headers={"X-Forwarded-For": student_address(200 + i)}) for i in range(6)]
    before = service.presets.computations
    jobs = [client.submit(**greedy.values, api_name="/next_token") for client in clients]
    results = [job.result(timeout=300) for job in jobs]
    assert service.presets.computations == before + 1
    assert all(result[0] == results[0][0] for result in results)  # the same chart for everyone

    not_a_preset = dict(greedy.values, prompt="Something nobody else typed")
    clients[0].predict(**not_a_preset, api_name="/next_token")
    clients[0].predict(**not_a_preset, api_name="/next_token")
    assert service.presets.computations == before + 1  # what students type is not stored

    # The model is loaded again (its files might have changed): the preset is computed afresh, once.
    name = service.registry.default("language")
    service.cache.release(service.key(service.registry.get("language", name)))
    service.load("language", name)
    clients[1].predict(**greedy.values, api_name="/next_token")
    clients[2].predict(**greedy.values, api_name="/next_token")
    assert service.presets.computations == before + 2
