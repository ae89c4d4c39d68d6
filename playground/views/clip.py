"""What the CLIP zero-shot tab shows, as plain values (dicts, tables, Markdown): one function per view."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from pandas.io.formats.style import Styler

from playground.clip.gallery import gallery, pick_photos
from playground.core import budget
from playground.clip.zero_shot import (
    ENCODING_LOWER, ZeroShotResult, batch_accuracy, classify, encoding_cost, get_template_set, parse_labels,
    similarity_matrix,
)
from playground.clip.loader import ClipModel
from playground.clip.occlusion import OcclusionMap, cell_edges, occlusion_map
from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.core.user_text import markdown_text


def _confidences(result: ZeroShotResult) -> dict[str, float]:
    return dict(zip(result.labels, result.probabilities))


def _scale_note(result: ZeroShotResult, clip: ClipModel) -> str:
    learned = clip.learned_logit_scale
    which = "the model's learned value" if abs(result.logit_scale - learned) < 1e-6 else f"learned: {learned:.1f}"
    return f"logit scale **{result.logit_scale:.1f}** ({which})"


def classification(
    clip: ClipModel, image: Any, labels: str, templates: str | None, logit_scale: Any, limits: Limits
) -> tuple[dict[str, float], pd.DataFrame, str]:
    """Probabilities (for a bar chart), the per-label table, and a one-line summary."""
    cost = encoding_cost(clip, 1, parse_labels(labels, limits), [get_template_set(templates)])
    budget.check(cost, limits, "This classification", ENCODING_LOWER)
    result = classify(clip, image, labels, templates, logit_scale, limits)
    summary = (
        f"Best: **{markdown_text(result.best)}** ({max(result.probabilities):.1%}) · {_scale_note(result, clip)} · "
        f"templates: {result.template_set} · {result.seconds * 1000:.0f} ms"
    )
    return _confidences(result), pd.DataFrame(result.rows()), summary


def comparison(
    clips: Sequence[ClipModel], image: Any, labels: str, templates: str | None, logit_scale: Any, limits: Limits
) -> tuple[dict[str, float], dict[str, float], str]:
    """The same image, labels and templates through two models."""
    label_list, template_set = parse_labels(labels, limits), get_template_set(templates)
    cost = sum((encoding_cost(clip, 1, label_list, [template_set]) for clip in clips), budget.Cost())
    budget.check(cost, limits, "This comparison", ENCODING_LOWER)
    results = [classify(clip, image, labels, templates, logit_scale, limits) for clip in clips]
    lines = [f"- **{clip.name}**: best **{markdown_text(r.best)}** ({max(r.probabilities):.1%}), {_scale_note(r, clip)}"
             for clip, r in zip(clips, results)]
    return _confidences(results[0]), _confidences(results[1]), "\n".join(lines)


def _heat(value: float, low: float, high: float) -> str:
    """White (lowest) to blue (highest) background, dark text stays readable."""
    share = 0.0 if high <= low else (value - low) / (high - low)
    return f"background-color: rgba(37, 99, 235, {0.05 + 0.75 * share:.2f})"


def similarity_heatmap(
    clip: ClipModel, photo_names: list[str] | None, labels: str, templates: str | None, limits: Limits
) -> Styler:
    """Cosine similarity of every chosen gallery photo with every label, coloured as a heatmap."""
    label_list = parse_labels(labels, limits, minimum=1)
    photos = pick_photos(photo_names, limits)
    template_set = get_template_set(templates)
    budget.check(encoding_cost(clip, len(photos), label_list, [template_set]), limits, "This matrix", ENCODING_LOWER)
    cosine = similarity_matrix(clip, [image for _, image in photos], label_list, template_set)
    frame = pd.DataFrame(cosine.numpy().round(4), columns=label_list)
    frame.insert(0, "photo", [name for name, _ in photos])
    low, high = float(cosine.min()), float(cosine.max())
    return frame.style.map(lambda value: _heat(value, low, high), subset=label_list).format("{:.4f}", subset=label_list)


def _prompts(count: int) -> str:
    return "1 prompt" if count == 1 else f"{count} prompts"


def gallery_accuracy(clip: ClipModel, template_sets: list[str] | None, limits: Limits) -> tuple[str, pd.DataFrame]:
    """Top-1 accuracy on the shipped gallery for each template set, and each photo's predictions."""
    if not template_sets or not isinstance(template_sets, list):
        raise PlaygroundError("Choose at least one template set to measure.")
    names = [get_template_set(name).name for name in template_sets]
    photos = gallery()
    class_names = list(dict.fromkeys(photo.label for photo in photos))
    cost = encoding_cost(clip, len(photos), class_names, [get_template_set(name) for name in names])
    budget.check(cost, limits, "This measurement", "fewer template sets")
    images = [image for _, image in pick_photos([photo.name for photo in photos], limits)]
    result = batch_accuracy(clip, [p.path.name for p in photos], images, [p.label for p in photos], names)
    classes = len(set(result.true_labels))
    summary = "\n".join(
        f"- **{name}**: {result.accuracy(name):.0%} top-1 ({_prompts(len(get_template_set(name).templates))} per label)"
        for name in names
    )
    summary = f"{len(photos)} gallery photos, {classes} labels (chance: {1 / classes:.0%}).\n\n{summary}"
    table = pd.DataFrame({"photo": result.files, "true label": result.true_labels,
                          **{f"predicted ({name})": result.predictions[name] for name in names}})
    return summary, table


