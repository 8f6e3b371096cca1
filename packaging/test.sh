#!/usr/bin/env bash
# The test command: set-up (a no-op when done), lint, import contracts, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup.sh
export QT_QPA_PLATFORM=offscreen
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache  # its cache keeps a module's resolved imports when another module is renamed
.venv/bin/python -m pytest "$@"
