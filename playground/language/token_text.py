"""Tokens as a person can read them: spaces and newlines visible, lone byte pieces shown as bytes.

A byte-level BPE token (GPT-2, SmolLM2, Llama 3, Qwen) can hold part of a UTF-8 character; decoding
it alone gives the replacement character "\ufffd", which hides what the model actually predicted.
Such tokens are shown as their bytes, e.g. `<E2 80>`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from transformers import PreTrainedTokenizerBase

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # sentencepiece byte fallback, e.g. <0x0A>


@lru_cache(maxsize=1)
def byte_level_decoder() -> dict[str, int]:
    """GPT-2's reversible map from printable characters back to the bytes they stand for."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes)}


def token_bytes(tokenizer: PreTrainedTokenizerBase, token_id: int) -> bytes | None:
    """The raw bytes a token stands for, when its vocabulary piece says so (byte-level or <0xNN>)."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if not isinstance(piece, str):
        return None
    if match := _BYTE_PIECE.fullmatch(piece):
        return bytes([int(match.group(1), 16)])
    decoder = byte_level_decoder()
    if all(char in decoder for char in piece):
        return bytes(decoder[char] for char in piece)
    return None


def visible(text: str) -> str:
    """Whitespace and control characters made visible."""
    return "".join(_VISIBLE.get(char, f"\\x{ord(char):02x}" if ord(char) < 32 or ord(char) == 127 else char)
                   for char in text)


def readable_token(tokenizer: PreTrainedTokenizerBase, token_id: int) -> str:
    """One token as a short label: `␣the`, `↵`, `<|im_end|>`, or `<E2 80>` for a partial character."""
    text = tokenizer.decode([int(token_id)], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if text and "\ufffd" not in text:
        return visible(text)
    raw = token_bytes(tokenizer, token_id)
    if raw is None:
        return visible(text) or f"<id {int(token_id)}>"
    try:
        return visible(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "<" + " ".join(f"{byte:02X}" for byte in raw) + ">"
