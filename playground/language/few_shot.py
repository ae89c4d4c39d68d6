"""In-context learning you can measure: few-shot prompts, the model's probability of each label, and
generated answers, with no weight updates.

A prompt is an instruction, k worked examples and a query, as plain text ("Review: ...\\nSentiment:
Positive") or as chat turns through the model's template (examples become user/assistant turns).
Labels are scored by the log-likelihood of their tokens after the prompt, so a person sees confidence
move as shots are added, not only whether a string matched.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import DynamicCache

from playground.core import budget
from playground.core.errors import PlaygroundError
from playground.core.paths import ASSETS
from playground.core.settings import Limits
from playground.core.stopping import check_wanted
from playground.core.user_text import cell_text
from playground.language.generation import Generation, SamplingSettings, check_new_tokens, check_prompt, encode_prompt, generate
from playground.language.loader import LanguageModel
from playground.language.remote import operations as remote
from playground.language.remote.model import RemoteLanguageModel

TASKS_DIR = ASSETS / "few_shot"
TASK_ORDER = ("sentiment", "topic", "translation", "dates", "custom")

LABELS = "one of the labels"  # classification: score every label, predict the likeliest
FREE_TEXT = "free text"  # generation: the greedy answer is compared with the expected one
ANSWER_TYPES = (LABELS, FREE_TEXT)

AS_GIVEN, SHUFFLED, RANDOM_LABELS = "as given", "shuffled", "random labels"
ORDERS = (AS_GIVEN, SHUFFLED, RANDOM_LABELS)


@dataclass(frozen=True)
class Example:
    input: str
    output: str


@dataclass(frozen=True)
class PromptFormat:
    instruction: str = ""
    input_name: str = "Input"
    output_name: str = "Output"
    use_chat_template: bool = False


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    answer: str
    format: PromptFormat
    labels: tuple[str, ...]
    query: str
    examples: tuple[Example, ...]
    eval_set: tuple[Example, ...]


def load_tasks(directory: Path = TASKS_DIR) -> dict[str, Task]:
    """The shipped task sets, keyed by file name, in TASK_ORDER."""
    tasks = {}
    for task_id in TASK_ORDER:
        raw = json.loads((directory / f"{task_id}.json").read_text(encoding="utf-8"))
        tasks[task_id] = Task(
            id=task_id, title=raw["title"], answer=raw["answer"],
            format=PromptFormat(raw["instruction"], raw["input_name"], raw["output_name"]),
            labels=tuple(raw["labels"]), query=raw["query"],
            examples=tuple(Example(*pair) for pair in raw["examples"]),
            eval_set=tuple(Example(*pair) for pair in raw["eval"]),
        )
    return tasks


# ---- checking what a person typed -------------------------------------------------------------

def check_text(value: Any, what: str, limits: Limits, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise PlaygroundError(f"The {what} must be text, got {type(value).__name__}.")
    if required and not value.strip():
        raise PlaygroundError(f"The {what} is empty: type something first.")
    if len(value) > limits.max_sentence_chars:
        raise PlaygroundError(
            f"The {what} has {len(value):,} characters; this server accepts up to {limits.max_sentence_chars:,}."
        )
    return value.strip()


def check_answer_type(answer: Any) -> str:
    if answer not in ANSWER_TYPES:
        raise PlaygroundError(f"The answer type must be one of: {', '.join(ANSWER_TYPES)}; got {str(answer)[:40]!r}.")
    return answer


def check_order(order: Any) -> str:
    if order not in ORDERS:
        raise PlaygroundError(f"The example order must be one of: {', '.join(ORDERS)}; got {str(order)[:40]!r}.")
    return order


def check_whole_number(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PlaygroundError(f"The {what} must be a whole number, got {str(value)[:40]!r}.")
    if value != int(value) or not low <= value <= high:
        raise PlaygroundError(f"The {what} must be a whole number from {low:,} to {high:,}, got {value}.")
    return int(value)


def check_seed(seed: Any) -> int:
    return check_whole_number(seed, "seed", 0, 2**32 - 1)


def check_shots(k: Any, available: int, limits: Limits) -> int:
    k = check_whole_number(k, "number of shots k", 0, limits.max_examples)
    if k > available:
        have = "no examples" if available == 0 else f"only {available} example{'s' * (available != 1)}"
        raise PlaygroundError(f"k = {k} shots asked for, but the table has {have}: add examples or lower k.")
    return k


def examples_from_rows(rows: Any, limits: Limits, what: str = "example", cap: int | None = None) -> list[Example]:
    """Table rows [input, output] as examples; blank rows are skipped, half-filled rows are an error."""
    if rows is None:
        return []
    if not isinstance(rows, (list, tuple)) or any(not isinstance(row, (list, tuple)) for row in rows):
        raise PlaygroundError(f"The {what} table must be rows of [input, output].")
    cap = limits.max_examples if cap is None else cap
    examples = []
    for number, row in enumerate(rows, start=1):
        cells = [check_text(cell_text(cell), f"{what} {number}", limits) for cell in row[:2]]
        cells += [""] * (2 - len(cells))
        if not any(cells):
            continue
        if not all(cells):
            missing = "output" if cells[0] else "input"
            raise PlaygroundError(f"{what.capitalize()} {number} has no {missing}: fill it in or clear the row.")
        examples.append(Example(*cells))
    if len(examples) > cap:
        raise PlaygroundError(f"The {what} table has {len(examples)} rows; this server takes up to {cap}.")
    return examples


def parse_labels(text: Any, limits: Limits) -> tuple[str, ...]:
    """Comma-separated labels; at least two, no duplicates."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise PlaygroundError(f"The labels must be text, got {type(text).__name__}.")
    labels = tuple(part.strip() for part in text.split(",") if part.strip())
    if len(labels) < 2:
        raise PlaygroundError(
            "A classification needs at least two labels, separated by commas (e.g. Positive, Negative); "
            "or choose the free-text answer type."
        )
    if len(labels) > limits.max_labels:
        raise PlaygroundError(f"{len(labels)} labels given; this server scores up to {limits.max_labels}.")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise PlaygroundError(f"Duplicate labels: {', '.join(duplicates)}. Each label must appear once.")
    long = [label for label in labels if len(label) > limits.max_label_chars]
    if long:
        raise PlaygroundError(f"A label has {len(long[0]):,} characters; labels may have up to {limits.max_label_chars}.")
    return labels


