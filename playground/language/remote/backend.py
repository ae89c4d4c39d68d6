"""A language model behind an OpenAI-compatible inference server (vLLM, TGI, llama.cpp, SGLang): the
`LanguageBackend` whose computing happens elsewhere.

The tokenizer runs here, the weights stay on the server, and the server only ever sees
`/v1/completions` requests with text prompts, which every one of these engines serves. What the API
cannot say (probabilities beyond its top N, beam search) is declared in the capabilities.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Hashable, Iterator, Sequence

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from playground.core import budget, checks
from playground.core.errors import PlaygroundError
from playground.core.knobs import SAMPLING_KNOBS
from playground.core.registry import ModelSpec
from playground.core.settings import Settings
from playground.language.backend import Capabilities
from playground.language.remote import operations
from playground.language.constraints import Constraint
from playground.language.remote.endpoint import RemoteEndpoint
from playground.language.remote.structured import structured_fields
from playground.language.remote.openai_api import Completion, OpenAIClient, RemoteServerError, RetryPolicy, completion_from
from playground.language.results import (
    BatchOutput, Generation, LabelScores, Lens, NextToken, RenderedPrompt, RowOutput, ScoredSamples, SearchResult,
    SweepColumn,
)
from playground.language.sampling import TRANSFORMERS_ORDER
from playground.language.sampling_settings import SamplingSettings
from playground.language.token_text import visible
from playground.language.weights import weights_location

DEFAULT_CONTEXT_LENGTH = 4096


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

    takes_turns: ClassVar[bool] = False  # the server batches concurrent requests: that is what it is for

    @classmethod
    def load(cls, spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings) -> "RemoteLanguageModel":
        """The server's model, with its tokenizer loaded here (prompts are built locally, computed remotely)."""
        endpoint = RemoteEndpoint.parse(spec.source)
        tokenizer_location = weights_location(ModelSpec("language", endpoint.tokenizer, endpoint.tokenizer), settings)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_location, trust_remote_code=False,
                                                  local_files_only=settings.offline)
        limits = settings.limits
        return connect(endpoint, tokenizer, spec.name, limits.remote_timeout_seconds, limits.remote_retries,
                       limits.remote_top_logprobs)

    @property
    def capabilities(self) -> Capabilities:
        names = self.endpoint.kind.knob_names
        return Capabilities(
            full_vocabulary=False, top_n=self.top_logprobs, beam_search=False,
            sampler_order=self.endpoint.kind.order or TRANSFORMERS_ORDER,
            knobs=tuple(knob.name for knob in SAMPLING_KNOBS if knob.name in names or knob.name in ("temperature", "top_p")),
            takes_turns=self.takes_turns, label_scores_exact=False, knobs_after_sampling=False,
            why_not="the OpenAI API", what_it_is="an inference server", computed_by=self.endpoint.kind.label,
        )

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
                 logprobs: int | None, stop: tuple[str, ...], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.endpoint.model, "prompt": prompt, "max_tokens": max_tokens,
                                   **self.sampling_fields(settings or SamplingSettings(temperature=0))}
        if seed is not None:
            payload["seed"] = int(seed)
        if logprobs is not None:
            payload["logprobs"] = logprobs
        if stop:
            payload["stop"] = list(stop)[:4]  # OpenAI's API takes at most four stop strings
        return payload | (extra or {})

    def complete(self, prompt: str, max_tokens: int, settings: SamplingSettings | None = None, *, seed: int | None = None,
                 logprobs: int | None = None, stop: tuple[str, ...] = (), extra: dict[str, Any] | None = None
                 ) -> Completion:
        payload = self._payload(prompt, max_tokens, settings, seed, logprobs, stop, extra)
        return completion_from(self.client.post("/completions", payload), self.endpoint.base_url)

    def stream_text(self, prompt: str, max_tokens: int, settings: SamplingSettings, *, seed: int | None = None,
                    stop: tuple[str, ...] = ()) -> Iterator[str]:
        """The continuation's text, piece by piece as the server writes it."""
        for event in self.client.stream("/completions", self._payload(prompt, max_tokens, settings, seed, None, stop)):
            yield completion_from(event, self.endpoint.base_url).text

    # ---- the LanguageBackend operations, each a request (or requests sent together) to the server

    def render_prompt(self, text: str, use_chat_template: bool) -> RenderedPrompt:
        text = operations.render_prompt(self, text, use_chat_template)
        return RenderedPrompt(text, self._ids(text))

    def render_chat(self, messages: list[dict[str, str]]) -> RenderedPrompt:
        checks.chat_template(self.tokenizer, self.name)
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        operations.check_fits(self, text, 1)
        return RenderedPrompt(text, self._ids(text))

    def _ids(self, text: str) -> torch.Tensor:
        """The ids the server will read (the text is sent as is, so no special tokens are added)."""
        return torch.tensor([self.tokenizer(text, add_special_tokens=False).input_ids], dtype=torch.long)

    def check_sampling(self, settings: SamplingSettings) -> None:
        self.sampling_fields(settings)

    def next_token(self, prompt: RenderedPrompt, settings: SamplingSettings) -> NextToken:
        top = operations.next_top_tokens(self, prompt.text)
        stages = operations.remote_stages(self, top, settings)
        return NextToken(stages, lambda index: visible(top.tokens[index]), 1 - top.returned_mass, len(top.tokens))

    def start_steps(self, identity: Hashable, prompt: RenderedPrompt, seed: int) -> operations.RemoteStepSession:
        return operations.RemoteStepSession(identity, prompt.text, seed)

    def steps_cost(self, session: operations.RemoteStepSession, tokens: int, max_total: int) -> budget.Cost:
        context = len(self.tokenizer(session.prompt, add_special_tokens=False).input_ids) + len(session.steps)
        return budget.generation(context, tokens)

    def advance(self, session: operations.RemoteStepSession, settings: SamplingSettings, tokens: int,
                max_total: int) -> operations.RemoteStepSession:
        return operations.advance_remote(self, session, settings, tokens, max_total)

    def generate(self, prompt: RenderedPrompt, settings: SamplingSettings, max_new_tokens: int,
                 seed: int | None = 0) -> Generation:
        return operations.generate_text(self, prompt.text, settings, max_new_tokens, seed=seed)

    def generate_many(self, prompts: Sequence[RenderedPrompt], settings: SamplingSettings, max_new_tokens: int,
                      samples: int, seed: int, stop: tuple[str, ...] = ()) -> BatchOutput:
        """The rows a local batch gives (samples of a prompt together), from requests sent at once."""
        start = time.perf_counter()
        generations = operations.generate_many(self, [p.text for p in prompts], settings, max_new_tokens, samples,
                                               seed, stop)
        return BatchOutput(tuple(RowOutput(g.text, g.new_tokens, g.seconds) for g in generations),
                           time.perf_counter() - start)

    def stream_many(self, prompts: Sequence[RenderedPrompt], settings: SamplingSettings, max_new_tokens: int,
                    samples: int, seed: int, stop: tuple[str, ...] = ()) -> Iterator[BatchOutput]:
        for snapshot in operations.stream_many(self, [p.text for p in prompts], settings, max_new_tokens, samples,
                                               seed, stop):
            # Token counts once finished: the server's stream does not report them piece by piece.
            rows = tuple(RowOutput(text, len(self.tokenizer(text, add_special_tokens=False).input_ids)
                                   if snapshot.finished else 0, snapshot.seconds) for text in snapshot.texts)
            yield BatchOutput(rows, snapshot.seconds, snapshot.finished)

    def temperature_sweep(self, prompt: RenderedPrompt, base: SamplingSettings, temperatures: list[float],
                          samples: int, max_new_tokens: int, seed: int) -> list[SweepColumn]:
        return operations.remote_temperature_sweep(self, prompt.text, base, temperatures, samples, max_new_tokens, seed)

    def beam_search(self, prompt: RenderedPrompt, beams: int, max_new_tokens: int) -> list[SearchResult]:
        raise self.capabilities.unsupported("Beam search", "pick a local model for this comparison")

    # ---- inside the model: what a server returns (texts and their log-probabilities), not its internals

    def sample_scored(self, prompt: RenderedPrompt, settings: SamplingSettings, max_new_tokens: int, samples: int,
                      seed: int, constraint: Constraint | None = None) -> ScoredSamples:
        extra = structured_fields(self.endpoint.server, constraint) if constraint is not None else None
        return operations.sample_scored(self, prompt.text, settings, max_new_tokens, samples, seed, extra)

    def grammar_stage(self, prompt: RenderedPrompt, settings: SamplingSettings, constraint: Constraint) -> NextToken:
        raise self.capabilities.unsupported(
            "The grammar stage (the tokens the constraint removes from the whole vocabulary)",
            "the samples below use the server's own structured output; pick a local model to see the mask")

    def logit_lens(self, prompt: RenderedPrompt) -> Lens:
        raise self.capabilities.unsupported("The logit lens (each layer's hidden state)",
                                            "pick a local model to look inside it")

    def force_token(self, session: operations.RemoteStepSession, settings: SamplingSettings, text: str,
                    max_total: int) -> operations.RemoteStepSession:
        raise self.capabilities.unsupported("Forcing a token (every step's whole distribution)",
                                            "pick a local model to steer")

    def step_back(self, session: operations.RemoteStepSession) -> operations.RemoteStepSession:
        raise self.capabilities.unsupported("Going back a step", "pick a local model to steer")

    def choose_alternative(self, session: operations.RemoteStepSession, settings: SamplingSettings, step: int,
                           alternative: int, max_total: int) -> operations.RemoteStepSession:
        raise self.capabilities.unsupported("Continuing from an alternative", "pick a local model to steer")

    def score_labels(self, prompts: Sequence[RenderedPrompt],
                     labels_ids: Sequence[Sequence[int]]) -> Iterator[LabelScores]:
        for prompt in prompts:
            yield operations.top_n_label_scores(self, prompt.text, labels_ids)


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
