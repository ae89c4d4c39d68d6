"""Hostile values for every parameter of an app's named endpoints, and a runner that calls each
endpoint with them and sorts the outcomes into results, clear messages and unhandled errors."""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import httpx
from gradio_client import handle_file
from gradio_client.exceptions import AppError

UNHANDLED = "Something went wrong"  # tabs.common's message for an exception nobody expected
HOSTILE_TEXT = ["", "x" * 1_000_000, "\x00\x07\x1b[31m\u202e\u200f\u0645\u0631\u062d\u0628\u0627", "../../etc/passwd",
                "/etc/passwd", "https://example.invalid/model.bin", "{{7*7}}<script>alert(1)</script>"]
HOSTILE_NUMBERS = [-1, -1e12, 1e12, 0.5, "12abc"]
NON_FINITE = ["NaN", "Infinity", "-Infinity"]  # JSON cannot carry these through gradio_client: sent raw
HOSTILE_CHOICES = ["../../etc", "/etc/passwd", "https://evil.invalid/model", ""]
# Added to every text of one request at once: a lone surrogate (JSON carries it, UTF-8 cannot), markup that
# would fetch from a host if rendered, an HTML entity, fullwidth letters and a zero-width space.
DIRTY_TEXT = " \ud800 <img src=//fuzz.invalid/t.png> c&#97;t \uff43\uff41\uff54 ca\u200bt"
HUGE_TEXT = "x" * 10_000_000  # a 10 MB body: refused before the server reads it


class Unhandled(Exception):
    """The server failed without a message: an HTTP 5xx, or a stream that broke before the result."""


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
    except Unhandled as error:
        return f"unhandled: {error}"
    except AppError as error:
        text = str(error)
        return f"unhandled: {text[:200]}" if UNHANDLED in text or not text.strip() else "message"
    except (ValueError, TypeError) as error:  # the client refused to send it: nothing reached the app
        return "message" if "JSON" in str(error) or "argument" in str(error) else f"unhandled: {error}"


@functools.cache
def api_events(app_url: str) -> dict[str, tuple[int, tuple[bool, ...]]]:
    """Per named endpoint: its event's index, and which of its inputs the API skips (gr.State)."""
    config = httpx.get(app_url + "config", timeout=60).json()
    skipped = {component["id"]: component.get("skip_api", False) for component in config["components"]}
    return {f"/{d['api_name']}": (d["id"], tuple(skipped.get(i, False) for i in d["inputs"]))
            for d in config["dependencies"] if d.get("api_name")}


def upload(http: httpx.Client, path: Path) -> dict:
    """A file sent the way the browser sends one: uploaded first, then named by the path the server gave it."""
    with open(path, "rb") as handle:
        response = http.post("gradio_api/upload", files={"files": (path.name, handle)})
    response.raise_for_status()
    return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def queue_call(app_url: str, api_name: str, data: list, address: str | None = None) -> list[dict]:
    """Join the queue with raw JSON and read the session's stream, as a browser does; the event's messages,
    the last one its result. Values JSON cannot normally carry (NaN, lone surrogates) go as they are. An
    AppError if the join is refused (with its HTTP status), `Unhandled` if the server fails without a message."""
    headers = {"content-type": "application/json"} | ({"x-forwarded-for": address} if address else {})
    fn_index, skips = api_events(app_url)[api_name]
    values = iter(data)  # the browser sends every input, a State's as null; the API names only the others
    data = [None if skip else next(values) for skip in skips] + list(values)
    with httpx.Client(base_url=app_url, timeout=120) as http:
        session = uuid.uuid4().hex
        body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session}, allow_nan=True)
        joined = http.post("gradio_api/queue/join", content=body, headers=headers)
        if joined.status_code != 200:
            refused = AppError if joined.status_code < 500 else Unhandled
            raise refused(f"rejected with HTTP {joined.status_code}: {joined.text[:300]}")
        messages: list[dict] = []
        try:
            with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        messages.append(json.loads(line[5:]))
                        if messages[-1].get("msg") == "process_completed":
                            return messages
        except httpx.HTTPError as error:
            raise Unhandled(f"the stream broke ({error})") from None
    raise Unhandled("the stream ended without a result")


def raw_call(app_url: str, api_name: str, data: list, address: str | None = None) -> list[dict]:
    """`queue_call`, raising an AppError with the message when the event failed."""
    messages = queue_call(app_url, api_name, data, address)
    if not messages[-1]["success"]:
        raise AppError((messages[-1].get("output") or {}).get("error") or "")
    return messages


def raw_arguments(app_url: str, parameters: list[dict], arguments: dict, image: Path) -> list:
    """Arguments as a raw call's data list; file parameters get `image`, uploaded."""
    with httpx.Client(base_url=app_url, timeout=120) as http:
        return [upload(http, image) if is_file(p) and a is not None else a
                for p, a in zip(parameters, arguments.values())]


Tally = tuple[Counter[str], list[str], Counter[str]]  # outcome counts, the unhandled calls, seconds per endpoint


