"""Where CLIP looks: occlusion sensitivity (Zeiler & Fergus, "Visualizing and Understanding Convolutional
Networks", ECCV 2014), for every label at once.

The image the model sees (resized and centre-cropped) is cut into a grid. Each cell in turn is greyed out
(0 in the normalised pixel space: the training set's mean colour) and the copy is encoded again. A cell's
heat for a label is how much greying it lowers the cosine similarity of the image with that label:

    heat[label, cell] = cos(image, label) - cos(image with the cell greyed, label)

Positive heat: the region supports the label; negative: hiding it makes the label fit better. It needs only
`encode_image`, so it works the same for open_clip's ViT and ResNet towers, and the k*k occluded copies go
through the model in batches: one heatmap costs k*k + 1 image encodings, shared by all labels.

What it cannot show: interactions (two regions that each suffice: hiding one costs nothing), anything
smaller than a cell, and the grey patch is itself an input the model never saw in training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from playground.clip.images import open_image
from playground.clip.loader import ClipModel
from playground.clip.zero_shot import (
    ENCODING_LOWER, check_logit_scale, encoding_cost, get_template_set, label_embeddings, parse_labels,
    probabilities_from_cosine,
)
from playground.core import budget
from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.core.stopping import check_wanted

GRIDS = (4, 7)  # 4x4: one batch of 17 images; 7x7: finer, 50 images
MIN_CELL_PIXELS = 8  # each cell must cover this many of the image's own pixels per side
BATCH = 32  # occluded copies per forward pass (plus the original, see `_encode_with_original`)


@dataclass(frozen=True)
class OcclusionMap:
    labels: list[str]
    grid: int
    cosine: list[float]  # per label, of the whole image (the batch's own unoccluded row)
    probabilities: list[float]
    heat: np.ndarray  # [labels, grid, grid]: cosine drop when that cell is greyed
    seen: Image.Image  # the image as the model sees it (resized, cropped), to draw the heat over
    template_set: str
    encodings: int  # images encoded, the original included
    seconds: float

    def hottest_first(self, label: int) -> list[tuple[int, int]]:
        """The cells (row, column) of one label's map, highest heat first."""
        order = np.argsort(-self.heat[label].ravel(), kind="stable")
        return [divmod(int(cell), self.grid) for cell in order]


def check_grid(grid: Any) -> int:
    """A grid as the UI names it ("4x4") or as its side (4)."""
    names = {f"{g}x{g}": g for g in GRIDS} | {str(g): g for g in GRIDS}
    size = names.get(str(grid).strip().lower()) if not isinstance(grid, bool) else None
    if size is None:
        raise PlaygroundError(f"The heatmap grid must be one of: {', '.join(f'{g}x{g}' for g in GRIDS)}.")
    return size


def check_image_size(picture: Image.Image, grid: int) -> None:
    """A cell smaller than the image's own pixels would show upscaling blur, not what is in the image."""
    need = MIN_CELL_PIXELS * grid
    if min(picture.size) < need:
        raise PlaygroundError(
            f"The image is {picture.width} x {picture.height} pixels: too small for a {grid}x{grid} heatmap, "
            f"which needs at least {need} pixels on the shorter side ({MIN_CELL_PIXELS} per cell). "
            "Use a larger image or a coarser grid."
        )


def _normalisation(clip: ClipModel) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and std of the model's own preprocessing (its Normalize step)."""
    step = next(t for t in reversed(clip.preprocess.transforms) if hasattr(t, "mean") and hasattr(t, "std"))
    return torch.tensor(step.mean).reshape(3, 1, 1), torch.tensor(step.std).reshape(3, 1, 1)


def seen_image(clip: ClipModel, pixels: torch.Tensor) -> Image.Image:
    """Normalised pixels [3, H, W] back to the picture they show: what the model looked at."""
    mean, std = _normalisation(clip)
    values = (pixels.float().cpu() * std + mean).clamp(0, 1).mul(255).round().byte()
    return Image.fromarray(values.permute(1, 2, 0).numpy())


