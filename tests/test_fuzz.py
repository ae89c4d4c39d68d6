"""Every named endpoint, called with hostile values: each gets a clear message or a result, never an
unhandled exception, and the app keeps serving afterwards."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

UNHANDLED = "Something went wrong"  # tabs.common's message for an exception nobody expected
HOSTILE_TEXT = ["", "x" * 1_000_000, "\x00\x07\x1b[31m\u202e\u200f\u0645\u0631\u062d\u0628\u0627", "../../etc/passwd",
                "/etc/passwd", "https://example.invalid/model.bin", "{{7*7}}<script>alert(1)</script>"]
HOSTILE_NUMBERS = [-1, -1e12, 1e12, 0.5, "12abc"]
NON_FINITE = ["NaN", "Infinity", "-Infinity"]  # JSON cannot carry these through gradio_client: sent raw
HOSTILE_CHOICES = ["../../etc", "/etc/passwd", "https://evil.invalid/model", ""]


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


def endpoints(client) -> dict[str, dict]:
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def is_file(parameter: dict) -> bool:
    return "filepath" in str(parameter.get("python_type", {}).get("type", "")) or parameter["component"] in (
        "Image", "File", "Gallery")


def hostile_values(parameter: dict, files: list[Path]) -> list:
    kind = parameter.get("type", {}).get("type")
    if is_file(parameter):
        return [handle_file(str(path)) for path in files]
    if "enum" in parameter.get("type", {}):
        return HOSTILE_CHOICES
    if kind in ("number", "integer"):
        return HOSTILE_NUMBERS
    if kind == "string":
        return HOSTILE_TEXT
    if kind == "boolean":
        return ["maybe"]
    return [None, "not structured", 12]


def smallest(parameter: dict) -> float | None:
    """A slider's minimum: the cheapest valid value, so each hostile call does little real work."""
    match = re.search(r"between (-?[0-9.]+) and", parameter.get("type", {}).get("description", ""))
    return float(match.group(1)) if match else None


def base_arguments(parameters: list[dict], image: Path) -> dict:
    arguments = {}
    for parameter in parameters:
        if smallest(parameter) is not None:
            arguments[parameter["parameter_name"]] = smallest(parameter)
        elif parameter["parameter_has_default"]:
            arguments[parameter["parameter_name"]] = parameter["parameter_default"]
        elif is_file(parameter):
            arguments[parameter["parameter_name"]] = handle_file(str(image))
        else:
            arguments[parameter["parameter_name"]] = None
    return arguments


def outcome(call) -> str:
    """'ok', 'message' (a clear error), or 'unhandled: ...'."""
    try:
        call()
        return "ok"
    except AppError as error:
        text = str(error)
        return f"unhandled: {text[:200]}" if UNHANDLED in text or not text.strip() else "message"
    except (ValueError, TypeError) as error:  # the client refused to send it: nothing reached the app
        return "message" if "JSON" in str(error) or "argument" in str(error) else f"unhandled: {error}"


def raw_call(app_url: str, api_name: str, data: list) -> None:
    """Post values JSON cannot normally carry (NaN, Infinity) straight to the event API."""
    body = json.dumps({"data": data}, allow_nan=True)
    with httpx.Client(base_url=app_url, timeout=120) as http:
        event = http.post(f"gradio_api/call{api_name}", content=body, headers={"content-type": "application/json"})
        if event.status_code != 200:
            raise AppError(f"rejected with HTTP {event.status_code}")
        stream = http.get(f"gradio_api/call{api_name}/{event.json()['event_id']}").text
    if "event: error" in stream:
        message = stream.split("event: error", 1)[1].split("data:", 1)[1].strip()
        raise AppError(message if message not in ("null", "") else "")


def test_every_endpoint_survives_hostile_input(client, app_url, hostile_files, valid_image, service, capsys):
    results: Counter[str] = Counter()
    unhandled: list[str] = []
    start = time.perf_counter()
    named = endpoints(client)
    assert len(named) >= 2
    seconds_by_endpoint: Counter[str] = Counter()
    for api_name, info in named.items():
        endpoint_start = time.perf_counter()
        parameters = info["parameters"]
        for index, parameter in enumerate(parameters):
            cases = [(value, False) for value in hostile_values(parameter, hostile_files)]
            if parameter.get("type", {}).get("type") in ("number", "integer"):
                cases += [(value, True) for value in NON_FINITE]
            for value, raw in cases:
                arguments = base_arguments(parameters, valid_image)
                if raw:
                    data = [handle_file(str(valid_image)) if is_file(p) and a is not None and not isinstance(a, dict)
                            else a for p, a in zip(parameters, arguments.values())]
                    data[index] = float(value)
                    result = outcome(lambda: raw_call(app_url, api_name, data))
                else:
                    arguments[parameter["parameter_name"]] = value
                    result = outcome(lambda: client.predict(**arguments, api_name=api_name))
                results[result.split(":")[0]] += 1
                if result.startswith("unhandled"):
                    unhandled.append(f"{api_name}({parameter['parameter_name']}={str(value)[:40]!r}): {result}")
        seconds_by_endpoint[api_name] = round(time.perf_counter() - endpoint_start, 1)
    with capsys.disabled():
        print(f"\nfuzz: {sum(results.values())} hostile calls to {len(named)} endpoints in "
              f"{time.perf_counter() - start:.0f} s: {dict(results)}; slowest endpoints (s): "
              f"{dict(seconds_by_endpoint.most_common(4))}")
    assert unhandled == [], "\n".join(unhandled[:30])
    summary, _ = client.predict(api_name="/cache_status")  # still serving
    assert "Device" in summary
