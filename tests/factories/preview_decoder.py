"""A tiny TAESD (`AutoencoderTiny`, diffusers' class for madebyollin/taesd) with random weights: the real
architecture at 8 channels a block and one block a stage, ~18k parameters, saved as a local diffusers
directory so it loads through the registry and cache like an operator's local copy of TAESD."""

from __future__ import annotations

from pathlib import Path

import torch

from playground.core.settings import Settings
from tests.factories import built_once

KIND = "preview_decoder"
NAME = "tiny-taesd-random-v1"


def build(settings: Settings) -> str:
    def write(directory: Path) -> None:
        from diffusers import AutoencoderTiny

        torch.manual_seed(0)
        AutoencoderTiny(encoder_block_out_channels=(8,) * 4, decoder_block_out_channels=(8,) * 4,
                        num_encoder_blocks=(1,) * 4, num_decoder_blocks=(1,) * 4).save_pretrained(directory)

    return str(built_once(NAME, write))
