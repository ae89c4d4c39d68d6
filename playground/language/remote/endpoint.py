"""Where a remote language model lives: an OpenAI-compatible server, named by one source string.

An operator registers one as a language-model source (flag, environment or config file):

    openai+http://gpu-box:8000/v1?model=Qwen/Qwen2.5-7B-Instruct&server=vllm

`model` is what the server calls it; `server` (vllm, tgi, llama.cpp, sglang, openai) says which knobs
it accepts beyond OpenAI's own; `tokenizer` (default: `model`, as a Hub id) is loaded here, so prompts
are built, chat templates rendered and lengths checked exactly as for a local model; `api_key_env`
names the environment variable holding the key (default PLAYGROUND_REMOTE_API_KEY); `context` caps
prompt + answer tokens when the server does not report its own limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

from playground.core.errors import PlaygroundError

SCHEME_PREFIX = "openai+"
DEFAULT_API_KEY_ENV = "PLAYGROUND_REMOTE_API_KEY"


@dataclass(frozen=True)
class ServerKind:
    """What one engine accepts on top of OpenAI's temperature/top_p/seed, and in which order it samples."""

    label: str
    knob_names: dict[str, str]  # our knob -> the request field this engine reads
    top_k_off: int = 0
    # The order the engine applies the knobs (the chain view follows it); empty means transformers' order.
    order: tuple[str, ...] = ()


SERVER_KINDS: dict[str, ServerKind] = {
    # llama.cpp's sampler chain: penalties, top-k, typical, top-p, min-p, then temperature last
    # (llama-cpp-python `Llama._init_sampler`), so temperature never changes who survives top-p.
    "llama.cpp": ServerKind("llama.cpp server", {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repeat_penalty"},
                            order=("repetition penalty", "top-k", "top-p", "min-p", "temperature")),
    "vllm": ServerKind("vLLM", {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
                       top_k_off=-1),
    "sglang": ServerKind("SGLang", {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty"},
                         top_k_off=-1),
    "tgi": ServerKind("Hugging Face TGI", {}),
    "openai": ServerKind("an OpenAI-compatible server", {}),
}


@dataclass(frozen=True)
class RemoteEndpoint:
    base_url: str
    model: str
    server: str
    tokenizer: str
    api_key_env: str
    context: int | None = None

    @property
    def kind(self) -> ServerKind:
        return SERVER_KINDS[self.server]

    @property
    def display_name(self) -> str:
        return f"{self.model} @ {urlsplit(self.base_url).netloc} ({self.server})"

    @classmethod
    def parse(cls, source: str) -> "RemoteEndpoint":
        parts = urlsplit(source.removeprefix(SCHEME_PREFIX))
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PlaygroundError(f"A remote model source looks like {SCHEME_PREFIX}http://host:8000/v1?model=NAME; "
                                  f"got {source[:120]!r}.")
        unknown = set(query) - {"model", "server", "tokenizer", "api_key_env", "context"}
        if unknown:
            raise PlaygroundError(f"Unknown remote model setting {sorted(unknown)[0]!r}; "
                                  "known: model, server, tokenizer, api_key_env, context.")
        context = query.get("context")
        if context is not None and not (context.isdigit() and int(context) > 0):
            raise PlaygroundError(f"context must be a whole number of tokens, got {context[:20]!r}.")
        model = query.get("model", "")
        if not model:
            raise PlaygroundError(f"The remote model source {source[:120]!r} needs ?model=<the name the server uses>.")
        server = query.get("server", "openai")
        if server not in SERVER_KINDS:
            raise PlaygroundError(f"Unknown server {server!r}; choose one of: {', '.join(SERVER_KINDS)}.")
        base_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") or "/v1", "", ""))
        return cls(base_url, model, server, query.get("tokenizer", model), query.get("api_key_env", DEFAULT_API_KEY_ENV),
                   int(context) if context else None)


def is_remote_source(source: str) -> bool:
    return source.startswith(SCHEME_PREFIX)
