"""Opening an image a person sent: refuse non-images, corrupt or truncated files and decompression bombs
with a clear message, checking the pixel count from the header before anything is decoded."""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from playground.core.errors import PlaygroundError
from playground.core.settings import Limits

# One message for a missing file and a file that is not an image: the answer must not tell a visitor
# which files exist on the server.
NOT_AN_IMAGE = "The file could not be read as an image: send a PNG, JPEG, WebP, GIF or BMP image."
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_image_pixels:
        raise PlaygroundError(
            f"The image is too large ({width:,} x {height:,} = {width * height / 1e6:,.0f} megapixels; "
            f"at most {limits.max_image_pixels / 1e6:,.0f}). Resize it and try again."
        )
    if width < 1 or height < 1:
        raise PlaygroundError("The image is empty (zero pixels).")


def _png_data_size(width: int, height: int, bit_depth: int, colour_type: int, interlaced: bool) -> int:
    """Bytes the PNG's pixel rows take once inflated (a filter byte starts each row of each pass)."""
    bits = bit_depth * _PNG_CHANNELS.get(colour_type, 4)

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * bits + 7) // 8) if w > 0 and h > 0 else 0

    if not interlaced:
        return rows(width, height)
    return sum(rows((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in _ADAM7)


def _png_is_short(path: str | os.PathLike) -> bool:
    """Whether a PNG's image data ends before its last row. PIL decodes such a file without complaint and
    leaves the missing rows black: a complete zlib stream that holds fewer rows than the header declares."""
    inflate, inflated, needed = zlib.decompressobj(), 0, None
    with open(path, "rb") as handle:
        handle.seek(8)
        while (head := handle.read(8)) and len(head) == 8:
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IHDR" and length == 13:
                width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", handle.read(13))
                needed = _png_data_size(width, height, depth, colour, interlace == 1)
                handle.seek(4, os.SEEK_CUR)
            elif kind == b"IDAT":
                data = handle.read(length)
                handle.seek(4, os.SEEK_CUR)
                while data and needed is not None and inflated < needed and not inflate.eof:
                    inflated += len(inflate.decompress(data, 1 << 20))  # counted, not kept
                    data = inflate.unconsumed_tail
            elif kind == b"IEND":
                break
            else:
                handle.seek(length + 4, os.SEEK_CUR)
    return needed is not None and inflated < needed


def _declared_bits(image: Image.Image) -> int:
    if image.mode.startswith("I;16"):
        return 16
    bits = getattr(image, "tag_v2", {}).get(258)  # TIFF BitsPerSample
    return int(bits[0] if isinstance(bits, tuple) else bits) if bits else 32


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with deeper-than-8-bit grey (16-bit PNG and TIFF open as mode I;16, 32-bit TIFF as I) scaled by
    its bit depth: PIL's own conversion clips every value above 255, so a 16-bit gradient turns white."""
    if image.mode.startswith("I;16") or image.mode == "I":
        shift = max(0, _declared_bits(image) - 8)
        grey = np.clip(np.asarray(image).astype(np.int64, copy=False) >> shift, 0, 255).astype(np.uint8)
        image = Image.fromarray(grey, "L")
    return image.convert("RGB")


def open_image(image: Any, limits: Limits) -> Image.Image:
    """An RGB PIL image from a file path or a PIL image."""
    if image is None or (isinstance(image, str) and not image.strip()):
        raise PlaygroundError("Upload or paste an image first (or pick one from the gallery).")
    if isinstance(image, Image.Image):
        _check_pixels(*image.size, limits)
        return _to_rgb(image)
    if not isinstance(image, (str, os.PathLike)) or not os.path.isfile(image):
        raise PlaygroundError(NOT_AN_IMAGE)
    try:
        with warnings.catch_warnings():
            # PIL warns (or raises) about decompression bombs by its own limit; ours is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(image) as opened:
                _check_pixels(*opened.size, limits)
                opened.load()
                if opened.format == "PNG" and _png_is_short(image):
                    raise PlaygroundError(
                        f"The PNG is truncated: it declares {opened.width:,} x {opened.height:,} pixels but holds "
                        "data for fewer rows. Send the complete file."
                    )
                picture = _to_rgb(ImageOps.exif_transpose(opened))
    except PlaygroundError:
        raise
    except Image.DecompressionBombError:
        message = f"The image is too large (at most {limits.max_image_pixels / 1e6:,.0f} megapixels)."
        raise PlaygroundError(message) from None
    except UnidentifiedImageError:
        raise PlaygroundError(NOT_AN_IMAGE) from None
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error) as error:
        raise PlaygroundError(f"The image file is damaged or truncated and could not be decoded ({error}).") from None
    return picture
