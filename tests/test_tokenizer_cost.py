"""Tokenizers of the language-cost tab: each is what its label says (its model's published ids), counts
equal the libraries' own counts (with and without special tokens), bytes are shown as bytes, the corpus
figures add up, and bad sources and inputs get a clear message."""

from __future__ import annotations

import math

import pytest

from playground.core.service import ModelService

from playground.core.errors import ModelUnavailableError, PlaygroundError
from playground.core.registry import ModelSpec
from playground.core.settings import Limits
from playground.tokenizers import cost, counts
from playground.tokenizers.loader import OFFLINE_FILES, TIKTOKEN_ENCODINGS, check_hub_id
from playground.views.tokens import readable_bytes, token_pieces, token_view_html

# Ids from each model's published tokenizer; the text alone unless the tokenizer adds a BOS itself.
REFERENCE_IDS = {
    "GPT-2 (gpt2)": {"Hello world": [15496, 995], "The quick brown fox": [464, 2068, 7586, 21831]},
    "GPT-3.5/GPT-4 (cl100k_base)": {"hello world": [15339, 1917],
                                    "tiktoken is great!": [83, 1609, 5963, 374, 2294, 0]},
    "GPT-4o (o200k_base)": {"hello world": [24912, 2375], "Hello world": [13225, 2375]},
    "Llama-3": {"Hello world": [9906, 1917], "The quick brown fox": [791, 4062, 14198, 39935]},
    "Qwen3": {"Hello world": [9707, 1879], "The quick brown fox": [785, 3974, 13876, 38835]},
    "Gemma 3": {"Hello world": [2, 9259, 1902], "The quick brown fox": [2, 818, 3823, 8864, 37423]},
    "Mistral 7B v0.1": {"The quick brown fox": [1, 415, 2936, 9060, 285, 1142], "Hello world": [1, 22557, 1526]},
    "Mistral NeMo (Tekken)": {"Hello world": [1, 22177, 4304], "The quick brown fox": [1, 1784, 7586, 22980, 94137]},
    "CLIP ViT-B/32": {"a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407]},
}
LANGUAGES = ("eng_Latn", "mya_Mymr", "amh_Ethi", "zho_Hans", "arb_Arab", "hin_Deva")

LIMITS = Limits()


def sample_texts() -> list[str]:
    texts = [cost.flores_sentences(code, "dev")[i] for code in LANGUAGES for i in (0, 7)]
    return texts + ["emoji 😀👩🏽‍🚀 and tabs\tand\nnewlines", "<|endoftext|> <s> typed as text"]


@pytest.fixture(scope="module")
def tokenizers(service):
    return {name: service.load("tokenizer", name) for name in REFERENCE_IDS}


@pytest.mark.parametrize("name", list(REFERENCE_IDS))
def test_each_tokenizer_gives_its_models_published_ids(tokenizers, name):
    tokenizer = tokenizers[name]
    for text, ids in REFERENCE_IDS[name].items():
        assert tokenizer.encode(text, with_special=True) == ids


def test_the_mistral_file_is_not_llama2(tokenizers):
    # The same words in Llama-2's published tokenizer are 450, 4996, 17354, 1701, 29916.
    assert tokenizers["Mistral 7B v0.1"].encode("The quick brown fox", False) != [450, 4996, 17354, 1701, 29916]


def test_o200k_from_npm_ranks_matches_the_gpt4o_tokenizer_json(tokenizers, service):
    from tokenizers import Tokenizer

    other = Tokenizer.from_file(str(service.settings.tokenizer_files / "npm/@lenml__tokenizer-gpt4o/package/models/"
                                                                      "tokenizer.json"))
    texts = sample_texts()[:-1]  # typed "<|endoftext|>" is text to tiktoken, a control token to the JSON file
    ids = [encoding.ids for encoding in other.encode_batch(texts)]
    assert tokenizers["GPT-4o (o200k_base)"].backend.encode_batch(texts, False) == ids


def test_tiktoken_patterns_and_special_tokens_are_tiktokens_own(monkeypatch):
    from tiktoken_ext import openai_public

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: {})
    monkeypatch.setattr(openai_public, "data_gym_to_mergeable_bpe_ranks", lambda *args, **kwargs: {})
    for name, (pattern, special) in TIKTOKEN_ENCODINGS.items():
        official = openai_public.ENCODING_CONSTRUCTORS[name]()
        assert (official["pat_str"], official["special_tokens"]) == (pattern, special)


def test_counts_equal_the_hugging_face_tokenizers_own_counts(tokenizers, service):
    from transformers import PreTrainedTokenizerFast

    texts = sample_texts()
    for name in ("Llama-3", "Qwen3", "Gemma 3"):
        source = service.registry.get("tokenizer", name).source
        own = PreTrainedTokenizerFast(tokenizer_file=str(service.settings.tokenizer_files / OFFLINE_FILES[source]))
        for with_special in (False, True):
            expected = [len(ids) for ids in own(texts, add_special_tokens=with_special)["input_ids"]]
            assert tokenizers[name].count_batch(texts, with_special).tolist() == expected, (name, with_special)


