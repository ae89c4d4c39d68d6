"""Full-corpus tokenizer premium table: FLORES dev+devtest, every shipped language, 8 tokenizers.

    .venv/bin/python -m bench.bench_tokenizers

Prints the time to build the table cold (nothing counted yet) and warm (counts cached on each loaded
tokenizer), each as a ratio to the raw libraries' own batch encode of the same sentences.
"""

from __future__ import annotations

import os
import time

from bench.common import median_seconds, report

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground.core.service import ModelService  # noqa: E402
from playground.core.settings import Limits, load_settings  # noqa: E402
from playground.tokenizers.backends import HuggingFaceBackend, MistralBackend, TiktokenBackend  # noqa: E402
from playground.tokenizers import cost  # noqa: E402

UNCAPPED = Limits(max_tokenized_sentences=10**8)  # the bench times a cold count of every tokenizer at once
TOKENIZERS = ("GPT-4o (o200k_base)", "GPT-3.5/GPT-4 (cl100k_base)", "GPT-2 (gpt2)", "Llama-3", "Qwen3", "Gemma 3",
              "Mistral 7B v0.1", "Mistral NeMo (Tekken)")


def raw_batch_encode(tokenizer, texts: list[str]) -> int:
    """The library's own batch call, no playground code in between; returns the token total."""
    backend = tokenizer.backend
    if isinstance(backend, TiktokenBackend):
        return sum(map(len, backend.encoding.encode_ordinary_batch(texts)))
    if isinstance(backend, HuggingFaceBackend):
        return sum(len(e.ids) for e in backend.tokenizer.encode_batch_fast(texts, add_special_tokens=False))
    if isinstance(backend, MistralBackend):
        return sum(len(backend.tokenizer.encode(text, bos=False, eos=False)) for text in texts)
    raise TypeError(type(backend))


def main() -> None:
    service = ModelService(load_settings())
    start = time.perf_counter()
    tokenizers = [service.load("tokenizer", name) for name in TOKENIZERS]
    print(f"loaded {len(tokenizers)} tokenizers in {time.perf_counter() - start:.1f} s (once per server)")
    files = [(language.code, split) for language in cost.flores_languages() for split in cost.SPLITS]
    texts = [list(cost.flores_sentences(code, split)) for code, split in files]  # read once, as the app does
    sentences = sum(map(len, texts))
    print(f"corpus: {len(cost.flores_languages())} languages x dev+devtest = {sentences:,} sentences, "
          f"{sentences * len(tokenizers):,} encodes")

    def raw_encode() -> int:
        return sum(raw_batch_encode(tokenizer, batch) for tokenizer in tokenizers for batch in texts)

    def cold_table():
        for tokenizer in tokenizers:
            tokenizer.corpus_counts.clear()
        return cost.corpus_costs(tokenizers, "dev+devtest", "English", 2.5, with_special=False, limits=UNCAPPED)

    # Alternate raw and cold runs and keep each one's best: the machine is shared, so single runs are noisy.
    raw_total, raw, cold = raw_encode(), float("inf"), float("inf")
    for _ in range(2):
        start = time.perf_counter()
        raw_encode()
        raw = min(raw, time.perf_counter() - start)
        start = time.perf_counter()
        table = cold_table()
        cold = min(cold, time.perf_counter() - start)
    assert int(table["tokens"].sum()) == raw_total, "the table must count exactly what the libraries count"
    warm = median_seconds(lambda: cost.corpus_costs(tokenizers, "dev+devtest", "English", 2.5, False, UNCAPPED), repeats=5)

    print(f"{'':48} {'playground':>12}   {'raw encode':>12}   ratio")
    report("full corpus table, cold (counts every sentence)", cold, raw, "goal: close to 1")
    report("full corpus table, warm (cached counts)", warm, raw, "goal: far below 1")
    per_tokenizer = table.groupby("tokenizer", sort=False)["premium ×"]
    burmese = table[table["code"] == "mya_Mymr"].set_index("tokenizer")["premium ×"]
    print("Burmese premium over English:", ", ".join(f"{name} {value:.2f}" for name, value in burmese.items()))
    highest = per_tokenizer.max().items()
    print("highest premium per tokenizer:", ", ".join(f"{name} {value:.2f}" for name, value in highest))


if __name__ == "__main__":
    main()
