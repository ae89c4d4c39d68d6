"""Every tab's pipeline at real size on a GPU, in half precision, with random weights: the numbers a room needs.

No weights can be fetched on the GPU machine, so the models are built from their real configurations with
random weights, saved to local directories, and then loaded through the same registry, service and cache a
real checkpoint takes (`ModelService.load`), and run through the tabs' own library calls:

- language: a Qwen2.5-0.5B-sized causal LM (Qwen2 architecture, 24 layers, width 896, vocabulary 151,936):
  next-token latency (`next_token_distribution`, the sampling tab's call), and 30 concurrent next-token
  requests batched by `playground.language.batcher` against the same 30 one at a time, plus 30 seeded
  generations batched against serialised. Its tokenizer is a small byte-level BPE trained here on the
  shipped lessons (no tokenizer can be fetched there): prompts cost more tokens than with Qwen's, so the
  latencies are upper bounds; the LM head still spans Qwen's vocabulary.
- CLIP: open_clip's ViT-B-32 (the registry's `ViT-B-32:<checkpoint>` form): images/s at batch 256, both
  the encoder alone (`encode_image` on preprocessed pixels) and the tab's path with PIL preprocessing.
- text-to-image: SD-Turbo's parts (SD 2.1's UNet, VAE and OpenCLIP-H text encoder configurations, Euler
  with trailing timesteps), one step at 512x512 end to end (`generate_image`, the tab's call).
- each model's GPU memory (its weights, and the peak while it ran), and the cache's eviction under a budget
  smaller than the three models.

Goals (issue 21): next token (0.5B) <= 30 ms, SD-Turbo 1 step 512x512 <= 60 ms, CLIP >= 2000 images/s.

Running it on the GPU machine (torch, transformers and timm there; no diffusers, open_clip or gradio; no
registry; 64 MiB of files travel). It never imports gradio. It takes these wheels, all pure Python, at the
versions requirements.txt pins (transformers and huggingface-hub too, so the check runs the library versions
CI tests rather than the machine's own): diffusers, open-clip-torch, ftfy, wcwidth, importlib-metadata,
transformers, huggingface-hub (about 20 MB). Here, once:

    echo /.whl/ >> .git/info/exclude
    .venv/bin/python -m pip download --no-deps --only-binary=:all: -d .whl \\
        diffusers==0.42.1 open-clip-torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 importlib-metadata==10.2.0 \\
        transformers==5.23.0 huggingface-hub==2.4.0

then one device `run` with carry [".whl"] and timeout_s 600 (it needs about 3 minutes there: building and
saving 1.5 B random parameters is most of it):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \\
        .whl/*.whl && export PYTHONPATH=/tmp/site || exit; PYTHONUNBUFFERED=1 python3 -m bench.gpu_check \\
        --out $OUT/gpu_check.json

On a CPU, `--tiny` runs the same code at tiny sizes in a few seconds (tests/test_gpu_check.py does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import bench.common  # noqa: F401  (quiet libraries, torchvision fix)
import torch

from playground.core.cache import PipelineCache
from playground.core.paths import ASSETS
from playground.core.service import ModelService
from playground.core.settings import Limits, Settings

GOALS = {"next_token_ms": 30.0, "sd_turbo_1_step_ms": 60.0, "clip_images_per_s": 2000.0}
PROMPTS = 30


@dataclass(frozen=True)
class Sizes:
    """Model configurations: the real ones, or tiny ones for a CPU test of this script."""

    lm: dict
    clip: str  # an open_clip architecture (a tiny one is registered from TINY_CLIP)
    clip_images: int
    side: int
    unet: dict
    vae: dict
    text_encoder: dict
    new_tokens: int
    repeats: int


REAL = Sizes(
    lm=dict(vocab_size=151_936, hidden_size=896, intermediate_size=4_864, num_hidden_layers=24,
            num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32_768, rope_theta=1_000_000.0,
            tie_word_embeddings=True),  # Qwen2.5-0.5B's config.json
    clip="ViT-B-32",
    clip_images=256,
    side=512,
    unet=dict(  # SD 2.1's (and so SD-Turbo's) UNet
        sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    ),
    vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=768,
             down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4),
    text_encoder=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                      projection_dim=512, hidden_act="gelu"),  # OpenCLIP ViT-H/14's text tower
    new_tokens=32,
    repeats=20,
)
TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2}}
TINY = Sizes(
    lm=dict(vocab_size=4_096, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1_024, tie_word_embeddings=True),
    clip="ViT-tiny-check",
    clip_images=4,
    side=64,
    unet=dict(sample_size=8, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
              attention_head_dim=4, norm_num_groups=16, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
              up_block_types=("CrossAttnUpBlock2D", "UpBlock2D")),
    vae=dict(block_out_channels=(16, 16, 16, 16), layers_per_block=1, norm_num_groups=8, latent_channels=4,
             down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4),
    text_encoder=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      projection_dim=32),
    new_tokens=4,
    repeats=3,
)


# ---- building random-weight models at their real sizes, saved as a user's local checkpoints would be

def build_language_model(directory: Path, sizes: Sizes, device: str, dtype: torch.dtype) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    text = (ASSETS / "lessons.toml").read_text(encoding="utf-8").splitlines()
    bpe.train_from_iterator(text, trainers.BpeTrainer(vocab_size=2_000, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    config = Qwen2Config(**sizes.lm, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    with torch.device(device):  # initialising 0.5 B parameters is seconds on a GPU, a minute on a CPU
        model = Qwen2ForCausalLM(config).to(dtype)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def build_clip_model(directory: Path, sizes: Sizes, device: str) -> str:
    import open_clip
    from safetensors.torch import save_file

    if sizes.clip not in open_clip.list_models():  # the tiny one
        (directory / f"{sizes.clip}.json").write_text(json.dumps(TINY_CLIP))
        open_clip.add_model_config(directory / f"{sizes.clip}.json")  # known to this process from here on
    model = open_clip.create_model(sizes.clip, pretrained=None, device=device)
    save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, directory / "model.safetensors")
    return f"{sizes.clip}:{directory / 'model.safetensors'}"


def build_text_to_image(directory: Path, sizes: Sizes, device: str, dtype: torch.dtype) -> str:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from tests.factories.diffusion import write_clip_tokenizer

    write_clip_tokenizer(directory)
    with torch.device(device):
        unet = UNet2DConditionModel(**sizes.unet).to(dtype)
        vae = AutoencoderKL(**sizes.vae).to(dtype)
        text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=49_408, max_position_embeddings=77, bos_token_id=49_406,
                                                    eos_token_id=49_407, pad_token_id=49_407,
                                                    **sizes.text_encoder)).to(dtype)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing")  # SD-Turbo's scheduler settings
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, unet=unet, scheduler=scheduler,
                                       tokenizer=CLIPTokenizer.from_pretrained(directory / "tokenizer"),
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(directory / "pipeline")
    return str(directory / "pipeline")


# ---- measuring

def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(function: Callable[[], Any], device: str, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds of each run after the warm-up, the device's queue drained before the clock stops."""
    for _ in range(warmup):
        function()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def concurrently(calls: list[Callable[[], Any]]) -> tuple[float, list[float]]:
    """Wall seconds for all the calls started together on their own threads, and each one's latency."""
    latencies = [0.0] * len(calls)
    barrier = threading.Barrier(len(calls) + 1)

    def run(index: int) -> None:
        barrier.wait()
        began = time.perf_counter()
        calls[index]()
        latencies[index] = time.perf_counter() - began

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies


