"""CLIP zero-shot: the tab's classify call vs raw open_clip, and what the label-embedding cache saves.

    .venv/bin/python -m bench.bench_clip                       # ViT-B-32, random weights (offline)
    .venv/bin/python -m bench.bench_clip --source ViT-B-32:openai   # real weights, if cached locally

Random weights time the same as real ones: the architecture, not the values, sets the cost.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from PIL import Image

from bench.common import interleaved_medians, median_seconds, report
from playground.clip.gallery import GALLERY_DIR
from playground.clip.zero_shot import SINGLE_TEMPLATE, encode_texts, get_template_set, label_embeddings, template_sets
from playground.core.service import ModelService
from playground.core.settings import load_settings
from playground.clip.occlusion import GRIDS
from playground.views.clip import classification, where_it_looks

IMAGE = str(GALLERY_DIR / "cat.jpg")
LABELS = ["cat", "dog", "astronaut", "rocket", "cup of coffee", "horse"]




def random_weights_source() -> str:
    from tests.factories import clip  # the test suite's ViT-B-32 checkpoint, built once per checkout

    return clip.build(load_settings(environ={}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", help="CLIP registry source (default: ViT-B-32 with random weights)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    source = args.source or random_weights_source()
    service = ModelService(load_settings(overrides={"models": {"clip": [source]}}, environ={}))
    clip = service.load("clip")
    limits = service.settings.limits
    labels_text = "\n".join(LABELS)
    print(f"model: {source} on {service.device}, {torch.get_num_threads()} threads; {len(LABELS)} labels")

    def tab_call() -> object:  # what the tab's /classify endpoint runs
        return classification(service.load("clip"), IMAGE, labels_text, None, 0, limits)

    with torch.inference_mode():
        text_features = clip.model.encode_text(clip.tokenizer([SINGLE_TEMPLATE.format(x) for x in LABELS]),
                                               normalize=True)

    def raw_open_clip() -> torch.Tensor:  # open_clip's README recipe, text features computed once
        with torch.inference_mode():
            image = clip.preprocess(Image.open(IMAGE).convert("RGB")).unsqueeze(0)
            image_features = clip.model.encode_image(image, normalize=True)
            return (clip.learned_logit_scale * image_features @ text_features.T).softmax(dim=-1)

    tab, raw = interleaved_medians(tab_call, raw_open_clip, args.repeats)
    print(f"images/s: tab {1 / tab:.2f}, raw open_clip {1 / raw:.2f}, ratio {raw / tab:.3f} (goal >= 0.95)")

    for name in (next(iter(template_sets())), "80 templates (OpenAI's ImageNet ensemble)"):
        def uncached() -> object:
            clip.label_embeddings.clear()
            return classification(clip, IMAGE, labels_text, name, 0, limits)

        def cached() -> object:
            return classification(clip, IMAGE, labels_text, name, 0, limits)

        def labels_only(clear: bool) -> Callable[[], object]:
            def run() -> torch.Tensor:
                if clear:
                    clip.label_embeddings.clear()
                return label_embeddings(clip, LABELS, get_template_set(name))
            return run

        cold, warm = interleaved_medians(uncached, cached, max(3, args.repeats // 4))
        cold_labels, warm_labels = interleaved_medians(labels_only(True), labels_only(False), max(3, args.repeats // 4))
        print(f"{name[:42]:42} whole call: uncached {cold * 1e3:7.1f} ms, cached {warm * 1e3:6.1f} ms = "
              f"{cold / warm:5.1f}x; label step: {cold_labels * 1e3:7.1f} ms vs {warm_labels * 1e3:5.2f} ms")

    # Where it looks: one occlusion heatmap (all labels) vs one classification, labels cached in both.
    for grid in GRIDS:
        heat, plain = interleaved_medians(
            lambda: where_it_looks(clip, IMAGE, labels_text, None, grid, 0, 0.6, limits), tab_call,
            max(2, args.repeats // 10))
        report(f"heatmap {grid}x{grid} ({grid * grid + -(-grid * grid // 32)} images) / one classification",
               heat, plain, "(a few batched passes; on a GPU a batch costs about one image)")

    prompts = [t.replace("{}", label) for label in LABELS for t in template_sets()[
        "80 templates (OpenAI's ImageNet ensemble)"].templates][:160]

    def full_length() -> torch.Tensor:
        with torch.inference_mode():
            return clip.model.encode_text(clip.tokenizer(prompts), normalize=True)

    report(f"encode {len(prompts)} prompts: trimmed / open_clip (77 tokens)",
           median_seconds(lambda: encode_texts(clip, prompts), 3, warmup=1),
           median_seconds(full_length, 3, warmup=1), "(lower is better)")


if __name__ == "__main__":
    main()
