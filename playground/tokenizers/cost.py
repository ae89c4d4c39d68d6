"""What the same sentence costs in tokens, per language and per tokenizer: one sentence (typed or from
FLORES-200) or the whole shipped FLORES subset, compared with a base language.

Counting policy (shown in the UI): by default a count is of the text alone. With `with_special`, each
tokenizer adds what it adds itself around any text (Gemma's <bos>, Mistral's <s>, CLIP's start and end;
tiktoken adds nothing), exactly as its own library does.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from playground.core import budget
from playground.core.errors import PlaygroundError
from playground.core.paths import ASSETS
from playground.core.registry import ModelSpec, Registry
from playground.core.settings import Limits
from playground.core.stopping import check_wanted
from playground.core.user_text import cell_text
from playground.tokenizers.backends import LoadedTokenizer
from playground.tokenizers.loader import check_hub_id

FLORES_DIR = ASSETS / "flores"
SPLITS = ("dev", "devtest")
CORPUS_CHOICES = ("dev", "devtest", "dev+devtest")
MAX_PRICE = 10_000.0  # dollars per million tokens; far above any real price
MAX_CONTEXT = 100_000_000
MAX_LABEL_CHARS = 60


@dataclass(frozen=True)
class Language:
    code: str  # FLORES code, e.g. mya_Mymr
    name: str  # what the UI shows, e.g. Burmese
    script: str


@cache
def flores_languages() -> tuple[Language, ...]:
    with open(FLORES_DIR / "languages.csv", encoding="utf-8") as handle:
        return tuple(Language(row["code"], row["language"], row["script"]) for row in csv.DictReader(handle))


def language_named(name: str) -> Language | None:
    return next((language for language in flores_languages() if language.name == name), None)


@cache
def flores_sentences(code: str, split: str) -> tuple[str, ...]:
    with gzip.open(FLORES_DIR / split / f"{code}.{split}.gz", "rt", encoding="utf-8") as handle:
        return tuple(line.rstrip("\n") for line in handle)


@cache
def _corpus_size(code: str, split: str) -> tuple[int, int]:
    """Characters and UTF-8 bytes of one FLORES file (sentences only, no line breaks)."""
    sentences = flores_sentences(code, split)
    return sum(map(len, sentences)), sum(len(s.encode("utf-8")) for s in sentences)


def flores_rows(names: Sequence[str], split: str, number: Any) -> list[list[str]]:
    """[language, text] rows: sentence `number` (1-based) of `split` in each named language."""
    if split not in SPLITS:
        raise PlaygroundError(f"Choose the FLORES split: {' or '.join(SPLITS)}.")
    languages = [_known_language(name) for name in (names or [])]
    if not languages:
        raise PlaygroundError("Choose at least one language.")
    count = len(flores_sentences(languages[0].code, split))
    index = _whole_number(number, "Sentence number", 1, count)
    return [[language.name, flores_sentences(language.code, split)[index - 1]] for language in languages]


def _known_language(name: str) -> Language:
    language = language_named(name)
    if language is None:
        names = ", ".join(language.name for language in flores_languages())
        raise PlaygroundError(f"Unknown language {str(name)[:60]!r}. The shipped FLORES languages are: {names}.")
    return language


def _whole_number(value: Any, what: str, lowest: int, highest: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlaygroundError(f"{what} must be a whole number from {lowest} to {highest}.") from None
    if not math.isfinite(number) or number != int(number) or not lowest <= number <= highest:
        raise PlaygroundError(f"{what} must be a whole number from {lowest} to {highest}.")
    return int(number)


def check_rows(rows: Any, limits: Limits) -> list[tuple[str, str]]:
    """(language, text) pairs from the editable table; blank rows are skipped, anything odd explained."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.values.tolist()
    pairs: list[tuple[str, str]] = []
    for number, row in enumerate(rows or [], start=1):
        cells = [cell_text(cell) for cell in row]
        if any(cell.strip() for cell in cells[2:]):
            raise PlaygroundError(
                f"The table has two columns, a language and its text; row {number} has {len(cells)} cells."
            )
        label, text = (cells + ["", ""])[:2]
        label, text = label.strip(), text.strip()
        if not label and not text:
            continue
        if not label or not text:
            raise PlaygroundError(f"Each row needs a language and its text (row {number} has only one).")
        if len(label) > MAX_LABEL_CHARS:
            raise PlaygroundError(f"A language name is at most {MAX_LABEL_CHARS} characters.")
        if len(text) > limits.max_sentence_chars:
            raise PlaygroundError(
                f"The {label[:MAX_LABEL_CHARS]} text has {len(text):,} characters; the limit is "
                f"{limits.max_sentence_chars:,}. Use the corpus view for long texts."
            )
        if any(label == seen for seen, _ in pairs):
            raise PlaygroundError(f"{label!r} appears twice; give each row its own language name.")
        pairs.append((label, text))
    if not pairs:
        raise PlaygroundError("Enter at least one language and its text (or load a FLORES sentence).")
    if len(pairs) > limits.max_languages:
        raise PlaygroundError(f"At most {limits.max_languages} languages at once; you entered {len(pairs)}.")
    return pairs


def check_price(value: Any) -> float:
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise PlaygroundError("The price must be a number of dollars per million tokens.") from None
    if not math.isfinite(price) or not 0 <= price <= MAX_PRICE:
        raise PlaygroundError(f"The price must be between 0 and {MAX_PRICE:,.0f} dollars per million tokens.")
    return price


