"""The whole FLORES corpus in the tokenizer tab: all 204 languages shipped intact; Petrov et al.'s joined-corpus
method gives the paper's published counts; counts are kept on disk per (tokenizer files, corpus, method) and
read back without encoding; cold counts are priced and stoppable; the spread of per-sentence premiums is
computed from the tokenizers' own counts.

tests/data/petrov2023_counts.csv: the published GPT-2 and cl100k_base counts (and UTF-32 characters) from
github.com/AleksandarPetrov/tokenization-fairness (MIT licence), assets/tokenization_lengths.csv at 365c3f8.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.core.stopping import Stopped, watching
from playground.tokenizers import cost, counts
from playground.tokenizers.loader import OFFLINE_FILES, tokenizer_digest
from playground.tokenizers.flores import FLORES_DIR, flores_languages, flores_sentences
from playground.views.tokens import premium_spread_html

PUBLISHED = {row["code"]: row for row in csv.DictReader(open(Path(__file__).parent / "data" / "petrov2023_counts.csv"))}
# Every script family of the corpus's hard cases, and the two where the methods differ most.
CHECKED = ("eng_Latn", "zho_Hans", "jpn_Jpan", "shn_Mymr", "mya_Mymr", "amh_Ethi", "tha_Thai", "kor_Hang",
           "arb_Arab", "hin_Deva", "bod_Tibt", "sat_Olck", "tzm_Tfng", "yue_Hant", "rus_Cyrl", "vie_Latn")
LIMITS = Limits(max_tokenized_sentences=10**7)


def fresh(tokenizer):
    """The same tokenizer as after a restart: nothing counted in memory, nothing read from disk yet."""
    tokenizer.corpus_counts.clear()
    tokenizer.counts_read.clear()
    return tokenizer


@pytest.fixture(scope="module")
def gpt2(service):
    return service.load("tokenizer", "GPT-2 (gpt2)")


@pytest.fixture(scope="module")
def cl100k(service):
    return service.load("tokenizer", "GPT-3.5/GPT-4 (cl100k_base)")


def test_all_204_languages_are_shipped_intact():
    languages = flores_languages()
    assert len(languages) == 204 and len({language.name for language in languages}) == 204
    sums = (FLORES_DIR / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 1 + 2 * 204
    for line in sums:  # the corpus digest that keys the counts on disk stands for these bytes
        digest, name = line.split("  ")
        assert hashlib.sha256((FLORES_DIR / name).read_bytes()).hexdigest() == digest, name
    for language in languages[::17]:  # the sizes the table uses without decompressing
        for split in ("dev", "devtest"):
            sentences = flores_sentences(language.code, split)
            assert len(sentences) == (997 if split == "dev" else 1012)
            assert language.sizes[split] == (sum(map(len, sentences)), sum(len(s.encode()) for s in sentences))
    english = gzip.decompress((FLORES_DIR / "dev" / "eng_Latn.dev.gz").read_bytes()).decode()
    assert english.endswith("\n") and "\r" not in english  # Petrov's split("\n") leaves one empty item per file


def test_joined_corpus_gives_petrov_et_al_published_counts(gpt2, cl100k, tmp_path):
    found = counts.count_corpus([fresh(gpt2), fresh(cl100k)], counts.JOINED, "dev+devtest", CHECKED, tmp_path)
    for code in CHECKED:
        assert found["GPT-2 (gpt2)", code][0] == int(PUBLISHED[code]["gpt2"]), code
        assert found["GPT-3.5/GPT-4 (cl100k_base)", code][0] == int(PUBLISHED[code]["cl100k_base"]), code
        assert len(counts.joined_text(code, "dev+devtest")) == int(PUBLISHED[code]["utf32_chars"]), code


def test_the_methods_differ_by_the_joining_spaces(gpt2, tmp_path):
    codes = ["eng_Latn", "zho_Hans"]
    alone = counts.count_corpus([fresh(gpt2)], counts.PER_SENTENCE, "dev+devtest", codes, tmp_path)
    joined = counts.count_corpus([gpt2], counts.JOINED, "dev+devtest", codes, tmp_path)
    english, chinese = ((int(alone["GPT-2 (gpt2)", c].sum()), int(joined["GPT-2 (gpt2)", c][0])) for c in codes)
    # Joined, a sentence's first word follows a space (often one token with it, so fewer), and the space between
    # sentences can be a token of its own (more): a small difference in English, a larger one in Chinese.
    assert english[0] != english[1] and abs(english[1] / english[0] - 1) < 0.005
    assert 0.005 < abs(chinese[1] / chinese[0] - 1) < 0.02


def test_counts_are_kept_on_disk_and_read_back_without_encoding(gpt2, tmp_path):
    codes = ["eng_Latn", "mya_Mymr", "zho_Hans"]
    first = counts.count_corpus([fresh(gpt2)], counts.PER_SENTENCE, "dev", codes, tmp_path)
    stored = counts.store_path(tmp_path, gpt2, counts.PER_SENTENCE)
    assert stored.exists() and [path.name for path in tmp_path.iterdir()] == [stored.name]  # no temporary left
    fresh(gpt2)
    assert counts.uncounted_sentences([gpt2], counts.PER_SENTENCE, "dev", codes, tmp_path) == 0  # read, not encoded
    again = counts.count_corpus([gpt2], counts.PER_SENTENCE, "dev", codes, tmp_path)
    encoding = gpt2.backend.encoding
    for code in codes:
        assert np.array_equal(again["GPT-2 (gpt2)", code], first["GPT-2 (gpt2)", code])
        assert again["GPT-2 (gpt2)", code].tolist() == [len(encoding.encode_ordinary(s))
                                                        for s in flores_sentences(code, "dev")]
    # Another method, another tokenizer file or a damaged file is counted afresh.
    assert counts.uncounted_sentences([fresh(gpt2)], counts.JOINED, "dev", codes, tmp_path) == 3 * 997
    stored.write_bytes(b"not a numpy file")
    assert counts.uncounted_sentences([fresh(gpt2)], counts.PER_SENTENCE, "dev", codes, tmp_path) == 3 * 997
    digest = gpt2.digest
    try:
        gpt2.digest = "0" * 64
        assert counts.uncounted_sentences([fresh(gpt2)], counts.PER_SENTENCE, "dev", codes, tmp_path) == 3 * 997
    finally:
        gpt2.digest = digest


def test_the_digest_is_of_the_tokenizer_files(service, gpt2, cl100k, tmp_path):
    ranks = service.settings.tokenizer_files / OFFLINE_FILES["tiktoken:gpt2"]
    assert gpt2.digest == tokenizer_digest(ranks) != cl100k.digest
    changed = tmp_path / ranks.name
    changed.write_bytes(ranks.read_bytes().replace(b"!", b"! ", 1))
    assert tokenizer_digest(changed) != gpt2.digest


def test_cold_counts_are_priced_and_counted_ones_are_free(gpt2, tmp_path):
    tight = Limits(max_tokenized_sentences=2_000)
    with pytest.raises(PlaygroundError, match=r"would need 203,388 sentences to tokenize.*allows 2,000"):
        cost.corpus_costs([fresh(gpt2)], "dev", "English", 1.0, False, tight, counts.PER_SENTENCE, tmp_path)
    spreads = cost.premium_spread([gpt2], ["Burmese"], "dev", "English", False, tight, tmp_path)  # 2 x 997
    assert spreads[0].sentences == 997
    assert counts.uncounted_sentences([fresh(gpt2)], counts.PER_SENTENCE, "dev", ["mya_Mymr"], tmp_path) == 0


def test_a_stopped_count_ends_early_and_keeps_what_it_counted(gpt2, tmp_path):
    asked = []

    def wanted() -> bool:
        asked.append(1)
        return len(asked) <= 3  # unwanted from the fourth file on

    with watching(wanted), pytest.raises(Stopped):
        cost.corpus_costs([fresh(gpt2)], "dev", "English", 1.0, False, LIMITS, counts.PER_SENTENCE, tmp_path)
    assert len(asked) == 4
    fresh(gpt2)
    assert counts.uncounted_sentences([gpt2], counts.PER_SENTENCE, "dev", ["eng_Latn"], tmp_path) == 0


def test_progress_is_reported_while_counting(gpt2, tmp_path):
    seen = []
    counts.count_corpus([fresh(gpt2)], counts.JOINED, "dev", [language.code for language in flores_languages()[:20]],
                        tmp_path, lambda fraction, message: seen.append((fraction, message)))
    assert [fraction for fraction, _ in seen] == [i * 8 / 20 for i in range(3)] and "GPT-2" in seen[0][1]


def test_the_spread_is_of_each_sentences_premium(gpt2, tmp_path):
    spreads = cost.premium_spread([fresh(gpt2)], ["Burmese", "English"], "devtest", "English", True, LIMITS, tmp_path)
    burmese, english = spreads
    mine = np.array([len(gpt2.encode(s, False)) for s in flores_sentences("mya_Mymr", "devtest")])
    base = np.array([len(gpt2.encode(s, False)) for s in flores_sentences("eng_Latn", "devtest")])
    assert burmese.median == pytest.approx(float(np.median(mine / base)))
    assert (burmese.p5, burmese.q3) == pytest.approx(tuple(np.percentile(mine / base, [5, 75])))
    assert burmese.corpus == pytest.approx(mine.sum() / base.sum()) and burmese.p5 < burmese.median < burmese.p95
    assert (english.p5, english.p95, english.corpus) == (1.0, 1.0, 1.0)
    table = cost.spread_table(spreads)
    assert list(table["language"]) == ["Burmese", "English"] and table.loc[0, "median"] == round(burmese.median, 3)


@pytest.mark.parametrize("names, base, method, message", [
    ([], "English", counts.PER_SENTENCE, "at least one language"),
    (["Klingon"], "English", counts.PER_SENTENCE, "no language of that name"),
    (["Burmese"], "Klingon", counts.PER_SENTENCE, "no language of that name"),
])
def test_bad_spread_requests_are_explained(gpt2, names, base, method, message):
    with pytest.raises(PlaygroundError, match=message):
        cost.premium_spread([gpt2], names, "dev", base, False, LIMITS)


def test_bad_corpus_requests_are_explained(gpt2):
    with pytest.raises(PlaygroundError, match="counting method"):
        cost.corpus_costs([gpt2], "dev", "English", 1.0, False, LIMITS, "by vibes")
    with pytest.raises(PlaygroundError, match="Choose the corpus"):
        cost.corpus_costs([gpt2], "train", "English", 1.0, False, LIMITS)


def test_the_spread_view_shows_every_language_escaped_on_a_log_scale():
    spreads = [cost.PremiumSpread("Burmese", "GPT-2", 997, 3, 5, 6, 8, 12, 6.5),
               cost.PremiumSpread("<b>Mine</b>", "o200k", 997, 0.8, 1, 1.1, 1.2, 1.5, 1.1)]
    page = premium_spread_html(spreads, "English")
    assert page.count("<rect") == 2 and "<b>Mine" not in page and "&lt;b&gt;Mine" in page
    assert page.index("Burmese</text>") < page.index("&lt;b&gt;Mine&lt;/b&gt;</text>")  # highest median first
    assert all(f">{tick}×</text>" in page for tick in ("1", "2", "4", "8"))
