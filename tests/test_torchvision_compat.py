"""torchvision, open_clip and transformers' image code import on a CPU-only torch."""

from __future__ import annotations

import pytest
import torch

from playground.core import torchvision_compat


def test_vision_libraries_import():
    import open_clip  # noqa: F401
    import torchvision.transforms  # noqa: F401
    from transformers import AutoImageProcessor, CLIPImageProcessor  # noqa: F401


def brute_force_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    def iou(a, b) -> float:
        width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = width * height
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    keep: list[int] = []
    for index in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(iou(boxes[index].tolist(), boxes[k].tolist()) <= threshold for k in keep):
            keep.append(index)
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_fallback_nms_matches_the_definition(seed):
    generator = torch.Generator().manual_seed(seed)
    corners = torch.rand(40, 2, generator=generator) * 100
    boxes = torch.cat([corners, corners + 5 + torch.rand(40, 2, generator=generator) * 30], dim=1)
    scores = torch.rand(40, generator=generator)
    assert torchvision_compat.nms(boxes, scores, 0.4).tolist() == brute_force_nms(boxes, scores, 0.4)


def test_fallback_is_registered_only_when_native_ops_fail():
    if torchvision_compat._native_ops_load():
        assert not torchvision_compat._fallback_installed
    else:
        assert torchvision_compat._fallback_installed
        boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
        assert torch.ops.torchvision.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
