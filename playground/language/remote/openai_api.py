"""A small client for the OpenAI-compatible HTTP API that vLLM, TGI, llama.cpp and SGLang serve.

Only what the language tabs need (`/v1/models`, `/v1/completions`), with a timeout per request,
retries with exponential backoff for what retrying can fix (no connection, a timeout, 408/409/429,
502-504), and errors that say in plain words what happened, so a slow or absent server never becomes
a traceback.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterator

import httpx

from playground.core.errors import PlaygroundError

# Not 500: that is the request itself breaking the server (llama-cpp-python answers it after running to the end of its
# context), so a retry fails the same way and holds a one-request-at-a-time server for as long again.
RETRYABLE_STATUS = {408, 409, 429, 502, 503, 504}


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
        problem = self._refusal(response, where)
        if problem is not None:
            return problem
        try:
            return response.json()
        except ValueError:
            raise RemoteServerError(f"The inference server at {where} answered with something that is not JSON.") from None

    def _refusal(self, response: httpx.Response, where: str) -> _Retry | None:
        """None for a success; a retry for what may pass; raises for what will not (bad key, bad request)."""
        if response.status_code < 400:
            return None
        response.read()  # a streamed response's body is only read on demand
        if response.status_code in RETRYABLE_STATUS:
            return _Retry(f"The inference server at {where} is busy or failing "
                          f"(HTTP {response.status_code}: {_server_said(response)})")
        if response.status_code == 500:
            raise RemoteServerError(f"The inference server at {where} failed on this request (HTTP 500: "
                                    f"{_server_said(response)}). Try other text or settings, or pick a local model.")
        if response.status_code in (401, 403):
            raise RemoteServerError(f"The inference server at {where} refused the API key (HTTP "
                                    f"{response.status_code}); set the key's environment variable (see README).")
        raise RemoteServerError(f"The inference server at {where} rejected the request (HTTP "
                                f"{response.status_code}): {_server_said(response)}")

    def stream(self, path: str, payload: dict) -> Iterator[dict]:
        """The events of a streamed request (`"stream": true`, server-sent events), decoded as they come.
        Retried like `post` until the first event; after that a failure is raised, not retried, since a
        second attempt would repeat text the person has already seen."""
        where = f"{self.base_url}{path}"
        delays = self.policy.delays()
        for attempt in range(len(delays) + 1):
            started = False
            try:
                with self._http.stream("POST", path, json={**payload, "stream": True}) as response:
                    problem = self._refusal(response, where)
                    if problem is None:
                        for line in response.iter_lines():
                            data = line.removeprefix("data:").strip() if line.startswith("data:") else ""
                            if data == "[DONE]":
                                return
                            if data:
                                started = True
                                yield json.loads(data)
                        return
            except httpx.TimeoutException:
                problem = _Retry(f"The inference server at {where} did not answer within {self.policy.timeout_seconds:g} s")
            except httpx.TransportError as error:
                problem = _Retry(f"Could not reach the inference server at {where} ({type(error).__name__})")
            except ValueError:
                raise RemoteServerError(f"The inference server at {where} streamed something that is not JSON.") from None
            if started:
                raise RemoteServerError(f"{problem.message} while streaming; the answer above is incomplete.")
            if attempt == len(delays):
                raise RemoteServerError(f"{problem.message} (tried {attempt + 1} times). The other tabs keep "
                                        "working; try again in a moment or pick a local model.")
            time.sleep(delays[attempt])


@dataclass(frozen=True)
class _Retry:
    message: str


@dataclass(frozen=True)
class Completion:
    """One choice of a `/v1/completions` answer, with the per-token log-probabilities when asked for."""

    text: str
    tokens: tuple[str, ...] = ()
    token_logprobs: tuple[float | None, ...] = ()
    top_logprobs: tuple[dict[str, float], ...] = ()
    finish_reason: str = ""
    completion_tokens: int = 0


def completion_from(body: Any, where: str) -> Completion:
    try:
        choice = body["choices"][0]
        logprobs = choice.get("logprobs") or {}
        usage = body.get("usage") or {}
        return Completion(
            text=choice.get("text") or "",
            tokens=tuple(logprobs.get("tokens") or ()),
            token_logprobs=tuple(logprobs.get("token_logprobs") or ()),
            top_logprobs=tuple(top or {} for top in logprobs.get("top_logprobs") or ()),
            finish_reason=choice.get("finish_reason") or "",
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise RemoteServerError(f"The inference server at {where} answered in a shape that is not OpenAI's "
                                "completions format.") from None
