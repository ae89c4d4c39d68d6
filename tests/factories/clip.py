"""The real open_clip ViT-B-32 architecture with random weights, saved as a local checkpoint file.

open_clip's `create_model_and_transforms(name, pretrained=path)` accepts a `.safetensors` file, a
`torch.save`d state dict (optionally under a `state_dict` key) or a TorchScript archive; we write
safetensors, which loads without unpickling anything. The registry source is `ViT-B-32:<file>`, the
same form an operator uses for a real downloaded checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch

from playground.core.settings import Settings
from tests.factories import built_once

KIND = "clip"
ARCHITECTURE = "ViT-B-32"
NAME = "clip-vit-b-32-random-v1"
CHECKPOINT = "open_clip_model.safetensors"


def build(settings: Settings) -> str:
    def write(directory: Path) -> None:
        import open_clip
        from safetensors.torch import save_file

        torch.manual_seed(0)
        model = open_clip.create_model(ARCHITECTURE, pretrained=None)
        save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, directory / CHECKPOINT)

    return f"{ARCHITECTURE}:{built_once(NAME, write) / CHECKPOINT}"
