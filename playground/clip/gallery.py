"""The photos shipped in `assets/clip/` (see NOTICE.md there), with their true labels from
`labels.csv`: the tab's gallery and the default labelled folder for batch accuracy."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from playground.clip.images import open_image
from playground.core.errors import PlaygroundError
from playground.core.paths import ASSETS
from playground.core.settings import Limits

GALLERY_DIR = ASSETS / "clip"


@dataclass(frozen=True)
class GalleryPhoto:
    name: str  # file stem, what a person picks: "cat"
    path: Path
    label: str  # the true label, for accuracy


def gallery(folder: Path = GALLERY_DIR) -> list[GalleryPhoto]:
    """Photos in `folder`, labelled by its `labels.csv` (columns `file,label`)."""
    with open(folder / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [GalleryPhoto(Path(row["file"]).stem, folder / row["file"], row["label"].strip()) for row in rows]


def gallery_labels(folder: Path = GALLERY_DIR) -> list[str]:
    return list(dict.fromkeys(photo.label for photo in gallery(folder)))


def pick_photos(names: list[str] | None, limits: Limits, folder: Path = GALLERY_DIR) -> list[tuple[str, Image.Image]]:
    """(name, image) for the chosen gallery names; names never become paths."""
    photos = {photo.name: photo for photo in gallery(folder)}
    if not names:
        raise PlaygroundError("Pick at least one gallery photo.")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise PlaygroundError("Gallery photos are chosen by name, e.g. ['cat', 'rocket'].")
    unknown = [name for name in names if name not in photos]
    if unknown:
        raise PlaygroundError(f"Unknown gallery photo {unknown[0][:60]!r}. Choose from: {', '.join(photos)}.")
    chosen = list(dict.fromkeys(names))
    if len(chosen) > limits.max_batch_items:
        raise PlaygroundError(f"Pick at most {limits.max_batch_items} photos.")
    return [(name, open_image(photos[name].path, limits)) for name in chosen]
