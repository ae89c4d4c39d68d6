"""30 students at once: every request served, no model loaded twice."""

from __future__ import annotations

from bench.load_test import compare_batching, preset_calls, run_load


def test_thirty_concurrent_clients_are_all_served(client, app_url, service, capsys):
    calls = preset_calls()
    assert calls, "the lessons define presets to replay"
    report = run_load(app_url, calls, clients=30, rounds=2)
    with capsys.disabled():
        print(f"\nload test (30 clients x 2 requests over {len(calls)} presets): {report.summary()}")
    assert report.failures == []
    assert report.served == 60
    loaded_twice = {key.source: count for key, count in service.cache.load_counts.items() if count > 1}
    assert loaded_twice == {}


def test_thirty_next_token_requests_share_passes_and_match_the_serialised_run(app_url, service, capsys):
    """The same 30 students' own prompts, one row a pass and then batched, through the whole app."""
    report = compare_batching(app_url, service, service.registry.default("language"), clients=30)
    with capsys.disabled():
        print(f"\nbatching (30 clients, tiny model):\n{report.summary()}")
    (round_,) = report.rounds
    assert round_.serialised.failures == [] and round_.batched.failures == []
    assert round_.serialised.served == round_.batched.served == 30
    assert max(round_.batch_sizes) > 1  # the batcher got concurrent requests: the queue lets enough through
    assert report.loaded_twice == {}
    assert min(round_.model_seconds) > 0  # both runs' model time was measured, for the summary's explanation
