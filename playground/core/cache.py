"""The one owner of loaded models.

Each model is loaded once per key (kind, source, device, dtype): concurrent first requests wait for
a single load. Loaded models stay until the memory budget is exceeded, then the least recently used
ones are released. Nothing else in the app keeps a model in a global.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter, OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

import torch


class CacheKey(NamedTuple):
    kind: str
    source: str
    device: str
    dtype: str


@dataclass
class CacheEntry:
    key: CacheKey
    value: Any
    memory_bytes: int
    load_seconds: float
    last_used: float
    hits: int = 0


def modules_of(value: Any) -> Iterable[torch.nn.Module]:
    """The torch modules a cached value holds: itself, its `modules()` list, or its components."""
    if isinstance(value, torch.nn.Module):
        yield value
    elif hasattr(value, "torch_modules"):
        yield from value.torch_modules()
    elif hasattr(value, "components"):  # a diffusers pipeline
        yield from (c for c in value.components.values() if isinstance(c, torch.nn.Module))


def memory_bytes(value: Any) -> int:
    """Bytes held by the value's parameters and buffers, each storage counted once."""
    seen: set[int] = set()
    total = 0
    for module in modules_of(value):
        for tensor in (*module.parameters(), *module.buffers()):
            pointer = tensor.untyped_storage().data_ptr()
            if pointer not in seen:
                seen.add(pointer)
                total += tensor.untyped_storage().nbytes()
    return total


def _free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class PipelineCache:
    def __init__(self, budget_bytes: int | None = None):
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[CacheKey, CacheEntry] = OrderedDict()
        self._loading: dict[CacheKey, Future] = {}
        self._lock = threading.Lock()
        self.load_counts: Counter[CacheKey] = Counter()

    def __contains__(self, key: CacheKey) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: CacheKey, loader: Callable[[], Any]) -> Any:
        """The cached value for key, loading it with `loader` once if absent."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.hits += 1
                entry.last_used = time.time()
                self._entries.move_to_end(key)
                return entry.value
            pending = self._loading.get(key)
            if pending is None:
                pending = self._loading[key] = Future()
                owner = True
            else:
                owner = False
        if not owner:
            return pending.result()  # re-raises the loader's error for every waiter
        try:
            value, seconds = self._load(loader)
        except BaseException as error:
            with self._lock:
                del self._loading[key]
            pending.set_exception(error)
            raise
        with self._lock:
            self._entries[key] = CacheEntry(key, value, memory_bytes(value), seconds, time.time())
            self.load_counts[key] += 1
            del self._loading[key]
            evicted = self._evict_over_budget(keep=key)
        pending.set_result(value)
        if evicted:
            del evicted
            _free_device_memory()
        return value

    def _load(self, loader: Callable[[], Any]) -> tuple[Any, float]:
        start = time.perf_counter()
        try:
            value = loader()
        except torch.OutOfMemoryError:
            # Make room by releasing every other model, then try once more.
            self.clear()
            start = time.perf_counter()
            value = loader()
        return value, time.perf_counter() - start

    def _evict_over_budget(self, keep: CacheKey) -> list[CacheEntry]:
        """Drop least recently used entries until the total fits the budget (caller holds the lock)."""
        evicted: list[CacheEntry] = []
        if self.budget_bytes is None:
            return evicted
        while sum(e.memory_bytes for e in self._entries.values()) > self.budget_bytes:
            oldest = next((k for k in self._entries if k != keep), None)
            if oldest is None:
                break
            evicted.append(self._entries.pop(oldest))
        return evicted

    def release(self, key: CacheKey) -> bool:
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None:
            return False
        del entry
        _free_device_memory()
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        _free_device_memory()

    def status(self) -> list[dict[str, Any]]:
        """One row per loaded model, most recently used first."""
        now = time.time()
        with self._lock:
            entries = list(reversed(self._entries.values()))
        return [
            {
                "kind": e.key.kind,
                "model": e.key.source,
                "device": e.key.device,
                "dtype": e.key.dtype,
                "memory_mb": round(e.memory_bytes / 2**20, 1),
                "load_s": round(e.load_seconds, 2),
                "requests": e.hits + 1,
                "idle_s": round(now - e.last_used, 1),
            }
            for e in entries
        ]
