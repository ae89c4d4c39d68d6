"""Zero-shot classification with CLIP: images and label texts in one embedding space.

    probabilities = softmax(logit_scale * cos(image, "a photo of a {label}."))

Label embeddings depend only on (model, label, template set), so they are kept in the loaded model's
`LabelEmbeddingCache`: a second image with the same labels costs one image encoding.
"""

from __future__ import annotations

import functools
import html
import math
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from PIL import Image

from playground.clip.images import open_image
from playground.clip.loader import ClipModel
from playground.core import budget, checks
from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.core.stopping import check_wanted

SINGLE_TEMPLATE = "a photo of a {}."


@dataclass(frozen=True)
class TemplateSet:
    name: str
    templates: tuple[str, ...]


@functools.cache
def template_sets() -> dict[str, TemplateSet]:
    """The prompt template choices, by the name the UI and the API use."""
    from playground.core.torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

    # open_clip ships them as lambdas; calling one with "{}" gives back its template string.
    sets = [
        TemplateSet("single: a photo of a {}.", (SINGLE_TEMPLATE,)),
        TemplateSet("7 templates (open_clip's simple ImageNet set)", tuple(t("{}") for t in SIMPLE_IMAGENET_TEMPLATES)),
        TemplateSet("80 templates (OpenAI's ImageNet ensemble)", tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)),
    ]
    return {s.name: s for s in sets}


def get_template_set(name: str | None) -> TemplateSet:
    sets = template_sets()
    if not name:
        return next(iter(sets.values()))
    if name not in sets:
        raise PlaygroundError(f"Unknown template set {str(name)[:80]!r}. Choose one of: {', '.join(sets)}.")
    return sets[name]


def parse_labels(text: str | None, limits: Limits, minimum: int = 2) -> list[str]:
    """Labels, one per line (a single line may also be split on commas); blank lines are skipped."""
    if not isinstance(text, str) or not text.strip():
        raise PlaygroundError("Enter the candidate labels, one per line (e.g. cat, dog, car).")
    lines = checks.split_list(text)
    if len(lines) > limits.max_labels:
        raise PlaygroundError(f"{len(lines):,} labels is too many; use at most {limits.max_labels}.")
    if len(text) > limits.max_prompt_chars:
        raise PlaygroundError(
            f"The labels are too long ({len(text):,} characters; at most {limits.max_prompt_chars:,})."
        )
    labels = [" ".join(line.split()) for line in lines]
    if len(labels) < minimum:
        raise PlaygroundError(
            f"Enter at least {minimum} labels, one per line: the softmax compares labels with each other."
        )
    seen: dict[str, str] = {}
    for label in labels:
        first = seen.get(_reads_as(label))
        if first is not None:
            same = ("appears twice" if first.casefold() == label.casefold() else
                    f"reads the same as {first[:60]!r} (the same text in other Unicode characters or HTML entities)")
            raise PlaygroundError(f"The label {label[:60]!r} {same}; duplicates would split one probability.")
        seen[_reads_as(label)] = label
    return labels


def _reads_as(label: str) -> str:
    """The text a label reads as, to catch duplicates however they are typed: HTML entities decoded
    (`c&#97;t`), invisible format characters dropped (zero-width spaces and joiners, soft hyphens),
    Unicode compatibility forms folded by NFKC (fullwidth `ｃａｔ`, NFD `café`), case and spacing ignored."""
    text = "".join(char for char in html.unescape(label) if unicodedata.category(char) != "Cf")
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def check_logit_scale(value: Any, clip: ClipModel) -> float:
    """The factor applied to cosine similarities; 0 or empty means the model's learned value."""
    if value is None or value == 0:
        return clip.learned_logit_scale
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise PlaygroundError("The logit scale must be a number (0 = the model's learned value).") from None
    if not math.isfinite(scale) or scale < 0 or scale > 1000:
        raise PlaygroundError("The logit scale must be between 0 and 1000 (0 = the model's learned value).")
    return scale


def _trimmable(model: torch.nn.Module) -> bool:
    """CLIP text towers with a causal mask that pool at the end-of-text token (argmax id)."""
    from open_clip.model import CLIP

    return type(model) is CLIP and model.text_pool_type == "argmax" and model.attn_mask is not None


@torch.inference_mode()
def encode_texts(clip: ClipModel, texts: list[str]) -> torch.Tensor:
    """Normalised text embeddings, same values as `model.encode_text(tokens, normalize=True)`.

    open_clip pads every prompt to 77 tokens; prompts are ~10. With a causal mask and pooling at the
    end-of-text token, padding after it cannot change the result, so we cut the batch to its longest
    prompt: several times less work for the same numbers (tests compare with encode_text).
    """
    from open_clip.transformer import text_global_pool

    model = clip.model
    tokens = clip.tokenizer(texts).to(clip.device)
    if not _trimmable(model):
        return model.encode_text(tokens, normalize=True).float()
    length = int(tokens.ne(0).any(dim=0).nonzero().max()) + 1
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    x = model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection
    return torch.nn.functional.normalize(x.float(), dim=-1)


def _encode_chunk(clip: ClipModel, prompts: list[str]) -> torch.Tensor:
    check_wanted()
    return encode_texts(clip, prompts)


def _ensemble(per_template: torch.Tensor) -> torch.Tensor:
    """[labels, templates, dim] normalised -> [labels, dim]: mean then renormalise (as open_clip does)."""
    mean = per_template.mean(dim=1)
    return mean / mean.norm(dim=-1, keepdim=True)


ENCODING_LOWER = "fewer labels or images, or a smaller template set"