def labels_with_outputs(labels_text: str, examples: Sequence[Example]) -> str:
    """The labels box after the examples changed: the person's labels, plus any new example output."""
    labels = [part.strip() for part in (labels_text or "").split(",") if part.strip()]
    for example in examples:
        if example.output not in labels:
            labels.append(example.output)
    return ", ".join(labels)


def check_outputs_are_labels(examples: Sequence[Example], labels: Sequence[str], what: str = "Example") -> None:
    for number, example in enumerate(examples, start=1):
        if example.output not in labels:
            raise PlaygroundError(
                f"{what} {number}'s output {example.output[:40]!r} is not one of the labels ({', '.join(labels)})."
            )


# ---- choosing shots and assembling the prompt -----------------------------------------------------

def choose_shots(
    examples: Sequence[Example], k: int, order: str, seed: int, labels: Sequence[str] = ()
) -> list[Example]:
    """The first k examples; shuffled keeps them and permutes their order; random labels keeps the order
    and replaces each output by a random label (or, for free text, another example's output)."""
    shots = list(examples[:k])
    rng = random.Random(seed)
    if order == SHUFFLED:
        rng.shuffle(shots)
    elif order == RANDOM_LABELS:
        outputs = [rng.choice(labels) for _ in shots] if labels else rng.sample([s.output for s in shots], len(shots))
        shots = [replace(shot, output=output) for shot, output in zip(shots, outputs)]
    return shots


@dataclass(frozen=True)
class FewShotPrompt:
    text: str  # exactly what the tokenizer reads: the chat template's markup included
    ids: torch.Tensor  # 1 × n token ids on the model's device
    shots: tuple[Example, ...]
    chat: bool

    @property
    def token_count(self) -> int:
        return int(self.ids.shape[1])


def prompt_messages(fmt: PromptFormat, shots: Sequence[Example], query: str) -> list[dict[str, str]]:
    """Chat turns: the instruction as the system message, each shot a user/assistant exchange."""
    messages = [{"role": "system", "content": fmt.instruction}] if fmt.instruction else []
    for shot in shots:
        messages += [{"role": "user", "content": f"{fmt.input_name}: {shot.input}"},
                     {"role": "assistant", "content": shot.output}]
    return messages + [{"role": "user", "content": f"{fmt.input_name}: {query}"}]


