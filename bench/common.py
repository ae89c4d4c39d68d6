"""Timing helpers for the benchmark scripts: medians of repeated runs, printed as ratios."""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import playground  # noqa: E402,F401  (torchvision fix before any model library loads)


def median_seconds(function: Callable[[], object], repeats: int = 20, warmup: int = 2) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of each, run alternately so that load from other processes hits both alike."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def report(name: str, playground_seconds: float, raw_seconds: float, goal: str = "") -> None:
    ratio = playground_seconds / raw_seconds
    print(f"{name:48} {playground_seconds * 1e3:9.2f} ms / {raw_seconds * 1e3:9.2f} ms = {ratio:5.3f}  {goal}")
