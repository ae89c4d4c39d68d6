"""Requests refused before Gradio reads them, with a clean 4xx instead of what Gradio 6.31 does:

- an upload with more files than `max_files` (Gradio's own cap is 1,000 files per request, fixed in its
  upload route): the count is checked as the form streams in, before the next file is written;
- a call to an event that does not exist (an unknown `fn_index`, or an unknown endpoint name): Gradio looks
  it up with `fns[fn_index]` or by name and answers HTTP 500 with a traceback in the log.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException
from starlette.responses import JSONResponse

# Routes that name an event: by `fn_index` in the JSON body, or by endpoint name in the path (Gradio's API
# prefix, any root path in front). /call/v2 finds its endpoint among the API's listed (non-private) ones.
_EVENT_ROUTES = re.compile(r"/gradio_api/(?:queue/join|(?P<route>call/v2|call|run|api)/(?P<name>[^/]+))/?$")
_UPLOAD_ROUTE = re.compile(r"/gradio_api/upload/?$")

Receive = Callable[[], Any]


class RequestChecks:
    """ASGI middleware (passed to Gradio's FastAPI app through `launch(app_kwargs=...)`)."""

    def __init__(self, app, max_files: int):
        self.app = app
        self.max_files = max_files

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            if _UPLOAD_ROUTE.search(scope["path"]):
                receive = self._counting_files(scope, receive)
            elif event := _EVENT_ROUTES.search(scope["path"]):
                body = await _read_body(receive)
                unknown = _unknown_event(scope, body, event["route"], event["name"])
                if unknown is not None:
                    await JSONResponse({"detail": unknown}, status_code=404)(scope, receive, send)
                    return
                receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _counting_files(self, scope, receive: Receive) -> Receive:
        """`receive`, counting multipart delimiters as the body streams in. Raising Starlette's
        MultiPartException from it makes Gradio's parser delete the files written so far and answer 400."""
        _, _, boundary = Headers(scope=scope).get("content-type", "").partition("boundary=")
        delimiter = b"--" + boundary.strip('"').encode("latin-1")
        if delimiter == b"--":
            return receive
        seen, tail = 0, b""

        async def counting():
            nonlocal seen, tail
            message = await receive()
            if message["type"] == "http.request":
                data = tail + message.get("body", b"")
                seen += data.count(delimiter)  # a delimiter cannot fit in `tail`, so none is counted twice
                tail = data[-(len(delimiter) - 1):]
                if seen > self.max_files + 1:  # one delimiter before each part, one closing the form
                    raise MultiPartException(f"Too many files in one upload: at most {self.max_files}.")
            return message

        return counting


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later: the client's disconnect

    return replay


def _unknown_event(scope, body: bytes, route: str | None, name: str | None) -> str | None:
    """A message when the request names an event this app does not have; None otherwise (Gradio
    validates everything else itself)."""
    fns = scope["app"].get_blocks().fns
    try:
        fn_index = json.loads(body).get("fn_index") if route != "call/v2" else None
    except (ValueError, AttributeError):
        return None  # not a JSON object: Gradio's own validation answers 422
    if isinstance(fn_index, int) and not isinstance(fn_index, bool):
        return None if fn_index in fns else f"This app has no event with fn_index {fn_index}."
    if fn_index is None and name is not None:
        names = {fn.api_name for fn in fns.values() if route != "call/v2" or (fn.fn and fn.api_visibility != "private")}
        return None if name in names else f"This app has no endpoint /{name[:80]}."
    return None
