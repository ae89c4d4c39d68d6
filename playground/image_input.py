"""Opening an image a person sent: refuse non-images, corrupt files and decompression bombs with a
clear message, checking the pixel count from the header before anything is decoded."""

from __future__ import annotations

import os
import warnings
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from playground.errors import PlaygroundError
from playground.settings import Limits


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_image_pixels:
        raise PlaygroundError(
            f"The image is too large ({width:,} x {height:,} = {width * height / 1e6:,.0f} megapixels; "
            f"at most {limits.max_image_pixels / 1e6:,.0f}). Resize it and try again."
        )
    if width < 1 or height < 1:
        raise PlaygroundError("The image is empty (zero pixels).")


def open_image(image: Any, limits: Limits) -> Image.Image:
    """An RGB PIL image from a file path or a PIL image."""
    if image is None or (isinstance(image, str) and not image.strip()):
        raise PlaygroundError("Upload or paste an image first (or pick one from the gallery).")
    if isinstance(image, Image.Image):
        _check_pixels(*image.size, limits)
        return image.convert("RGB")
    if not isinstance(image, (str, os.PathLike)) or not os.path.isfile(image):
        raise PlaygroundError("The image could not be read: send an image file (PNG, JPEG, WebP...).")
    try:
        with warnings.catch_warnings():
            # PIL warns (or raises) about decompression bombs by its own limit; ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(image) as opened:
                _check_pixels(*opened.size, limits)
                opened.load()
                picture = ImageOps.exif_transpose(opened).convert("RGB")
    except PlaygroundError:
        raise
    except Image.DecompressionBombError:
        message = f"The image is too large (at most {limits.max_image_pixels / 1e6:,.0f} megapixels)."
        raise PlaygroundError(message) from None
    except UnidentifiedImageError:
        raise PlaygroundError("That file is not an image PIL can read (use PNG, JPEG, WebP, GIF or BMP).") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise PlaygroundError(f"The image file is damaged or truncated and could not be decoded ({error}).") from None
    return picture
