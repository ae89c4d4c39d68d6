#!/usr/bin/env bash
# Install (if needed) and start the app. Flags pass through: scripts/run.sh --port 8080 --preload language
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install-defaults.sh  # what the app runs on without a model hub
exec .venv/bin/python app.py "$@"
