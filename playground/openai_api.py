"""A small client for the OpenAI-compatible HTTP API that vLLM, TGI, llama.cpp and SGLang serve.

Only what the language tabs need (`/v1/models`, `/v1/completions`), with a timeout per request,
retries with exponential backoff for what retrying can fix (no connection, 429, 5xx), and errors
that say in plain words what happened, so a slow or absent server never becomes a traceback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from playground.errors import PlaygroundError

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class RemoteServerError(PlaygroundError):
    """The inference server could not be reached, was too slow, or refused the request."""


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 60.0
    retries: int = 2  # attempts after the first
    backoff_seconds: float = 0.5  # doubled after each failed attempt

    def delays(self) -> list[float]:
        return [self.backoff_seconds * 2**attempt for attempt in range(self.retries)]


def _server_said(response: httpx.Response) -> str:
    """The error text a server put in its body (OpenAI's {"error": {"message": ...}} or FastAPI's detail)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:300]
    return str(body)[:300]


class OpenAIClient:
    """One server: `client.post("/completions", {...})` returns the decoded JSON or raises `RemoteServerError`."""

    def __init__(self, base_url: str, api_key: str | None, policy: RetryPolicy):
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # One pooled client per server: connections are reused across the requests of a whole class.
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=policy.timeout_seconds,
                                  limits=httpx.Limits(max_connections=64))

    def get(self, path: str) -> Any:
        return self._request("GET", path, None)

    def post(self, path: str, payload: dict) -> Any:
        return self._request("POST", path, payload)

    def _request(self, method: str, path: str, payload: dict | None) -> Any:
        where = f"{self.base_url}{path}"
        delays = self.policy.delays()
        for attempt in range(len(delays) + 1):
            problem = self._attempt(method, path, payload, where)
            if not isinstance(problem, _Retry):
                return problem
            if attempt == len(delays):
                raise RemoteServerError(f"{problem.message} (tried {attempt + 1} times). The other tabs keep "
                                        "working; try again in a moment or pick a local model.")
            time.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _attempt(self, method: str, path: str, payload: dict | None, where: str) -> Any:
        try:
            response = self._http.request(method, path, json=payload)
        except httpx.TimeoutException:
            return _Retry(f"The inference server at {where} did not answer within {self.policy.timeout_seconds:g} s")
        except httpx.TransportError as error:
            return _Retry(f"Could not reach the inference server at {where} ({type(error).__name__}: is it running?)")
        if response.status_code in RETRYABLE_STATUS:
            return _Retry(f"The inference server at {where} is busy or failing "
                          f"(HTTP {response.status_code}: {_server_said(response)})")
        if response.status_code in (401, 403):
            raise RemoteServerError(f"The inference server at {where} refused the API key (HTTP "
                                    f"{response.status_code}); set the key's environment variable (see README).")
        if response.status_code >= 400:
            raise RemoteServerError(f"The inference server at {where} rejected the request (HTTP "
                                    f"{response.status_code}): {_server_said(response)}")
        try:
            return response.json()
        except ValueError:
            raise RemoteServerError(f"The inference server at {where} answered with something that is not JSON.") from None


@dataclass(frozen=True)
class _Retry:
    message: str
