"""CLIP zero-shot: classify any image against free-text labels, compare weights, see the similarity
matrix and the accuracy of prompt ensembling on a labelled gallery."""

from __future__ import annotations

import gradio as gr

from playground.clip.gallery import gallery, gallery_labels
from playground.clip.occlusion import GRIDS
from playground.clip.zero_shot import template_sets
from playground.core.service import ModelService
from playground.views import clip as clip_views
from tabs.common import CHEAP_EVENT, MODEL_EVENT, load_with_progress, model_picker, user_errors

TITLE = "CLIP zero-shot"
ORDER = 40

INTRO = """CLIP maps images and texts into one space. Each label becomes a prompt ("a photo of a cat."),
the **cosine similarity** of its embedding with the image's is scaled by the **logit scale** and a softmax
turns the scores into probabilities: a classifier with no training. Averaging the embeddings of many
prompt templates (an *ensemble*) usually helps: compare the template sets below."""
HEATMAP_NOTE = """Occlusion sensitivity (Zeiler & Fergus, 2014): the image the model sees is cut into a grid,
each cell in turn is greyed out, and the drop in each label's cosine similarity is that cell's heat. **Red**:
hiding the region lowers the label's score (the model relies on it); **blue**: hiding it raises the score.
Each map is scaled to its own strongest cell; the caption gives that drop.

What to notice: the labels that fit draw their heat from the object, not the background; a label that fits
nothing spreads weak heat everywhere. The method shows which regions matter one at a time; it misses
regions that matter only together, and anything smaller than a cell."""
DEFAULT_LABELS = "cat\ndog\nastronaut\nrocket\ncup of coffee\nhorse"


def unopened_image_input(**kwargs) -> gr.Image:
    """A gr.Image whose callbacks get the uploaded file's path without gradio opening it.

    gr.Image decodes uploads before the callback runs, so a corrupt file or a non-image fails with no
    message, and a decompression bomb is decoded before any size check. Here playground code opens
    it: size checked first, and a message that says what is wrong. (Overridden on the instance: a
    gr.Image subclass would make gradio write a .pyi stub next to this module.) A path reaches it only
    if it is in Gradio's upload folder: the app checks every file payload first (serving.files).
    """
    image = gr.Image(type="filepath", **kwargs)
    decode = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path:
            return payload.path
        try:
            return decode(payload)  # a data: URL from an API call
        except Exception:
            raise gr.Error("The image could not be read: send a PNG, JPEG or WebP image.") from None

    image.preprocess = preprocess
    return image


