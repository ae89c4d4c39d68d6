"""A classroom at once: N concurrent gradio_client clients replaying every lesson preset.

    .venv/bin/python -m bench.load_test http://127.0.0.1:7860/ --clients 30 --rounds 3

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

import psutil

from playground.core.lessons import REPO, load_lessons

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
    watcher = threading.Thread(target=_watch_memory, args=(server_pid or psutil.Process().pid, report, stop))
    watcher.start()
    start_together = threading.Barrier(clients)

    def student(index: int) -> None:
        client = Client(url, verbose=False, headers={"X-Forwarded-For": student_address(index)})
        start_together.wait()
        for turn in range(rounds):
            api_name, arguments = calls[(index + turn) % len(calls)]
            began = time.perf_counter()
            try:
                client.submit(**arguments, api_name=api_name).result(timeout=request_timeout)
                with lock:
                    report.served += 1
                    report.latencies.append(time.perf_counter() - began)
            except Exception as error:  # every failure is counted and reported, none stops the run
                with lock:
                    report.failures.append(f"{api_name}: {type(error).__name__}: {str(error)[:200]}")

    began = time.perf_counter()
    threads = [threading.Thread(target=student, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - began
    stop.set()
    watcher.join()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-pid", type=int, help="measure this process's memory (the app's)")
    args = parser.parse_args()
    report = run_load(args.url, preset_calls(), args.clients, args.rounds, args.server_pid)
    print(report.summary())
    for failure in report.failures[:20]:
        print("  FAILED", failure)


if __name__ == "__main__":
    main()
