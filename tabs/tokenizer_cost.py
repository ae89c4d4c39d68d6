"""Tokenizer language cost: the same sentence in many languages through many tokenizers; what each costs."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from playground.core.service import ModelService
from playground.tokenizers import cost, counts
from playground.views.tokens import premium_spread_html, token_view_html
from serving.files import keep
from tabs.common import CHEAP_EVENT, availability_note, loadable, model_choices, user_errors

TITLE = "Tokenizer language cost"
ORDER = 50
DEFAULT_TOKENIZERS = ("GPT-4o (o200k_base)", "GPT-2 (gpt2)", "Llama-3", "Gemma 3", "Mistral 7B v0.1")
DEFAULT_LANGUAGES = ("English", "French", "Russian", "Standard Arabic", "Hindi", "Tamil", "Chinese (Simplified)",
                     "Japanese", "Amharic", "Burmese")
MAX_VIEW_TOKENS = 600
POLICY = {
    False: "Counts are of the text alone: no BOS/EOS or other special tokens.",
    True: "Counts include what each tokenizer adds around any text itself (Gemma `<bos>`, Mistral `<s>`, "
          "CLIP start and end; tiktoken and this Llama-3 file add none).",
}
METHOD_CHOICES = [("per sentence", counts.PER_SENTENCE), ("joined corpus (Petrov et al. 2023)", counts.JOINED)]
METHODS_EXPLAINED = (
    "**Per sentence** encodes each sentence on its own. **Joined corpus** is the method of Petrov et al. 2023 "
    "(*Language Model Tokenizers Introduce Unfairness Between Languages*): all dev and devtest lines joined by "
    "single spaces and encoded once; with it GPT-2 and cl100k counts equal the paper's published figures. They "
    "differ by up to about 2% (Chinese, Japanese): joined, each sentence's first word follows a space, and the "
    "space between two sentences can become a token of its own where the next sentence does not start with a "
    "letter the tokenizer glues it to."
)


def _chart_data(costs: pd.DataFrame) -> pd.DataFrame:
    return costs[["language", "tokenizer", "premium ×"]].rename(columns={"premium ×": "premium"})


def build(service: ModelService) -> None:
    limits = service.settings.limits
    languages = [language.name for language in cost.flores_languages()]
    gr.Markdown(
        "The same sentence costs very different numbers of tokens in different languages: tokenizers were "
        "trained mostly on English. Put one sentence, in many languages, through many tokenizers and compare. "
        "The **premium** is tokens in a language ÷ tokens for the same sentence in the base language. "
        "Sentences: FLORES-200 (NLLB Team, CC-BY-SA 4.0), professional translations of the same text."
    )
    with gr.Row():
        tokenizers = gr.Dropdown(model_choices(service, "tokenizer"), value=loadable(service, "tokenizer", DEFAULT_TOKENIZERS),
                                 multiselect=True, label=f"Tokenizers (up to {limits.max_tokenizers})", scale=3,
                                 info=availability_note(service, "tokenizer") or None)
        hub_id = gr.Textbox(label="…and a Hugging Face Hub tokenizer id (optional)", placeholder="org/name", scale=1)
    with gr.Row():
        chosen_languages = gr.Dropdown(languages, value=list(DEFAULT_LANGUAGES), multiselect=True,
                                       label="FLORES languages", scale=3)
        split = gr.Radio(list(cost.SPLITS), value="devtest", label="FLORES split")
        number = gr.Number(1, label="Sentence number", precision=0, minimum=1)
        load = gr.Button("Load FLORES sentence", size="sm")
    first = cost.flores_rows(DEFAULT_LANGUAGES, "devtest", 1)
    # type="array": the rows as sent, so a table of the wrong shape reaches check_rows and gets its message
    # (as a pandas DataFrame, a row longer than the headers fails inside Gradio with an empty one).
    sentences = gr.Dataframe(pd.DataFrame(first, columns=["language", "text"]), type="array", interactive=True,
                             wrap=True, label="Sentences (edit any text, or add rows with your own language and text)",
                             max_height=320, column_widths=["18%", "82%"])
    with gr.Row():
        base = gr.Dropdown(languages, value="English", allow_custom_value=True, label="Base language")
        price = gr.Number(2.5, label="Price ($ per 1M tokens)", minimum=0)
        context = gr.Number(8192, label="Context window (tokens)", precision=0, minimum=1)
        with_special = gr.Checkbox(False, label="Count special tokens the tokenizer adds (BOS…)")
    count = gr.Button("Count tokens", variant="primary")
    summary = gr.Markdown(elem_id="tokenizer-summary")
    chart = gr.ScatterPlot(x="language", y="premium", color="tokenizer", title="Premium over the base language",
                           x_label_angle=-40, height=340)
    table = gr.Dataframe(interactive=False, max_height=420, label="Per language and tokenizer (click a header to sort)",
                         elem_id="tokenizer-cost-table")
    with gr.Row():
        inspect = gr.Dropdown(languages, value="English", allow_custom_value=True, label="Show the tokens of")
        show = gr.Button("Show tokens", size="sm")
    tokens_html = gr.HTML(elem_id="token-view")

    with gr.Accordion(f"Whole corpus: all {len(languages)} FLORES languages, every sentence", open=False):
        with gr.Row():
            corpus = gr.Radio(list(cost.CORPUS_CHOICES), value="dev+devtest", label="Corpus")
            method = gr.Radio(METHOD_CHOICES, value=counts.PER_SENTENCE, label="Counting method")
            run_corpus = gr.Button("Compute corpus premiums", variant="primary")
        gr.Markdown(METHODS_EXPLAINED)
        corpus_summary = gr.Markdown()
        corpus_chart = gr.ScatterPlot(x="language", y="premium", color="tokenizer", x_label_angle=-40, height=360,
                                      title="Premium over the base language, whole corpus")
        corpus_table = gr.Dataframe(interactive=False, max_height=500, show_search="search", elem_id="corpus-table",
                                    label="Premium × (click a header to sort; search by language or script)")
        corpus_csv = gr.File(label="All figures (CSV)")
        gr.Markdown("**Spread per language.** A corpus premium is one number; sentences vary around it. Each "
                    "sentence's premium over the same sentence in the base language (per-sentence counts):")
        with gr.Row():
            spread_languages = gr.Dropdown(languages, value=list(DEFAULT_LANGUAGES), multiselect=True, scale=3,
                                           label=f"Languages to compare (up to {limits.max_languages})")
            run_spread = gr.Button("Show the spread", scale=1)
        spread_html = gr.HTML(elem_id="premium-spread")
        spread_table = gr.Dataframe(interactive=False, max_height=300, label="Percentiles of per-sentence premiums")

    def load_tokenizers(names, hub_id, progress):
        # A typed Hub id is not a registry name, so tokenizers load by their (validated) spec.
        specs = cost.tokenizer_specs(service.registry, names, hub_id, limits)
        return [service.load_spec(spec, lambda message: progress(0, desc=message)) for spec in specs]

    def describe(loaded, with_special) -> str:
        lines = [f"- **{t.name}**: {t.origin}; adds `{t.added_special_names}`" for t in loaded]
        return f"{POLICY[bool(with_special)]}\n\n" + "\n".join(lines)

    @user_errors
    def flores_sentences(chosen_languages, split, number):
        return pd.DataFrame(cost.flores_rows(chosen_languages, split, number), columns=["language", "text"])

    @user_errors
    def count_tokens(sentences, tokenizers, hub_id, base, price, context, with_special, progress=gr.Progress()):
        pairs = cost.check_rows(sentences, limits)
        price, context = cost.check_price(price), cost.check_context(context)
        loaded = load_tokenizers(tokenizers, hub_id, progress)
        costs = cost.sentence_costs(loaded, pairs, base, price, context, bool(with_special))
        return describe(loaded, with_special), _chart_data(costs), costs

    @user_errors
    def show_tokens(sentences, inspect, base, tokenizers, hub_id, with_special, progress=gr.Progress()):
        pairs = cost.check_rows(sentences, limits)
        text, base_text = cost.text_of(pairs, inspect), cost.text_of(pairs, base)
        loaded = load_tokenizers(tokenizers, hub_id, progress)
        return "".join(token_view_html(t, inspect, text, base, base_text, bool(with_special), MAX_VIEW_TOKENS)
                       for t in loaded)

    counts_dir = counts.counts_folder(service.settings.cache_dir)

    def counting_progress(progress):
        return lambda fraction, message: progress(fraction, desc=message)

    @user_errors
    def corpus_premiums(tokenizers, hub_id, corpus, base, price, with_special, method=counts.PER_SENTENCE,
                        progress=gr.Progress()):
        price = cost.check_price(price)
        loaded = load_tokenizers(tokenizers, hub_id, progress)
        costs = cost.corpus_costs(loaded, corpus, base, price, bool(with_special), limits, method, counts_dir,
                                  counting_progress(progress))
        name = f"tokenizer_premium_{corpus}{'_joined' if method == counts.JOINED else ''}.csv"
        path = keep(name, cost.costs_csv(costs).encode("utf-8"))
        return describe(loaded, with_special), _chart_data(costs), cost.premium_table(costs), path

    @user_errors
    def premium_spread(tokenizers, hub_id, spread_languages, corpus, base, with_special, progress=gr.Progress()):
        loaded = load_tokenizers(tokenizers, hub_id, progress)
        spreads = cost.premium_spread(loaded, spread_languages, corpus, base, bool(with_special), limits, counts_dir,
                                      counting_progress(progress))
        return premium_spread_html(spreads, base), cost.spread_table(spreads)

    load.click(flores_sentences, [chosen_languages, split, number], sentences, api_name="flores_sentences",
               **CHEAP_EVENT)
    counted = count.click(count_tokens, [sentences, tokenizers, hub_id, base, price, context, with_special],
                          [summary, chart, table], api_name="count_tokens", **CHEAP_EVENT)
    view_inputs = [sentences, inspect, base, tokenizers, hub_id, with_special]
    show.click(show_tokens, view_inputs, tokens_html, api_name="show_tokens", **CHEAP_EVENT)
    counted.success(show_tokens, view_inputs, tokens_html, api_name="show_tokens_after_count",
                    api_visibility="private", **CHEAP_EVENT)
    run_corpus.click(corpus_premiums, [tokenizers, hub_id, corpus, base, price, with_special, method],
                     [corpus_summary, corpus_chart, corpus_table, corpus_csv], api_name="corpus_premiums",
                     **CHEAP_EVENT)
    run_spread.click(premium_spread, [tokenizers, hub_id, spread_languages, corpus, base, with_special],
                     [spread_html, spread_table], api_name="premium_spread", **CHEAP_EVENT)