def build(service: ModelService) -> None:
    limits = service.settings.limits
    sets = list(template_sets())
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column():
            image = unopened_image_input(label="Image (upload, paste, or pick a gallery photo below)",
                                         sources=["upload", "clipboard"], height=320, elem_id="clip-image")
            photos = gallery()
            # Gradio copies the photos into its upload folder and serves them from there: the page names no
            # path of the checkout, and nothing of the checkout is served.
            gr.Examples([[str(photo.path)] for photo in photos], [image], label="Gallery (see assets/clip/NOTICE.md)",
                        examples_per_page=len(photos), elem_id="clip-gallery",
                        api_visibility="private")
        with gr.Column():
            labels = gr.Textbox(DEFAULT_LABELS, lines=6, max_lines=12, label="Candidate labels, one per line",
                                info=f"2 to {limits.max_labels} labels")
            templates = gr.Dropdown(sets, value=sets[0], label="Prompt templates")
            logit_scale = gr.Slider(0, 200, value=0, step=0.5, label="Logit scale (0 = the model's learned value)",
                                    info="Higher sharpens the distribution, lower flattens it (temperature = 1/scale).")
            model = model_picker(service, "clip", label="CLIP model")
            run = gr.Button("Classify", variant="primary")
    probabilities = gr.Label(label="Probabilities", elem_id="clip-probabilities")
    summary = gr.Markdown(elem_id="clip-summary")
    details = gr.Dataframe(headers=["label", "probability", "cosine similarity", "logit"], interactive=False,
                           label="Cosine similarities and logits")

    @user_errors
    def classify(image, labels, templates, logit_scale, model, progress=gr.Progress()):
        clip = load_with_progress(service, "clip", model, progress)
        return clip_views.classification(clip, image, labels, templates, logit_scale, limits)

    inputs = [image, labels, templates, logit_scale, model]
    outputs = [probabilities, details, summary]
    run.click(classify, inputs, outputs, api_name="classify", **MODEL_EVENT)

    def reclassify(image, labels, templates, logit_scale, model, progress=gr.Progress()):
        """Re-run when a knob turns, to watch the distribution change; before any image, stay quiet."""
        if image is None:
            return gr.skip(), gr.skip(), gr.skip()
        return classify(image, labels, templates, logit_scale, model, progress=progress)

    for control in (logit_scale.change, templates.input):
        control(reclassify, inputs, outputs, api_visibility="private", trigger_mode="always_last", **MODEL_EVENT)

    with gr.Accordion("Where the model looks: an occlusion heatmap per label", open=False):
        gr.Markdown(HEATMAP_NOTE)
        with gr.Row():
            grid = gr.Radio([f"{g}x{g}" for g in GRIDS], value=f"{GRIDS[0]}x{GRIDS[0]}", label="Grid",
                            info="4x4: one batch of 17 images; 7x7: finer, about 3 times the work")
            opacity = gr.Slider(0, 1, value=0.6, step=0.05, label="Heatmap opacity",
                                info="Redraws the overlays; the model does not run again")
        heat_run = gr.Button("Show where it looks")
        heatmaps = gr.Gallery(label="Heat per label, most probable first", columns=3, height="auto",
                              elem_id="clip-heatmaps")
        heat_summary = gr.Markdown(elem_id="clip-heatmap-summary")
        heat_state = gr.State(None)

    @user_errors
    def where_it_looks(image, labels, templates, logit_scale, grid, opacity, model, progress=gr.Progress()):
        clip = load_with_progress(service, "clip", model, progress)
        return clip_views.where_it_looks(clip, image, labels, templates, grid, logit_scale, opacity, limits)

    heat_run.click(where_it_looks, [image, labels, templates, logit_scale, grid, opacity, model],
                   [heatmaps, heat_summary, heat_state], api_name="where_it_looks", **MODEL_EVENT)
    opacity.change(user_errors(clip_views.heat_overlays), [heat_state, opacity], [heatmaps],
                   api_visibility="private", trigger_mode="always_last", **CHEAP_EVENT)

    with gr.Accordion("Compare two models side by side", open=False):
        with gr.Row():
            model_a = model_picker(service, "clip", label="Left model")
            model_b = model_picker(service, "clip", label="Right model")
        compare_run = gr.Button("Compare on this image and these labels")
        with gr.Row():
            left, right = gr.Label(label="Left model"), gr.Label(label="Right model")
        compare_summary = gr.Markdown()

    @user_errors
    def compare(image, labels, templates, logit_scale, model_a, model_b, progress=gr.Progress()):
        clips = [load_with_progress(service, "clip", name, progress) for name in (model_a, model_b)]
        return clip_views.comparison(clips, image, labels, templates, logit_scale, limits)

    compare_run.click(compare, [image, labels, templates, logit_scale, model_a, model_b],
                      [left, right, compare_summary], api_name="compare_models", **MODEL_EVENT)

    names = [photo.name for photo in photos]
    with gr.Accordion("Similarity matrix: several images x several labels", open=False):
        matrix_photos = gr.CheckboxGroup(names, value=names[:5], label="Gallery photos")
        matrix_labels = gr.Textbox("\n".join(gallery_labels()[:5]), lines=5, label="Labels, one per line")
        matrix_run = gr.Button("Show the similarity matrix")
        matrix = gr.Dataframe(label="Cosine similarity (colour spans this matrix's lowest to highest value)",
                              interactive=False, elem_id="clip-matrix")

    @user_errors
    def similarity(photos, labels, templates, model, progress=gr.Progress()):
        clip = load_with_progress(service, "clip", model, progress)
        return clip_views.similarity_heatmap(clip, photos, labels, templates, limits)

    matrix_run.click(similarity, [matrix_photos, matrix_labels, templates, model], [matrix],
                     api_name="similarity_matrix", **MODEL_EVENT)

    with gr.Accordion("Batch accuracy on the gallery: one template vs an ensemble", open=False):
        batch_sets = gr.CheckboxGroup(sets, value=[sets[0], sets[-1]], label="Template sets to compare")
        batch_run = gr.Button("Measure zero-shot accuracy")
        batch_summary = gr.Markdown()
        batch_table = gr.Dataframe(label="Prediction per photo", interactive=False)

    @user_errors
    def accuracy(template_sets, model, progress=gr.Progress()):
        clip = load_with_progress(service, "clip", model, progress)
        return clip_views.gallery_accuracy(clip, template_sets, limits)

    batch_run.click(accuracy, [batch_sets, model], [batch_summary, batch_table], api_name="batch_accuracy",
                    **MODEL_EVENT)