def encoding_cost(clip: ClipModel, images: int, labels: Sequence[str], template_sets: Sequence[TemplateSet]) -> budget.Cost:
    """The images, and every label prompt not already cached for this model (labels x templates)."""
    prompts = 0
    for template_set in template_sets:
        keys = [(template_set.name, label) for label in dict.fromkeys(labels)]
        prompts += (len(keys) - len(clip.label_embeddings.lookup(keys))) * len(template_set.templates)
    return budget.encoding(images, prompts)


def label_embeddings(clip: ClipModel, labels: Sequence[str], template_set: TemplateSet) -> torch.Tensor:
    """[labels, dim] normalised; only labels not yet cached for this template set are encoded."""
    keys = [(template_set.name, label) for label in labels]
    cached = clip.label_embeddings.lookup(keys)
    missing = list(dict.fromkeys(label for key, label in zip(keys, labels) if key not in cached))
    if missing:
        templates = template_set.templates
        prompts = [template.replace("{}", label) for label in missing for template in templates]
        # Encode in chunks so 100 labels x 80 templates never builds one giant batch.
        chunk = 256
        encoded = torch.cat([_encode_chunk(clip, prompts[i:i + chunk]) for i in range(0, len(prompts), chunk)])
        fresh = _ensemble(encoded.reshape(len(missing), len(templates), -1))
        # clone: each entry owns its storage, so evicting one really frees it
        new_entries = {(template_set.name, label): row.clone() for label, row in zip(missing, fresh)}
        clip.label_embeddings.store(new_entries)
        cached.update(new_entries)
    return torch.stack([cached[key] for key in keys])


@torch.inference_mode()
def image_embeddings(clip: ClipModel, images: Sequence[Image.Image]) -> torch.Tensor:
    """[images, dim] normalised."""
    pixels = torch.stack([clip.preprocess(image) for image in images]).to(clip.device, clip.dtype)
    return torch.nn.functional.normalize(clip.model.encode_image(pixels).float(), dim=-1)


@dataclass(frozen=True)
class ZeroShotResult:
    labels: list[str]
    cosine: list[float]
    probabilities: list[float]
    logit_scale: float
    template_set: str
    seconds: float

    @property
    def best(self) -> str:
        return self.labels[max(range(len(self.labels)), key=self.probabilities.__getitem__)]

    def rows(self) -> list[dict[str, Any]]:
        """One row per label, most probable first."""
        order = sorted(range(len(self.labels)), key=lambda i: -self.probabilities[i])
        return [
            {"label": self.labels[i], "probability": round(self.probabilities[i], 4),
             "cosine similarity": round(self.cosine[i], 4), "logit": round(self.logit_scale * self.cosine[i], 3)}
            for i in order
        ]


def probabilities_from_cosine(cosine: torch.Tensor, logit_scale: float) -> torch.Tensor:
    return (logit_scale * cosine).softmax(dim=-1)


def classify(
    clip: ClipModel, image: Any, labels_text: str, template_set_name: str | None, logit_scale: Any, limits: Limits
) -> ZeroShotResult:
    """Zero-shot classify one image (a path or a PIL image) against the given labels."""
    labels = parse_labels(labels_text, limits)
    template_set = get_template_set(template_set_name)
    scale = check_logit_scale(logit_scale, clip)
    picture = open_image(image, limits)
    start = time.perf_counter()
    texts = label_embeddings(clip, labels, template_set)
    cosine = (image_embeddings(clip, [picture]) @ texts.T)[0]
    probabilities = probabilities_from_cosine(cosine, scale)
    return ZeroShotResult(labels, cosine.tolist(), probabilities.tolist(), scale, template_set.name,
                          time.perf_counter() - start)


def similarity_matrix(
    clip: ClipModel, images: Sequence[Image.Image], labels: Sequence[str], template_set: TemplateSet
) -> torch.Tensor:
    """[images, labels] cosine similarities."""
    return image_embeddings(clip, images) @ label_embeddings(clip, labels, template_set).T


def encode_gallery_images(clip: ClipModel, images: Sequence[Image.Image], batch: int = 8) -> torch.Tensor:
    chunks = []
    for start in range(0, len(images), batch):
        check_wanted()
        chunks.append(image_embeddings(clip, images[start:start + batch]))
    return torch.cat(chunks)


@dataclass(frozen=True)
class BatchAccuracy:
    """Top-1 zero-shot accuracy on a labelled folder, for each template set."""

    files: list[str]
    true_labels: list[str]
    predictions: dict[str, list[str]]  # template set name -> predicted label per image

    def accuracy(self, template_set: str) -> float:
        hits = sum(p == t for p, t in zip(self.predictions[template_set], self.true_labels))
        return hits / len(self.true_labels)


def batch_accuracy(
    clip: ClipModel, files: Sequence[str], images: Sequence[Image.Image], true_labels: Sequence[str],
    template_set_names: Sequence[str],
) -> BatchAccuracy:
    """Classify every image against all the folder's labels, once per template set."""
    if not images:
        raise PlaygroundError("The folder has no labelled images.")
    classes = list(dict.fromkeys(true_labels))
    if len(classes) < 2:
        raise PlaygroundError("Zero-shot accuracy needs images of at least two different labels.")
    features = encode_gallery_images(clip, images)
    predictions = {}
    for name in dict.fromkeys(template_set_names):
        best = (features @ label_embeddings(clip, classes, get_template_set(name)).T).argmax(dim=-1)
        predictions[name] = [classes[i] for i in best.tolist()]
    return BatchAccuracy(list(files), list(true_labels), predictions)
