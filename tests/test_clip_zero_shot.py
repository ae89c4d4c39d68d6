"""CLIP zero-shot maths and input checks on the real ViT-B-32 architecture (random weights, loaded from a
local checkpoint through the registry and cache), compared with open_clip's own encode and normalise."""

from __future__ import annotations

import gc
import struct
import weakref
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from playground.clip.gallery import GALLERY_DIR, gallery, gallery_labels, pick_photos
from playground.core.cache import CacheKey, PipelineCache
from playground.views.clip import gallery_accuracy, similarity_heatmap
from playground.clip.zero_shot import (
    SINGLE_TEMPLATE, TemplateSet, batch_accuracy, check_logit_scale, classify, encode_texts, get_template_set,
    label_embeddings, parse_labels, similarity_matrix, template_sets,
)
from playground.clip.images import _ADAM7, NOT_AN_IMAGE, open_image
from playground.clip.loader import ClipModel, LabelEmbeddingCache
from playground.core.errors import ModelUnavailableError, PlaygroundError
from playground.core.registry import Registry
from playground.core.service import ModelService
from playground.core.settings import Limits, load_settings

CAT = GALLERY_DIR / "cat.jpg"
LABELS = ["cat", "dog", "rocket"]
SEVEN = "7 templates (open_clip's simple ImageNet set)"
EIGHTY = "80 templates (OpenAI's ImageNet ensemble)"


@pytest.fixture(scope="module")
def clip(service) -> ClipModel:
    return service.load("clip")


@pytest.fixture
def limits() -> Limits:
    return Limits()


def reference_probabilities(clip: ClipModel, image: Image.Image, prompts: list[str], scales: list[float]) -> list:
    """The zero-shot recipe from open_clip's README, on the same model."""
    with torch.no_grad():
        image_features = clip.model.encode_image(clip.preprocess(image).unsqueeze(0), normalize=True)
        text_features = clip.model.encode_text(clip.tokenizer(prompts), normalize=True)
        return [(scale * image_features @ text_features.T).softmax(dim=-1)[0] for scale in scales]


def test_local_checkpoint_loads_through_registry_and_cache(service, clip):
    spec = service.registry.get("clip", None)
    checkpoint = load_file(spec.location)
    assert isinstance(clip, ClipModel) and spec.is_local_path
    # The saved weights, not a fresh random init, are what the cache serves.
    assert torch.equal(clip.model.visual.conv1.weight, checkpoint["visual.conv1.weight"])
    assert service.load("clip") is clip


def test_source_without_weights_is_refused_not_served_random(tmp_path):
    settings = load_settings(overrides={"models": {"clip": ["ViT-B-32"]}, "cache_dir": str(tmp_path)}, environ={})
    with pytest.raises(ModelUnavailableError, match="ViT-B-32"):
        ModelService(settings, Registry.from_settings(settings)).load("clip")


def test_trimmed_text_encoding_equals_open_clip_encode_text(clip):
    prompts = ["a photo of a cat.", "a bad photo of the large cup of coffee with milk, on a wooden table.", "x"]
    with torch.no_grad():
        reference = clip.model.encode_text(clip.tokenizer(prompts), normalize=True)
    torch.testing.assert_close(encode_texts(clip, prompts), reference, atol=1e-5, rtol=1e-4)


def test_probabilities_match_open_clip_reference(clip, limits):
    image = Image.open(CAT).convert("RGB")
    learned = float(clip.model.logit_scale.detach().exp())
    expected = reference_probabilities(clip, image, [SINGLE_TEMPLATE.format(x) for x in LABELS], [learned, 100.0])
    for scale, reference in zip((0, 100.0), expected):
        result = classify(clip, str(CAT), "\n".join(LABELS), None, scale, limits)
        torch.testing.assert_close(torch.tensor(result.probabilities), reference, atol=1e-5, rtol=1e-4)
        assert result.logit_scale == pytest.approx(scale or learned)


def test_ensemble_matches_open_clip_zero_shot_classifier(clip):
    from open_clip.zero_shot_classifier import build_zero_shot_classifier
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

    reference = build_zero_shot_classifier(clip.model, clip.tokenizer, LABELS[:2], SIMPLE_IMAGENET_TEMPLATES)
    ours = label_embeddings(clip, LABELS[:2], TemplateSet("test: simple set", template_sets()[SEVEN].templates))
    torch.testing.assert_close(ours, reference.T, atol=1e-5, rtol=1e-4)
    eighty = template_sets()[EIGHTY].templates
    assert len(set(eighty)) == len(OPENAI_IMAGENET_TEMPLATES) == 80 and eighty[0] == "a bad photo of a {}."


