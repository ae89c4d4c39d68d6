"""Files between a visitor and the server: a visitor sends uploads, never a path on the server, and the
server gives back only what is in Gradio's upload folder.

Why the app must check this itself (Gradio 6.31): Gradio checks a file payload against its upload folder
only when the payload is tagged `"meta": {"_type": "gradio.FileData"}` (processing_utils.async_move_files_to_cache
with check_in_upload_folder). An image or gallery item sent without the tag is never checked: `gr.Image`
opens the named path (answering differently for a missing file and a file that is not an image), and a
gallery input hands it to the app, whose output Gradio then copies from anywhere in the working directory
or the temp directory (`_check_allowed` allows both for outputs) into its cache and serves back. A tagged
http(s) URL is downloaded by the server before any check.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import processing_utils
from gradio.utils import get_upload_folder

from playground.core.settings import Limits

CHECKOUT = Path(__file__).resolve().parents[1]
# One answer for every path a visitor names, whether or not a file is there: no existence oracle.
UPLOADS_ONLY = "Send the file itself (upload it or paste it): this app never opens a path on the server."


def upload_folder() -> Path:
    """Gradio's upload folder (GRADIO_TEMP_DIR, or <temp dir>/gradio): uploads and results live there."""
    return Path(get_upload_folder())


def _inside(path: str, folder: str) -> bool:
    # Compared as text, without touching the disk, so the answer never depends on what exists there.
    normal = os.path.normpath(os.path.abspath(path))
    return normal == folder or normal.startswith(folder.rstrip(os.sep) + os.sep)


def _files(payload: Any) -> Iterator[dict]:
    """The file objects in a component's payload as sent: every dict with a `path` or a `url`."""
    if isinstance(payload, dict):
        if "path" in payload or "url" in payload:
            yield payload
        else:
            for value in payload.values():
                yield from _files(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from _files(value)


def check_uploaded(payload: Any, limits: Limits) -> None:
    """Raise gr.Error unless every file in a payload is in the upload folder, or is an image sent inline as
    a data: URL (Gradio decodes it into that folder) within the upload size. Paths elsewhere and URLs are
    refused alike."""
    folders = {os.path.normpath(upload_folder()), os.path.realpath(upload_folder())}
    for file in _files(payload):
        path, url = file.get("path"), str(file.get("url") or "")
        if path is None and url.startswith("data:"):
            if len(url) * 3 // 4 > limits.max_upload_mb * 1024 * 1024:  # base64: 4 characters carry 3 bytes
                raise gr.Error(f"The image is larger than the upload limit ({limits.max_upload_mb} MB).",
                               print_exception=False)
            continue
        if not isinstance(path, str) or not any(_inside(path, folder) for folder in folders):
            raise gr.Error(UPLOADS_ONLY, print_exception=False)  # a refusal, not a fault: no traceback


def _carries_files(component: Any) -> bool:
    model = getattr(component, "data_model", None)
    return model is not None and not getattr(component, "stateful", False) and _has_file_fields(model)


@functools.cache
def _has_file_fields(model: type) -> bool:
    """Whether a component's data model has a file object (a `path`) anywhere in it: Image, Gallery, File..."""
    try:
        return '"path"' in json.dumps(model.model_json_schema())
    except Exception:  # a schema pydantic cannot write: check its payloads anyway
        return True


def serve_files_safely(demo: gr.Blocks, limits: Limits) -> None:
    """Every input that can carry a file, of every event (private ones and fn_index calls included), takes
    uploads only. The check sits on `Blocks.preprocess_data`, the one door every event's inputs pass through,
    before Gradio moves or downloads anything; a component's own `preprocess` would not do, because a session
    whose component got a prop update (gr.update) preprocesses with a fresh copy of that component."""
    preprocess_data = demo.preprocess_data

    async def uploads_only(block_fn, inputs, state, explicit_call=False):
        if not explicit_call:  # a call from Python code on the server, not a visitor's request
            for component, payload in zip(block_fn.inputs, inputs):
                if _carries_files(component):
                    check_uploaded(payload, limits)
        return await preprocess_data(block_fn, inputs, state, explicit_call)

    demo.preprocess_data = uploads_only
    # Gradio saves a result image (`save_pil_to_cache`) by truncating and rewriting a file named by its content:
    # the same image twice at once (a grid re-sent as it grows, a room on one preset) rewrote a file while it
    # was being served, and a browser got it cut off. Every result image is now written whole, once.
    processing_utils.save_pil_to_cache = _save_image_whole


def _write_whole(data: bytes, name: str, folder: Path) -> str:
    """`data` at folder/<its hash>/<name>: written under a temporary name and renamed into place, so the file
    is whole whenever it exists, and never rewritten while served. A file handed out again is touched, so
    Gradio's cleanup (which ages files by ctime) does not delete it on its first use's schedule."""
    home = folder / processing_utils.hash_bytes(data)
    home.mkdir(exist_ok=True, parents=True)
    path = (home / Path(name).name).resolve()
    if path.exists():
        os.utime(path)
        return str(path)
    handle, staging = tempfile.mkstemp(dir=home, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    os.replace(staging, path)
    return str(path)


def _save_image_whole(img: Any, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """`processing_utils.save_pil_to_cache`, with the same arguments and file names, written whole."""
    return _write_whole(processing_utils.encode_pil_to_bytes(img, format), f"{name}.{format}", Path(cache_dir))


def keep(name: str, data: bytes) -> str:
    """A file the server made for a visitor (a result image, a CSV of results), written once into the upload
    folder and served from there: the same content reuses one file, and Gradio's scheduled cleanup
    (`upload_cleanup`) deletes it with the uploads. No temporary directory is left behind."""
    return _write_whole(data, name, upload_folder())


def shipped(path: str | Path) -> str:
    """A shipped file (from assets/) as a copy in the upload folder, the only place files are served from."""
    return keep(Path(path).name, Path(path).read_bytes())


def upload_cleanup(limits: Limits) -> tuple[int, int]:
    """Gradio's `delete_cache` (how often to look, in seconds; how old a file may get): uploads, results and
    downloads are deleted `upload_lifetime_seconds` after they were written, and all of them at shutdown."""
    lifetime = limits.upload_lifetime_seconds
    return max(1, min(300, lifetime // 4)), lifetime


def _all_but(root: Path, spared: Path) -> list[Path]:
    """Paths that together cover `root` except `spared` (all of `root` when `spared` is outside it)."""
    if spared == root:
        return []
    if root not in spared.parents:
        return [root]
    return [path for entry in root.iterdir() for path in _all_but(entry, spared)]


def private_paths() -> list[str]:
    """What Gradio must never serve or copy into its cache: the checkout and the working directory (on a
    Space, the same repository), except the upload folder if an operator put it there."""
    uploads = Path(os.path.realpath(upload_folder()))
    roots = {CHECKOUT, Path(os.path.realpath(os.getcwd()))}
    return sorted({str(path) for root in roots for path in _all_but(root, uploads)})