def each_endpoint(client, only: set[str] | None,
                  calls_for: Callable[[str, list[dict]], Iterable[tuple[str, Callable[[], Any]]]]) -> Tally:
    """Make the calls `calls_for(api_name, parameters)` gives, as (what, call), for each named endpoint (or those
    in `only`); each call is sorted by `outcome`, an unhandled one listed by its endpoint and what it sent."""
    results: Counter[str] = Counter()
    unhandled: list[str] = []
    seconds_by_endpoint: Counter[str] = Counter()
    for api_name, info in endpoints(client).items():
        if only is not None and api_name not in only:
            continue
        start = time.perf_counter()
        for what, call in calls_for(api_name, info["parameters"]):
            result = outcome(call)
            results[result.split(":")[0]] += 1
            if result.startswith("unhandled"):
                unhandled.append(f"{api_name}{what}: {result}")
        seconds_by_endpoint[api_name] = round(time.perf_counter() - start, 1)
    return results, unhandled, seconds_by_endpoint


def fuzz_endpoints(client, app_url: str, files: list[Path], image: Path, only: set[str] | None = None,
                   valid: dict | None = None) -> Tally:
    """Call each named endpoint (or those in `only`) with every hostile value of every parameter, the
    others left valid (`valid`'s value by name, else the cheapest)."""

    def hostile_calls(api_name: str, parameters: list[dict]) -> Iterator[tuple[str, Callable[[], Any]]]:
        for index, parameter in enumerate(parameters):
            cases = [(value, False) for value in hostile_values(parameter, files)]
            if parameter.get("type", {}).get("type") in ("number", "integer"):
                cases += [(value, True) for value in NON_FINITE]
            for value, raw in cases:
                arguments = base_arguments(parameters, image, valid or {})
                if raw:
                    data = raw_arguments(app_url, parameters, arguments, image)
                    data[index] = float(value)
                    call = functools.partial(raw_call, app_url, api_name, data)
                else:
                    arguments[parameter["parameter_name"]] = value
                    call = functools.partial(client.predict, **arguments, api_name=api_name)
                yield f"({parameter['parameter_name']}={str(value)[:40]!r})", call

    return each_endpoint(client, only, hostile_calls)


def is_choice(parameter: dict) -> bool:
    kind = parameter.get("type", {})
    return "enum" in kind or "enum" in kind.get("items", {})


def dirty(parameter: dict, value: Any) -> Any:
    """A valid value made dirty: free text gets DIRTY_TEXT; a table's text cells too, plus a row of NaN
    cells (what pandas gives for empty ones)."""
    if is_choice(parameter) or is_file(parameter):
        return value
    if isinstance(value, str):
        return value + DIRTY_TEXT
    if isinstance(value, dict) and isinstance(value.get("data"), list) and value["data"]:
        rows = [[cell + DIRTY_TEXT if isinstance(cell, str) else cell for cell in row] for row in value["data"]]
        return {**value, "data": rows + [[float("nan")] * len(rows[0])]}
    return value


def reports_replacement(messages: list[dict]) -> bool:
    return any(m.get("msg") == "log" and "replaced by" in m.get("log", "") for m in messages)


def dirty_requests(app_url: str, api_name: str, parameters: list[dict], data: list) -> list[tuple[str, Any]]:
    """(what, call) for one endpoint: its texts and tables dirty; its choices a lone surrogate (Gradio's own
    check quotes the value back); a 10 MB text. Each call raises as `outcome` expects."""

    def reported(values: list) -> None:
        messages = queue_call(app_url, api_name, values)
        if not reports_replacement(messages):
            raise Unhandled("the replaced lone surrogate was not reported")
        if not messages[-1]["success"]:
            raise AppError((messages[-1].get("output") or {}).get("error") or "")

    def refused_as_too_large(values: list) -> None:
        try:
            queue_call(app_url, api_name, values)
        except AppError as error:
            if "HTTP 413" in str(error):
                raise
            raise Unhandled(f"a 10 MB body: {error}") from None
        raise Unhandled("a 10 MB body was accepted")

    calls = []
    dirty_data = [dirty(p, v) for p, v in zip(parameters, data)]
    if dirty_data != data:
        calls.append(("dirty text", lambda: reported(dirty_data)))
    if any(is_choice(p) for p in parameters):
        surrogate = [("\ud800" if p.get("type", {}).get("type") == "string" else ["\ud800"]) if is_choice(p) else v
                     for p, v in zip(parameters, data)]
        calls.append(("choices a lone surrogate", lambda: reported(surrogate)))
    # Refused before it is read, so where the text sits does not matter: it rides as an extra value.
    calls.append(("10 MB of text", lambda: refused_as_too_large(data + [HUGE_TEXT])))
    return calls


def fuzz_dirty_requests(client, app_url: str, image: Path, only: set[str] | None = None,
                        valid: dict | None = None) -> Tally:
    """`dirty_requests` for each named endpoint (or those in `only`), sent raw as a browser would."""

    def dirty_calls(api_name: str, parameters: list[dict]) -> list[tuple[str, Callable[[], Any]]]:
        data = raw_arguments(app_url, parameters, base_arguments(parameters, image, valid or {}), image)
        return [(f" ({what})", call) for what, call in dirty_requests(app_url, api_name, parameters, data)]

    return each_endpoint(client, only, dirty_calls)