def test_second_image_with_same_labels_encodes_only_the_image(clip, limits, monkeypatch):
    encoded: list[str] = []
    original = encode_texts

    def counting(model, texts):
        encoded.extend(texts)
        return original(model, texts)

    monkeypatch.setattr("playground.clip.zero_shot.encode_texts", counting)
    labels = "zebra\ngiraffe\nteapot"
    first = classify(clip, str(CAT), labels, SEVEN, 0, limits)
    assert len(encoded) == 3 * 7
    second = classify(clip, str(GALLERY_DIR / "rocket.jpg"), labels, SEVEN, 0, limits)
    assert len(encoded) == 3 * 7  # cached: no text encoded for the second image
    assert first.probabilities != second.probabilities
    classify(clip, str(CAT), "zebra\ngiraffe\nkettle", None, 0, limits)  # other set, one new label
    assert encoded[21:] == ["a photo of a zebra.", "a photo of a giraffe.", "a photo of a kettle."]


def test_label_cache_is_bounded_least_recently_used_first():
    cache = LabelEmbeddingCache(max_entries=2)
    cache.store({"a": torch.zeros(1), "b": torch.ones(1)})
    cache.lookup(["a"])
    cache.store({"c": torch.ones(1)})
    assert len(cache) == 2 and set(cache.lookup(["a", "b", "c"])) == {"a", "c"}


def test_label_embeddings_are_freed_with_their_model_when_the_cache_evicts_it():
    cache = PipelineCache(budget_bytes=1)  # every new model evicts the previous one

    def loaded(name: str) -> ClipModel:
        return ClipModel(name, torch.nn.Linear(4, 4), lambda image: image, lambda texts: texts, torch.device("cpu"))

    first = cache.get(CacheKey("clip", "a", "cpu", "float32"), lambda: loaded("a"))
    first.label_embeddings.store({("set", "cat"): torch.ones(4)})
    embeddings = weakref.ref(first.label_embeddings)
    del first
    cache.get(CacheKey("clip", "b", "cpu", "float32"), lambda: loaded("b"))
    gc.collect()
    assert embeddings() is None


def test_higher_logit_scale_sharpens_the_distribution(clip, limits):
    labels = "\n".join(gallery_labels())
    flat = classify(clip, str(CAT), labels, None, 1, limits)
    sharp = classify(clip, str(CAT), labels, None, 1000, limits)
    assert max(sharp.probabilities) > max(flat.probabilities)
    assert sharp.best == flat.best  # the ranking is the cosine's, whatever the scale
    assert sharp.cosine == flat.cosine


def test_similarity_matrix_rows_equal_single_image_cosines(clip, limits):
    photos = pick_photos(["cat", "rocket"], limits)
    matrix = similarity_matrix(clip, [image for _, image in photos], LABELS, get_template_set(None))
    single = classify(clip, str(GALLERY_DIR / "rocket.jpg"), "\n".join(LABELS), None, 0, limits)
    torch.testing.assert_close(matrix[1], torch.tensor(single.cosine), atol=1e-5, rtol=1e-4)
    styled = similarity_heatmap(clip, ["cat", "rocket"], "\n".join(LABELS), None, limits)
    assert list(styled.data["photo"]) == ["cat", "rocket"] and list(styled.data.columns[1:]) == LABELS


def test_batch_accuracy_agrees_with_classifying_each_photo(clip, limits):
    photos = gallery()
    classes = gallery_labels()
    images = [image for _, image in pick_photos([p.name for p in photos], limits)]
    result = batch_accuracy(clip, [p.name for p in photos], images, [p.label for p in photos], [SEVEN])
    for photo, predicted in zip(photos[:3], result.predictions[SEVEN]):
        assert classify(clip, str(photo.path), "\n".join(classes), SEVEN, 0, limits).best == predicted
    expected = sum(p == t for p, t in zip(result.predictions[SEVEN], result.true_labels)) / len(photos)
    assert result.accuracy(SEVEN) == expected
    summary, table = gallery_accuracy(clip, [SEVEN, "single: a photo of a {}."], limits)
    assert f"{expected:.0%} top-1" in summary and len(table) == len(photos) == 10


def test_gallery_photos_are_real_labelled_and_documented():
    photos = gallery()
    notice = (GALLERY_DIR / "NOTICE.md").read_text()
    assert len(photos) >= 8 and len(set(p.label for p in photos)) == len(photos)
    for photo in photos:
        with Image.open(photo.path) as image:
            assert min(image.size) >= 256
        assert photo.path.name in notice


@pytest.mark.parametrize("text, message", [
    ("", "Enter the candidate labels"),
    ("   \n\n ", "Enter the candidate labels"),
    ("cat", "at least 2 labels"),
    ("\n".join(f"label {i}" for i in range(1000)), "1,000 labels is too many"),
    ("cat\ndog\nCat", "appears twice"),
    ("x" * 10_000, "too long"),
    (None, "Enter the candidate labels"),
])
def test_bad_labels_get_a_clear_message(text, message, limits):
    with pytest.raises(PlaygroundError, match=message):
        parse_labels(text, limits)


