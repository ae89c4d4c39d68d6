#!/usr/bin/env bash
# Install (if needed) and start the app. Flags pass through: scripts/run.sh --port 8080 --preload language
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python app.py "$@"
