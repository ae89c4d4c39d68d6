"""The CLIP zero-shot tab through the running app: its named endpoints from gradio_client, and a person
in a browser picking a gallery photo and seeing the probability bars."""

from __future__ import annotations

import re

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from playwright.sync_api import expect

from playground.clip.gallery import GALLERY_DIR

CAT = str(GALLERY_DIR / "cat.jpg")
LABELS = "cat\ndog\nrocket"
SINGLE = "single: a photo of a {}."


def classify(client, image=CAT, labels=LABELS, logit_scale=0, model=None, templates=SINGLE):
    return client.predict(image=handle_file(image), labels=labels, templates=templates, logit_scale=logit_scale,
                          model=model or client_default_model(client), api_name="/classify")


def client_default_model(client) -> str:
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/classify"][
        "parameters"][4]["parameter_default"]


def test_classify_endpoint_returns_probabilities_and_cosines(client):
    probabilities, details, summary = classify(client)
    confidences = {row["label"]: row["confidence"] for row in probabilities["confidences"]}
    assert set(confidences) == {"cat", "dog", "rocket"} and sum(confidences.values()) == pytest.approx(1, abs=1e-3)
    assert probabilities["label"] == max(confidences, key=confidences.get)
    assert details["headers"] == ["label", "probability", "cosine similarity", "logit"]
    assert [row[0] for row in details["data"]] == sorted(confidences, key=confidences.get, reverse=True)
    assert "logit scale" in summary and "model's learned value" in summary


def test_logit_scale_changes_the_distribution_not_the_cosines(client):
    flat, flat_details, _ = classify(client, logit_scale=1)
    sharp, sharp_details, summary = classify(client, logit_scale=200)
    top = lambda result: max(row["confidence"] for row in result["confidences"])  # noqa: E731
    assert top(sharp) > top(flat)
    assert sorted(r[2] for r in sharp_details["data"]) == sorted(r[2] for r in flat_details["data"])
    assert "logit scale **200.0**" in summary


@pytest.mark.parametrize("labels, message", [
    ("", "Enter the candidate labels"),
    ("\n".join(f"thing {i}" for i in range(1000)), "too many"),
    ("cat\ncat", "appears twice"),
])
def test_bad_labels_get_a_clear_message(client, labels, message):
    with pytest.raises(AppError, match=message):
        classify(client, labels=labels)


def test_bad_images_get_a_clear_message(client, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 100)
    text = tmp_path / "notes.png"
    text.write_text("this is text, not an image")
    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 5_000)).save(huge)
    for path, message in [(corrupt, "damaged"), (text, "could not be read as an image"), (huge, "too large")]:
        with pytest.raises(AppError, match=message):
            classify(client, image=str(path))
    assert classify(client)[0]["label"]  # still serving


def test_compare_models_side_by_side(client):
    model = client_default_model(client)
    left, right, summary = client.predict(image=handle_file(CAT), labels=LABELS, templates=SINGLE, logit_scale=0,
                                          model_a=model, model_b=model, api_name="/compare_models")
    assert left == right and summary.count(model) == 2
    with pytest.raises(AppError, match="CLIP model 'ViT-B-32:openai' is not available offline.*prefetch"):
        client.predict(image=handle_file(CAT), labels=LABELS, templates=SINGLE, logit_scale=0,
                       model_a=model, model_b="ViT-B-32:openai", api_name="/compare_models")


def test_similarity_matrix_endpoint(client):
    matrix = client.predict(photos=["cat", "rocket", "coffee"], labels="cat\nrocket", templates=SINGLE,
                            model=client_default_model(client), api_name="/similarity_matrix")
    assert matrix["headers"] == ["photo", "cat", "rocket"]
    assert [row[0] for row in matrix["data"]] == ["cat", "rocket", "coffee"]
    assert all(-1 <= float(value) <= 1 for row in matrix["data"] for value in row[1:])
    with pytest.raises(AppError, match="not in the list of choices|Unknown gallery photo"):
        client.predict(photos=["../../etc/passwd"], labels="cat", templates=SINGLE,
                       model=client_default_model(client), api_name="/similarity_matrix")


def test_batch_accuracy_endpoint(client):
    summary, table = client.predict(template_sets=[SINGLE], model=client_default_model(client),
                                    api_name="/batch_accuracy")
    assert re.search(r"\d+% top-1", summary) and len(table["data"]) == 10
    assert table["headers"] == ["photo", "true label", f"predicted ({SINGLE})"]


def test_person_picks_a_gallery_photo_and_sees_bars(page):
    page.get_by_role("tab", name="CLIP zero-shot").click()
    page.get_by_role("button", name="Classify").click()  # no image yet: a message, not a traceback
    expect(page.get_by_text("Upload or paste an image first")).to_be_visible()
    page.locator("#clip-gallery .gallery-item").nth(1).click()  # the cat photo
    expect(page.locator("#clip-image img")).to_be_visible()
    page.get_by_role("button", name="Classify").click()
    bars = page.locator("#clip-probabilities")
    expect(bars).to_contain_text("cup of coffee", timeout=90_000)  # the first request may load the model
    for label in ("cat", "dog", "astronaut", "rocket"):
        expect(bars).to_contain_text(label)
    expect(bars).to_contain_text(re.compile(r"\d+%"))
    expect(page.locator("#clip-summary")).to_contain_text("the model's learned value")
    scale = page.get_by_role("spinbutton", name="number input for Logit scale (0 = the model's learned value)")
    scale.fill("200")
    scale.press("Enter")  # turning the knob re-runs the classification
    expect(page.locator("#clip-summary")).to_contain_text("logit scale 200.0")


def test_where_it_looks_endpoint_returns_one_overlay_per_label(client, tmp_path):
    overlays, summary = client.predict(
        image=handle_file(CAT), labels="cat\ndog", templates=SINGLE, logit_scale=0, grid="4x4", opacity=0.6,
        model=client_default_model(client), api_name="/where_it_looks")
    assert len(overlays) == 2 and {item["caption"].split(":")[0] for item in overlays} == {"cat", "dog"}
    assert Image.open(overlays[0]["image"]).size == (224, 224)
    assert "4x4 grid: 17 image encodings" in summary
    small = tmp_path / "small.png"
    Image.new("RGB", (24, 24), "white").save(small)
    with pytest.raises(AppError, match="too small for a 4x4 heatmap"):
        client.predict(image=handle_file(str(small)), labels="cat\ndog", templates=SINGLE, logit_scale=0,
                       grid="4x4", opacity=0.6, model=client_default_model(client), api_name="/where_it_looks")


def test_person_sees_where_the_model_looks_and_fades_the_heat(page):
    page.get_by_role("tab", name="CLIP zero-shot").click()
    page.get_by_text("Where the model looks: an occlusion heatmap per label").click()  # open its accordion
    page.get_by_role("button", name="Where it looks: cat vs dog").click()  # the preset runs the heatmap
    heatmaps = page.locator("#clip-heatmaps")
    expect(heatmaps.locator("img")).to_have_count(2, timeout=90_000)
    expect(heatmaps).to_contain_text("a cat")
    expect(page.locator("#clip-heatmap-summary")).to_contain_text("17 image encodings")
    before = heatmaps.locator("img").first.get_attribute("src")
    opacity = page.get_by_role("spinbutton", name="number input for Heatmap opacity")
    opacity.fill("0")
    opacity.press("Enter")  # redrawn from the kept map: the model does not run again
    expect(heatmaps.locator("img").first).not_to_have_attribute("src", before)
