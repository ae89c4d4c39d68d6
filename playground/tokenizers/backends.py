"""Tokenizers of many families behind one small interface: encode many texts, and tell the bytes of a token.

Each family keeps its own library (tiktoken, Hugging Face `tokenizers`, mistral-common, open_clip), so a
count here is the count that library gives. `with_special` means: what the tokenizer itself adds around
any text when asked to (`add_special_tokens=True`, Mistral's `bos=True`, CLIP's start/end markers).
"""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from playground.language.token_text import byte_level_decoder

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")  # SentencePiece byte fallback, e.g. <0xE1>
_SPACE_MARK = "\u2581"  # SentencePiece's visible space
_TEXTS_PER_THREAD = 32  # fewer texts than this per thread: one thread (starting threads costs more)


def byte_level_bytes(piece: str) -> bytes:
    decoder = byte_level_decoder()
    return bytes(decoder[char] for char in piece)


def sentencepiece_bytes(piece: str) -> bytes:
    match = _BYTE_PIECE.match(piece)
    if match:
        return bytes([int(match.group(1), 16)])
    return piece.replace(_SPACE_MARK, " ").encode("utf-8")


class Backend(Protocol):
    def encode_batch(self, texts: Sequence[str], with_special: bool) -> list[list[int]]: ...

    def token_bytes(self, token_id: int) -> bytes | None:
        """The token's bytes, or None for a control token (BOS, <|endoftext|>), shown by name instead."""

    def token_name(self, token_id: int) -> str: ...


@dataclass
class TiktokenBackend:
    encoding: Any  # tiktoken.Encoding
    special_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        self.special_ids = frozenset(self.encoding.encode_single_token(t) for t in self.encoding.special_tokens_set)

    def encode_batch(self, texts: Sequence[str], with_special: bool) -> list[list[int]]:
        # tiktoken adds nothing around a text; typed "<|endoftext|>" stays plain text, as in the API.
        # Its encode_ordinary_batch hands texts to its threads one at a time, which for sentences costs more
        # than encoding them (twice a plain loop's time on 2 cores): here each thread encodes a run of texts.
        texts = list(texts)
        workers = min(len(os.sched_getaffinity(0)), len(texts) // _TEXTS_PER_THREAD)
        if workers < 2:
            return [self.encoding.encode_ordinary(text) for text in texts]
        size = -(-len(texts) // workers)
        runs = [texts[start:start + size] for start in range(0, len(texts), size)]
        with ThreadPoolExecutor(workers) as pool:
            encoded = pool.map(lambda run: [self.encoding.encode_ordinary(text) for text in run], runs)
            return [ids for run in encoded for ids in run]

    def token_bytes(self, token_id: int) -> bytes | None:
        if token_id in self.special_ids:
            return None
        return self.encoding.decode_single_token_bytes(token_id)

    def token_name(self, token_id: int) -> str:
        return self.encoding.decode_single_token_bytes(token_id).decode("utf-8", "replace")


@dataclass
class HuggingFaceBackend:
    tokenizer: Any  # tokenizers.Tokenizer (the Rust tokenizer inside every "fast" Hugging Face tokenizer)
    byte_level: bool = False
    special_ids: frozenset[int] = frozenset()
    added_ids: frozenset[int] = frozenset()  # tokens added as whole strings (e.g. "<think>"), not BPE pieces

    @classmethod
    def wrap(cls, tokenizer: Any) -> "HuggingFaceBackend":
        # The decoder says how pieces map to text: "ByteLevel" (GPT-2 style) or SentencePiece-style.
        decoder = tokenizer.decoder.__getstate__() if tokenizer.decoder is not None else b""
        added = tokenizer.get_added_tokens_decoder()
        return cls(tokenizer, byte_level=b'"ByteLevel"' in decoder,
                   special_ids=frozenset(i for i, token in added.items() if token.special),
                   added_ids=frozenset(added))

    def encode_batch(self, texts: Sequence[str], with_special: bool) -> list[list[int]]:
        encodings = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=with_special)
        return [encoding.ids for encoding in encodings]

    def token_bytes(self, token_id: int) -> bytes | None:
        if token_id in self.special_ids:
            return None
        piece = self.tokenizer.id_to_token(token_id)
        if token_id in self.added_ids:
            return piece.encode("utf-8")
        return byte_level_bytes(piece) if self.byte_level else sentencepiece_bytes(piece)

    def token_name(self, token_id: int) -> str:
        return self.tokenizer.id_to_token(token_id) or str(token_id)


@dataclass
class MistralBackend:
    tokenizer: Any  # mistral_common SentencePieceTokenizer or Tekkenizer

    def encode_batch(self, texts: Sequence[str], with_special: bool) -> list[list[int]]:
        return [self.tokenizer.encode(text, bos=with_special, eos=False) for text in texts]

    def token_bytes(self, token_id: int) -> bytes | None:
        if self.tokenizer.is_special(token_id):
            return None
        if hasattr(self.tokenizer, "id_to_byte_piece"):  # Tekken: byte-level tokens
            return self.tokenizer.id_to_byte_piece(token_id)
        return sentencepiece_bytes(self.tokenizer.id_to_piece(token_id))

    def token_name(self, token_id: int) -> str:
        return self.tokenizer.id_to_piece(token_id)


@dataclass
class ClipBackend:
    tokenizer: Any  # open_clip SimpleTokenizer: lower-cases and cleans text, then byte-level BPE

    def encode_batch(self, texts: Sequence[str], with_special: bool) -> list[list[int]]:
        start, end = self.tokenizer.sot_token_id, self.tokenizer.eot_token_id
        encoded = [self.tokenizer.encode(text) for text in texts]
        return [[start, *ids, end] for ids in encoded] if with_special else encoded

    def token_bytes(self, token_id: int) -> bytes | None:
        if token_id in self.tokenizer.all_special_ids:
            return None
        piece = self.tokenizer.decoder[token_id]
        word_end = piece.endswith("</w>")  # CLIP marks the end of a word instead of the start
        return byte_level_bytes(piece.removesuffix("</w>")) + (b" " if word_end else b"")

    def token_name(self, token_id: int) -> str:
        return self.tokenizer.decoder[token_id]


@dataclass
class LoadedTokenizer:
    """A tokenizer the model cache owns, with its corpus counts (so evicting it frees them too)."""

    name: str
    backend: Backend
    origin: str  # where its files came from, shown in the UI
    digest: str = ""  # its files and libraries, hashed (loader.tokenizer_digest); "" = counts not kept on disk
    added_special: tuple[int, ...] = ()  # what `with_special` puts around every text
    # (method, split or corpus, FLORES code) -> text-only counts; see playground/tokenizers/counts.py
    corpus_counts: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    counts_read: set[str] = field(default_factory=set)  # methods whose counts on disk were read in
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.added_special = tuple(self.backend.encode_batch([""], with_special=True)[0])

    def torch_modules(self) -> list:
        return []

    def encode(self, text: str, with_special: bool) -> list[int]:
        return self.backend.encode_batch([text], with_special)[0]

    def count_batch(self, texts: Sequence[str], with_special: bool) -> np.ndarray:
        counts = np.fromiter((len(ids) for ids in self.backend.encode_batch(texts, False)), dtype=np.int64)
        return counts + len(self.added_special) if with_special else counts

    @property
    def added_special_names(self) -> str:
        return " ".join(self.backend.token_name(i) for i in self.added_special) or "none"
