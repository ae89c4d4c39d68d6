"""A tiny Stable Diffusion pipeline of the real classes (UNet2DConditionModel, AutoencoderKL with the
8x downsampling of SD's VAE, CLIPTextModel, CLIPTokenizer, SD-Turbo's Euler scheduler) with random
weights, saved as a local diffusers directory: it loads through the same registry/cache path as a
user's local model. The tokenizer is CLIP's real BPE vocabulary, the one open_clip ships."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch

from playground.core.settings import Settings
from tests.factories import built_once

KIND = "text_to_image"
NAME = "tiny-stable-diffusion-random-v1"
START, END = "<|startoftext|>", "<|endoftext|>"


def write_clip_tokenizer(directory: Path) -> None:
    """open_clip's gzipped BPE file as the vocab.json + merges.txt that CLIPTokenizer reads (same ids:
    bytes, bytes + '</w>', merges, then the two special tokens: 49408 in all)."""
    import open_clip
    from open_clip.tokenizer import bytes_to_unicode
    from transformers import CLIPTokenizer

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [symbol + "</w>" for symbol in symbols] + ["".join(m.split()) for m in merges] + [START, END]
    source = directory / "bpe"
    source.mkdir()
    (source / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (source / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer.from_pretrained(source, bos_token=START, eos_token=END, unk_token=END,
                                              pad_token=END, model_max_length=77)
    tokenizer.save_pretrained(directory / "tokenizer")


def build(settings: Settings) -> str:
    def write(directory: Path) -> None:
        from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

        write_clip_tokenizer(directory)
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=8, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
            attention_head_dim=4, norm_num_groups=16,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        )
        vae = AutoencoderKL(  # four blocks: the same 8x downsampling as SD's VAE
            block_out_channels=(16, 16, 16, 16), layers_per_block=1, norm_num_groups=8, latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, projection_dim=32, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        ))
        scheduler = EulerDiscreteScheduler(  # SD-Turbo's scheduler settings
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing",
        )
        pipeline = StableDiffusionPipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=CLIPTokenizer.from_pretrained(directory / "tokenizer"),
            unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )
        pipeline.save_pretrained(directory / "pipeline")

    return str(built_once(NAME, write) / "pipeline")
