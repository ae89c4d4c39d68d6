"""Reading the final number out of a model's answer, and comparing it with a reference.

Numbers are `Fraction`s, so "0.75", ".75", "3/4", "\\frac{3}{4}" and "$0.75" compare equal and nothing is lost
to floats.
An explicit final-answer marker ("The answer is", "####", "Answer:", "\\boxed{") wins; without one the
last number in the text is taken, which is how chain-of-thought answers usually end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

from playground.core.errors import PlaygroundError

# "$1,234.50", "-3", "−3", "2.5", ".5", "3/4", "1,000"; not part of a word ("x2") or of a longer number.
# More than 30 digits in a row is nonsense, not a number worth scoring (and keeps int() cheap).
_PLAIN_NUMBER = (
    r"(?<![\w./])(?P<sign>[-−]?)\$?\s?(?P<sign2>[-−]?)"
    r"(?:(?P<whole>\d{1,3}(?:,\d{3})+(?!\d)|\d{1,30}(?!\d))(?P<decimals>\.\d{1,30}(?!\d))?"
    r"|(?P<bare_decimals>\.\d{1,30}(?!\d)))"  # ".5": a decimal without its leading zero
    r"(?:/(?P<denominator>\d{1,30})(?![\d.]\d))?"
)
_NUMBER = re.compile(_PLAIN_NUMBER)
# LaTeX fractions as models write them in maths answers: "\frac{3}{4}", "-\dfrac{1}{2}", "\tfrac{7}{8}".
_LATEX_FRACTION = (
    r"(?P<latex_sign>[-−]?)\s?\\[dt]?frac\{\s*(?P<numerator>\d{1,30})\s*\}\{\s*(?P<latex_denominator>\d{1,30})\s*\}"
)
# One alternation, so the digits inside a \frac are never read again as numbers of their own.
_ANSWER_NUMBER = re.compile(f"{_LATEX_FRACTION}|{_PLAIN_NUMBER}")
_MARKER = re.compile(
    r"####|\bthe (?:final )?answer is\b|\bfinal answer\s*[:：]|\banswer\s*[:：]|\\boxed\{", re.IGNORECASE
)
# The marker's statement ends at a line break or a full stop followed by a space (not "2.5").
_STATEMENT_END = re.compile(r"\n|\.(?:\s|$)")


@dataclass(frozen=True)
class ExtractedAnswer:
    value: Fraction | None
    number_text: str  # the characters the number was read from, e.g. "$1,234.50"
    how: str  # "after 'The answer is'", "last number", or "no number found"


def _to_fraction(match: re.Match) -> Fraction | None:
    if match.re is _ANSWER_NUMBER and match["numerator"] is not None:
        if int(match["latex_denominator"]) == 0:
            return None
        value = Fraction(int(match["numerator"]), int(match["latex_denominator"]))
        return -value if match["latex_sign"] else value
    if match["bare_decimals"] is not None:
        value = Fraction("0" + match["bare_decimals"])
    else:
        value = Fraction(match["whole"].replace(",", "") + (match["decimals"] or ""))
    if match["denominator"] is not None:
        if match["decimals"] or match["bare_decimals"] or int(match["denominator"]) == 0:
            return None  # "2.5/3" or "3/0": not a number a person would write as an answer
        value /= int(match["denominator"])
    return -value if (match["sign"] or match["sign2"]) else value


def _numbers(text: str) -> list[tuple[re.Match, Fraction]]:
    found = []
    for match in _ANSWER_NUMBER.finditer(text):
        value = _to_fraction(match)
        if value is not None:
            found.append((match, value))
    return found


def _number_after_marker(statement: str) -> tuple[re.Match, Fraction] | None:
    """The number a marker introduces: the result after the last '=' if it shows working, else the first."""
    tail = statement.rsplit("=", 1)[-1]
    numbers = _numbers(tail)
    return numbers[0] if numbers else None


def extract_answer(text: str) -> ExtractedAnswer:
    """The final number in a model's answer (see the module docstring for the rules)."""
    for marker in reversed(list(_MARKER.finditer(text))):
        rest = text[marker.end():]
        end = _STATEMENT_END.search(rest)
        found = _number_after_marker(rest[: end.start() if end else len(rest)])
        if found is not None:
            match, value = found
            return ExtractedAnswer(value, match.group().strip(), f"after '{marker.group().strip()}'")
    numbers = _numbers(text)
    if numbers:
        match, value = numbers[-1]
        return ExtractedAnswer(value, match.group().strip(), "last number")
    return ExtractedAnswer(None, "", "no number found")


def parse_reference(text: str | int | float | None) -> Fraction | None:
    """A reference answer typed by a person: one number, or nothing (then answers are not scored)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise PlaygroundError(f"The reference answer must be a number, got {type(text).__name__}.")
    shown = str(text).strip()
    match = _NUMBER.fullmatch(shown)
    value = _to_fraction(match) if match else None
    if value is None:
        raise PlaygroundError(
            f"The reference answer must be one number such as 72, -3, 2.5, $1,234.50 or 3/4; got {shown[:40]!r}."
        )
    return value


def format_number(value: Fraction | None) -> str:
    """72, -3, 2.5 or 1/3: a decimal when it is exact, otherwise a fraction."""
    if value is None:
        return "—"
    if value.denominator == 1:
        return str(value.numerator)
    denominator = value.denominator
    for factor in (2, 5):
        while denominator % factor == 0:
            denominator //= factor
    if denominator != 1:  # not a finite decimal, e.g. 1/3
        return str(value)
    with localcontext() as exact:
        exact.prec = 80  # enough for any number the extractor reads (at most 30 + 30 digits)
        return format(Decimal(value.numerator) / Decimal(value.denominator), "f")
