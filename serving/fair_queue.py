"""Who gets into the queue, and with what.

Gradio's queue serves whoever asks first: one visitor once sent 216 joins in 1.3 s, filled it, and every
other visitor was turned away for a minute. Every queued event, from the browser (/queue/join) or the API
(/call), enters through the queue's `push`; `admit_fairly` wraps it so that each visitor (a session, and
the address it comes from) holds a small share of the places, cheap events never wait behind model jobs,
and what JSON cannot carry is dealt with once, before anything reads it: text is made valid Unicode, and a
number input given NaN or Infinity is refused (Gradio's own check failed on them without a message).
What lives in front of the queue (the cap on a request's size and on the sessions Gradio keeps) is in
serving/launch.py.

A visitor's address is `request.client.host` as uvicorn resolves it: the socket's peer, or the
X-Forwarded-For entry named by a proxy uvicorn trusts (FORWARDED_ALLOW_IPS; by default only one on this
machine, so a local nginx works and nobody else can claim an address). On a Space the app trusts the
private networks the host's proxies come from (see app.py), so each visitor counts as themselves.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any

import gradio as gr
from fastapi import HTTPException
from gradio.block_function import BlockFunction
from gradio.server_messages import LogMessage, ProcessCompletedMessage

from playground.core.settings import Limits
from playground.core.user_text import replace_invalid, replaced_note

TOO_MANY_REQUESTS = 429


def client_address(request: Any) -> str:
    client = getattr(request, "client", None)
    return client.host if client is not None else "unknown"


def takes_turns(fn: BlockFunction) -> bool:
    """Model events wait for their slot (a concurrency limit); cheap events run at once."""
    return fn.concurrency_limit is not None


def _refusal(queue: Any, fn: BlockFunction, session: str | None, address: str, limits: Limits,
             answered: weakref.WeakSet) -> str | None:
    """Why this visitor may not add `fn` to the queue now, or None. Counts the jobs of the same kind that
    are waiting or running: Gradio drops an event from `event_ids_to_events` only after its answer went
    out, so an event already answered (`answered`) no longer counts; a visitor who clicks again the
    moment the answer shows is not refused."""
    model = takes_turns(fn)
    by_session = by_address = 0
    for event in list(queue.event_ids_to_events.values()):
        if takes_turns(event.fn) == model and event not in answered:
            by_session += session is not None and event.session_hash == session
            by_address += client_address(event.request) == address
    if not model:
        if by_address >= limits.max_cheap_jobs_per_address:
            return (f"Too many requests at once from your address ({by_address} running); "
                    "wait for them to finish, then try again.")
        return None
    if by_session >= limits.max_model_jobs_per_session:
        return (f"You already have {by_session} model requests waiting or running; this server takes "
                f"{limits.max_model_jobs_per_session} per person at a time so everyone gets a turn. "
                "Wait for one to finish (or stop it), then try again.")
    if by_address >= limits.max_model_jobs_per_address:
        return (f"Your network address already has {by_address} model requests waiting or running; this "
                f"server takes {limits.max_model_jobs_per_address} per address at a time so everyone gets a "
                "turn. Wait for one to finish, then try again.")
    return None


def _non_finite_numbers(fn: BlockFunction, data: list) -> list[dict] | None:
    """Gradio's validation result, one entry per input, when a number input was sent NaN or ±Infinity (a
    browser sends neither); otherwise None."""
    names = [*fn.input_parameter_names, *[None] * len(fn.inputs)]
    results, refused = [], False
    for index, (component, value) in enumerate(zip(fn.inputs, data)):
        bad = isinstance(component, (gr.Number, gr.Slider)) and isinstance(value, float) and not math.isfinite(value)
        refused |= bad
        message = f"{component.label or 'This number'} must be a finite number, not {value}." if bad else ""
        results.append({"__type__": "validate", "is_valid": not bad, "message": message,
                        "parameter_name": names[index] or f"parameter_{index}"})
    return results if refused else None


def _waiting_model_jobs(queue: Any) -> int:
    return sum(len(line.queue) for line in queue.event_queue_per_concurrency_id.values()
               if line.concurrency_limit is not None)


def admit_fairly(demo: gr.Blocks, limits: Limits) -> None:
    """Take over the admission of `demo`'s queue (call after `demo.queue()`)."""
    queue = demo._queue
    # Gradio's own cap counts cheap events too, so a full queue of model jobs turned them away; the
    # caps below replace it and leave cheap events out of it.
    queue.max_size = None
    push, send_message = queue.push, queue.send_message
    answered: weakref.WeakSet = weakref.WeakSet()

    def noting_answers(event: Any, message: Any) -> None:
        if isinstance(message, ProcessCompletedMessage):
            answered.add(event)
        send_message(event, message)

    queue.send_message = noting_answers
    admitting = asyncio.Lock()  # counting and adding happen together, so a burst cannot slip past a cap

    async def fair_push(body: Any, request: Any, username: str | None) -> tuple:
        fn = demo.fns.get(body.fn_index) if isinstance(body.fn_index, int) else None
        if fn is None:
            return await push(body, request, username)  # Gradio reports the unknown event itself
        async with admitting:
            refusal = _refusal(queue, fn, body.session_hash, client_address(request), limits, answered)
            if refusal is not None:
                raise HTTPException(status_code=TOO_MANY_REQUESTS, detail=refusal)
            not_numbers = _non_finite_numbers(fn, body.data) if isinstance(body.data, list) else None
            if not_numbers is not None:
                return False, not_numbers, "validator_error"  # HTTP 422, shown on the inputs concerned
            if takes_turns(fn) and _waiting_model_jobs(queue) >= limits.max_queue_size:
                return False, (f"The server is busy: {limits.max_queue_size} requests are waiting. "
                               "Try again in a minute."), "queue_full"
            body.data, replaced = replace_invalid(body.data)
            body.event_data, replaced_in_event = replace_invalid(body.event_data)
            admitted = await push(body, request, username)
        success, event_id, _ = admitted
        event = queue.event_ids_to_events.get(event_id) if success else None
        if event is not None and replaced + replaced_in_event:
            queue.send_message(event, LogMessage(log=replaced_note(replaced + replaced_in_event),
                                                 level="warning", title="Warning"))
        return admitted

    queue.push = fair_push

