"""Structured output: a JSON schema, a regular expression or a list of choices, as one more stage of the chain.

The grammar engine is llguidance (the one behind llama.cpp's and vLLM's guidance back-ends): at every step it
says which tokens keep the text on a path the constraint allows, and the grammar stage removes all the others
(their mass is renormalised away, exactly like a top-k cut). We never parse the grammar ourselves.

What a constraint is, and whether a finished text obeys it, lives in `playground.language.constraints`.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from typing import TYPE_CHECKING, Sequence

import llguidance
import llguidance.hf
import numpy as np
import torch
from llguidance import LLMatcher
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from playground.language.constraints import KIND_LABELS, Constraint, GrammarError

if TYPE_CHECKING:
    from playground.language.local import LocalLanguageModel

# llguidance's JSON default allows any whitespace between tokens, and a small model then pads with newlines
# until it runs out of tokens: one fixed spacing keeps the output compact (and still any valid JSON layout).
_JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


_engine_tokenizers: "weakref.WeakKeyDictionary[PreTrainedTokenizerBase, dict[int, llguidance.LLTokenizer]]" = (
    weakref.WeakKeyDictionary())
_engine_lock = threading.Lock()


def engine_tokenizer(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> llguidance.LLTokenizer:
    """llguidance's view of a tokenizer (1-10 s to build): built once per loaded tokenizer, and forgotten with
    it when the cache unloads the model. `vocab_size` is the logits' width, which can exceed `len(tokenizer)`.
    The engine ends a text with the tokenizer's end-of-text token."""
    with _engine_lock:
        built = _engine_tokenizers.setdefault(tokenizer, {})
        if vocab_size not in built:
            try:
                built[vocab_size] = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
            except ValueError as error:
                raise GrammarError(f"The grammar engine cannot read this model's tokenizer: {error}.") from None
        return built[vocab_size]


def _engine_message(error: str) -> str:
    """llguidance's first line, or for a regex the line that names the problem ("error: unclosed group")."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    named = [line for line in lines if line.startswith("error:")]
    return (named[-1] if named else lines[0] if lines else "unknown error").removeprefix("error: ")


def allowed_tokens(matcher: LLMatcher, vocab_size: int) -> torch.Tensor:
    """(vocab,) bool: the engine's own set of tokens allowed next (bit i of its little-endian bitmask)."""
    bits = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
    return torch.from_numpy(bits[:vocab_size].astype(bool))


def engine_grammar(constraint: Constraint) -> str:
    """The constraint in llguidance's grammar format."""
    if constraint.kind == "json_schema":
        return LLMatcher.grammar_from_json_schema(constraint.schema, overrides=_JSON_LAYOUT)
    if constraint.kind == "regex":
        return llguidance.grammar_from("regex", constraint.spec)
    return llguidance.grammar_from("choice", json.dumps(list(constraint.choices)))


def compile_constraint(engine: llguidance.LLTokenizer, constraint: Constraint) -> LLMatcher:
    """A matcher at the start of the text; `GrammarError` if the engine refuses the constraint or it admits
    no text (llguidance accepts such grammars and would only ever allow the end token)."""
    matcher = LLMatcher(engine, engine_grammar(constraint))
    if matcher.is_error():  # the constructor never raises: it records the error
        raise GrammarError(f"The grammar engine refused this {KIND_LABELS[constraint.kind]}: "
                           f"{_engine_message(matcher.get_error())}.")
    allowed = allowed_tokens(matcher, engine.vocab_size)
    allowed[list(engine.eos_tokens)] = False
    if not allowed.any():
        what = "only the empty text" if matcher.is_accepting() else "no text at all"
        raise GrammarError(f"This {KIND_LABELS[constraint.kind]} admits {what}, so there is nothing to generate.")
    return matcher


def vocab_width(model: torch.nn.Module) -> int:
    """The width of the model's logits (the output head's rows), which the mask must match."""
    head = model.get_output_embeddings()
    return int(head.weight.shape[0]) if head is not None else int(model.config.get_text_config().vocab_size)


class GrammarProcessor(LogitsProcessor):
    """The grammar stage for `generate` and for `samples.draw_samples`: one matcher per row.

    Each call first feeds every row's matcher the tokens drawn since the last call, then masks what the
    matcher forbids. Once a row's text is complete the engine allows only the end token; after that is
    drawn nothing more is fed (the padding `generate` appends to a finished row is ignored). `seconds` adds
    up the time spent here: what the constraint costs."""

    def __init__(self, matchers: Sequence[LLMatcher], prompt_width: int, end_ids: set[int]):
        self.matchers = list(matchers)
        self.prompt_width = prompt_width
        self.end_ids = end_ids
        self.fed = [0] * len(self.matchers)
        self.ended = [False] * len(self.matchers)
        self.seconds = 0.0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        start = time.perf_counter()
        if input_ids.shape[1] - self.prompt_width < max(self.fed):  # the batcher ran the request again from its start
            for matcher in self.matchers:
                matcher.reset()
            self.fed, self.ended = [0] * len(self.matchers), [False] * len(self.matchers)
        masks = []
        for row, matcher in enumerate(self.matchers):
            new = input_ids[row, self.prompt_width + self.fed[row]:].tolist()
            self.fed[row] += len(new)
            for token in new:
                if self.ended[row]:
                    break
                if not matcher.consume_token(token):
                    raise GrammarError(f"The grammar engine refused a drawn token: {_engine_message(matcher.get_error())}.")
                self.ended[row] = token in self.end_ids
            masks.append(allowed_tokens(matcher, scores.shape[-1]))
        allowed = torch.stack(masks).to(scores.device)
        self.seconds += time.perf_counter() - start
        return scores.masked_fill(~allowed, float("-inf"))


def matcher_for(lm: LocalLanguageModel, constraint: Constraint) -> LLMatcher:
    """The constraint compiled for this model's tokenizer (the engine's tokenizer is built once per model)."""
    return compile_constraint(engine_tokenizer(lm.tokenizer, vocab_width(lm.model)), constraint)
