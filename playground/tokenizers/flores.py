"""The shipped FLORES-200 corpus (assets/flores, written by scripts/ship_flores.py): every language's dev and
devtest sentences, gzip-compressed, and the language list (code, name, script, each split's size). Line n of
every file is the same sentence."""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from functools import cache

from playground.core.errors import PlaygroundError
from playground.core.paths import ASSETS

FLORES_DIR = ASSETS / "flores"
SPLITS = ("dev", "devtest")
CORPUS_CHOICES = ("dev", "devtest", "dev+devtest")


@dataclass(frozen=True, eq=False)
class Language:
    code: str  # FLORES code, e.g. mya_Mymr
    name: str  # what the UI shows, e.g. Burmese
    script: str
    sizes: dict[str, tuple[int, int]]  # split -> (characters, UTF-8 bytes) of its sentences, no line breaks


@cache
def flores_languages() -> tuple[Language, ...]:
    with open(FLORES_DIR / "languages.csv", encoding="utf-8") as handle:
        return tuple(Language(row["code"], row["language"], row["script"],
                              {split: (int(row[f"{split}_chars"]), int(row[f"{split}_bytes"])) for split in SPLITS})
                     for row in csv.DictReader(handle))


def language_named(name: str) -> Language | None:
    return _by_name().get(name)


@cache
def _by_name() -> dict[str, Language]:
    return {language.name: language for language in flores_languages()}


@cache
def flores_sentences(code: str, split: str) -> tuple[str, ...]:
    with gzip.open(FLORES_DIR / split / f"{code}.{split}.gz", "rt", encoding="utf-8") as handle:
        return tuple(line.rstrip("\n") for line in handle)


def splits_of(corpus: str) -> tuple[str, ...]:
    if corpus not in CORPUS_CHOICES:
        raise PlaygroundError(f"Choose the corpus: {', '.join(CORPUS_CHOICES)}.")
    return SPLITS if corpus == "dev+devtest" else (corpus,)
