"""Token counts of the shipped FLORES corpus, per tokenizer and counting method, counted once and kept on disk.

Two methods:
- "per sentence": every sentence encoded on its own, so each sentence has a count (and the spread of
  per-sentence premiums can be shown);
- "joined corpus", the method of Petrov et al. 2023 ("Language Model Tokenizers Introduce Unfairness
  Between Languages", github.com/AleksandarPetrov/tokenization-fairness, compute/compute_tokenizations.py):
  each file's text split at "\n" (so an empty item after its final line break), the dev and devtest items
  joined by single spaces, and the whole encoded once.

The two differ by a few tokens per sentence: joined, a sentence's first word follows a space (" The"
is often one token where "The" at the start of a text is another), and the space between two sentences
can be a token of its own. That is up to 1.8% of the total for Chinese and Japanese.

Counts live on the loaded tokenizer (the cache owns it) and on disk under `<cache_dir>/token-counts/`, in a
file named by the tokenizer's digest (a hash of its files and the counting libraries' versions), a hash
of the shipped corpus and the method. A restart reads them back in milliseconds; a changed tokenizer file
or corpus is counted afresh.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from playground.core.stopping import check_wanted
from playground.tokenizers.backends import LoadedTokenizer
from playground.tokenizers.flores import FLORES_DIR, flores_sentences, splits_of

PER_SENTENCE = "per sentence"
JOINED = "joined corpus"
METHODS = (PER_SENTENCE, JOINED)
JOINED_BATCH = 8  # languages per batch call in the joined method: enough for the libraries' threads
Progress = Callable[[float, str], None]


def counts_folder(cache_dir: Path) -> Path:
    """Where counts are kept: a folder of the app's cache (Settings.cache_dir)."""
    return cache_dir / "token-counts"


@cache
def corpus_digest() -> str:
    """A hash of the shipped corpus: of SHA256SUMS, which holds every file's hash (a test checks it does)."""
    return hashlib.sha256((FLORES_DIR / "SHA256SUMS").read_bytes()).hexdigest()


def store_path(folder: Path, tokenizer: LoadedTokenizer, method: str) -> Path:
    slug = "joined" if method == JOINED else "sentences"
    return folder / f"{tokenizer.digest[:24]}-{corpus_digest()[:16]}-{slug}.npz"


def _entry(method: str, part: str, code: str) -> tuple[str, str, str]:
    return method, part, code


def _read_persisted(tokenizer: LoadedTokenizer, method: str, folder: Path | None) -> None:
    """Counts on disk join the ones in memory, once per tokenizer and method."""
    if folder is None or not tokenizer.digest or method in tokenizer.counts_read:
        return
    path = store_path(folder, tokenizer, method)
    found: dict[tuple[str, str, str], np.ndarray] = {}
    if path.exists():
        try:
            with np.load(path) as stored:
                for key in stored.files:
                    part, code = key.split("/")
                    found[_entry(method, part, code)] = stored[key]
        except (OSError, ValueError, KeyError):  # a damaged file is counted afresh and overwritten
            found = {}
    with tokenizer.lock:
        for key, counts in found.items():
            tokenizer.corpus_counts.setdefault(key, counts)
        tokenizer.counts_read.add(method)


def _write_persisted(tokenizer: LoadedTokenizer, method: str, folder: Path | None) -> None:
    """Everything counted by this method so far, written whole and renamed into place (never half a file)."""
    if folder is None or not tokenizer.digest:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with tokenizer.lock:
        arrays = {f"{part}/{code}": counts for (kind, part, code), counts in tokenizer.corpus_counts.items()
                  if kind == method}
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)
            os.replace(temporary, store_path(folder, tokenizer, method))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _parts(method: str, corpus: str) -> tuple[str, ...]:
    """Per sentence, each split is counted once and reused by every corpus; joined, each corpus is one text."""
    return splits_of(corpus) if method == PER_SENTENCE else (corpus,)


def _part_sentences(part: str, code: str) -> int:
    return sum(len(flores_sentences(code, split)) for split in splits_of(part))


def uncounted_sentences(tokenizers: Sequence[LoadedTokenizer], method: str, corpus: str, codes: Sequence[str],
                        folder: Path | None) -> int:
    """Sentences still to encode (the budget's unit), after reading what the disk holds."""
    total = 0
    for tokenizer in tokenizers:
        _read_persisted(tokenizer, method, folder)
        total += sum(_part_sentences(part, code) for part in _parts(method, corpus) for code in codes
                     if _entry(method, part, code) not in tokenizer.corpus_counts)
    return total


def joined_text(code: str, corpus: str) -> str:
    """Petrov et al.'s text: each file's `read().split('\\n')` (its final line break leaves an empty item),
    dev before devtest, joined by single spaces."""
    items: list[str] = []
    for split in splits_of(corpus):
        items += [*flores_sentences(code, split), ""]
    return " ".join(items)


def count_corpus(tokenizers: Sequence[LoadedTokenizer], method: str, corpus: str, codes: Sequence[str],
                 folder: Path | None, progress: Progress | None = None) -> dict[tuple[str, str], np.ndarray]:
    """(tokenizer name, code) -> the text-only counts: one per sentence (dev before devtest), or one for the
    joined corpus. What is missing is counted with the library's batch call, checking between batches
    that the request is still wanted, and written to disk."""
    todo = {tokenizer.name: [(part, code) for part in _parts(method, corpus) for code in codes
                             if _entry(method, part, code) not in tokenizer.corpus_counts] for tokenizer in tokenizers}
    total, done = sum(map(len, todo.values())), 0
    batch = JOINED_BATCH if method == JOINED else 1
    for tokenizer in tokenizers:
        mine = todo[tokenizer.name]
        try:
            for start in range(0, len(mine), batch):
                check_wanted()
                if progress is not None:
                    progress(done / total, f"Counting {tokenizer.name}, {method} (once; then kept on disk)…")
                _count(tokenizer, method, mine[start:start + batch])
                done += len(mine[start:start + batch])
        finally:  # what was counted before a Stop is kept too
            if mine:
                _write_persisted(tokenizer, method, folder)
    counts: dict[tuple[str, str], np.ndarray] = {}
    for tokenizer in tokenizers:
        for code in codes:
            counts[tokenizer.name, code] = np.concatenate(
                [tokenizer.corpus_counts[_entry(method, part, code)] for part in _parts(method, corpus)])
    return counts


def _count(tokenizer: LoadedTokenizer, method: str, items: list[tuple[str, str]]) -> None:
    if method == PER_SENTENCE:
        found = [tokenizer.count_batch(flores_sentences(code, part), with_special=False) for part, code in items]
    else:
        found = [counts[None] for counts in
                 tokenizer.count_batch([joined_text(code, part) for part, code in items], with_special=False)]
    with tokenizer.lock:
        for (part, code), counts in zip(items, found):
            tokenizer.corpus_counts[_entry(method, part, code)] = counts.astype(np.int32)

