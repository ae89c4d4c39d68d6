"""What the same sentence costs in tokens, per language and per tokenizer: one sentence (typed or from
FLORES-200) or the whole shipped FLORES subset, compared with a base language.

Counting policy (shown in the UI): by default a count is of the text alone. With `with_special`, each
tokenizer adds what it adds itself around any text (Gemma's <bos>, Mistral's <s>, CLIP's start and end;
tiktoken adds nothing), exactly as its own library does.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from playground.core import budget, checks
from playground.core.errors import PlaygroundError
from playground.core.registry import ModelSpec, Registry
from playground.core.settings import Limits
from playground.core.user_text import cell_text
from playground.tokenizers.backends import LoadedTokenizer
from playground.tokenizers.counts import METHODS, PER_SENTENCE, Progress, count_corpus, uncounted_sentences
from playground.tokenizers.flores import (CORPUS_CHOICES, SPLITS, Language, flores_languages,  # noqa: F401
                                          flores_sentences, language_named, splits_of)
from playground.tokenizers.loader import check_hub_id

MAX_PRICE = 10_000.0  # dollars per million tokens; far above any real price
MAX_CONTEXT = 100_000_000
MAX_LABEL_CHARS = 60


def flores_rows(names: Sequence[str], split: str, number: Any) -> list[list[str]]:
    """[language, text] rows: sentence `number` (1-based) of `split` in each named language."""
    if split not in SPLITS:
        raise PlaygroundError(f"Choose the FLORES split: {' or '.join(SPLITS)}.")
    languages = [_known_language(name) for name in (names or [])]
    if not languages:
        raise PlaygroundError("Choose at least one language.")
    count = len(flores_sentences(languages[0].code, split))
    index = checks.whole_number(number, "The sentence number", 1, count)
    return [[language.name, flores_sentences(language.code, split)[index - 1]] for language in languages]


def _known_language(name: str) -> Language:
    language = language_named(name)
    if language is None:
        raise PlaygroundError(f"Unknown language {str(name)[:60]!r}: the shipped FLORES corpus has no language of that "
                              f"name. Pick one of its {len(flores_languages())} languages from the list.")
    return language


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
    return checks.whole_number(value, "The context window (tokens)", 1, MAX_CONTEXT)


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


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise PlaygroundError(f"Choose the counting method: {' or '.join(METHODS)}.")
    return method


def _counted(tokenizers: Sequence[LoadedTokenizer], method: str, corpus: str, codes: Sequence[str],
             limits: Limits, counts_dir: Path | None, progress: Progress | None) -> dict[tuple[str, str], np.ndarray]:
    """The text-only counts, priced first: only sentences neither in memory nor on disk cost anything."""
    uncounted = uncounted_sentences(tokenizers, method, corpus, codes, counts_dir)
    budget.check(budget.tokenizing(uncounted), limits, "Counting this corpus",
                 "fewer tokenizers at once (those counted before cost nothing), or one split")
    return count_corpus(tokenizers, method, corpus, codes, counts_dir, progress)


def corpus_costs(tokenizers: Sequence[LoadedTokenizer], corpus: str, base: str, price: float,
                 with_special: bool, limits: Limits, method: str = PER_SENTENCE, counts_dir: Path | None = None,
                 progress: Progress | None = None) -> pd.DataFrame:
    """Every shipped FLORES language, all sentences of `corpus`: totals and premium per tokenizer. Per sentence,
    special tokens are added to each sentence; joined, once to the whole text."""
    splits, method = splits_of(corpus), _check_method(method)
    base_language = _known_language(base)
    codes = [language.code for language in flores_languages()]
    counted = _counted(tokenizers, method, corpus, codes, limits, counts_dir, progress)
    rows = []
    for tokenizer in tokenizers:
        special = len(tokenizer.added_special) if with_special else 0
        totals = {code: int(counted[tokenizer.name, code].sum()) + special * len(counted[tokenizer.name, code])
                  for code in codes}
        for language in flores_languages():
            chars = sum(language.sizes[split][0] for split in splits)
            size = sum(language.sizes[split][1] for split in splits)
            row = _cost_row(language.name, tokenizer.name, totals[language.code], totals[base_language.code], chars,
                            size, price)
            rows.append({"code": language.code, "script": language.script, **row})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class PremiumSpread:
    """How one language's per-sentence premiums spread: percentiles over the corpus's sentences."""

    language: str
    tokenizer: str
    sentences: int
    p5: float
    q1: float
    median: float
    q3: float
    p95: float
    corpus: float  # the corpus premium (total ÷ total), which the table shows


def premium_spread(tokenizers: Sequence[LoadedTokenizer], names: Sequence[str], corpus: str, base: str,
                   with_special: bool, limits: Limits, counts_dir: Path | None = None,
                   progress: Progress | None = None) -> list[PremiumSpread]:
    """Per chosen language and tokenizer, the premium of each sentence over the same sentence in the base
    language (per-sentence counts, shared with the table), summarised as percentiles."""
    splits_of(corpus)
    languages = list(dict.fromkeys(_known_language(name) for name in (names or [])))
    if not languages:
        raise PlaygroundError("Choose at least one language to show its spread.")
    if len(languages) > limits.max_languages:
        raise PlaygroundError(f"At most {limits.max_languages} languages at once; you chose {len(languages)}.")
    base_language = _known_language(base)
    codes = list(dict.fromkeys([base_language.code, *(language.code for language in languages)]))
    counted = _counted(tokenizers, PER_SENTENCE, corpus, codes, limits, counts_dir, progress)
    spreads = []
    for tokenizer in tokenizers:
        special = len(tokenizer.added_special) if with_special else 0
        base_counts = counted[tokenizer.name, base_language.code] + special
        for language in languages:
            counts = counted[tokenizer.name, language.code] + special
            premiums = counts / base_counts
            p5, q1, median, q3, p95 = np.percentile(premiums, [5, 25, 50, 75, 95])
            spreads.append(PremiumSpread(language.name, tokenizer.name, len(premiums), float(p5), float(q1),
                                         float(median), float(q3), float(p95),
                                         float(counts.sum() / base_counts.sum())))
    return spreads


def spread_table(spreads: Sequence[PremiumSpread]) -> pd.DataFrame:
    columns = {"language": "language", "tokenizer": "tokenizer", "sentences": "sentences", "p5": "5th pct",
               "q1": "25th pct", "median": "median", "q3": "75th pct", "p95": "95th pct", "corpus": "corpus premium"}
    frame = pd.DataFrame([vars(spread) for spread in spreads], columns=list(columns)).rename(columns=columns)
    return frame.round(3)


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
