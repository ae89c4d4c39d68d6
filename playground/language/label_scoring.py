"""A local model's log-likelihood of given continuations (few-shot labels) after a prompt, exactly and
cheaply: the prompt runs once, labels run packed after it, and prompts that start alike (a sweep setting's)
share the keys and values of that start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from transformers import DynamicCache

from playground.core import budget
from playground.core.stopping import check_wanted

if TYPE_CHECKING:  # the local backend calls these with itself
    from playground.language.backend import LanguageBackend
    from playground.language.local import LocalLanguageModel


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


def shared_prefix(lm: LocalLanguageModel, prompts: Sequence[torch.Tensor]) -> SharedPrefix | None:
    """The keys and values of `shared_prefix_length` tokens, or None when the prompts share none."""
    length = shared_prefix_length(prompts)
    if length <= 0:
        return None
    with torch.inference_mode():
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


def label_scoring_cost(lm: LanguageBackend, prompt_tokens: int, labels_ids: Sequence[Sequence[int]],
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
    lm: LocalLanguageModel, prompt_ids: torch.Tensor, labels_ids: Sequence[Sequence[int]], prefix: SharedPrefix | None = None
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
