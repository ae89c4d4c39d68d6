"""CLIP models through open_clip: a pretrained tag from the Hub, or a local checkpoint file."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

import torch

from playground.core.registry import ModelSpec
from playground.core.settings import Settings
from playground.core.torchvision_compat import ensure_torchvision_importable


class LabelEmbeddingCache:
    """Normalised text embeddings of labels, least recently used dropped first.

    It lives on the loaded model (a `ClipModel`), so the model cache that owns the model owns this
    too: evicting the model frees its embeddings, and no embedding outlives the weights it came from.
    """

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def lookup(self, keys: list[Hashable]) -> dict[Hashable, torch.Tensor]:
        """The cached embeddings among `keys` (marking them recently used)."""
        found = {}
        with self._lock:
            for key in keys:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    found[key] = self._entries[key]
            self.hits += len(found)
            self.misses += len(set(keys)) - len(found)
        return found

    def store(self, entries: dict[Hashable, torch.Tensor]) -> None:
        with self._lock:
            for key, embedding in entries.items():
                self._entries[key] = embedding
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class ClipModel:
    name: str
    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]
    tokenizer: Callable[[list[str]], torch.Tensor]
    device: torch.device
    label_embeddings: LabelEmbeddingCache = field(default_factory=LabelEmbeddingCache)

    def torch_modules(self) -> list[torch.nn.Module]:
        return [self.model]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def learned_logit_scale(self) -> float:
        """exp(logit_scale): what the model multiplies cosine similarities by before the softmax."""
        return float(self.model.logit_scale.detach().exp().reshape(-1)[0])


def parse_clip_source(source: str) -> tuple[str, str | None]:
    """`ARCHITECTURE:WEIGHTS` (a pretrained tag or a checkpoint path), or an `hf-hub:` id."""
    if source.startswith("hf-hub:"):
        return source, None
    architecture, _, weights = source.partition(":")
    return architecture, weights or None


def load_clip_model(spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings) -> ClipModel:
    ensure_torchvision_importable()
    import open_clip

    architecture, weights = parse_clip_source(spec.source)
    precision = "fp16" if dtype == torch.float16 else "bf16" if dtype == torch.bfloat16 else "fp32"
    # require_pretrained: a source that names no weights must fail, not serve a random model.
    model, _, preprocess = open_clip.create_model_and_transforms(
        architecture, pretrained=weights, device=device, precision=precision, require_pretrained=True
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(architecture)
    return ClipModel(spec.name, model, preprocess, tokenizer, torch.device(device))
