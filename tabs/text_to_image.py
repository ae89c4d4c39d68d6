"""Text-to-image: prompt, the diffusion knobs, and the denoising made visible step by step."""

from __future__ import annotations

import gradio as gr
from gradio.processing_utils import encode_pil_to_bytes

from playground.core.service import ModelService
from playground.text_to_image.tiny_decoder import LINEAR, PREVIEW_KINDS, choose_previews
from playground.views import text_to_image as views
from playground.text_to_image.pipeline import (
    MAX_SEED, MIN_SIDE, RANDOM_SEED, SCHEDULERS, ImageRequest, Result, check_budget, denoise_with_previews,
    grid_requests, model_defaults,
)
from serving.files import keep
from tabs.common import CHEAP_EVENT, MODEL_EVENT, load_with_progress, model_picker, user_errors

TITLE = "Text-to-image"
ORDER = 60

INTRO = """A diffusion model starts from pure noise (in a small **latent** space, 1/8 of the image's size) and
removes a little of it at every **step**, steered by the prompt's text embedding. **Guidance** (CFG) runs the
UNet with and without the prompt and pushes away from the unprompted prediction: more guidance follows the
prompt more literally, too much burns the image. The **scheduler** decides how much noise each step removes.
Watch the latents turn into a picture: each preview below is a cheap linear map of the latents to colours, or
with TAESD a tiny decoder's picture of them; the last image is the real VAE decode."""


