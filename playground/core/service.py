"""Loads registered models through the one cache, and explains failures in plain words."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Callable

import torch

from playground.core.availability import Availability, availability
from playground.core.cache import CacheKey, PipelineCache
from playground.core.device import dtype_name, pick_device, pick_dtype, total_memory_bytes
from playground.core.errors import ModelUnavailableError, PlaygroundError
from playground.core.preset_cache import PresetCache
from playground.core.loaders import loader_for
from playground.core.registry import ModelSpec, Registry
from playground.core.settings import MODEL_KINDS, Settings, load_settings
from playground.language.step_sessions import StepSessionStore

if TYPE_CHECKING:
    from playground.language.backend import LanguageBackend

log = logging.getLogger("playground")


def _why_unavailable(spec: ModelSpec, error: Exception, offline: bool) -> str:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300].rstrip(" .")
    source = f" ({spec.source})"
    if spec.is_local_path:  # visitors see this: the model's name, not where it lies (the log has the path)
        log.warning("could not load %s from %s: %s", spec.name, spec.source, error)
        for path in {os.path.expanduser(spec.location), spec.location}:
            reason = reason.replace(path, spec.name)
        source = ""
    message = f"Could not load {spec.kind.replace('_', '-')} model '{spec.name}'{source}: {reason}."
    if spec.is_local_path and not os.path.exists(os.path.expanduser(spec.location)):
        return message + " That local path does not exist on the server; check the model settings."
    if offline:
        return message + (
            " The app runs offline (HF_HUB_OFFLINE=1) and this model is not in the local cache: run"
            " `python -m playground.prefetch` while online, or point the registry at a local directory."
        )
    return message + (
        " Check the network, run `python -m playground.prefetch` ahead of time, or point the registry"
        " at a local copy (see README, 'Choosing models')."
    )


class ModelService:
    """What tabs use to get a model: `service.load("language", name)`."""

    def __init__(self, settings: Settings, registry: Registry | None = None, cache: PipelineCache | None = None):
        self.settings = settings
        self.registry = registry or Registry.from_settings(settings)
        self.device = pick_device(settings.device)
        self.dtype = pick_dtype(self.device, settings.dtype)
        budget = int(total_memory_bytes(self.device) * settings.memory_fraction)
        self.cache = cache or PipelineCache(budget_bytes=budget)
        # Local language models compute one request at a time (seeded sampling sets torch's global seed);
        # the tabs hold this while they do, so remote requests can run alongside.
        self.local_turn = threading.Lock()  # not RLock: gradio resumes a generator on other threads
        # Step-by-step sessions hold KV caches between clicks: every visitor's in one store, under one budget.
        limits = settings.limits
        self.step_sessions = StepSessionStore(limits.max_step_sessions_mb * 2**20, limits.step_session_ttl_seconds)
        # Lesson presets are computed once per model; results may name generated files, deleted after their lifetime.
        self.presets = PresetCache(ttl_seconds=limits.upload_lifetime_seconds / 2)

    @classmethod
    def from_environment(cls) -> "ModelService":
        return cls(load_settings())

    def key(self, spec: ModelSpec) -> CacheKey:
        return CacheKey(spec.kind, spec.source, self.device, dtype_name(self.dtype))

    def model_identity(self, name: str) -> tuple:
        """Which loaded model a name means now: its cache key and how many times it has been loaded (a
        result computed by one load is stale after the next). Empty for a name no registry kind has."""
        return tuple((self.key(spec), self.cache.load_counts[self.key(spec)])
                     for kind in MODEL_KINDS for spec in self.registry.specs(kind) if spec.name == name)

    def is_loaded(self, kind: str, name: str | None) -> bool:
        return self.key(self.registry.get(kind, name)) in self.cache

    def availability(self, kind: str, name: str | None) -> Availability:
        """Whether a registered model can load now (one in memory always can); milliseconds, no loading."""
        spec = self.registry.get(kind, name)
        if self.key(spec) in self.cache:
            return Availability(True)
        return availability(spec, self.settings)

    def default_name(self, kind: str) -> str:
        """The kind's default: the first registered model that can load now (the registry's first when none can)."""
        for name in self.registry.names(kind):
            if self.availability(kind, name).loadable:
                return name
        return self.registry.default(kind)

    def load(self, kind: str, name: str | None = None, on_first_load: Callable[[str], None] | None = None) -> Any:
        """The loaded model; `on_first_load` is told before a slow load so the UI can say so. A model that
        cannot load now is refused at once with what is missing and how to get it."""
        if name is None or (isinstance(name, str) and not name.strip()):
            name = self.default_name(kind)
        return self.load_spec(self.registry.get(kind, name), on_first_load)

    def language(self, name: str | None = None,
                 on_first_load: Callable[[str], None] | None = None) -> LanguageBackend:
        """A language model, whichever backend serves it."""
        return self.load("language", name, on_first_load)

    def language_takes_turns(self, name: str | None) -> bool:
        """Whether requests to this language model must run one at a time, known before it is loaded (its
        backend declares it). An unknown name takes a turn; the request itself then reports it."""
        from playground.language.loader import backend_class  # transformers loads with it: on demand

        try:
            return backend_class(self.registry.get("language", name)).takes_turns
        except PlaygroundError:
            return True

    def load_spec(self, spec: ModelSpec, on_first_load: Callable[[str], None] | None = None) -> Any:
        """Load a spec the caller built and validated itself (the tokenizer tab's typed Hub id), through
        the same cache; everything else goes through `load` and the registry."""
        key = self.key(spec)
        if key not in self.cache and spec in self.registry.specs(spec.kind):
            found = availability(spec, self.settings)  # a typed tokenizer id is checked by its loader
            if not found.loadable:
                raise ModelUnavailableError(found.message)
        if on_first_load is not None and key not in self.cache:
            on_first_load(f"Loading {spec.name} (first use; later requests reuse it)…")
        return self.cache.get(key, lambda: self._load(spec))

    def _load(self, spec: ModelSpec) -> Any:
        try:
            return loader_for(spec.kind)(spec, self.device, self.dtype, self.settings)
        except (PlaygroundError, torch.OutOfMemoryError):
            raise
        except Exception as error:  # any library failure becomes a message that says how to fix it
            raise ModelUnavailableError(_why_unavailable(spec, error, self.settings.offline)) from error

    def preload(self, entries: tuple[str, ...]) -> None:
        """Load `kind` or `kind:name` entries ahead of a class (a bare kind means its default)."""
        for entry in entries:
            kind, _, name = entry.partition(":")
            self.load(kind, name or None)
