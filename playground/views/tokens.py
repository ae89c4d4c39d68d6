"""The tokenizer tab's views. The tokens themselves, as a person should see them: each token's text and id,
and for a token that is only part of a character (common in Burmese, Amharic, emoji) its raw bytes, e.g.
<0xE1 0x80>, never a replacement character pretending to be text. And the spread of per-sentence premiums."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Sequence

from playground.tokenizers.backends import LoadedTokenizer
from playground.tokenizers.cost import PremiumSpread

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


SPREAD_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")


def premium_spread_html(spreads: Sequence[PremiumSpread], base: str) -> str:
    """Box plots of per-sentence premiums on a log scale: a row per language and tokenizer, the box from the
    25th to the 75th percentile, a line at the median, whiskers to the 5th and 95th, a diamond at the corpus
    premium. Languages are ordered by their median under the first tokenizer, highest first."""
    tokenizers = list(dict.fromkeys(spread.tokenizer for spread in spreads))
    colour = {name: SPREAD_COLOURS[i % len(SPREAD_COLOURS)] for i, name in enumerate(tokenizers)}
    first: dict[str, float] = {}  # each language's median under the first tokenizer that has it
    for spread in sorted(spreads, key=lambda spread: tokenizers.index(spread.tokenizer)):
        first.setdefault(spread.language, spread.median)
    languages = sorted(first, key=first.get, reverse=True)
    low = math.log2(min(min(spread.p5 for spread in spreads), 1.0)) - 0.2
    high = math.log2(max(max(spread.p95 for spread in spreads), 1.0)) + 0.2
    left, width, row, gap = 190, 560, 12, 10
    block = row * len(tokenizers) + gap
    height = 30 + block * len(languages)

    def x(value: float) -> float:
        return left + (math.log2(value) - low) / (high - low) * width

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height + 20}" '
             'font-family="sans-serif" font-size="11" role="img">']
    for power in range(math.ceil(low), math.floor(high) + 1):
        at = x(2.0**power)
        label = f"{2.0**power:g}×"
        grid = "#111" if power == 0 else "#ddd"
        parts.append(f'<line x1="{at:.1f}" y1="20" x2="{at:.1f}" y2="{height}" stroke="{grid}"/>'
                     f'<text x="{at:.1f}" y="14" text-anchor="middle">{label}</text>')
    by_key = {(spread.language, spread.tokenizer): spread for spread in spreads}
    for index, language in enumerate(languages):
        top = 24 + index * block
        parts.append(f'<text x="{left - 8}" y="{top + row * len(tokenizers) / 2 + 4:.1f}" text-anchor="end">'
                     f'{html.escape(language)}</text>')
        for offset, name in enumerate(tokenizers):
            spread = by_key.get((language, name))
            if spread is None:
                continue
            middle, ink = top + offset * row + row / 2, colour[name]
            upper, lower = middle - row / 2 + 1, middle + row / 2 - 1
            box = max(x(spread.q3) - x(spread.q1), 1)
            tip = (f"{language}, {name}: median {spread.median:.2f}×, middle half {spread.q1:.2f}–{spread.q3:.2f}×, "
                   f"90% of sentences {spread.p5:.2f}–{spread.p95:.2f}×, corpus {spread.corpus:.2f}× "
                   f"({spread.sentences} sentences)")
            parts.append(
                f'<g><title>{html.escape(tip)}</title>'
                f'<line x1="{x(spread.p5):.1f}" y1="{middle:.1f}" x2="{x(spread.p95):.1f}" y2="{middle:.1f}" '
                f'stroke="{ink}"/><rect x="{x(spread.q1):.1f}" y="{upper:.1f}" width="{box:.1f}" height="{row - 2}" '
                f'fill="{ink}" fill-opacity="0.3" stroke="{ink}"/><line x1="{x(spread.median):.1f}" y1="{upper:.1f}" '
                f'x2="{x(spread.median):.1f}" y2="{lower:.1f}" stroke="{ink}" stroke-width="2"/>'
                f'<path d="M{x(spread.corpus):.1f},{middle - 3:.1f} l3,3 l-3,3 l-3,-3 z" fill="#111"/></g>')
    parts.append("</svg>")
    legend = " ".join(f'<span style="color:{colour[name]}">■ {html.escape(name)}</span>' for name in tokenizers)
    return (f'<div class="premium-spread"><p>Premium of each sentence over the same sentence in '
            f'{html.escape(base)} (log scale). Box: middle half of the sentences; line: median; whiskers: 5th to 95th '
            f'percentile; ◆: the whole corpus. {legend}</p>'
            f'<div style="overflow-x:auto">{"".join(parts)}</div></div>')