def build(service: ModelService) -> None:
    limits = service.settings.limits
    defaults = model_defaults(service.registry.get("text_to_image", None))
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox("a watercolor painting of a lighthouse on a cliff at sunset", label="Prompt", lines=2,
                                max_length=limits.max_prompt_chars, elem_id="t2i-prompt",
                                info="The text encoder reads 77 tokens at most.")
            negative_prompt = gr.Textbox("", label="Negative prompt", lines=1, max_length=limits.max_prompt_chars,
                                         info="What to steer away from; used only when guidance is above 1.")
            with gr.Row():
                steps = gr.Slider(1, limits.max_diffusion_steps, defaults.steps, step=1, label="Steps",
                                  elem_id="t2i-steps-knob")
                guidance = gr.Slider(0, limits.max_guidance_scale, defaults.guidance, step=0.5,
                                     label="Guidance scale (CFG)", info="0 or 1 = off")
            with gr.Row():
                width = gr.Slider(MIN_SIDE, limits.max_image_side, defaults.side, step=8, label="Width",
                                  elem_id="t2i-width")
                height = gr.Slider(MIN_SIDE, limits.max_image_side, defaults.side, step=8, label="Height",
                                   elem_id="t2i-height")
                seed = gr.Number(0, label="Seed", precision=0, minimum=RANDOM_SEED, maximum=MAX_SEED,
                                 info="-1 = random (the result tells which)")
            with gr.Row():
                scheduler = gr.Dropdown(list(SCHEDULERS), value="Model default", label="Scheduler")
                model = model_picker(service, "text_to_image", label="Diffusion model")
            preview = gr.Radio(list(PREVIEW_KINDS), value=LINEAR, label="Step previews", elem_id="t2i-preview-kind",
                               info="The linear map is free; TAESD, a tiny decoder, shows what the VAE would, "
                                    "at some cost a step. Without TAESD on the server, the linear map stays.")
            hint = gr.Markdown(defaults.hint)
            with gr.Row():
                run = gr.Button("Generate", variant="primary")
                stop = gr.Button("Stop")
        with gr.Column(scale=3):
            image = gr.Image(label="Image (live preview while denoising)", type="filepath", format="png",
                             height=420, interactive=False, elem_id="t2i-image")
            status = gr.Markdown(elem_id="t2i-status")
    steps_strip = gr.Gallery(label="Denoising, step by step", columns=8, height=200, elem_id="t2i-steps",
                             object_fit="contain", format="png", fit_columns=False, interactive=False)
    gallery = gr.Gallery(label="Your results (settings in each caption and inside each PNG)", columns=6, height=260,
                         format="png", fit_columns=False, interactive=False, elem_id="t2i-gallery")
    # The visitor's results live on the server (gr.State), never in an input a client could fill with a path:
    # the last image written, and the gallery's (path, caption) entries, newest first.
    latest, kept = gr.State(None), gr.State([])
    knobs = [prompt, negative_prompt, steps, guidance, seed, scheduler, width, height, model, preview]

    @user_errors
    def generate(prompt, negative_prompt, steps, guidance, seed, scheduler, width, height, model, preview,
                 progress=gr.Progress()):
        request = ImageRequest(prompt, negative_prompt, steps, guidance, seed, scheduler, width, height)
        request = request.validated(limits)
        pipeline = load_with_progress(service, "text_to_image", model, progress)
        check_budget(pipeline, [request], limits, "This image")
        previews = choose_previews(service, pipeline, preview)
        shown = []
        for event in denoise_with_previews(pipeline, request, model, decoder=previews.decoder):
            if isinstance(event, Result):
                path = keep("image.png", encode_pil_to_bytes(event.image, "png"))  # the settings ride in the PNG
                yield path, views.result_strip(event), views.result_status(event, previews.note), path
                return
            progress((event.index, event.total), desc="Denoising", unit="steps")
            shown.append(event)
            yield event.preview, views.strip(shown), views.step_status(event, previews.note), gr.skip()

    # The progress bar goes on the status line, so it never hides the live preview.
    generated = run.click(generate, knobs, [image, steps_strip, status, latest], api_name="generate",
                          show_progress_on=status, **MODEL_EVENT)

    @user_errors
    def keep_in_gallery(path, entries):
        entries = views.gallery_with(entries, path, limits.max_gallery_images)
        return entries, entries

    generated.success(keep_in_gallery, [latest, kept], [gallery, kept], api_visibility="private", **CHEAP_EVENT)

    def apply_defaults(name):
        chosen = model_defaults(service.registry.get("text_to_image", name))
        return chosen.steps, chosen.guidance, chosen.side, chosen.side, chosen.hint

    model.input(user_errors(apply_defaults), model, [steps, guidance, width, height, hint],
                api_visibility="private", **CHEAP_EVENT)

    with gr.Accordion("Same-seed grid: what guidance and steps do", open=True):
        gr.Markdown("One seed, the prompt and size above, and every pair of these guidance values and step counts.")
        with gr.Row():
            grid_guidances = gr.Textbox("0, 1.5, 4", label="Guidance values", info="comma-separated")
            grid_steps = gr.Textbox("1, 2, 4", label="Step counts", info="comma-separated")
        with gr.Row():
            run_grid = gr.Button("Generate the grid", variant="primary")
            stop_grid = gr.Button("Stop")
        grid_status = gr.Markdown(elem_id="t2i-grid-status")
        grid = gr.Gallery(label="Grid (rows: guidance, columns: steps)", columns=3, height=480, format="png",
                          fit_columns=False, interactive=False, elem_id="t2i-grid")

    @user_errors
    def same_seed_grid(prompt, negative_prompt, seed, scheduler, width, height, model, guidance_values, step_counts,
                       progress=gr.Progress()):
        base = ImageRequest(prompt, negative_prompt, 1, 0, seed, scheduler, width, height).validated(limits)
        requests = grid_requests(base, guidance_values, step_counts, limits)
        pipeline = load_with_progress(service, "text_to_image", model, progress)
        check_budget(pipeline, requests, limits, "This grid")
        results: list[Result] = []
        yield gr.Gallery([], columns=views.grid_columns(requests)), views.grid_status(results, len(requests), base.seed)
        for request in requests:
            for event in denoise_with_previews(pipeline, request, model, previews=False):
                if isinstance(event, Result):
                    results.append(event)
                    yield views.grid_cells(results), views.grid_status(results, len(requests), base.seed)
                else:  # yielding between steps lets Stop end the grid within one step
                    progress((len(results), len(requests)), desc=f"Image {len(results) + 1}/{len(requests)}")
                    yield gr.skip(), gr.skip()

    grid_made = run_grid.click(
        same_seed_grid, [prompt, negative_prompt, seed, scheduler, width, height, model, grid_guidances, grid_steps],
        [grid, grid_status], api_name="same_seed_grid", show_progress_on=grid_status, **MODEL_EVENT)
    for button in (stop, stop_grid):
        button.click(None, None, None, cancels=[generated, grid_made], api_visibility="private")
