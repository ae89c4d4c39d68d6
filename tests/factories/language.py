"""A tiny Llama (2 layers, width 64, random weights) with SmolLM2's real tokenizer and chat template."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from playground.language.weights import converted_gguf_dir
from playground.core.registry import smollm2_gguf_path
from playground.core.settings import Settings
from tests.factories import built_once

KIND = "language"
NAME = "tiny-llama-random-v1"


def build(settings: Settings) -> str:
    def write(directory: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(converted_gguf_dir(smollm2_gguf_path(), settings))
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    return str(built_once(NAME, write))
