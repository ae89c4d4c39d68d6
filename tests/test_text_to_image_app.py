"""The text-to-image tab through the running app: its named endpoints from gradio_client, and a person in
a browser generating with the tiny pipeline and watching the step previews appear."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError
from PIL import Image
from playwright.sync_api import expect

KNOBS = dict(prompt="a lighthouse at dusk", negative_prompt="", steps=3, guidance=0, seed=11, scheduler="Euler",
             width=64, height=64)


def generate(client, service, **change):
    knobs = {**KNOBS, "model": service.registry.default("text_to_image"), **change}
    return client.predict(**knobs, api_name="/generate")


def test_generate_returns_the_image_its_steps_and_settings(client, service):
    image, steps, status = generate(client, service, steps=4)
    with Image.open(image) as png:
        assert png.size == (64, 64) and png.format == "PNG"
        assert png.info["parameters"].startswith(
            "a lighthouse at dusk\nSteps: 4, Sampler: Euler, CFG scale: 0, Seed: 11")
    assert [step["caption"] for step in steps] == [
        "step 1/4 (t=999)", "step 2/4 (t=749)", "step 3/4 (t=499)", "step 4/4 (t=249)", "final image (VAE decode)"]
    assert "Seed **11**" in status and "CFG off" in status


def test_same_seed_same_bytes_through_the_api(client, service):
    first, _, _ = generate(client, service)
    second, _, _ = generate(client, service)
    other, _, _ = generate(client, service, seed=12)
    assert Path(first).read_bytes() == Path(second).read_bytes()
    assert Path(first).read_bytes() != Path(other).read_bytes()


@pytest.mark.parametrize("change, message", [
    ({"prompt": ""}, "Enter a prompt"),
    ({"steps": 10_000}, "10,?000 .*50"),
    ({"width": 100}, "multiple of 8"),
    ({"height": 100_000}, "100,?000 .*1,?024"),
    ({"scheduler": "nonsense"}, "nonsense"),
    ({"model": "../../etc"}, "not in the list of choices"),  # never a path: only registered names
])
def test_bad_input_gets_a_clear_message(client, service, change, message):
    with pytest.raises(AppError, match=message):
        generate(client, service, **change)


def test_same_seed_grid_is_labelled(client, service):
    grid, status = client.predict(
        prompt="a lighthouse", negative_prompt="", seed=3, scheduler="Euler", width=64, height=64,
        model=service.registry.default("text_to_image"), guidance_values="0, 3", step_counts="1, 2",
        api_name="/same_seed_grid")
    assert [cell["caption"] for cell in grid] == [
        "CFG 0 · 1 step", "CFG 0 · 2 steps", "CFG 3 · 1 step", "CFG 3 · 2 steps"]
    assert "4/4 images" in status and "seed **3**" in status
    with pytest.raises(AppError, match="the limit is 9"):
        client.predict(prompt="a lighthouse", negative_prompt="", seed=3, scheduler="Euler", width=64, height=64,
                       model=service.registry.default("text_to_image"), guidance_values="0, 1, 2, 3",
                       step_counts="1, 2, 3", api_name="/same_seed_grid")


def test_cancel_stops_the_denoising_on_the_server(client, service):
    unet_calls = []
    hook = service.load("text_to_image").unet.register_forward_hook(lambda *_: unet_calls.append(1))
    try:
        knobs = {**KNOBS, "model": service.registry.default("text_to_image"), "steps": 50, "width": 1024,
                 "height": 1024, "guidance": 7.5}  # long enough (a doubled UNet batch a step) to be stopped midway
        job = client.submit(**knobs, api_name="/generate")
        for output in job:  # blocks until each streamed update arrives
            if "step **2/50**" in str(output):
                break
        assert not job.done(), "the run finished before it could be stopped"
        job.cancel()  # what the Stop button does: the server closes the run's generator
        calls_at_stop = len(unet_calls)
        assert calls_at_stop < 50, "the run ended before Stop"
        generate(client, service, steps=1)  # waits for the model slot, so the stopped run has ended
        assert len(unet_calls) - calls_at_stop <= 3, "the stopped run kept denoising"
        assert not [t for t in threading.enumerate() if t.name == "text-to-image"]
    finally:
        hook.remove()


def set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_person_generates_and_watches_the_steps(page):
    page.get_by_role("tab", name="Text-to-image").click()
    page.locator("#t2i-prompt textarea").fill("a red boat on a lake")
    for elem_id, value in (("t2i-steps-knob", 5), ("t2i-width", 64), ("t2i-height", 64)):
        set_slider(page, elem_id, value)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#t2i-status")).to_contain_text(re.compile(r"Seed \*?\*?0|Seed 0"))
    expect(page.locator("#t2i-image img")).to_be_visible()
    strip = page.locator("#t2i-steps")
    for caption in ("step 1/5", "step 5/5", "final image (VAE decode)"):
        expect(strip.get_by_text(caption)).to_be_visible()
    expect(page.locator("#t2i-gallery").get_by_text(re.compile("a red boat on a lake · Steps: 5"))).to_be_visible()


def test_person_with_an_empty_prompt_is_told_what_to_do(page):
    page.get_by_role("tab", name="Text-to-image").click()
    page.locator("#t2i-prompt textarea").fill("")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_text("Enter a prompt").first).to_be_visible()


def test_taesd_previews_through_the_api(client, service):
    _, steps, status = generate(client, service, preview="TAESD (tiny autoencoder)")
    assert "Step previews: decoded by local: tiny-taesd-random-v1" in status
    assert len(steps) == 4 and Image.open(steps[0]["image"]).size == (64, 64)
    _, _, linear = generate(client, service)
    assert "Step previews: the linear latent map" in linear


def test_person_picks_taesd_previews_from_the_preset(page):
    page.get_by_role("tab", name="Text-to-image").click()
    page.get_by_role("button", name="TAESD previews, 4 steps").click()
    status = page.locator("#t2i-status")
    expect(status).to_contain_text("Step previews: decoded by local: tiny-taesd-random-v1", timeout=120_000)
    expect(page.locator("#t2i-steps").get_by_text("step 4/4")).to_be_visible()
    expect(page.locator("#t2i-preview-kind input[value='TAESD (tiny autoencoder)']")).to_be_checked()
