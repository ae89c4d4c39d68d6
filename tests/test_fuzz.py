"""Every named endpoint, called with hostile values: each gets a clear message or a result, never an
unhandled exception, and the app keeps serving afterwards. Then each endpoint once more, raw as a browser
sends it, with every text dirty at once (a lone surrogate, markup, NaN cells) and with a 10 MB body."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from tests.hostile import endpoints, fuzz_dirty_requests, fuzz_endpoints


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("hostile")
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 100)
    not_an_image = folder / "notes.png"
    not_an_image.write_text("this is text, not an image")
    huge = folder / "huge.png"  # 50 megapixels; compresses to a small file
    Image.new("RGB", (10_000, 5_000), "white").save(huge, optimize=True)
    return [corrupt, not_an_image, huge]


@pytest.fixture(scope="module")
def valid_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("valid") / "small.png"
    Image.new("RGB", (64, 48), "orange").save(path)
    return path


def test_every_endpoint_survives_hostile_input(client, app_url, hostile_files, valid_image, service, capsys):
    start = time.perf_counter()
    named = endpoints(client)
    assert len(named) >= 2
    # The size comparisons get one model: each hostile value is still checked, but a valid call stops at "two or
    # more models" instead of running two real models through every case (tests/test_scale.py runs them).
    one_model = {"models": [service.registry.default("language")]}
    results, unhandled, seconds_by_endpoint = fuzz_endpoints(client, app_url, hostile_files, valid_image,
                                                             valid=one_model)
    dirty_results, dirty_unhandled, dirty_seconds = fuzz_dirty_requests(client, app_url, valid_image)
    results, unhandled = results + dirty_results, unhandled + dirty_unhandled
    seconds_by_endpoint.update(dirty_seconds)
    with capsys.disabled():
        print(f"\nfuzz: {sum(results.values())} hostile calls to {len(named)} endpoints in "
              f"{time.perf_counter() - start:.0f} s: {dict(results)}; slowest endpoints (s): "
              f"{dict(seconds_by_endpoint.most_common(4))}")
    assert unhandled == [], "\n".join(unhandled[:30])
    summary, _ = client.predict(api_name="/cache_status")  # still serving
    assert "Device" in summary
