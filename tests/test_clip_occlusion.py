"""Where CLIP looks (occlusion sensitivity): the heat equals plain `encode_image` calls on greyed copies, the
method passes its own deletion check, it works for a ResNet tower too, and bad input gets a message.

The ViT-B-32 tests run the real path (registry, cache, the random-weight checkpoint); one 4x4 map is computed
once for the module and reused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from playground.clip.gallery import GALLERY_DIR
from playground.clip.loader import ClipModel
from playground.clip.occlusion import (
    OcclusionMap, cosine_with_cells_hidden, occluded, occlusion_cost, occlusion_map,
)
from playground.clip.zero_shot import SINGLE_TEMPLATE, classify
from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.core.stopping import Stopped, watching
from playground.views.clip import heat_overlays

CAT = GALLERY_DIR / "cat.jpg"
LABELS = ["cat", "dog", "rocket"]


@pytest.fixture(scope="module")
def clip(service) -> ClipModel:
    return service.load("clip")


@pytest.fixture(scope="module")
def cat_map(clip) -> OcclusionMap:
    return occlusion_map(clip, CAT, "\n".join(LABELS), None, "4x4", Limits())


def plain_cosine(clip: ClipModel, pixels: list[torch.Tensor], labels: list[str]) -> torch.Tensor:
    """open_clip's own calls, one image at a time: [images, labels]."""
    with torch.no_grad():
        texts = clip.model.encode_text(clip.tokenizer([SINGLE_TEMPLATE.format(label) for label in labels]),
                                       normalize=True)
        images = torch.cat([clip.model.encode_image(p[None], normalize=True) for p in pixels])
    return images @ texts.T


def test_heat_is_the_cosine_drop_of_plain_model_calls_on_greyed_copies(clip, cat_map):
    pixels = clip.preprocess(Image.open(CAT).convert("RGB"))
    cells = [(0, 0), (2, 3)]
    cosine = plain_cosine(clip, [pixels] + [occluded(pixels, [cell], 4) for cell in cells], LABELS)
    for index, (row, column) in enumerate(cells, start=1):
        np.testing.assert_allclose(cat_map.heat[:, row, column], (cosine[0] - cosine[index]).numpy(), atol=1e-6)
    # The whole image's scores are the classification's: same cosines, same probabilities.
    plain = classify(clip, CAT, "\n".join(LABELS), None, 0, Limits())
    np.testing.assert_allclose(cat_map.cosine, plain.cosine, atol=1e-6)
    np.testing.assert_allclose(cat_map.probabilities, plain.probabilities, atol=1e-6)
    assert cat_map.heat.shape == (3, 4, 4) and cat_map.encodings == 17 and np.abs(cat_map.heat).max() > 0


def test_hiding_a_labels_hottest_cells_lowers_its_score_more_than_hiding_its_coldest(clip, cat_map):
    """Zeiler & Fergus' own check (as a deletion test): the map ranks regions by what they are worth."""
    quarter = 4
    groups = []
    for label in range(len(LABELS)):
        order = cat_map.hottest_first(label)
        groups += [order[:quarter], order[-quarter:]]
    cosine = cosine_with_cells_hidden(clip, CAT, LABELS, None, groups, 4, Limits())
    for label in range(len(LABELS)):
        hottest_hidden, coldest_hidden = cosine[2 * label, label], cosine[2 * label + 1, label]
        assert hottest_hidden < coldest_hidden, LABELS[label]


def test_the_heat_is_drawn_over_the_image_the_model_saw(clip, cat_map):
    # The seen picture, preprocessed again, gives the model's pixels back (up to 8-bit rounding).
    pixels = clip.preprocess(Image.open(CAT).convert("RGB"))
    again = clip.preprocess(cat_map.seen)
    assert cat_map.seen.size == (224, 224) and (again - pixels).abs().max() < 0.05
    overlays = heat_overlays(cat_map, 0.6)
    assert [caption.split(":")[0] for _, caption in overlays] == [
        LABELS[i] for i in np.argsort(-np.array(cat_map.probabilities), kind="stable")]
    assert all(image.size == (224, 224) for image, _ in overlays)
    clear = heat_overlays(cat_map, 0)[0][0]
    assert np.array_equal(np.asarray(clear), np.asarray(cat_map.seen))  # opacity 0: the image alone
    with pytest.raises(PlaygroundError, match="opacity must be a number from 0"):
        heat_overlays(cat_map, float("nan"))


def tiny_resnet_clip() -> ClipModel:
    """open_clip's ModifiedResNet image tower (the RN50 family), random and tiny, built from a config."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(16, CLIPVisionCfg(layers=(1, 1, 1, 1), width=8, image_size=64),
                 CLIPTextCfg(context_length=77, vocab_size=49408, width=16, heads=2, layers=1)).eval()
    preprocess = open_clip.image_transform(64, is_train=False)
    return ClipModel("tiny-rn", model, preprocess, open_clip.get_tokenizer("RN50"), torch.device("cpu"))


def test_a_resnet_tower_gets_the_same_exact_heat():
    clip = tiny_resnet_clip()
    assert type(clip.model.visual).__name__ == "ModifiedResNet"
    result = occlusion_map(clip, CAT, "cat\ndog", None, 4, Limits())
    pixels = clip.preprocess(Image.open(CAT).convert("RGB"))
    cells = [(row, column) for row in range(4) for column in range(4)]
    cosine = plain_cosine(clip, [pixels] + [occluded(pixels, [cell], 4) for cell in cells], ["cat", "dog"])
    expected = (cosine[0] - cosine[1:]).T.reshape(2, 4, 4).numpy()
    np.testing.assert_allclose(result.heat, expected, atol=1e-6)
    assert np.abs(result.heat).max() > 0


def test_bad_input_gets_a_clear_message_before_any_model_call(clip, cat_map, tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 300), "white").save(small)
    with pytest.raises(PlaygroundError, match=r"40 x 300 pixels: too small for a 7x7 heatmap.*56 pixels"):
        occlusion_map(clip, small, "cat\ndog", None, "7x7", Limits())
    with pytest.raises(PlaygroundError, match="grid must be one of: 4x4, 7x7"):
        occlusion_map(clip, CAT, "cat\ndog", None, "5x5", Limits())
    # 7x7: 49 greyed copies in two passes with the original in each (the labels are cached by now).
    assert occlusion_cost(clip, ["cat", "dog"], None, 7).encodings == 51
    with pytest.raises(PlaygroundError, match="This heatmap would need 51 images and label prompts to encode"):
        occlusion_map(clip, CAT, "cat\ndog", None, "7x7", Limits(max_clip_encodings=40))


def test_a_stopped_request_ends_before_its_next_model_call(clip):
    with watching(lambda: False), pytest.raises(Stopped):
        occlusion_map(clip, CAT, "cat\ndog", None, 4, Limits())
