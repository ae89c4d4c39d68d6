#!/usr/bin/env bash
# Install everything the tests need on a fresh machine (package registries only), then run them.
# Arguments pass to pytest: scripts/test.sh tests/test_cache.py -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh -r requirements-test.txt
bash scripts/test-assets.sh
exec .venv/bin/python -m pytest "$@"