@pytest.mark.parametrize("text, typed", [
    ("cat\nc&#97;t", "c&#97;t"),  # an HTML entity
    ("caf\u00e9\ncafe\u0301", "cafe\u0301"),  # NFC and NFD
    ("cat\n\uff43\uff41\uff54", "\uff43\uff41\uff54"),  # fullwidth
    ("cat\nc\u200bat", "c\u200bat"),  # a zero-width space
])
def test_labels_that_read_the_same_are_duplicates_shown_as_typed(text, typed, limits):
    with pytest.raises(PlaygroundError) as refused:
        parse_labels(text, limits)
    assert str(refused.value).startswith(f"The label {typed!r} reads the same as {text.split(chr(10))[0]!r}")


def test_labels_skip_blank_lines_and_accept_one_comma_separated_line(limits):
    assert parse_labels("cat\n\n  dog  \n", limits) == ["cat", "dog"]
    assert parse_labels("cat, dog ,cup of  coffee", limits) == ["cat", "dog", "cup of coffee"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, 1e9, "12abc"])
def test_bad_logit_scale_gets_a_clear_message(value, clip):
    with pytest.raises(PlaygroundError, match="logit scale"):
        check_logit_scale(value, clip)


def test_bad_images_get_a_clear_message(tmp_path, limits):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 100)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(CAT.read_bytes()[:2000])
    text = tmp_path / "notes.png"
    text.write_text("this is text, not an image")
    huge = tmp_path / "huge.png"  # 50 megapixels, a few KB on disk: refused before decoding
    Image.new("1", (10_000, 5_000)).save(huge)
    cases = {corrupt: "damaged or truncated", truncated: "damaged or truncated", text: NOT_AN_IMAGE,
             huge: "too large", tmp_path / "missing.png": NOT_AN_IMAGE, tmp_path: NOT_AN_IMAGE, "": "Upload or paste"}
    for path, message in cases.items():
        with pytest.raises(PlaygroundError) as refused:
            open_image(str(path) if path else path, limits)
        assert message in str(refused.value)  # a missing file and a text file get the same words
    with pytest.raises(PlaygroundError, match="too large"):
        open_image(Image.new("L", (100, 100)), Limits(max_image_pixels=5_000))


def _png(width: int, height: int, rows: bytes, colour_type: int = 2, interlaced: bool = False) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, int(interlaced))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_a_truncated_png_is_refused(tmp_path, limits):
    """Ten rows of data under a header that declares 6,324 x 6,324: PIL decodes the rest as black, silently."""
    short = tmp_path / "short.png"
    short.write_bytes(_png(6324, 6324, (b"\x00" + bytes(6324)) * 10, colour_type=0))
    with pytest.raises(PlaygroundError, match="PNG is truncated: it declares 6,324 x 6,324 pixels"):
        open_image(str(short), limits)
    # Complete files of every layout pass, interlaced ones included (Adam7's seven passes of rows).
    pixels = np.random.default_rng(0).integers(0, 255, (13, 7, 3), dtype=np.uint8)
    passes = b"".join(b"\x00" + row.tobytes() for x, y, dx, dy in _ADAM7 for row in pixels[y::dy, x::dx]
                      if row.size)
    complete = tmp_path / "interlaced.png"
    complete.write_bytes(_png(7, 13, passes, interlaced=True))
    assert (np.asarray(open_image(str(complete), limits)) == pixels).all()
    for mode in ("1", "L", "LA", "P", "RGBA", "I;16"):
        Image.new(mode, (33, 7)).save(tmp_path / "plain.png")
        assert open_image(str(tmp_path / "plain.png"), limits).size == (33, 7)


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_a_16_bit_gradient_is_scaled_by_its_bit_depth(tmp_path, limits, suffix):
    gradient = np.linspace(0, 65535, 64 * 256).reshape(64, 256).astype(np.uint16)
    path = tmp_path / f"gradient{suffix}"
    Image.fromarray(gradient).save(path)
    grey = np.asarray(open_image(str(path), limits))[..., 0]
    assert (grey == (gradient >> 8)).all()  # not clipped: PIL's own conversion made 99.6% of it white
    assert (grey == 255).mean() < 0.01 and abs(grey.mean() - 127.5) < 1


def test_unknown_template_set_and_unavailable_model_get_clear_messages(service, limits):
    with pytest.raises(PlaygroundError, match="Unknown template set"):
        get_template_set("a photo of {}")
    with pytest.raises(ModelUnavailableError, match="ViT-B-32:openai.*offline"):
        service.load("clip", "ViT-B-32:openai")
