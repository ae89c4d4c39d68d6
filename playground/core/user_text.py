"""Text a visitor sends: made valid Unicode on the way in, escaped where it is shown back as Markdown.

On the way in, only lone surrogates are replaced: they are the one kind of code point that a JSON string
can carry ("\\ud800") but UTF-8 cannot encode, so tokenizers, files and the server's own reply fail on
them. NUL, other control characters and noncharacters are valid Unicode; every path carries them (the
fuzz test sends them), and the tokenizer tab counts exactly what was typed, so they are kept.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

REPLACEMENT = "\ufffd"  # what Unicode prescribes for a code point that cannot be read
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Markdown punctuation that could start a link, an image, emphasis or a heading when a value is echoed.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def replace_invalid(value: Any) -> tuple[Any, int]:
    """`value` with every lone surrogate in its strings replaced by U+FFFD, however deeply they sit in
    lists, tuples and dicts (tables arrive as {"headers": ..., "data": [[...]]}); and how many there were."""
    if isinstance(value, str):
        cleaned, count = _LONE_SURROGATE.subn(REPLACEMENT, value)
        return cleaned, count
    if isinstance(value, (list, tuple)):
        items = [replace_invalid(item) for item in value]
        return type(value)(item for item, _ in items), sum(count for _, count in items)
    if isinstance(value, dict):
        pairs = [(replace_invalid(key), replace_invalid(item)) for key, item in value.items()]
        return {key: item for (key, _), (item, _) in pairs}, sum(k + i for (_, k), (_, i) in pairs)
    return value, 0


def replaced_note(count: int) -> str:
    """What a person is told when their text had code points that could not be read."""
    characters = "character" if count == 1 else "characters"
    return (f"{count} {characters} of your input could not be read (invalid Unicode: a lone surrogate) "
            f"and {'was' if count == 1 else 'were'} replaced by {REPLACEMENT}.")


def markdown_text(value: object) -> str:
    """A visitor's text to put inside Markdown: shown as typed, never as a tag, link or image."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False))


def cell_text(cell: Any) -> str:
    """A table cell as text: empty where the value is missing (None, or NaN, pandas' empty cell)."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return ""
    return str(cell)
