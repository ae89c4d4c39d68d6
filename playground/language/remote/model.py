"""A language model behind an OpenAI-compatible inference server (vLLM, TGI, llama.cpp, SGLang).

The tokenizer runs here, the weights stay on the server, and the server only ever sees
`/v1/completions` requests with text prompts, which every one of these engines serves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from transformers import PreTrainedTokenizerBase

from playground.core.errors import PlaygroundError
from playground.language.generation import SamplingSettings
from playground.language.remote.endpoint import RemoteEndpoint
from playground.language.remote.openai_api import OpenAIClient, RemoteServerError, RetryPolicy

DEFAULT_CONTEXT_LENGTH = 4096


@dataclass(frozen=True)
class Completion:
    """One choice of a `/v1/completions` answer, with the per-token log-probabilities when asked for."""

    text: str
    tokens: tuple[str, ...] = ()
    token_logprobs: tuple[float | None, ...] = ()
    top_logprobs: tuple[dict[str, float], ...] = ()
    finish_reason: str = ""
    completion_tokens: int = 0


@dataclass
class RemoteLanguageModel:
    """What the language tabs read from a model (name, tokenizer, chat template, context), plus the
    server that computes. The tokenizer runs here; the weights stay on the server."""

    name: str
    endpoint: RemoteEndpoint
    client: OpenAIClient
    tokenizer: PreTrainedTokenizerBase
    context_length: int = DEFAULT_CONTEXT_LENGTH
    top_logprobs: int = 20
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where prompt ids live

    def torch_modules(self) -> list[torch.nn.Module]:
        return []  # nothing held here but a tokenizer: the cache counts it as free

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def sampling_fields(self, settings: SamplingSettings) -> dict[str, Any]:
        """Request fields that apply exactly these knobs, or a message naming the knob this server lacks."""
        s = settings.validated()
        fields: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p}
        wanted = {"top_k": (s.top_k, 0, "top-k"), "min_p": (s.min_p, 0.0, "min-p"),
                  "repetition_penalty": (s.repetition_penalty, 1.0, "repetition penalty")}
        names = self.endpoint.kind.knob_names
        for knob, (value, off, label) in wanted.items():
            if knob in names:  # always sent: engines' own defaults differ (llama.cpp: top-k 40, min-p 0.05)
                fields[names[knob]] = self.endpoint.kind.top_k_off if knob == "top_k" and value == off else value
            elif value != off:
                raise PlaygroundError(
                    f"{self.endpoint.kind.label} takes no {label} through the OpenAI API: set {label} to its 'off' "
                    f"value ({off:g}) for {self.name}, or pick a local model to see it."
                )
        return fields

    def _payload(self, prompt: str, max_tokens: int, settings: SamplingSettings | None, seed: int | None,
                 logprobs: int | None, stop: tuple[str, ...]) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.endpoint.model, "prompt": prompt, "max_tokens": max_tokens,
                                   **self.sampling_fields(settings or SamplingSettings(temperature=0))}
        if seed is not None:
            payload["seed"] = int(seed)
        if logprobs is not None:
            payload["logprobs"] = logprobs
        if stop:
            payload["stop"] = list(stop)[:4]  # OpenAI's API takes at most four stop strings
        return payload

    def complete(self, prompt: str, max_tokens: int, settings: SamplingSettings | None = None, *, seed: int | None = None,
                 logprobs: int | None = None, stop: tuple[str, ...] = ()) -> Completion:
        payload = self._payload(prompt, max_tokens, settings, seed, logprobs, stop)
        return _completion(self.client.post("/completions", payload), self.endpoint.base_url)

    def stream_text(self, prompt: str, max_tokens: int, settings: SamplingSettings, *, seed: int | None = None,
                    stop: tuple[str, ...] = ()) -> Iterator[str]:
        """The continuation's text, piece by piece as the server writes it."""
        for event in self.client.stream("/completions", self._payload(prompt, max_tokens, settings, seed, None, stop)):
            yield _completion(event, self.endpoint.base_url).text


def _completion(body: Any, where: str) -> Completion:
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


def context_length_from_models(body: Any, model: str) -> int | None:
    """vLLM reports `max_model_len` and llama.cpp `meta.n_ctx_train` in /v1/models; others say nothing."""
    for entry in (body or {}).get("data", []) if isinstance(body, dict) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            meta = entry.get("meta") or {}
            value = entry.get("max_model_len") or meta.get("n_ctx") or meta.get("n_ctx_train")
            return int(value) if value else None
    return None


def connect(endpoint: RemoteEndpoint, tokenizer: PreTrainedTokenizerBase, name: str, timeout_seconds: float,
            retries: int, top_logprobs: int) -> RemoteLanguageModel:
    """Check the server answers and serves `model`, then hand back the model object the tabs use."""
    client = OpenAIClient(endpoint.base_url, os.environ.get(endpoint.api_key_env) or None,
                          RetryPolicy(timeout_seconds=timeout_seconds, retries=retries))
    models = client.get("/models")
    served = [entry.get("id") for entry in models.get("data", []) if isinstance(entry, dict)] if isinstance(models, dict) else []
    if served and endpoint.model not in served:
        raise RemoteServerError(f"The server at {endpoint.base_url} does not serve {endpoint.model!r}; it serves: "
                                f"{', '.join(map(str, served[:10]))}.")
    context = (endpoint.context or context_length_from_models(models, endpoint.model)
               or getattr(tokenizer, "model_max_length", None))
    if not context or context > 1_000_000:  # transformers' "no limit known" is a huge sentinel
        context = DEFAULT_CONTEXT_LENGTH
    return RemoteLanguageModel(name, endpoint, client, tokenizer, int(context), top_logprobs)
