"""A cap on the size of one request, applied before anything reads its body.

Unbounded, 100 requests of 10 MB of text, each with a new session id, took a server from 2.1 to 3.3 GB:
Gradio keeps every session's inputs. Uploads are left to Gradio's own `max_file_size`.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TOO_LARGE = 413
UPLOAD_ROUTE = "/upload"


class _TooLarge(HTTPException):
    """Raised while a body is read past the cap. FastAPI hands an HTTPException raised in its body parsing
    to its handler (a 413); raised in a middleware that reads the body itself, it reaches RequestSizeLimit."""


class RequestSizeLimit:
    """ASGI middleware: a request body over `max_bytes` is refused with 413 and a clear message (a declared
    length at once, unread; a chunked body as soon as it passes the cap). Put it outside every middleware
    that reads bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: int | None) -> str:
        sent = f" ({size / 1e6:.1f} MB)" if size is not None else ""
        return (f"This request is too large{sent}: the server takes up to {self.max_bytes / 1e6:.1f} MB in one "
                "request. Send less text.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith(UPLOAD_ROUTE):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, self._message(int(declared)))
            return
        received, started = 0, False

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge(status_code=CONTENT_TOO_LARGE, detail=self._message(None))
            return message

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_noting_start)
        except _TooLarge as refusal:
            if started:
                raise
            await self._refuse(scope, receive, send, refusal.detail)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
        await JSONResponse({"detail": message}, status_code=CONTENT_TOO_LARGE)(scope, receive, send)
