"""The logit lens (nostalgebraist, 2020): what the model would predict if it stopped after each layer.

The residual stream after layer l is put through the model's own final norm and output head (and the
transform its config puts on the logits: Gemma's soft-capping, Cohere's scale, Granite's divisor), giving a
next-token distribution per layer and position. Both are read from the loaded model, not hard-coded per
family. The last layer needs no norm (transformers' last hidden state is already normed) and gives exactly
the model's own logits: the head runs on each layer alone, in the model's own shape [1, positions, width],
because running it on all layers as one batch changes the floating-point rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

import torch

from playground.core.errors import PlaygroundError
from playground.core.stopping import check_wanted
from playground.language.results import Lens

if TYPE_CHECKING:
    from playground.language.local import LocalLanguageModel

# Where transformers' causal LMs keep the norm after the last block (Llama/Qwen/Gemma: norm, GPT-2: ln_f,
# Phi: final_layernorm, OPT: final_layer_norm, Mamba: norm_f).
_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layernorm", "final_layer_norm", "norm_f")
TOP_TOKENS = 5  # top tokens kept per layer at the last position


def final_norm(model: torch.nn.Module) -> torch.nn.Module:
    """The model's own norm after its last block, found on its decoder (the base model)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    for owner in (decoder, getattr(decoder, "decoder", None), model):
        for name in _FINAL_NORM_NAMES:
            module = getattr(owner, name, None) if owner is not None else None
            if isinstance(module, torch.nn.Module):
                return module
    raise PlaygroundError(f"The logit lens cannot find the final norm of {type(model).__name__}; it knows the "
                          f"names {', '.join(_FINAL_NORM_NAMES)}.")


def logits_transform(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the model's forward does to the head's output, read from its config (identity for most)."""
    config = model.config.get_text_config()
    softcap = getattr(config, "final_logit_softcapping", None)
    scale = getattr(config, "logit_scale", None)
    divisor = getattr(config, "logits_scaling", None)

    def transform(logits: torch.Tensor) -> torch.Tensor:
        if scale is not None:
            logits = logits * scale
        if divisor is not None:
            logits = logits / divisor
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    return transform


def layer_logits(model: torch.nn.Module, hidden_states: tuple[torch.Tensor, ...]) -> Iterator[torch.Tensor]:
    """Per layer (embeddings first, the last block last), the logits (1, positions, vocab) it would give.

    `hidden_states` is the model's `output_hidden_states` tuple: entry 0 the embeddings, entry l the residual
    stream after block l, and the last entry already through the final norm (transformers replaces it)."""
    norm, head, transform = final_norm(model), model.get_output_embeddings(), logits_transform(model)
    last = len(hidden_states) - 1
    with torch.inference_mode():
        for index, hidden in enumerate(hidden_states):
            check_wanted()
            yield transform(head(hidden if index == last else norm(hidden)))


def logit_lens(lm: LocalLanguageModel, prompt_ids: torch.Tensor, label: Callable[[int], str]) -> Lens:
    """The lens over every layer and every position of the prompt (1 × n), in one forward pass. One layer's
    logits are held at a time (all of them would take layers × positions × vocabulary floats)."""
    model = lm.model
    with torch.inference_mode():
        output = model(input_ids=prompt_ids, use_cache=False, output_hidden_states=True)
    answer = int(torch.argmax(output.logits[0, -1]))  # the model's own next token: the lens's last layer
    tops, top_probs, last_ids, last_probs, answers = [], [], [], [], []
    for logits in layer_logits(model, output.hidden_states):
        probs = torch.softmax(logits[0].to(torch.float32), dim=-1)
        best = probs.max(dim=-1)
        tops.append(best.indices)
        top_probs.append(best.values)
        last = torch.topk(probs[-1], TOP_TOKENS)
        last_ids.append(last.indices)
        last_probs.append(last.values)
        answers.append(probs[-1, answer])
    return Lens(
        positions=tuple(label(int(i)) for i in prompt_ids[0]),
        layers=("embeddings",) + tuple(f"layer {i}" for i in range(1, len(tops))),
        top_ids=torch.stack(tops), top_probs=torch.stack(top_probs),
        last_top_ids=torch.stack(last_ids), last_top_probs=torch.stack(last_probs),
        answer_probs=torch.stack(answers), label=label,
    )