def plain_prompt(fmt: PromptFormat, shots: Sequence[Example], query: str) -> str:
    blocks = [fmt.instruction] if fmt.instruction else []
    blocks += [f"{fmt.input_name}: {shot.input}\n{fmt.output_name}: {shot.output}" for shot in shots]
    blocks.append(f"{fmt.input_name}: {query}\n{fmt.output_name}:")
    return "\n\n".join(blocks)


def build_prompt(
    lm: LanguageModel, fmt: PromptFormat, shots: Sequence[Example], query: str, limits: Limits
) -> FewShotPrompt:
    if fmt.use_chat_template:
        if not lm.has_chat_template:
            raise PlaygroundError(f"{lm.name} has no chat template; switch the chat template off.")
        messages = prompt_messages(fmt, shots, query)
        text = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        check_prompt(text, limits)
        # Tokenised by the template itself, so special tokens are not added twice.
        ids = lm.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        if ids.shape[1] >= lm.context_length:
            raise PlaygroundError(f"The prompt is {ids.shape[1]:,} tokens; {lm.name} reads at most {lm.context_length:,}.")
        ids = ids.to(lm.device)
    else:
        text = check_prompt(plain_prompt(fmt, shots, query), limits)
        ids = encode_prompt(lm, text)
    return FewShotPrompt(text, ids, tuple(shots), fmt.use_chat_template)


# ---- scoring labels -----------------------------------------------------------------------------

def label_token_ids(lm: LanguageModel, labels: Sequence[str], chat: bool) -> list[list[int]]:
    """Each label's tokens as they follow the prompt: after "Sentiment:" a space comes first; after
    the chat template's assistant header the answer starts directly."""
    ids = [lm.tokenizer((label if chat else " " + label), add_special_tokens=False).input_ids for label in labels]
    empty = [label for label, tokens in zip(labels, ids) if not tokens]
    if empty:
        raise PlaygroundError(f"The label {empty[0]!r} produced no tokens.")
    return ids


@dataclass
class SharedPrefix:
    """Keys and values of the tokens that every prompt of a sweep setting starts with (the instruction
    and the shots), computed once, so each held-out item only runs its own query."""

    length: int
    cache: DynamicCache


def shared_prefix_length(prompts: Sequence[torch.Tensor]) -> int:
    """The longest run of tokens all prompts start with (compared as tokens, so exactly what each reads),
    leaving every prompt at least one token of its own."""
    length = min(ids.shape[1] for ids in prompts) - 1
    first = prompts[0][0]
    for ids in prompts[1:]:
        differs = (ids[0, :length] != first[:length]).nonzero()
        length = int(differs[0]) if len(differs) else length
    return max(length, 0)


def shared_prefix(lm: LanguageModel, prompts: Sequence[torch.Tensor]) -> SharedPrefix | None:
    """The keys and values of `shared_prefix_length` tokens, or None when the prompts share none."""
    length = shared_prefix_length(prompts)
    if length <= 0:
        return None
    with torch.inference_mode(), lm.batcher.turn():  # a cache kept across passes: the model in turn
        prefix = prompts[0][:, :length]
        # Only the keys and values are needed: skip the vocabulary projection but for one position.
        cache = lm.model(prefix, attention_mask=torch.ones_like(prefix), use_cache=True, logits_to_keep=1).past_key_values
    return SharedPrefix(length, cache)


# Logits of one packed chunk of label tokens: tokens x vocabulary floats, kept under this many bytes.
LABEL_CHUNK_LOGIT_BYTES = 64 * 2**20


