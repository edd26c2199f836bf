#!/usr/bin/env bash
# One command: install everything (scripts/install.sh), then run the whole test suite, slow and vLLM tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" VLLM_ENABLE_V1_MULTIPROCESSING="${VLLM_ENABLE_V1_MULTIPROCESSING:-0}"
exec "${RLT_VENV:-.venv}/bin/python" -m pytest -q -p no:cacheprovider --durations=20 "$@"
