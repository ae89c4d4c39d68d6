"""The teaching layer's data: per tab, a short explanation and presets from the lecture notes.

Lessons live in `assets/lessons.toml`. A preset names one of its tab's endpoints (its `api_name`) and
values for that endpoint's parameters, by the parameter names `gradio_client` uses; parameters it
leaves out keep their defaults. The same names make deep links: `?tab=sampling&preset=greedy` or
`?tab=sampling&temperature=0.7&prompt=Hello`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlencode

from playground.core.paths import REPO

LESSONS_FILE = REPO / "assets" / "lessons.toml"


@dataclass(frozen=True)
class Preset:
    id: str
    label: str
    shows: str  # one sentence: what this example demonstrates
    endpoint: str  # api_name of the tab's event that runs it, e.g. "/next_token"
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lesson:
    tab: str
    explanation: str
    presets: tuple[Preset, ...]

    def preset(self, preset_id: str) -> Preset | None:
        return next((p for p in self.presets if p.id == preset_id), None)


def _with_files(values: Mapping[str, Any]) -> dict[str, Any]:
    """Shipped files are written `assets/...` in the lessons; the app needs their absolute path."""
    return {
        name: str(REPO / value) if isinstance(value, str) and value.startswith("assets/") else value
        for name, value in values.items()
    }


def is_shipped_file(value: Any) -> bool:
    """Whether a preset value names a shipped file (what `_with_files` made of `assets/...`)."""
    return isinstance(value, str) and Path(value).is_relative_to(REPO / "assets")


def load_lessons(path: Path = LESSONS_FILE) -> dict[str, Lesson]:
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    return {
        tab: Lesson(
            tab=tab,
            explanation=entry["explanation"].strip(),
            presets=tuple(
                Preset(**{**preset, "values": _with_files(preset.get("values", {}))})
                for preset in entry.get("presets", [])
            ),
        )
        for tab, entry in raw.items()
    }


def deep_link_query(tab: str, values: Mapping[str, Any] | None = None, preset: str | None = None) -> str:
    """`?tab=...&preset=...` or `?tab=...&name=value...` for a shareable link."""
    query: dict[str, Any] = {"tab": tab}
    if preset:
        query["preset"] = preset
    for name, value in (values or {}).items():
        query[name] = str(value).lower() if isinstance(value, bool) else value
    return "?" + urlencode(query)