def _label_chunks(labels_ids: Sequence[Sequence[int]], vocabulary: int) -> list[list[int]]:
    """Indices of the labels with more than one token, in chunks whose fed tokens' logits fit the budget."""
    per_chunk = max(1, LABEL_CHUNK_LOGIT_BYTES // (4 * vocabulary))
    chunks: list[list[int]] = [[]]
    width = 0
    for index, ids in enumerate(labels_ids):
        fed = len(ids) - 1  # each token predicts the next; the last predicts nothing we need
        if fed == 0:
            continue
        if chunks[-1] and width + fed > per_chunk:
            chunks.append([])
            width = 0
        chunks[-1].append(index)
        width += fed
    return [chunk for chunk in chunks if chunk]


def label_scoring_cost(lm: LanguageModel, prompt_tokens: int, labels_ids: Sequence[Sequence[int]],
                       prefix_length: int = 0) -> budget.Cost:
    """What `label_log_likelihoods` runs: the prompt after the prefix, then each chunk of label tokens."""
    cost = budget.forward(prompt_tokens - prefix_length, context=prefix_length)
    for chunk in _label_chunks(labels_ids, len(lm.tokenizer)):
        cost += budget.forward(sum(len(labels_ids[index]) - 1 for index in chunk), context=prompt_tokens)
    return cost


def _packed_mask(lengths: Sequence[int], past: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, 1, tokens, past + tokens) additive mask: every packed token sees the whole prompt (`past`) and the
    earlier tokens of its own label, never another label's."""
    tokens = sum(lengths)
    mask = torch.full((tokens, past + tokens), torch.finfo(dtype).min, dtype=dtype, device=device)
    mask[:, :past] = 0
    start = 0
    for length in lengths:
        block = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        mask[start:start + length, past + start:past + start + length].masked_fill_(block, 0)
        start += length
    return mask[None, None]


def label_log_likelihoods(
    lm: LanguageModel, prompt_ids: torch.Tensor, labels_ids: Sequence[Sequence[int]], prefix: SharedPrefix | None = None
) -> torch.Tensor:
    """Sum of log p(label tokens | prompt) for every label, the prompt's cache shared by the labels (and by a
    sweep's prompts through `prefix`): passes that keep a cache, so they have the model in turn."""
    with lm.batcher.turn():
        return _packed_label_scores(lm, prompt_ids, labels_ids, prefix)


def _packed_label_scores(
    lm: LanguageModel, prompt_ids: torch.Tensor, labels_ids: Sequence[Sequence[int]], prefix: SharedPrefix | None = None
) -> torch.Tensor:
    """Sum of log p(label tokens | prompt) for every label.

    The prompt runs once (after `prefix`, when given: the caller guarantees the prompt starts with it), and
    its cache is shared by every label, never copied: the labels' tokens run packed into one row after it, a
    chunk at a time, each token seeing the prompt and its own label's earlier tokens only and placed where it
    would be alone. So each score equals scoring that label alone, and memory grows with the prompt plus one
    chunk, not with prompt x labels.
    """
    model, start = lm.model, prefix.length if prefix is not None else 0
    n = prompt_ids.shape[1]
    device = prompt_ids.device
    cache = None
    try:
        with torch.inference_mode():
            out = model(prompt_ids[:, start:], attention_mask=torch.ones_like(prompt_ids), use_cache=True,
                        past_key_values=prefix.cache if prefix is not None else None, logits_to_keep=1)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            scores = first[torch.tensor([ids[0] for ids in labels_ids], device=first.device)].clone()
            cache = out.past_key_values
            for chunk in _label_chunks(labels_ids, out.logits.shape[-1]):
                check_wanted()
                fed = [list(labels_ids[index][:-1]) for index in chunk]
                lengths = [len(tokens) for tokens in fed]
                inputs = torch.tensor([[token for tokens in fed for token in tokens]], device=device)
                positions = torch.tensor([[n + j for length in lengths for j in range(length)]], device=device)
                mask = _packed_mask(lengths, n, model.dtype, device)
                logits = model(inputs, attention_mask=mask, position_ids=positions, past_key_values=cache,
                               use_cache=True).logits[0].float()
                cache.crop(-inputs.shape[1])  # back to the prompt alone for the next chunk
                targets = torch.tensor([token for index in chunk for token in labels_ids[index][1:]], device=device)
                token_scores = logits.gather(1, targets[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)
                for index, part in zip(chunk, token_scores.split(lengths)):
                    scores[index] += part.sum()
        return scores.cpu()
    finally:
        if prefix is not None and cache is not None:  # hand the shared cache back as it was: the prefix's tokens only
            extra = prefix.cache.get_seq_length() - prefix.length
            if extra > 0:
                prefix.cache.crop(-extra)  # transformers 5: a negative count removes that many tokens


def label_probabilities(lm: LanguageModel, prompt: FewShotPrompt, labels: Sequence[str]) -> dict[str, float]:
    """Each label's share of the probability mass the model puts on the label set (sums to 1). A row per
    label, in passes shared with whoever else asks the model at the same moment."""
    scores = torch.tensor(lm.batcher.label_log_likelihoods(prompt.ids[0].tolist(),
                                                           label_token_ids(lm, labels, prompt.chat)))
    return dict(zip(labels, torch.softmax(scores.double(), dim=0).tolist()))


# ---- one run ------------------------------------------------------------------------------------

def answer_text(generation: Generation, chat: bool) -> str:
    """A plain prompt invites the model to go on with more examples: the answer is its first line."""
    text = generation.text.strip()
    return text if chat else text.split("\n", 1)[0].strip()


@dataclass(frozen=True)
class FewShotRequest:
    """Everything one run needs, as a person gave it (checked by `checked_request`)."""

    fmt: PromptFormat
    examples: tuple[Example, ...]
    query: str
    answer: str
    labels: tuple[str, ...]
    k: int
    order: str
    seed: int


def checked_request(
    instruction: Any, input_name: Any, output_name: Any, use_chat_template: Any, example_rows: Any, query: Any,
    answer: Any, labels_text: Any, k: Any, order: Any, seed: Any, limits: Limits, query_required: bool = True,
) -> FewShotRequest:
    fmt = PromptFormat(
        check_text(instruction, "instruction", limits),
        check_text(input_name, "input field name", limits) or "Input",
        check_text(output_name, "output field name", limits) or "Output",
        bool(use_chat_template),
    )
    examples = tuple(examples_from_rows(example_rows, limits))
    answer = check_answer_type(answer)
    labels: tuple[str, ...] = ()
    if answer == LABELS:
        labels = parse_labels(labels_text, limits)
        check_outputs_are_labels(examples, labels)
    query = check_text(query, "query", limits, required=query_required)
    return FewShotRequest(fmt, examples, query, answer, labels, check_shots(k, len(examples), limits),
                          check_order(order), check_seed(seed))


def prompt_for(lm: LanguageModel, request: FewShotRequest, limits: Limits) -> FewShotPrompt:
    shots = choose_shots(request.examples, request.k, request.order, request.seed, request.labels)
    prompt = build_prompt(lm, request.fmt, shots, request.query, limits)
    budget.check(budget.forward(prompt.token_count), limits, "This prompt", "fewer or shorter examples")
    return prompt


@dataclass(frozen=True)
class FewShotResult:
    prompt: FewShotPrompt
    answer: str
    generation: Generation
    probabilities: dict[str, float] = field(default_factory=dict)  # empty for free-text answers
    # Over a server: labels with a token outside its top N, scored as the N-th token (an upper bound).
    bounded_labels: tuple[str, ...] = ()


def run_few_shot(
    lm: LanguageModel, request: FewShotRequest, sampling: SamplingSettings, max_new_tokens: int, limits: Limits
) -> FewShotResult:
    sampling = sampling.validated()
    max_new_tokens = check_new_tokens(max_new_tokens, limits)
    prompt = prompt_for(lm, request, limits)
    cost = budget.generation(prompt.token_count, max_new_tokens)
    if request.labels:
        cost += label_scoring_cost(lm, prompt.token_count, label_token_ids(lm, request.labels, prompt.chat))
    budget.check(cost, limits, "This run", "fewer or shorter labels, fewer examples or new tokens")
    if isinstance(lm, RemoteLanguageModel):
        generation = remote.generate_text(lm, prompt.text, sampling, max_new_tokens, seed=request.seed)
        probabilities, bounded = {}, ()
        if request.labels:
            scores = remote.label_log_likelihoods(lm, prompt.text, label_token_ids(lm, request.labels, prompt.chat))
            probabilities = dict(zip(request.labels, scores.log_likelihoods.softmax(dim=0).tolist()))
            bounded = tuple(label for label, outside in zip(request.labels, scores.bounded) if outside)
        return FewShotResult(prompt, answer_text(generation, prompt.chat), generation, probabilities, bounded)
    generation = generate(lm, prompt.ids, sampling, max_new_tokens, seed=request.seed)
    probabilities = label_probabilities(lm, prompt, request.labels) if request.labels else {}
    return FewShotResult(prompt, answer_text(generation, prompt.chat), generation, probabilities)

