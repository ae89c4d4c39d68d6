"""Make `import torchvision` work with a CPU-only torch.

PyPI's torchvision 0.28.0 (the release that matches torch 2.13.0) ships one binary, built against
CUDA: its `_C.so` needs `libtorch_cuda.so`. With the CPU torch that library cannot load, and
torchvision's import then dies registering fake kernels for `torchvision::nms`/`qnms`, ops that
were never defined. We check whether torchvision's own library loads; only when it does not, we
define those two ops with a pure-PyTorch CPU implementation so the import (and open_clip, timm,
and transformers' image processors above it) proceeds. Everything open_clip uses (transforms,
models) is pure Python on top of torch; on a CUDA machine the real library loads and this module
does nothing.
"""

from __future__ import annotations

import importlib.util
import os

import torch

_fallback_installed = False


def _native_ops_load() -> bool:
    """Whether torchvision is absent or its compiled ops load (nothing to fix then)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True
    library = os.path.join(os.path.dirname(spec.origin), "_C.so")
    if not os.path.exists(library):
        return False
    try:
        torch.ops.load_library(library)
    except OSError:
        return False
    return True


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; same contract as `torchvision.ops.nms`."""
    order = scores.argsort(descending=True)
    x1, y1, x2, y2 = boxes.unbind(dim=1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    keep: list[int] = []
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for index in order.tolist():
        if suppressed[index]:
            continue
        keep.append(index)
        width = (torch.minimum(x2[index], x2) - torch.maximum(x1[index], x1)).clamp(min=0)
        height = (torch.minimum(y2[index], y2) - torch.maximum(y1[index], y1)).clamp(min=0)
        intersection = width * height
        iou = intersection / (areas[index] + areas - intersection)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def _define_fallback_ops() -> None:
    library = torch.library.Library("torchvision", "DEF")  # noqa: F841 - kept alive below
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.impl("nms", nms, "CPU")
    library.impl("qnms", lambda d, s, t: nms(d.dequantize(), s.dequantize(), t), "QuantizedCPU")
    globals()["_library"] = library  # the registration lives as long as this object


def ensure_torchvision_importable() -> bool:
    """Install the CPU fallback when needed; returns True when the fallback is in use."""
    global _fallback_installed
    if not _fallback_installed and not _native_ops_load():
        _define_fallback_ops()
        _fallback_installed = True
    return _fallback_installed
