"""Which backend serves a language-model source, and loading it. Adding a backend: its module, and one
entry here (a test on the source string, the backend class)."""

from __future__ import annotations

from typing import Callable

import torch

from playground.core.registry import ModelSpec
from playground.core.settings import Settings
from playground.language.backend import LanguageBackend
from playground.language.local import LocalLanguageModel
from playground.language.remote.backend import RemoteLanguageModel
from playground.language.remote.endpoint import is_remote_source

# The first entry whose test accepts the source serves it; a local transformers model takes the rest.
BACKENDS: tuple[tuple[Callable[[str], bool], type], ...] = (
    (is_remote_source, RemoteLanguageModel),
    (lambda source: True, LocalLanguageModel),
)


def backend_class(spec: ModelSpec) -> type:
    """The class that serves `spec`, known before loading (its `capabilities.takes_turns`, say)."""
    return next(backend for accepts, backend in BACKENDS if accepts(spec.source))


def load_language_model(spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings) -> LanguageBackend:
    return backend_class(spec).load(spec, device, dtype, settings)
