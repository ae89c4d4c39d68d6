"""Models for tests, built from configs with random weights and saved to disk, so that they load
through exactly the registry/cache path a user's local model takes. One module per model kind:
each defines `KIND` and `build(root) -> source` (the registry source string). Built once per
checkout under `.cache/test-models/` and reused."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import tempfile
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
TEST_MODELS = REPO / ".cache" / "test-models"


def built_once(name: str, write: Callable[[Path], None]) -> Path:
    """`TEST_MODELS/name`, written by `write(staging_dir)` the first time only (atomically)."""
    target = TEST_MODELS / name
    if target.exists():
        return target
    TEST_MODELS.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=TEST_MODELS, prefix=f".{name}-"))
    try:
        write(staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def factory_modules():
    return [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
