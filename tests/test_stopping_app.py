"""Stopped work stops, through the running app on loopback: a temperature sweep cancelled through Gradio's
cancel route, or whose client disconnects, frees the model within about one model call, and the next
visitor's request starts at once; a step session's memory is freed on Start over and when its page closes."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from gradio_client import Client

from tests.hostile import default_arguments

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
# About a minute of work on two CPU cores (6 temperatures x 16 samples x 64 tokens), within the budget.
LONG_SWEEP = dict(model=SMOLLM2, prompt="word " * 300, temperatures="0.5, 0.7, 0.9, 1.1, 1.3, 1.5", samples=16,
                  tokens=64, seed=0)
BOUND_SECONDS = 15  # detecting the stop, one decoding step of the sweep, then the next request itself


def wait_for(condition, seconds: float) -> float:
    """Seconds until `condition()` held (fails after `seconds`)."""
    start = time.perf_counter()
    while not condition():
        assert time.perf_counter() - start < seconds, "timed out"
        time.sleep(0.02)
    return time.perf_counter() - start


def model_busy(service) -> bool:
    """Whether the model's batcher is running anyone's work (the sweep's, here)."""
    return service.language(SMOLLM2).batcher.busy


def next_request_seconds(app_url: str) -> float:
    """How long another visitor's next-token request takes from now."""
    start = time.perf_counter()
    Client(app_url, verbose=False).predict(model=SMOLLM2, prompt="The capital of France is", api_name="/next_token")
    return time.perf_counter() - start


def check_the_model_is_freed(app_url: str, service, alone_seconds: float, stopped: float, how: str, capsys) -> None:
    """The stopped sweep's work ends within the bound, and the next visitor's request then takes its usual time."""
    freed = wait_for(lambda: not model_busy(service), 120)
    after = next_request_seconds(app_url)
    with capsys.disabled():
        print(f"\n{how}: the sweep's work ended {freed:.2f} s later; the next request took {after:.2f} s "
              f"(alone: {alone_seconds:.2f} s), done {time.perf_counter() - stopped:.2f} s after the stop")
    assert freed < BOUND_SECONDS and after < alone_seconds + BOUND_SECONDS


@pytest.fixture(scope="module")
def alone_seconds(app_url, client) -> float:
    next_request_seconds(app_url)  # loads the model
    return min(next_request_seconds(app_url) for _ in range(2))


def test_a_cancelled_sweep_frees_the_model_within_a_model_call(app_url, client, service, alone_seconds, capsys):
    job = client.submit(**LONG_SWEEP, api_name="/sweep")
    wait_for(lambda: model_busy(service), 120)  # the sweep holds the model
    time.sleep(2)  # past the prompt, into the decoding steps
    cancelled = time.perf_counter()
    job.cancel()  # Gradio's /cancel route, as the Stop button sends it
    check_the_model_is_freed(app_url, service, alone_seconds, cancelled, "cancel", capsys)


def test_a_sweep_whose_client_left_frees_the_model_within_a_model_call(app_url, client, service, alone_seconds,
                                                                       capsys):
    arguments = {**default_arguments(client, "/sweep"), **LONG_SWEEP}
    with httpx.Client(base_url=app_url, timeout=120) as http:
        event = http.post("gradio_api/call/sweep", json={"data": list(arguments.values())})
        assert event.status_code == 200, event.text
        with http.stream("GET", f"gradio_api/call/sweep/{event.json()['event_id']}"):
            wait_for(lambda: model_busy(service), 120)
            time.sleep(2)
        left = time.perf_counter()  # the stream is closed: the client is gone (Gradio notices within a heartbeat)
    check_the_model_is_freed(app_url, service, alone_seconds, left, "disconnect", capsys)


def test_a_step_session_is_freed_on_start_over_and_when_its_page_closes(app_url, service):
    store = service.step_sessions
    visitor = Client(app_url, verbose=False)
    visitor.predict(prompt="word " * 200, tokens=3, api_name="/generate_steps")
    assert store.get(visitor.session_hash) is not None and store.bytes_held > 0
    visitor.predict(api_name="/start_over")
    assert store.get(visitor.session_hash) is None

    visitor.predict(prompt="word " * 200, tokens=3, api_name="/generate_steps")
    assert store.get(visitor.session_hash) is not None
    with httpx.Client(base_url=app_url, timeout=30) as http:  # the page's keep-alive connection, then it closes
        with http.stream("GET", f"gradio_api/heartbeat/{visitor.session_hash}") as alive:
            assert next(alive.iter_lines()) == "data: ALIVE"
    wait_for(lambda: store.get(visitor.session_hash) is None, 20)


def test_an_over_budget_request_is_refused_with_what_to_lower(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="This sweep would need .* tokens held in memory at once.*Try fewer"):
        client.predict(model=SMOLLM2, prompt="word " * 1590, temperatures="1", samples=16, tokens=64,
                       api_name="/sweep")
    assert json.dumps(client.predict(prompt="Hi", api_name="/next_token")[1])  # still serving
