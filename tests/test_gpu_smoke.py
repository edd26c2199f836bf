"""`benchmarks/gpu_smoke.py --smoke`: the GPU smoke command's every stage on CPU, at tiny shapes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_smoke.py"


@pytest.mark.slow
def test_gpu_smoke_runs_every_stage_on_cpu(tmp_path):
    out = tmp_path / "smoke.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["exit_code"] == 0 and report["failed_stages"] == [] and report["missed_checks"] == []
    assert {k: v["status"] for k, v in report["stages"].items()} == {"grpo": "ok", "scoring": "ok", "generate": "ok"}
    for section in ("grpo", "scoring", "generate"):
        assert section in report and f"\n{section} " in proc.stdout  # its rows in the printed table

    grpo = report["grpo"]
    assert grpo["steps"] == 2 and len(grpo["rewards"]) == 2
    assert all(r is not None and math.isfinite(r) for r in grpo["rewards"])
    assert all(math.isfinite(e["rlt/r_ss"]) and e["completions/mean_length"] > 0 for e in grpo["log"])
    memory = grpo["memory"]
    assert memory["policy_weights_tensor_bytes"] > 0 and memory["reference_weights_tensor_bytes"] > 0
    assert memory["gradients_tensor_bytes"] > 0 and memory["optimizer_state_tensor_bytes"] > 0  # Adam stepped
    assert memory["peak_allocated_bytes"] is None  # CPU: n/a
    for phase in ("generation", "reward: student scoring", "training: forward + backward", "optimizer step"):
        assert grpo["phases"][phase]["calls"] >= 2, phase
    plan = grpo["plan"]
    assert plan["available"], plan
    assert set(plan["plan"]["peak_bytes"]) == {"generation", "reward", "training"}

    cases = report["scoring"]["cases"]
    assert set(cases) == {"uniform", "mixed"} and all(c["ratio"] > 0 and c["goal"] for c in cases.values())

    generate = report["generate"]
    assert generate["exit_code"] == 0 and generate["rows"]["candidates"] == 4
