#!/usr/bin/env bash
# One command: install (scripts/install.sh), then build a real distillation set offline with the
# shipped toy teacher, student and addition set, into runs/toy (about a minute on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec "${RLT_VENV:-.venv}/bin/rlt-data" generate --preset toy --output "${1:-runs/toy}" --backend transformers