def test_counts_equal_sentencepiece_tiktoken_and_open_clip_counts(tokenizers):
    import sentencepiece
    import tiktoken

    texts = sample_texts()
    mistral = tokenizers["Mistral 7B v0.1"]
    processor = sentencepiece.SentencePieceProcessor(model_file=mistral.backend.tokenizer.file_path.as_posix())
    assert mistral.count_batch(texts, True).tolist() == [len(ids) + 1 for ids in processor.encode(texts)]
    encoding = tokenizers["GPT-3.5/GPT-4 (cl100k_base)"].backend.encoding
    assert isinstance(encoding, tiktoken.Encoding)
    assert tokenizers["GPT-3.5/GPT-4 (cl100k_base)"].count_batch(texts, True).tolist() == [
        len(encoding.encode(text, disallowed_special=())) for text in texts]
    clip = tokenizers["CLIP ViT-B/32"]
    counts = clip.count_batch(texts, True)
    assert counts.max() > 77  # open_clip's own call cuts at its 77-token context; the tab counts everything
    assert [min(count, 77) for count in counts] == (clip.backend.tokenizer(texts) != 0).sum(dim=1).tolist()


def test_every_registered_language_model_has_its_tokenizer(test_settings):
    service = ModelService(test_settings)  # its own cache: other tests may have loaded the weights
    sources = {spec.source for spec in service.registry.specs("tokenizer")}
    for spec in service.registry.specs("language"):
        assert any(source.endswith(spec.source) for source in sources), spec.name
    smollm = service.load("tokenizer", "SmolLM2-135M-Instruct (offline demo) (language model)")
    assert smollm.encode("The quick brown fox", False) == [504, 2365, 6354, 16438]
    assert not service.is_loaded("language", "SmolLM2-135M-Instruct (offline demo)")  # no weights loaded


def test_llama2_offline_says_why_and_how(service):
    with pytest.raises(ModelUnavailableError, match="not available offline.*gated.*HF_TOKEN"):
        service.load("tokenizer", "Llama-2")


@pytest.mark.parametrize("typed", ["../etc/passwd", "/etc/passwd", "https://huggingface.co/gpt2", "gpt2", "a/b/c",
                                   "org/..", "org/name--x", "x" * 200 + "/y", "org/na me"])
def test_typed_hub_ids_are_strictly_checked(typed):
    with pytest.raises(PlaygroundError):
        check_hub_id(typed)


def test_a_typed_hub_id_loads_through_the_cache_and_is_explained_offline(service):
    limits = service.settings.limits
    specs = cost.tokenizer_specs(service.registry, [], "Qwen/Qwen3-0.6B", limits)
    assert [spec.name for spec in specs] == ["Qwen3"]  # a registered source is reused, not loaded twice
    typed = cost.tokenizer_specs(service.registry, [], "someone/new-tokenizer", limits)[0]
    assert typed == ModelSpec("tokenizer", "someone/new-tokenizer (Hub)", "hf:someone/new-tokenizer", typed.note)
    with pytest.raises(ModelUnavailableError, match="not available offline"):
        service.load_spec(typed)


@pytest.mark.parametrize("data, shown", [
    (b"\xe1\x80", "<0xE1 0x80>"), (b" \xe1\x80\x97", " \u1017"), (b"a\xe1\x80", "a<0xE1 0x80>"),
    (b"\xf0\x9f", "<0xF0 0x9F>"), (b"\x98\x80!", "<0x98 0x80>!"), (b"plain", "plain"),
])
def test_partial_characters_are_shown_as_bytes(data, shown):
    assert readable_bytes(data) == shown


@pytest.mark.parametrize("name", ["GPT-2 (gpt2)", "Llama-3", "Mistral NeMo (Tekken)", "Gemma 3", "Qwen3"])
def test_token_view_bytes_add_up_to_the_text_and_never_show_replacement_characters(tokenizers, name):
    text = cost.flores_sentences("mya_Mymr", "dev")[0] + " 😀"
    pieces = token_pieces(tokenizers[name], text, with_special=False)
    assert all("\ufffd" not in piece.shown for piece in pieces)
    joined = b"".join(tokenizers[name].backend.token_bytes(p.token_id) for p in pieces)
    assert joined.lstrip(b" ") == text.encode("utf-8")  # SentencePiece may add one leading space
    assert any(piece.kind == "bytes" for piece in pieces) == (name in ("GPT-2 (gpt2)", "Llama-3", "Qwen3",
                                                                        "Mistral NeMo (Tekken)"))


def test_token_view_escapes_html_and_reports_the_premium(tokenizers):
    page = token_view_html(tokenizers["GPT-2 (gpt2)"], "Mine", "<script>x</script>", "English", "Hello world", False,
                           max_tokens=3)
    assert "<script>" not in page and "&lt;" in page
    assert "= 3.50× English (2)" in page and "first 3 shown" in page


