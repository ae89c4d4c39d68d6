"""Every visitor's step-by-step session in one server-side store, so one memory budget covers them all.

A session keeps what its next step needs: the tokens so far and the model's KV cache. Its owner is a
key (the visitor's session id); the browser holds nothing. The store drops a session when its owner
starts over or leaves, when it has been idle for the time-to-live, and, when all sessions together pass
the memory budget, the least recently used first; the next click of a dropped session's owner is told
to start over.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable

import torch

from playground.core.errors import PlaygroundError

_FORGOTTEN_KEPT = 1_000  # owners of dropped sessions remembered, to tell them why


def tensor_bytes(value: Any) -> int:
    """Bytes of the tensors inside a session (its KV cache's layers, its token ids), counted once each."""
    seen: set[int] = set()
    visited: set[int] = set()
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if id(item) in visited:
            continue
        visited.add(id(item))
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif hasattr(item, "__dict__") and not isinstance(item, (str, bytes, type)):
            stack.extend(vars(item).values())
    return total


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, looked up once: find_library runs `ldconfig -p`, too slow for every visitor who leaves."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc: its allocator returns memory its own way
        return None


def _release_freed_memory() -> None:
    """Hand memory freed by dropped caches back to the system: glibc keeps freed blocks in per-thread
    arenas, so without this a server's memory stays at its peak after the sessions are gone."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class SessionDropped(PlaygroundError):
    """The visitor's session was dropped; the message says why and to start over."""


class StepSessionStore:
    def __init__(self, budget_bytes: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.budget_bytes = budget_bytes
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._sessions: OrderedDict[Hashable, tuple[Any, int, float]] = OrderedDict()  # key -> (session, bytes, used)
        self._forgotten: OrderedDict[Hashable, str] = OrderedDict()  # key -> why its session was dropped
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    @property
    def bytes_held(self) -> int:
        with self._lock:
            return sum(size for _, size, _ in self._sessions.values())

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, key: Hashable) -> Any | None:
        """The owner's session, None if there is none; `SessionDropped` (once) if the store dropped it."""
        self.expire()
        with self._lock:
            why = self._forgotten.pop(key, None)
            if why is not None:
                raise SessionDropped(f"Your step-by-step text was dropped {why}. Press Start over to begin again.")
            entry = self._sessions.get(key)
            return entry[0] if entry else None

    def put(self, key: Hashable, session: Any) -> None:
        """Keep (or update) the owner's session, then drop the least recently used others past the budget."""
        size = tensor_bytes(session)
        dropped = False
        with self._lock:
            self._sessions[key] = (session, size, self.clock())
            self._sessions.move_to_end(key)
            held = sum(entry[1] for entry in self._sessions.values())
            for other in [k for k in self._sessions if k != key]:
                if held <= self.budget_bytes:
                    break
                held -= self._sessions.pop(other)[1]
                self._forget(other, f"to make room for other visitors (this server keeps "
                                    f"{self.budget_bytes / 2**20:,.0f} MB of step-by-step sessions)")
                dropped = True
        if dropped:
            _release_freed_memory()
        self._start_sweeper()

    def drop(self, key: Hashable) -> None:
        """The owner started over or left: free the session now."""
        with self._lock:
            self._forgotten.pop(key, None)
            entry = self._sessions.pop(key, None)
        if entry is not None:  # most visitors who leave never stepped: nothing to hand back
            del entry
            _release_freed_memory()

    def expire(self) -> None:
        """Drop sessions idle for longer than the time-to-live."""
        now = self.clock()
        with self._lock:
            stale = [key for key, (_, _, used) in self._sessions.items() if now - used > self.ttl_seconds]
            for key in stale:
                del self._sessions[key]
                self._forget(key, f"after {self.ttl_seconds / 60:g} minutes without a step")
        if stale:
            _release_freed_memory()

    def _forget(self, key: Hashable, why: str) -> None:
        self._forgotten[key] = why
        while len(self._forgotten) > _FORGOTTEN_KEPT:
            self._forgotten.popitem(last=False)

    def _start_sweeper(self) -> None:
        """Expire idle sessions even when nobody clicks (a class that went home frees its memory)."""
        if self._sweeper is not None and self._sweeper.is_alive():
            return
        store = weakref.ref(self)  # the thread ends once the store is gone
        interval = max(0.05, min(30.0, self.ttl_seconds / 10))

        def sweep() -> None:
            while (alive := store()) is not None and len(alive):
                alive.expire()
                del alive
                time.sleep(interval)

        self._sweeper = threading.Thread(target=sweep, name="step-session-expiry", daemon=True)
        self._sweeper.start()
