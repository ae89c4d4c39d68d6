"""30 students at once: every request served, no model loaded twice."""

from __future__ import annotations

from bench.load_test import preset_calls, run_load


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