def test_sentence_costs_premium_and_prices(tokenizers):
    pairs = [("English", "Hello world"), ("Mine", "ဗမာ ဗမာ")]
    costs = cost.sentence_costs([tokenizers["GPT-2 (gpt2)"]], pairs, "English", price=2.0, context=100,
                                with_special=False)
    mine = costs.set_index("language").loc["Mine"]
    tokens = len(tokenizers["GPT-2 (gpt2)"].encode("ဗမာ ဗမာ", False))
    assert mine["tokens"] == tokens and mine["premium ×"] == round(tokens / 2, 2)
    assert mine["$ per 1M chars"] == round(2.0 * tokens / 7, 2) and mine["% of context"] == tokens
    with pytest.raises(PlaygroundError, match="base language"):
        cost.sentence_costs([tokenizers["GPT-2 (gpt2)"]], pairs, "Klingon", 1.0, 100, False)


def test_special_tokens_policy_adds_what_each_tokenizer_adds(tokenizers):
    pairs = [("English", "Hello world")]
    plain = cost.sentence_costs(list(tokenizers.values()), pairs, "English", 1.0, 8192, False)
    special = cost.sentence_costs(list(tokenizers.values()), pairs, "English", 1.0, 8192, True)
    added = dict(zip(special["tokenizer"], special["tokens"] - plain["tokens"]))
    assert added == {"GPT-2 (gpt2)": 0, "GPT-3.5/GPT-4 (cl100k_base)": 0, "GPT-4o (o200k_base)": 0, "Llama-3": 0,
                     "Qwen3": 0, "Gemma 3": 1, "Mistral 7B v0.1": 1, "Mistral NeMo (Tekken)": 1, "CLIP ViT-B/32": 2}


def test_corpus_totals_equal_the_tokenizers_counts_and_are_cached(service):
    gpt2 = service.load("tokenizer", "GPT-2 (gpt2)")
    costs = cost.corpus_costs([gpt2], "dev", "English", price=1.0, with_special=False, limits=LIMITS).set_index("code")
    burmese = cost.flores_sentences("mya_Mymr", "dev")
    encoding = gpt2.backend.encoding
    assert costs.loc["mya_Mymr", "tokens"] == sum(len(ids) for ids in encoding.encode_ordinary_batch(list(burmese)))
    assert costs.loc["eng_Latn", "premium ×"] == 1.0 and costs.loc["mya_Mymr", "premium ×"] > 5
    key = (counts.PER_SENTENCE, "dev", "mya_Mymr")
    assert len(costs) == len(cost.flores_languages()) == 204 and key in gpt2.corpus_counts
    cached = gpt2.corpus_counts[key]
    cost.corpus_costs([gpt2], "dev+devtest", "English", 1.0, True, LIMITS)
    assert gpt2.corpus_counts[key] is cached  # reused, not recounted
    table = cost.premium_table(cost.corpus_costs([gpt2], "dev", "English", 1.0, False, LIMITS))
    assert table.iloc[-1]["language"] == "English" and list(table.columns) == ["language", "script", "GPT-2 (gpt2)"]


@pytest.mark.parametrize("rows, message", [
    ([], "at least one language"),
    ([["English", ""]], "needs a language and its text"),
    ([["English", "a"], ["English", "b"]], "appears twice"),
    ([["English", "a", "extra"]], "two columns, a language and its text; row 1 has 3 cells"),
    ([["English", "x" * 5000]], "limit is"),
    ([[f"L{i}", "x"] for i in range(100)], "At most"),
])
def test_bad_sentence_tables_are_explained(service, rows, message):
    with pytest.raises(PlaygroundError, match=message):
        cost.check_rows(rows, service.settings.limits)


@pytest.mark.parametrize("price", [math.nan, math.inf, -1, "lots", None, 1e12])
def test_bad_prices_are_explained(price):
    with pytest.raises(PlaygroundError, match="price"):
        cost.check_price(price)


@pytest.mark.parametrize("context", [0, -5, 1.5, math.nan, "big", 10**12])
def test_bad_context_windows_are_explained(context):
    with pytest.raises(PlaygroundError, match="context window"):
        cost.check_context(context)


def test_flores_rows_are_the_same_sentence_in_each_language():
    rows = cost.flores_rows(["English", "Burmese"], "devtest", 3)
    assert rows[0] == ["English", cost.flores_sentences("eng_Latn", "devtest")[2]]
    assert len(cost.flores_sentences("mya_Mymr", "devtest")) == len(cost.flores_sentences("eng_Latn", "devtest"))
    assert len(cost.flores_sentences("mya_Mymr", "devtest")) == 1012
    with pytest.raises(PlaygroundError, match="whole number from 1 to 1,012"):
        cost.flores_rows(["English"], "devtest", 5000)
    with pytest.raises(PlaygroundError, match="Unknown language"):
        cost.flores_rows(["Klingon"], "dev", 1)
