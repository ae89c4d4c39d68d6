"""Hostile values for every parameter of an app's named endpoints, and a runner that calls each
endpoint with them and sorts the outcomes into results, clear messages and unhandled errors."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import httpx
from gradio_client import handle_file
from gradio_client.exceptions import AppError

UNHANDLED = "Something went wrong"  # tabs.common's message for an exception nobody expected
HOSTILE_TEXT = ["", "x" * 1_000_000, "\x00\x07\x1b[31m\u202e\u200f\u0645\u0631\u062d\u0628\u0627", "../../etc/passwd",
                "/etc/passwd", "https://example.invalid/model.bin", "{{7*7}}<script>alert(1)</script>"]
HOSTILE_NUMBERS = [-1, -1e12, 1e12, 0.5, "12abc"]
NON_FINITE = ["NaN", "Infinity", "-Infinity"]  # JSON cannot carry these through gradio_client: sent raw
HOSTILE_CHOICES = ["../../etc", "/etc/passwd", "https://evil.invalid/model", ""]


def endpoints(client) -> dict[str, dict]:
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def default_arguments(client, api_name: str) -> dict:
    """An endpoint's arguments as its form starts out, by parameter name."""
    return {p["parameter_name"]: p["parameter_default"] for p in endpoints(client)[api_name]["parameters"]}


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


def base_arguments(parameters: list[dict], image: Path, valid: dict) -> dict:
    arguments = {}
    for parameter in parameters:
        if parameter["parameter_name"] in valid:
            arguments[parameter["parameter_name"]] = valid[parameter["parameter_name"]]
        elif smallest(parameter) is not None:
            arguments[parameter["parameter_name"]] = smallest(parameter)
        elif parameter["parameter_has_default"]:
            arguments[parameter["parameter_name"]] = parameter["parameter_default"]
        elif is_file(parameter):
            arguments[parameter["parameter_name"]] = handle_file(str(image))
        else:
            arguments[parameter["parameter_name"]] = None
    return arguments


def first_rows(table: dict, count: int) -> dict:
    """A Dataframe parameter's value cut to its first rows: a cheaper valid table."""
    return {**table, "data": table["data"][:count]}


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


def fuzz_endpoints(client, app_url: str, files: list[Path], image: Path, only: set[str] | None = None,
                   valid: dict | None = None) -> tuple[Counter[str], list[str], Counter[str]]:
    """Call each named endpoint (or those in `only`) with every hostile value of every parameter, the
    others left valid (`valid`'s value by name, else the cheapest): (outcome counts, the unhandled
    calls, seconds per endpoint)."""
    results: Counter[str] = Counter()
    unhandled: list[str] = []
    seconds_by_endpoint: Counter[str] = Counter()
    for api_name, info in endpoints(client).items():
        if only is not None and api_name not in only:
            continue
        endpoint_start = time.perf_counter()
        parameters = info["parameters"]
        for index, parameter in enumerate(parameters):
            cases = [(value, False) for value in hostile_values(parameter, files)]
            if parameter.get("type", {}).get("type") in ("number", "integer"):
                cases += [(value, True) for value in NON_FINITE]
            for value, raw in cases:
                arguments = base_arguments(parameters, image, valid or {})
                if raw:
                    data = [handle_file(str(image)) if is_file(p) and a is not None and not isinstance(a, dict)
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
    return results, unhandled, seconds_by_endpoint