def cell_edges(size: int, grid: int) -> np.ndarray:
    return np.linspace(0, size, grid + 1).round().astype(int)


def occluded(pixels: torch.Tensor, cells: Sequence[tuple[int, int]], grid: int) -> torch.Tensor:
    """A copy of normalised pixels [3, H, W] with the given cells set to 0 (the mean colour)."""
    rows, columns = cell_edges(pixels.shape[1], grid), cell_edges(pixels.shape[2], grid)
    copy = pixels.clone()
    for row, column in cells:
        copy[:, rows[row]:rows[row + 1], columns[column]:columns[column + 1]] = 0
    return copy


@torch.inference_mode()
def _encode_with_original(clip: ClipModel, pixels: torch.Tensor, copies: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised embeddings of the original and of each copy, `BATCH` copies per forward pass. The original
    rides in every pass, and each copy is compared with the original of its own pass: a matrix product's
    rounding depends on the batch, and a heat value must not mix two batches' rounding."""
    originals, encoded = [], []
    for start in range(0, len(copies), BATCH):
        check_wanted()
        batch = torch.stack([pixels, *copies[start:start + BATCH]]).to(clip.device, clip.dtype)
        features = torch.nn.functional.normalize(clip.model.encode_image(batch).float(), dim=-1)
        originals.append(features[:1].expand(len(batch) - 1, -1))
        encoded.append(features[1:])
    return torch.cat(originals), torch.cat(encoded)


def _passes(copies: int) -> int:
    return -(-copies // BATCH)


def occlusion_cost(clip: ClipModel, labels: Sequence[str], template_set_name: str | None, grid: int) -> budget.Cost:
    """The occluded copies, the original once per pass, and the label prompts not yet cached."""
    return encoding_cost(clip, grid * grid + _passes(grid * grid), labels, [get_template_set(template_set_name)])


def occlusion_map(
    clip: ClipModel, image: Any, labels_text: str, template_set_name: str | None, grid: Any, limits: Limits,
    logit_scale: Any = 0,
) -> OcclusionMap:
    """Every label's occlusion heatmap for one image (a path or a PIL image), priced before it runs."""
    labels = parse_labels(labels_text, limits)
    template_set = get_template_set(template_set_name)
    size = check_grid(grid)
    scale = check_logit_scale(logit_scale, clip)
    picture = open_image(image, limits)
    check_image_size(picture, size)
    budget.check(occlusion_cost(clip, labels, template_set.name, size), limits, "This heatmap",
                 f"a coarser grid, or {ENCODING_LOWER}")
    start = time.perf_counter()
    texts = label_embeddings(clip, labels, template_set)
    pixels = clip.preprocess(picture)
    cells = [(row, column) for row in range(size) for column in range(size)]
    originals, copies = _encode_with_original(clip, pixels, [occluded(pixels, [cell], size) for cell in cells])
    base = originals[0] @ texts.T
    heat = (originals @ texts.T - copies @ texts.T).T.reshape(len(labels), size, size)
    return OcclusionMap(
        labels=labels, grid=size, cosine=base.tolist(), probabilities=probabilities_from_cosine(base, scale).tolist(),
        heat=heat.numpy(), seen=seen_image(clip, pixels), template_set=template_set.name,
        encodings=len(cells) + _passes(len(cells)), seconds=time.perf_counter() - start,
    )


@torch.inference_mode()
def cosine_with_cells_hidden(
    clip: ClipModel, image: Any, labels: Sequence[str], template_set_name: str | None,
    cells: Sequence[Sequence[tuple[int, int]]], grid: int, limits: Limits,
) -> torch.Tensor:
    """[len(cells), labels]: the cosine with each group of cells greyed at once (the deletion check: hiding
    a label's hottest cells should lower its score more than hiding its coldest)."""
    picture = open_image(image, limits)
    pixels = clip.preprocess(picture)
    texts = label_embeddings(clip, list(labels), get_template_set(template_set_name))
    _, copies = _encode_with_original(clip, pixels, [occluded(pixels, group, grid) for group in cells])
    return copies @ texts.T