_SUPPORTS = np.array([220, 38, 38], dtype=np.float32)  # red: greying this region lowers the label's score
_OPPOSES = np.array([37, 99, 235], dtype=np.float32)  # blue: greying it raises the score


def check_opacity(opacity: Any) -> float:
    try:
        value = float(opacity)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 <= value <= 1:  # also refuses NaN
        raise PlaygroundError("The heatmap opacity must be a number from 0 (image only) to 1 (heatmap only).")
    return value


def heat_overlay(result: OcclusionMap, label: int, opacity: float) -> Image.Image:
    """One label's heat drawn over the image the model saw: each cell coloured by its own sign, its strength
    relative to this label's strongest cell (so each map uses its whole range; the caption gives the scale)."""
    seen = np.asarray(result.seen, dtype=np.float32)
    heat = result.heat[label]
    strongest = float(np.abs(heat).max())
    share = heat / strongest if strongest > 0 else np.zeros_like(heat)
    rows, columns = cell_edges(seen.shape[0], result.grid), cell_edges(seen.shape[1], result.grid)
    # Cells drawn as blocks: the method measures whole cells, so a smooth map would claim detail it lacks.
    per_pixel = np.repeat(np.repeat(share, np.diff(rows), axis=0), np.diff(columns), axis=1)[..., None]
    colour = np.where(per_pixel >= 0, _SUPPORTS, _OPPOSES)
    alpha = opacity * np.abs(per_pixel)
    return Image.fromarray((seen * (1 - alpha) + colour * alpha).round().astype(np.uint8))


def heat_overlays(result: OcclusionMap | None, opacity: Any) -> list[tuple[Image.Image, str]]:
    """Every label's overlay, most probable label first, each captioned with its probability and scale."""
    if result is None:
        return []
    alpha = check_opacity(opacity)
    order = sorted(range(len(result.labels)), key=lambda i: -result.probabilities[i])
    return [
        (heat_overlay(result, i, alpha),
         f"{result.labels[i]}: {result.probabilities[i]:.1%}; hottest cell {float(result.heat[i].max()):+.4f} cosine")
        for i in order
    ]


def where_it_looks(
    clip: ClipModel, image: Any, labels: str, templates: str | None, grid: Any, logit_scale: Any, opacity: Any,
    limits: Limits,
) -> tuple[list[tuple[Image.Image, str]], str, OcclusionMap]:
    """Every label's occlusion heatmap drawn over the image, a line saying what was measured and what it
    cost, and the map itself (kept by the page, so the opacity slider redraws without the model)."""
    check_opacity(opacity)  # before the model runs, not after
    result = occlusion_map(clip, image, labels, templates, grid, limits, logit_scale)
    best = max(range(len(result.labels)), key=result.probabilities.__getitem__)
    row, column = result.hottest_first(best)[0]
    summary = (
        f"{result.grid}x{result.grid} grid: {result.encodings} image encodings in "
        f"{result.seconds * 1000:.0f} ms, shared by all {len(result.labels)} labels. For "
        f"**{markdown_text(result.labels[best])}** (the most probable), greying the cell in row {row + 1}, "
        f"column {column + 1} lowers its cosine similarity most ({float(result.heat[best, row, column]):+.4f}). "
        "Red: hiding the region lowers the label's score; blue: hiding it raises the score."
    )
    return heat_overlays(result, opacity), summary, result