class Memory:
    """GPU memory: the weights the cache counts, and the peak allocated while a section ran."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def start(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak_mb(self) -> float | None:
        return round(torch.cuda.max_memory_allocated() / 2**20, 1) if self.cuda else None

    def allocated_mb(self) -> float | None:
        return round(torch.cuda.memory_allocated() / 2**20, 1) if self.cuda else None


def check_language(service: ModelService, name: str, sizes: Sizes, device: str, memory: Memory) -> dict:
    from playground.language.batcher import Continuation
    from playground.language.sampling import chain_of, next_token_distribution, next_token_stages
    from playground.language.sampling_settings import SamplingSettings

    memory.start()
    lm = service.load("language", name)
    knobs = SamplingSettings(0.8, top_k=50, top_p=0.95)
    prompts = [f"Student {i} asks: what does temperature {i / 10:.1f} do to the next token?" for i in range(PROMPTS)]
    ids = [lm.tokenizer(prompt).input_ids for prompt in prompts]

    def one_next_token(row: list[int]) -> float:
        stages = next_token_distribution(lm, torch.tensor([row], device=lm.device), knobs)
        return float(stages[-1].probs.max())  # on the CPU: the tab reads the numbers

    latency = timed(lambda: one_next_token(ids[0]), device, sizes.repeats)

    def batched_next_token(row: list[int]) -> float:  # the same request, its forward pass shared
        logits = batcher.next_token_logits(row)
        return float(next_token_stages(logits, torch.tensor([row], device=lm.device), knobs)[-1].probs.max())

    batcher = lm.batcher  # the model's own, as the tabs use it
    serial = timed(lambda: [one_next_token(row) for row in ids], device, 1, warmup=1)[0]
    concurrently([lambda row=row: batched_next_token(row) for row in ids])  # warm-up
    batched, latencies = concurrently([lambda row=row: batched_next_token(row) for row in ids])

    def generate(row: list[int], seed: int) -> Any:
        return batcher.generate(Continuation((tuple(row),), chain_of(knobs), False, sizes.new_tokens, seed,
                                             frozenset([lm.tokenizer.eos_token_id])))

    serial_generation = timed(lambda: [generate(row, seed) for seed, row in enumerate(ids)], device, 1, warmup=0)[0]
    batched_generation, _ = concurrently([lambda r=row, s=seed: generate(r, s) for seed, row in enumerate(ids)])
    return {
        "model": name,
        "parameters_m": round(sum(p.numel() for p in lm.model.parameters()) / 1e6, 1),
        "prompt_tokens": round(statistics.fmean(len(row) for row in ids), 1),
        "next_token_ms": round(statistics.median(latency) * 1e3, 2),
        "next_token_30_serial_s": round(serial, 3),
        "next_token_30_batched_s": round(batched, 3),
        "next_token_30_speedup": round(serial / batched, 2),
        "next_token_30_batched_per_s": round(PROMPTS / batched, 1),
        "next_token_30_batched_p50_ms": round(percentile(latencies, 0.5) * 1e3, 1),
        "next_token_30_batched_p95_ms": round(percentile(latencies, 0.95) * 1e3, 1),
        "batches": batcher.stats.sizes[-8:],
        f"generate_30x{sizes.new_tokens}_serial_s": round(serial_generation, 3),
        f"generate_30x{sizes.new_tokens}_batched_s": round(batched_generation, 3),
        "generate_speedup": round(serial_generation / batched_generation, 2),
        "peak_mb": memory.peak_mb(),
    }


def check_clip(service: ModelService, name: str, sizes: Sizes, device: str, memory: Memory) -> dict:
    from PIL import Image

    from playground.clip.zero_shot import image_embeddings

    memory.start()
    clip = service.load("clip", name)
    images = [Image.new("RGB", (640, 480), (i % 256, (7 * i) % 256, (13 * i) % 256)) for i in range(sizes.clip_images)]
    pixels = torch.stack([clip.preprocess(image) for image in images]).to(clip.device, clip.dtype)

    def encode() -> None:
        with torch.inference_mode():
            clip.model.encode_image(pixels)

    encoder = timed(encode, device, sizes.repeats)
    whole = timed(lambda: image_embeddings(clip, images), device, max(2, sizes.repeats // 5), warmup=1)
    return {
        "model": name,
        "batch": sizes.clip_images,
        "clip_images_per_s": round(sizes.clip_images / statistics.median(encoder), 1),
        "clip_images_per_s_with_preprocessing": round(sizes.clip_images / statistics.median(whole), 1),
        "peak_mb": memory.peak_mb(),
    }


def check_text_to_image(service: ModelService, name: str, sizes: Sizes, device: str, memory: Memory) -> dict:
    from playground.text_to_image.pipeline import ImageRequest, generate_image

    memory.start()
    pipeline = service.load("text_to_image", name)
    request = ImageRequest("a watercolour fox in the snow", steps=1, guidance=0.0, seed=0, width=sizes.side,
                           height=sizes.side).validated(service.settings.limits)
    times = timed(lambda: generate_image(pipeline, request, name), device, max(3, sizes.repeats // 2))
    return {"model": name, "side": sizes.side, "sd_turbo_1_step_ms": round(statistics.median(times) * 1e3, 1),
            "peak_mb": memory.peak_mb()}


def check_eviction(settings: Settings, names: dict[str, str], sizes_mb: dict[str, float], memory: Memory) -> dict:
    """A cache whose budget cannot hold all three models: loading the third evicts the least recently used
    (the first), and the memory it held is freed."""
    budget = int((sum(sizes_mb.values()) - sizes_mb["language"] / 2) * 2**20)
    service = ModelService(settings, cache=PipelineCache(budget_bytes=budget))
    timeline, within = [], True
    for kind in ("language", "clip", "text_to_image"):
        service.load(kind, names[kind])
        rows = service.cache.status()
        held_mb = sum(row["memory_mb"] for row in rows)
        within = within and (held_mb <= budget / 2**20 or len(rows) == 1)
        timeline.append({"loaded": kind, "kept": [row["kind"] for row in rows], "held_mb": round(held_mb, 1),
                         "allocated_mb": memory.allocated_mb()})
    service.cache.clear()
    return {"budget_mb": round(budget / 2**20, 1), "timeline": timeline, "within_budget": within,
            "first_evicted": "language" not in timeline[-1]["kept"],
            "allocated_mb_after_clear": memory.allocated_mb()}


def run(tiny: bool, work: Path) -> dict:
    sizes = TINY if tiny else REAL
    device = "cpu" if tiny else "cuda"
    if not tiny and not torch.cuda.is_available():
        raise SystemExit("No CUDA device: run with --tiny on a CPU.")
    dtype = torch.float32 if tiny else torch.float16
    memory = Memory(device)
    started = time.perf_counter()
    sources = {}
    for kind, build in (("language", lambda d: build_language_model(d, sizes, device, dtype)),
                        ("clip", lambda d: build_clip_model(d, sizes, device)),
                        ("text_to_image", lambda d: build_text_to_image(d, sizes, device, dtype))):
        directory = work / kind
        directory.mkdir(parents=True, exist_ok=True)
        sources[kind] = build(directory)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    built = time.perf_counter() - started
    settings = Settings(device=device, dtype="float32" if tiny else "float16", cache_dir=work / "cache",
                        models={kind: (source,) for kind, source in sources.items()},
                        limits=replace(Limits(), max_batch_rows=PROMPTS))
    service = ModelService(settings)
    names = {kind: service.registry.default(kind) for kind in sources}
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__, "tiny": tiny,
        "build_s": round(built, 1),
    }
    report["language"] = check_language(service, names["language"], sizes, device, memory)
    report["clip"] = check_clip(service, names["clip"], sizes, device, memory)
    report["text_to_image"] = check_text_to_image(service, names["text_to_image"], sizes, device, memory)
    report["weights_mb"] = {row["kind"]: row["memory_mb"] for row in service.cache.status()}
    report["loaded_twice"] = {key.source: n for key, n in service.cache.load_counts.items() if n > 1}
    service.cache.clear()
    report["eviction"] = check_eviction(settings, names, report["weights_mb"], memory)
    report["goals"] = {
        goal: {"goal": limit, "measured": value, "met": value <= limit if goal.endswith("ms") else value >= limit}
        for goal, limit in GOALS.items()
        for value in [report["language"].get(goal) or report["clip"].get(goal) or report["text_to_image"].get(goal)]
    }
    report["total_s"] = round(time.perf_counter() - started, 1)
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU: a test of this script")
    parser.add_argument("--work", type=Path, help="where the random-weight checkpoints are written (a temp dir)")
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        report = run(args.tiny, args.work or Path(scratch))
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    assert "gradio" not in sys.modules, "the GPU machine has no gradio: nothing here may import it"
    return report


if __name__ == "__main__":
    main()
