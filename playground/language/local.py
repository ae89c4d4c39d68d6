"""A causal language model run here by transformers: the `LanguageBackend` with everything visible.

Every token's probability is known, so the next-token chain covers the whole vocabulary, beam search is
there, and label scores are exact. Its batcher (`playground.language.batcher`) is the only thing that runs
the model: next tokens, label scores and generations of everyone who asks at once share padded passes, each
with its own knobs and seeded generator; work that keeps a KV cache between passes (step sessions, beam
search, a sweep's shared prefix) takes the model in turn. So requests need not take turns in the queue
(`takes_turns` is False). The work itself lives in the modules this one calls (sampling, steps, sweep,
batches, label_scoring); this class is what the tabs hold.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar, Hashable, Iterator, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from playground.core import budget, checks
from playground.core.errors import PlaygroundError
from playground.core.knobs import SAMPLING_KNOBS
from playground.core.registry import ModelSpec
from playground.core.settings import Limits, Settings
from playground.language import batches, label_scoring, steps, sweep
from playground.language.backend import Capabilities
from playground.language.batcher import Batcher
from playground.language.generation import encode_prompt, generate
from playground.language.weights import weights_location
from playground.language.results import (
    BatchOutput, Generation, LabelScores, NextToken, RenderedPrompt, SearchResult, SweepColumn,
)
from playground.language.sampling import TRANSFORMERS_ORDER, next_token_stages
from playground.language.sampling_settings import SamplingSettings
from playground.language.token_text import readable_token

LOCAL = Capabilities(
    full_vocabulary=True, top_n=None, beam_search=True, sampler_order=TRANSFORMERS_ORDER,
    knobs=tuple(knob.name for knob in SAMPLING_KNOBS), takes_turns=False, label_scores_exact=True,
    knobs_after_sampling=True,
)


def context_length_of(config: PretrainedConfig) -> int:
    """The tokens a model reads at most, from its config."""
    return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 2048))


@dataclass
class LocalLanguageModel:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    limits: Limits = field(default_factory=Limits)  # the batcher's window and caps
    batcher: Batcher = field(init=False, repr=False)

    capabilities: ClassVar[Capabilities] = LOCAL
    takes_turns: ClassVar[bool] = LOCAL.takes_turns  # known before loading (tabs.common.local_model_turns)

    @classmethod
    def load(cls, spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings) -> "LocalLanguageModel":
        location = weights_location(spec, settings)
        offline = settings.offline
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(
            location, dtype=dtype, trust_remote_code=False, local_files_only=offline
        )
        model.to(device).eval()
        if tokenizer.pad_token is None:  # batching needs a pad token; GPT-2 and friends have none
            tokenizer.pad_token = tokenizer.eos_token
        return cls(spec.name, model, tokenizer, torch.device(device), settings.limits)

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.model, self.tokenizer.pad_token_id, self.limits)

    def torch_modules(self) -> list[torch.nn.Module]:
        return [self.model]

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def context_length(self) -> int:
        return context_length_of(self.model.config)

    # ---- prompts

    def render_prompt(self, text: str, use_chat_template: bool) -> RenderedPrompt:
        ids = encode_prompt(self, text, use_chat_template)
        if use_chat_template:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                      add_generation_prompt=True)
        return RenderedPrompt(text, ids)

    def render_chat(self, messages: list[dict[str, str]]) -> RenderedPrompt:
        checks.chat_template(self.tokenizer, self.name)
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # Tokenised by the template itself, so special tokens are not added twice.
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        if ids.shape[1] >= self.context_length:
            raise PlaygroundError(
                f"The prompt is {ids.shape[1]:,} tokens; {self.name} reads at most {self.context_length:,}.")
        return RenderedPrompt(text, ids.to(self.device))

    def check_sampling(self, settings: SamplingSettings) -> None:
        """Every knob applies here."""

    # ---- the next token, and step by step

    def next_token(self, prompt: RenderedPrompt, settings: SamplingSettings) -> NextToken:
        """The forward pass is shared with whoever else asks at the same moment; the chain is this request's."""
        logits = self.batcher.next_token_logits(prompt.ids[0].tolist())
        stages = next_token_stages(logits, prompt.ids, settings)
        return NextToken(stages, functools.partial(readable_token, self.tokenizer))

    def start_steps(self, identity: Hashable, prompt: RenderedPrompt, seed: int) -> steps.StepSession:
        return steps.start_session(identity, prompt.ids, seed)

    def steps_cost(self, session: steps.StepSession, tokens: int, max_total: int) -> budget.Cost:
        uncached = session.ids.shape[1] - session.cached  # the prompt on the first click, one token after
        return budget.generation(uncached, steps.tokens_to_draw(session, tokens, max_total), context=session.cached)

    def advance(self, session: steps.StepSession, settings: SamplingSettings, tokens: int,
                max_total: int) -> steps.StepSession:
        # A session keeps its own KV cache between clicks, so its passes cannot join a padded batch.
        with self.batcher.turn():
            return steps.advance(self, session, settings, tokens, max_total)

    # ---- whole continuations

    def generate(self, prompt: RenderedPrompt, settings: SamplingSettings, max_new_tokens: int,
                 seed: int | None = 0) -> Generation:
        return generate(self, prompt.ids, settings, max_new_tokens, seed)

    def generate_many(self, prompts: Sequence[RenderedPrompt], settings: SamplingSettings, max_new_tokens: int,
                      samples: int, seed: int, stop: tuple[str, ...] = ()) -> BatchOutput:
        return batches.generate_batch(self, _id_lists(prompts), settings, max_new_tokens, seed, stop, samples)

    def stream_many(self, prompts: Sequence[RenderedPrompt], settings: SamplingSettings, max_new_tokens: int,
                    samples: int, seed: int, stop: tuple[str, ...] = ()) -> Iterator[BatchOutput]:
        return batches.stream_batch(self, _id_lists(prompts), settings, max_new_tokens, seed, stop, samples)

    def temperature_sweep(self, prompt: RenderedPrompt, base: SamplingSettings, temperatures: list[float],
                          samples: int, max_new_tokens: int, seed: int) -> list[SweepColumn]:
        return sweep.temperature_sweep(self, prompt.ids, base, temperatures, samples, max_new_tokens, seed)

    def beam_search(self, prompt: RenderedPrompt, beams: int, max_new_tokens: int) -> list[SearchResult]:
        # Beam search reorders its rows' caches every step (transformers' own loop): it runs alone, in turn.
        with self.batcher.turn():
            return sweep.compare_search(self, prompt.ids, beams, max_new_tokens)

    # ---- scoring

    def score_labels(self, prompts: Sequence[RenderedPrompt],
                     labels_ids: Sequence[Sequence[int]]) -> Iterator[LabelScores]:
        """One prompt's labels join other requests' passes (a row per label). Several prompts (a sweep
        setting's) share the keys and values of what they all start with instead, computed in turn."""
        exact = (False,) * len(labels_ids)
        if len(prompts) == 1:
            yield LabelScores(self.batcher.label_log_likelihoods(prompts[0].ids[0].tolist(), labels_ids), exact)
            return
        with self.batcher.turn():
            prefix = label_scoring.shared_prefix(self, [p.ids for p in prompts])
        for prompt in prompts:
            with self.batcher.turn():  # released between prompts: others' requests run in between
                scores = label_scoring.label_log_likelihoods(self, prompt.ids, labels_ids, prefix)
            yield LabelScores(scores, exact)


def _id_lists(prompts: Sequence[RenderedPrompt]) -> list[list[int]]:
    return [prompt.ids[0].tolist() for prompt in prompts]
