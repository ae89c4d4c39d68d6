"""A classroom at once: N concurrent gradio_client clients replaying every lesson preset, or asking for the
next token of their own prompts with the batcher on and off.

    .venv/bin/python -m bench.load_test http://127.0.0.1:7860/ --clients 30 --rounds 3
    .venv/bin/python -m bench.load_test --batching   # starts the app here on SmolLM2 and compares, in one run

`--batching` sends each of 30 students' own next-token request (one prompt each, so the preset cache does not
answer them) to one app, first with the local model's batcher held to one row a pass (serialised), then
batching, `--rounds` times: throughput batched / serialised (the median round's), p50/p95 of each, the time
inside the model's passes (the rest is the app's), the app's peak memory, and that no model was loaded twice.
Each client first opens its page (a cheap event), as a student's browser has before the class clicks.

Loopback only: it refuses any host that is not this machine. Bounded: every request has a timeout
and the run stops after clients x rounds requests.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil

from playground.core.lessons import REPO, load_lessons

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# A student's page is open before the class clicks: a browser's page load runs an event, which makes Gradio
# build the visitor's session state (a copy of every block's config, ~50 ms for this app's 500-odd blocks, on
# the server's event loop). Each client does the same with a cheap event before the timed requests.
OPEN_PAGE = ("/cot_problem", {"value": 1})


@dataclass
class LoadReport:
    served: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    seconds: float = 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")

    def summary(self) -> str:
        return (
            f"{self.served} requests served, {len(self.failures)} failures in {self.seconds:.1f} s; "
            f"latency p50 {self.percentile(0.5):.2f} s, p95 {self.percentile(0.95):.2f} s, "
            f"mean {statistics.fmean(self.latencies) if self.latencies else float('nan'):.2f} s; "
            f"peak server memory {self.peak_rss_mb:,.0f} MB"
        )


def client_arguments(values: dict[str, Any]) -> dict[str, Any]:
    """Preset values as gradio_client sends them: files are uploaded."""
    from gradio_client import handle_file

    return {name: handle_file(value) if isinstance(value, str) and value.startswith(str(REPO)) else value
            for name, value in values.items()}


def preset_calls() -> list[tuple[str, dict[str, Any]]]:
    """One valid request per lesson preset: (api_name, arguments by parameter name)."""
    return [(preset.endpoint, client_arguments(dict(preset.values)))
            for lesson in load_lessons().values() for preset in lesson.presets]


def _watch_memory(pid: int, report: LoadReport, stop: threading.Event) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        report.peak_rss_mb = max(report.peak_rss_mb, process.memory_info().rss / 2**20)
        stop.wait(0.2)


def student_address(index: int) -> str:
    """Student `index`'s own network address (a documentation range). A room is many machines, and the
    server's fair share caps jobs per address; over loopback, X-Forwarded-For says whose request it is
    (uvicorn trusts it from this machine only)."""
    return f"198.51.{100 + index // 250}.{index % 250 + 1}"


def run_load(url: str, calls: list[tuple[str, dict]], clients: int = 30, rounds: int = 3,
             server_pid: int | None = None, request_timeout: float = 300) -> LoadReport:
    from gradio_client import Client

    if urlparse(url).hostname not in LOOPBACK:
        raise SystemExit("The load test only targets a server on this machine (loopback).")
    report, lock, stop = LoadReport(), threading.Lock(), threading.Event()
    # One TLS context for every client, the one httpx would build: gradio_client opens an httpx client per
    # request, and each would load the CA bundle again (~40 ms of the load generator's CPU per request)
    tls = httpx.create_ssl_context()
    watcher = threading.Thread(target=_watch_memory, args=(server_pid or psutil.Process().pid, report, stop))
    watcher.start()
    began: list[float] = []  # when every student is connected: connecting is not serving, so it is not timed
    start_together = threading.Barrier(clients, action=lambda: began.append(time.perf_counter()))

    def student(index: int) -> None:
        client = None
        for attempt in range(3):  # a busy server may answer a page's first requests slowly: try again
            try:
                client = Client(url, verbose=False, headers={"X-Forwarded-For": student_address(index)},
                                ssl_verify=tls)  # passed on to httpx's `verify`, which takes a context
                client.predict(**OPEN_PAGE[1], api_name=OPEN_PAGE[0])
                break
            except Exception as error:  # counted; the others must not wait at the start for this one
                if attempt == 2:
                    with lock:
                        report.failures.append(f"connecting: {type(error).__name__}: {str(error)[:200]}")
        start_together.wait()
        if client is None:
            return
        for turn in range(rounds):
            api_name, arguments = calls[(index + turn) % len(calls)]
            sent = time.perf_counter()
            try:
                client.submit(**arguments, api_name=api_name).result(timeout=request_timeout)
                with lock:
                    report.served += 1
                    report.latencies.append(time.perf_counter() - sent)
            except Exception as error:  # every failure is counted and reported, none stops the run
                with lock:
                    report.failures.append(f"{api_name}: {type(error).__name__}: {str(error)[:200]}")

    threads = [threading.Thread(target=student, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - began[0]
    stop.set()
    watcher.join()
    return report


def own_prompt_calls(clients: int) -> list[tuple[str, dict[str, Any]]]:
    """One next-token request per student, each with a prompt of their own (the first preset's knobs)."""
    preset = next(p for lesson in load_lessons().values() for p in lesson.presets if p.endpoint == "/next_token")
    return [("/next_token", dict(preset.values, prompt=f"{preset.values['prompt']} (student {i}: {i * 7 % 13})"))
            for i in range(clients)]


@dataclass
class BatchingRound:
    """The same requests serialised, then batched."""

    serialised: LoadReport
    batched: LoadReport
    batch_sizes: list[int]
    model_seconds: tuple[float, float]  # (serialised, batched): time inside the model's passes

    @property
    def speedup(self) -> float:
        """Throughput batched / serialised (the same requests, so the ratio of their wall times)."""
        return self.serialised.seconds / self.batched.seconds

    @property
    def model_speedup(self) -> float:
        return self.model_seconds[0] / max(self.model_seconds[1], 1e-9)

    def summary(self) -> str:
        return (f"serialised: {self.serialised.summary()}\nbatched:    {self.batched.summary()}\n"
                f"throughput batched / serialised = {self.speedup:.2f} (batched wall time "
                f"{1 / self.speedup:.2f} of serialised); largest batch {max(self.batch_sizes, default=0)} rows; "
                f"time in the model's passes: serialised {self.model_seconds[0]:.2f} s, batched "
                f"{self.model_seconds[1]:.2f} s (model speed-up {self.model_speedup:.2f})")


@dataclass
class BatchingReport:
    rounds: list[BatchingRound]
    loaded_twice: dict[str, int]

    @property
    def speedup(self) -> float:
        """The median round's throughput ratio: a 2-core machine running its own clients varies run to run."""
        return statistics.median(round_.speedup for round_ in self.rounds)

    def summary(self) -> str:
        speedups = [round_.speedup for round_ in self.rounds]
        return "\n".join(
            [f"round {number}:\n{round_.summary()}" for number, round_ in enumerate(self.rounds, 1)]
            + [f"median throughput batched / serialised over {len(self.rounds)} rounds = {self.speedup:.2f} "
               f"(range {min(speedups):.2f}-{max(speedups):.2f}); median model speed-up "
               f"{statistics.median(round_.model_speedup for round_ in self.rounds):.2f}: the rest of each wall time is "
               f"the app's own work (queue, HTTP, JSON, views), which batching does not shorten; models loaded "
               f"again during the runs: {self.loaded_twice or 'none'}"])


def compare_batching(url: str, service: Any, model: str, clients: int = 30, rounds: int = 1,
                     request_timeout: float = 300) -> BatchingReport:
    """The same `clients` next-token requests against one app (in this process), serialised then batched,
    `rounds` times."""
    calls = [(api, dict(arguments, model=model)) for api, arguments in own_prompt_calls(clients)]
    batcher = service.load("language", model).batcher
    loads_before = dict(service.cache.load_counts)
    rows, results = batcher.max_rows, []
    try:
        for _ in range(rounds):
            batcher.max_rows = 1  # one row a pass: what the app did before batching, through the same queue
            model_before = batcher.stats.model_seconds
            serialised = run_load(url, calls, clients, 1, request_timeout=request_timeout)
            batcher.max_rows = max(rows, clients)
            sizes_before, model_between = len(batcher.stats.sizes), batcher.stats.model_seconds
            batched = run_load(url, calls, clients, 1, request_timeout=request_timeout)
            model_seconds = (model_between - model_before, batcher.stats.model_seconds - model_between)
            results.append(BatchingRound(serialised, batched, batcher.stats.sizes[sizes_before:], model_seconds))
    finally:
        batcher.max_rows = rows
    loaded_twice = {key.source: count - loads_before.get(key, 0) for key, count in service.cache.load_counts.items()
                    if count - loads_before.get(key, 0) > 0}  # loaded at all during the runs: once is too many
    return BatchingReport(results, loaded_twice)


def serve_and_compare(language_model: str, clients: int, rounds: int) -> BatchingReport:
    """Start the app here on one local language model and compare, so its batcher and cache can be read."""
    from dataclasses import replace

    from app import build_app
    from playground.core.service import ModelService
    from playground.core.settings import load_settings
    from serving import launch_options

    settings = load_settings(overrides={"models": {"language": [language_model]}})
    settings = replace(settings, limits=replace(settings.limits, max_batch_rows=max(clients, settings.limits.max_batch_rows)))
    service = ModelService(settings)
    model = service.registry.default("language")
    service.load("language", model)
    demo = build_app(service)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True,
                            **launch_options(settings.limits))
    try:
        return compare_batching(url, service, model, clients, rounds)
    finally:
        demo.close()


def main() -> None:
    from playground.core.registry import SMOLLM2_SOURCE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?")
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-pid", type=int, help="measure this process's memory (the app's)")
    parser.add_argument("--batching", action="store_true", help="start the app here; next token serialised vs batched")
    parser.add_argument("--language-model", default=SMOLLM2_SOURCE, help="with --batching: the local model's source")
    args = parser.parse_args()
    if args.batching:
        report = serve_and_compare(args.language_model, args.clients, args.rounds)
        print(report.summary())
        failures = [failure for round_ in report.rounds for failure in round_.serialised.failures + round_.batched.failures]
    else:
        if not args.url:
            parser.error("give the app's URL, or --batching")
        report = run_load(args.url, preset_calls(), args.clients, args.rounds, args.server_pid)
        print(report.summary())
        failures = report.failures
    for failure in failures[:20]:
        print("  FAILED", failure)


if __name__ == "__main__":
    main()
