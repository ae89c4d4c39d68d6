"""What the text-to-image tab shows, as plain values (images, captions, Markdown): no Gradio here."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from playground.core.errors import PlaygroundError
from playground.text_to_image.pipeline import ImageRequest, Result, Step

Captioned = tuple[Image.Image | str, str]


def strip(steps: list[Step]) -> list[Captioned]:
    return [(step.preview, step.caption) for step in steps if step.preview is not None]


def step_status(step: Step, previews: str = "previews: the linear latent map") -> str:
    return f"Denoising… step **{step.index}/{step.total}** ({previews}; not the final image)"


def result_status(result: Result, previews: str = "") -> str:
    request = result.request
    guidance = (f"guidance {request.guidance:g}: two UNet passes a step (with and without the prompt)"
                if request.uses_guidance else f"guidance {request.guidance:g}: CFG off, one UNet pass a step")
    return (f"Seed **{request.seed}** · {request.steps} steps · {request.scheduler} · "
            f"{request.width}x{request.height} · {guidance} · **{result.seconds:.2f} s** "
            f"({result.seconds_per_step:.3f} s a step, VAE decode included). "
            "Same seed and settings give the same image on this server; the settings are also inside the PNG."
            + (f" Step {previews}." if previews else ""))


def result_strip(result: Result) -> list[Captioned]:
    """The step previews, then the real decode for comparison."""
    return strip(result.steps) + [(result.image, "final image (VAE decode)")]


def png_parameters(path: str | Path) -> str:
    """The settings text a generated PNG carries (what AUTOMATIC1111 and image viewers read back)."""
    try:
        with Image.open(path) as image:
            return str(image.info.get("parameters", ""))
    except (OSError, ValueError):
        raise PlaygroundError("That image could not be read back; generate it again.") from None


def gallery_with(gallery: list | None, image_path: str | None, limit: int) -> list[tuple[str, str]]:
    """The person's gallery with a new image first, captioned with the settings read back from its PNG;
    the oldest ones drop off past `limit`."""
    entries = [(item[0], item[1] or "") if isinstance(item, (tuple, list)) else (item, "") for item in gallery or []]
    if image_path:
        entries.insert(0, (image_path, png_parameters(image_path).replace("\n", " · ")))
    return entries[:limit]


def grid_cells(results: list[Result]) -> list[Captioned]:
    """Each grid image captioned with the two knobs that vary."""
    return [(r.image, f"CFG {r.request.guidance:g} · {r.request.steps} step{'s' if r.request.steps > 1 else ''}")
            for r in results]


def grid_status(results: list[Result], total: int, seed: int) -> str:
    return f"{len(results)}/{total} images, all with seed **{seed}**: only guidance and steps change along the grid."


def grid_columns(requests: list[ImageRequest]) -> int:
    """One column per step count, so each row is one guidance value."""
    return len({request.steps for request in requests})
