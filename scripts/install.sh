#!/usr/bin/env bash
# Create .venv and install the pinned runtime dependencies. pip (not uv/poetry) so that the local
# CPU torch wheel is found where one is provided; on a CUDA machine torch==2.13.0 is the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt "$@"
