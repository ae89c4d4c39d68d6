"""The one interface every language model is used through, in the style of `playground.tokenizers.backends`.

A backend is a local transformers model (`playground.language.local`) or a model behind an OpenAI-compatible
inference server (`playground.language.remote.backend`). What differs between them is declared in
`Capabilities`, never found out by asking which class an object is: the tabs' logic calls these methods
and reads these flags, and a backend that cannot do something raises `Capabilities.unsupported`'s message.

Adding a backend: one module with a class that implements `LanguageBackend` (and a `load(spec, device,
dtype, settings)` class method), plus its entry in `playground.language.loader.BACKENDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Hashable, Iterator, Protocol, Sequence

import torch

from playground.core.errors import PlaygroundError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from playground.core import budget
    from playground.language.results import (
        BatchOutput, Generation, LabelScores, Lens, NextToken, RenderedPrompt, ScoredSamples, SearchResult,
        SweepColumn,
    )
    from playground.language.constraints import Constraint
    from playground.language.sampling_settings import SamplingSettings


@dataclass(frozen=True)
class Capabilities:
    """What a backend can show, as the tabs and their messages need to know it."""

    full_vocabulary: bool  # the next-token chain over every token; False: over the top `top_n` a server returns
    top_n: int | None  # how many next tokens it returns with their probabilities (None: all of them)
    beam_search: bool
    sampler_order: tuple[str, ...]  # the stages after "raw", in the order it applies the knobs
    knobs: tuple[str, ...]  # the sampling knobs (names of playground.core.knobs) it can apply
    takes_turns: bool  # requests must run one at a time (a local model: shared seed and memory)
    label_scores_exact: bool  # False: a label token outside the top N is scored as an upper bound
    knobs_after_sampling: bool  # it reports probabilities after the knobs as well as the model's own
    # Its hidden states and every step's whole distribution: the logit lens, the grammar mask, steering a token.
    internals: bool = False
    why_not: str = ""  # what it is built on, for messages: "the OpenAI API"
    what_it_is: str = "this model"  # how messages name it: "an inference server"
    computed_by: str = ""  # who computes, in notices: "llama.cpp server"

    def unsupported(self, feature: str, instead: str) -> PlaygroundError:
        """The one message for something this backend cannot do."""
        return PlaygroundError(f"{feature} is not part of {self.why_not}, so {self.what_it_is} cannot show it "
                               f"here; {instead}.")


class LanguageBackend(Protocol):
    """What the language tabs use. Prompts go in as text and come back rendered (`render_prompt`,
    `render_chat`); every other method takes those rendered prompts."""

    name: str
    tokenizer: PreTrainedTokenizerBase
    device: torch.device  # where its prompt ids live
    takes_turns: ClassVar[bool]  # = capabilities.takes_turns, known before loading (the queue needs it)

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def context_length(self) -> int: ...

    @property
    def has_chat_template(self) -> bool: ...

    def torch_modules(self) -> list[torch.nn.Module]: ...

    # ---- prompts
    def render_prompt(self, text: str, use_chat_template: bool) -> RenderedPrompt: ...

    def render_chat(self, messages: list[dict[str, str]]) -> RenderedPrompt: ...

    def check_sampling(self, settings: SamplingSettings) -> None:
        """Refuse, with a message naming the knob, settings this backend cannot apply."""

    # ---- the next token, and generation step by step
    def next_token(self, prompt: RenderedPrompt, settings: SamplingSettings) -> NextToken: ...

    def start_steps(self, identity: Hashable, prompt: RenderedPrompt, seed: int) -> Any:
        """A step session (kept between clicks by the caller); `identity` says which prompt it continues."""

    def steps_cost(self, session: Any, tokens: int, max_total: int) -> budget.Cost: ...

    def advance(self, session: Any, settings: SamplingSettings, tokens: int, max_total: int) -> Any: ...

    # ---- whole continuations
    def generate(self, prompt: RenderedPrompt, settings: SamplingSettings, max_new_tokens: int,
                 seed: int | None = 0, stop: tuple[str, ...] = ()) -> Generation: ...

    def generate_many(self, prompts: Sequence[RenderedPrompt], settings: SamplingSettings, max_new_tokens: int,
                      samples: int, seed: int, stop: tuple[str, ...] = ()) -> BatchOutput:
        """`samples` continuations of each prompt, rows grouped by prompt; seeded, so it repeats."""

    def stream_many(self, prompts: Sequence[RenderedPrompt], settings: SamplingSettings, max_new_tokens: int,
                    samples: int, seed: int, stop: tuple[str, ...] = ()) -> Iterator[BatchOutput]:
        """`generate_many`, yielding the texts so far as they grow; the last item has `finished=True`."""

    def temperature_sweep(self, prompt: RenderedPrompt, base: SamplingSettings, temperatures: list[float],
                          samples: int, max_new_tokens: int, seed: int) -> list[SweepColumn]: ...

    def beam_search(self, prompt: RenderedPrompt, beams: int, max_new_tokens: int) -> list[SearchResult]:
        """Greedy decoding and the best beams; `capabilities.unsupported` where `beam_search` is False."""

    # ---- scoring given continuations
    def score_labels(self, prompts: Sequence[RenderedPrompt],
                     labels_ids: Sequence[Sequence[int]]) -> Iterator[LabelScores]:
        """Per prompt, in order, the log-likelihood of each label's tokens after it."""

    # ---- inside the model (the "Inside the language model" tab, and steering in step-by-step)
    def sample_scored(self, prompt: RenderedPrompt, settings: SamplingSettings, max_new_tokens: int, samples: int,
                      seed: int, constraint: Constraint | None = None) -> ScoredSamples:
        """`samples` seeded continuations, each with the model's own log-probability of its tokens; with
        `constraint`, each obeys it (a local model masks with llguidance, a server uses its own structured
        output, or `capabilities.unsupported` where it has none for that kind of constraint)."""

    def grammar_stage(self, prompt: RenderedPrompt, settings: SamplingSettings, constraint: Constraint) -> NextToken:
        """The next-token chain with the constraint's "grammar" stage; needs `internals`."""

    def logit_lens(self, prompt: RenderedPrompt) -> Lens:
        """Each layer's next-token prediction at every position; needs `internals`."""

    def force_token(self, session: Any, settings: SamplingSettings, text: str, max_total: int) -> Any:
        """Append the one token `text` is to a step session and continue from it; needs `internals`."""

    def step_back(self, session: Any) -> Any:
        """Undo a step session's last token (the seed's draws rewind with it)."""

    def choose_alternative(self, session: Any, settings: SamplingSettings, step: int, alternative: int,
                           max_total: int) -> Any:
        """Go back to before `step` (1-based) and force its `alternative`-th shown candidate (0-based)."""
