"""The tokens themselves, as a person should see them: each token's text and id, and for a token that is
only part of a character (common in Burmese, Amharic, emoji) its raw bytes, e.g. <0xE1 0x80>, never
a replacement character pretending to be text."""

from __future__ import annotations

import html
from dataclasses import dataclass

from playground.tokenizers.backends import LoadedTokenizer

COLOURS = ("#fde68a", "#bfdbfe", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa")


@dataclass(frozen=True)
class TokenPiece:
    token_id: int
    shown: str  # text, or <0x..> for bytes that are not whole characters, or a control token's name
    kind: str  # "text", "bytes" (only part of a character) or "special"


def readable_bytes(data: bytes) -> str:
    """UTF-8 text where the bytes form whole characters; every other run of bytes as <0xE1 0x80>."""
    parts: list[str] = []
    loose: list[int] = []
    while data:
        try:
            text, bad, data = data.decode("utf-8"), b"", b""
        except UnicodeDecodeError as error:
            text, bad, data = data[:error.start].decode("utf-8"), data[error.start:error.end], data[error.end:]
        if text:
            if loose:
                parts.append("<" + " ".join(f"0x{byte:02X}" for byte in loose) + ">")
                loose = []
            parts.append(text)
        loose.extend(bad)
    if loose:
        parts.append("<" + " ".join(f"0x{byte:02X}" for byte in loose) + ">")
    return "".join(parts)


def token_pieces(tokenizer: LoadedTokenizer, text: str, with_special: bool) -> list[TokenPiece]:
    pieces = []
    for token_id in tokenizer.encode(text, with_special):
        data = tokenizer.backend.token_bytes(token_id)
        if data is None:
            pieces.append(TokenPiece(token_id, tokenizer.backend.token_name(token_id), "special"))
            continue
        shown = readable_bytes(data)
        pieces.append(TokenPiece(token_id, shown, "text" if shown == data.decode("utf-8", "replace") else "bytes"))
    return pieces


def _span(piece: TokenPiece, colour: str) -> str:
    shown = html.escape(piece.shown.replace("\n", "↵"))
    border = {"bytes": "1px dashed #b45309", "special": "1px solid #6b7280"}.get(piece.kind, "1px solid transparent")
    style = (f"background:{colour};color:#111;border:{border};border-radius:3px;padding:1px 2px;margin:1px;"
             "display:inline-block;white-space:pre;font-family:ui-monospace,monospace")
    return (f'<span class="token token-{piece.kind}" style="{style}" title="id {piece.token_id}">{shown}'
            f'<sub style="color:#555;font-size:0.7em;margin-left:2px">{piece.token_id}</sub></span>')


def token_view_html(tokenizer: LoadedTokenizer, language: str, text: str, base: str, base_text: str,
                    with_special: bool, max_tokens: int) -> str:
    """One tokenizer's tokens for `text`, headed by its count and premium over the base language."""
    pieces = token_pieces(tokenizer, text, with_special)
    base_count = len(tokenizer.encode(base_text, with_special))
    shown = "".join(_span(piece, COLOURS[i % len(COLOURS)]) for i, piece in enumerate(pieces[:max_tokens]))
    partial = sum(piece.kind == "bytes" for piece in pieces)
    premium = f" = {len(pieces) / base_count:.2f}× {html.escape(base)} ({base_count})" if base_count else ""
    note = f"; {partial} are only part of a character (dashed: their raw bytes)" if partial else ""
    more = f"; first {max_tokens} shown" if len(pieces) > max_tokens else ""
    return (f'<div class="token-view"><p><b>{html.escape(tokenizer.name)}</b>: {html.escape(language)} '
            f"{len(pieces)} tokens{premium}{note}{more}</p><div>{shown}</div></div>")
