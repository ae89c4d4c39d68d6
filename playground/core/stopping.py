"""Work nobody waits for stops: between model calls, a request's loops ask whether it is still wanted.

The app says how to tell for the request it is serving (`watching`: the person has not pressed Stop and
is still connected); the library only asks (`check_wanted`), so it never needs to know about Gradio.
Outside a request (tests, benches, scripts) all work is wanted.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import torch
from transformers import StoppingCriteria

from playground.core.errors import PlaygroundError

T = TypeVar("T")
_still_wanted: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar("still_wanted", default=None)


class Stopped(PlaygroundError):
    """The request was stopped or its client left; its work ended at the next model call."""


def still_wanted() -> bool:
    wanted = _still_wanted.get()
    return wanted is None or wanted()


def check_wanted() -> None:
    """Raise `Stopped` if nobody waits for this request any more: called between model calls."""
    if not still_wanted():
        raise Stopped("Stopped: this request was cancelled or its page was closed, so its work ended early.")


@contextmanager
def watching(wanted: Callable[[], bool] | None) -> Iterator[None]:
    """Inside this block, `check_wanted` asks `wanted()`."""
    token = _still_wanted.set(wanted)
    try:
        yield
    finally:
        _still_wanted.reset(token)


def watched(items: Iterator[T], wanted: Callable[[], bool] | None) -> Iterator[T]:
    """A generator's items, each computed inside `watching(wanted)`. (A context variable set inside a
    generator does not survive a `yield`, and a server may resume the generator on another thread.)"""
    try:
        while True:
            with watching(wanted):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item
    finally:
        with watching(wanted):
            items.close()


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread running `target` in a copy of this context, so its loops ask the same question."""
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), name=name, daemon=True)
    thread.start()
    return thread


class StopWhenUnwanted(StoppingCriteria):
    """For `model.generate`: checks after every step and ends the call with `Stopped` when unwanted."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        check_wanted()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