def check_context(value: Any) -> int:
    return _whole_number(value, "The context window (tokens)", 1, MAX_CONTEXT)


def tokenizer_specs(registry: Registry, names: Sequence[str] | None, hub_id: str | None,
                    limits: Limits) -> list[ModelSpec]:
    """The chosen registered tokenizers, plus one typed Hub id (validated; matched to a registered one)."""
    specs = [registry.get("tokenizer", name) for name in dict.fromkeys(names or []) if name]
    if hub_id and hub_id.strip():
        repo_id = check_hub_id(hub_id)
        registered = next((s for s in registry.specs("tokenizer") if s.source == f"hf:{repo_id}"), None)
        typed = registered or ModelSpec("tokenizer", f"{repo_id} (Hub)", f"hf:{repo_id}", "typed by a person")
        if all(spec.source != typed.source for spec in specs):
            specs.append(typed)
    if not specs:
        raise PlaygroundError("Choose at least one tokenizer (or type a Hugging Face Hub tokenizer id).")
    if len(specs) > limits.max_tokenizers:
        raise PlaygroundError(f"At most {limits.max_tokenizers} tokenizers at once; you chose {len(specs)}.")
    return specs


def text_of(pairs: Sequence[tuple[str, str]], language: str) -> str:
    for label, text in pairs:
        if label == language:
            return text
    raise PlaygroundError(f"{str(language)[:MAX_LABEL_CHARS]!r} has no row in the sentence table.")


def _base_index(labels: Sequence[str], base: str) -> int:
    if base not in labels:
        raise PlaygroundError(f"The base language {str(base)[:60]!r} has no row in the table; add it or pick another.")
    return list(labels).index(base)


def sentence_costs(tokenizers: Sequence[LoadedTokenizer], pairs: Sequence[tuple[str, str]], base: str,
                   price: float, context: int, with_special: bool) -> pd.DataFrame:
    """One row per (language, tokenizer): tokens, premium over the base language, and what they cost."""
    labels, texts = [label for label, _ in pairs], [text for _, text in pairs]
    base_at = _base_index(labels, base)
    rows = []
    for tokenizer in tokenizers:
        counts = tokenizer.count_batch(texts, with_special)
        for label, text, tokens in zip(labels, texts, counts):
            row = _cost_row(label, tokenizer.name, int(tokens), int(counts[base_at]), len(text),
                            len(text.encode("utf-8")), price)
            rows.append(row | {"% of context": round(100 * tokens / context, 3)})
    return pd.DataFrame(rows)


def _cost_row(language: str, tokenizer: str, tokens: int, base_tokens: int, chars: int, size: int,
              price: float) -> dict[str, Any]:
    return {
        "language": language,
        "tokenizer": tokenizer,
        "tokens": tokens,
        "premium ×": round(tokens / base_tokens, 2) if base_tokens else None,
        "characters": chars,
        "chars/token": round(chars / tokens, 2) if tokens else None,
        "bytes/token": round(size / tokens, 2) if tokens else None,
        "$ per 1M chars": round(price * tokens / chars, 2) if chars else None,
    }


def corpus_costs(tokenizers: Sequence[LoadedTokenizer], corpus: str, base: str, price: float,
                 with_special: bool, limits: Limits) -> pd.DataFrame:
    """Every shipped FLORES language, all sentences of `corpus`: totals and premium per tokenizer."""
    if corpus not in CORPUS_CHOICES:
        raise PlaygroundError(f"Choose the corpus: {', '.join(CORPUS_CHOICES)}.")
    base_language = _known_language(base)
    splits = SPLITS if corpus == "dev+devtest" else (corpus,)
    uncounted = sum(len(flores_sentences(language.code, split)) for tokenizer in tokenizers
                    for language in flores_languages() for split in splits
                    if (split, language.code) not in tokenizer.corpus_counts)
    budget.check(budget.tokenizing(uncounted), limits, "Counting this corpus",
                 "fewer tokenizers at once (those counted before cost nothing), or one split")
    rows = []
    for tokenizer in tokenizers:
        totals = {language.code: _corpus_tokens(tokenizer, language.code, splits, with_special)
                  for language in flores_languages()}
        for language in flores_languages():
            chars = sum(_corpus_size(language.code, split)[0] for split in splits)
            size = sum(_corpus_size(language.code, split)[1] for split in splits)
            row = _cost_row(language.name, tokenizer.name, totals[language.code], totals[base_language.code], chars,
                            size, price)
            rows.append({"code": language.code, "script": language.script, **row})
    return pd.DataFrame(rows)


def _corpus_tokens(tokenizer: LoadedTokenizer, code: str, splits: Sequence[str], with_special: bool) -> int:
    total = 0
    for split in splits:
        check_wanted()
        sentences = flores_sentences(code, split)
        total += int(tokenizer.corpus_counts_for((split, code), sentences).sum())
        total += len(tokenizer.added_special) * len(sentences) if with_special else 0
    return total


def premium_table(costs: pd.DataFrame) -> pd.DataFrame:
    """Languages down, tokenizers across, premium in the cells; most expensive languages first."""
    table = costs.pivot_table(index=["language", "script"], columns="tokenizer", values="premium ×", sort=False)
    table = table[list(dict.fromkeys(costs["tokenizer"]))]
    table = table.sort_values(list(table.columns)[0], ascending=False)
    return table.reset_index()


def costs_csv(costs: pd.DataFrame) -> str:
    buffer = io.StringIO()
    costs.to_csv(buffer, index=False)
    return buffer.getvalue()
