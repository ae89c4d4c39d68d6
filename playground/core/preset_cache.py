"""A lesson preset is computed once: thirty students clicking "preset 2" cost one computation.

A preset's result depends on its endpoint, its values and the model that computed it. The first request
computes it; every identical one after it (or waiting beside it) gets the stored result. An entry is
valid while the model that computed it is unchanged: the model's cache key (source, device, dtype) and
how many times it has been loaded are part of what an entry remembers, so choosing another model, or the
operator reloading one, computes afresh; a model evicted meanwhile is not reloaded to serve a stored preset.

Why not Gradio's cached examples (`gr.Examples(cache_examples=True / "lazy")`): they cache per example
row, blind to the model dropdown (a preset runs on whichever model is selected), are never invalidated
when a model changes (they persist as files in `.gradio/cached_examples`), eager mode loads every model at
start-up, and they serve only the Examples component's click, not the same request sent through the API,
a deep link or the preset buttons (which also pass through the fair queue). This cache sits under all of
those, in the library.

Only requests equal to a preset (see `tabs.lessons.serve_presets_once`) are stored: what students type
is their own, so the cache stays small. Entries expire after `ttl_seconds`, because some results name
files the server deletes after a while (generated images).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping

# How many files' fingerprints are remembered (presets name a few shipped files).
_FINGERPRINTED_FILES = 64


@dataclass
class _Entry:
    value: Any
    model: Hashable  # the identity of the model that computed it
    stored: float


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(value: Any) -> Hashable:
    """A hashable form of a request value that equal inputs share, however they arrived: 1 and 1.0,
    a table as a DataFrame or as {headers, data}, a file by its content (uploads land at new paths)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ("bool", value)  # True == 1.0 in Python; a checkbox is not a number
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if len(value) < 4096 and value.startswith("/") and Path(value).is_file():
            return ("file", _file_digest(value))
        return value
    if hasattr(value, "columns") and hasattr(value, "values"):  # a pandas DataFrame
        return ("table", tuple(str(c) for c in value.columns), fingerprint(value.values.tolist()))
    if isinstance(value, Mapping):
        if set(value) == {"headers", "data"}:
            return ("table", tuple(str(c) for c in value["headers"]), fingerprint(value["data"]))
        return tuple(sorted((str(k), fingerprint(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(fingerprint(item) for item in value)
    return repr(value)


def merged_updates(yields: Iterable[Any], is_skip: Callable[[Any], bool]) -> Any:
    """What a streaming callback's outputs show at its end: each output's last value that was not a skip."""
    final: list[Any] | None = None
    for item in yields:
        values = list(item) if isinstance(item, (list, tuple)) else [item]
        if final is None:
            final = values
        else:
            final = [old if is_skip(new) else new for old, new in zip(final, values)]
    return final if final is None or len(final) != 1 else final[0]


class PresetCache:
    """Results by (endpoint, preset values), each valid for the model that computed it."""

    def __init__(self, max_entries: int = 256, ttl_seconds: float = 1800):
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self.computations = 0  # how many times a result was computed (the rest were served)
        self.hits = 0
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._computing: dict[Hashable, Future] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _valid(self, key: Hashable, model: Hashable) -> _Entry | None:
        """The stored entry for key if the same model computed it and it has not expired (lock held)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.model != model or time.monotonic() - entry.stored > self.ttl_seconds:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def _claim(self, key: Hashable, model: Callable[[], Hashable]) -> tuple[str, Any]:
        """("hit", value), ("wait", future) or ("compute", future)."""
        with self._lock:
            entry = self._valid(key, model())
            if entry is not None:
                self.hits += 1
                return "hit", entry.value
            pending = self._computing.get(key)
            if pending is not None:
                self.hits += 1
                return "wait", pending
            pending = self._computing[key] = Future()
            self.computations += 1
            return "compute", pending

    def _finish(self, key: Hashable, future: Future, model: Callable[[], Hashable], value: Any = None,
                error: BaseException | None = None) -> None:
        with self._lock:
            del self._computing[key]
            if error is None:
                # The model's identity after computing: a first request loads it, and that load is this one.
                self._entries[key] = _Entry(value, model(), time.monotonic())
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def get(self, key: Hashable, model: Callable[[], Hashable], compute: Callable[[], Any]) -> Any:
        """The stored result for key, or `compute()`'s, computed once however many ask at the same time.
        `model()` says which model would compute it now (see the module's docstring). Errors are not stored."""
        state, item = self._claim(key, model)
        if state == "hit":
            return item
        if state == "wait":
            try:
                return item.result()
            except Exception:  # the first one failed or was stopped: this request runs on its own
                return compute()
        try:
            value = compute()
        except BaseException as error:
            self._finish(key, item, model, error=error)
            raise
        self._finish(key, item, model, value)
        return value

    def stream(self, key: Hashable, model: Callable[[], Hashable], compute: Callable[[], Iterator[Any]],
               final: Callable[[list[Any]], Any]) -> Iterator[Any]:
        """For a streaming result: the first request streams it as it is computed; the others get its end
        (`final` of everything it yielded) once, at once if it is stored."""
        state, item = self._claim(key, model)
        if state == "hit":
            yield item
            return
        if state == "wait":
            try:
                result = item.result()
            except Exception:  # the first one failed or was stopped: this request runs on its own
                yield from compute()
                return
            yield result
            return
        yielded: list[Any] = []
        try:
            for value in compute():
                yielded.append(value)
                yield value
        except BaseException as error:  # a stopped stream (GeneratorExit) is not stored either
            self._finish(key, item, model, error=error if isinstance(error, Exception) else RuntimeError("stopped"))
            raise
        self._finish(key, item, model, final(yielded))
