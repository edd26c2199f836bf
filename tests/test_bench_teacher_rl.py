"""``benchmarks/bench_teacher_rl.py`` (issue #24): its statistics and control arms without training, and
``--smoke`` (every arm at tiny size, one seed, under a minute on 2 cores) end to end.

The benchmark itself runs by hand (``--task v3|slips-only|v4b|v4c``, about 40-150 minutes a task).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_teacher_rl.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("bench_teacher_rl", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("t", "df", "p"), [
    (2.7764451, 4, 0.05), (4.6040949, 4, 0.01), (1.0, 4, 0.3739010), (2.0, 10, 0.0733880), (12.7062047, 1, 0.05),
])
def test_two_sided_t_p_values_match_the_tables(bench, t, df, p):
    # p = I_{df / (df + t^2)}(df / 2, 1 / 2), checked against Student's t table values
    assert bench.betainc(df / 2, 0.5, df / (df + t * t)) == pytest.approx(p, rel=1e-5)


def test_paired_t_and_holm(bench):
    out = bench.paired_t([0.5, 0.6, 0.7, 0.6, 0.55], [0.4, 0.45, 0.5, 0.5, 0.5])
    d = [0.1, 0.15, 0.2, 0.1, 0.05]
    mean = sum(d) / 5
    sd = (sum((x - mean) ** 2 for x in d) / 4) ** 0.5
    assert out["mean_diff"] == pytest.approx(mean) and out["sd_diff"] == pytest.approx(sd)
    assert out["t"] == pytest.approx(mean / (sd / 5 ** 0.5))
    assert 0 < out["p"] < 0.05
    assert bench.paired_t([0.5], [0.4])["p"] is None  # one seed: no test
    assert bench.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert bench.holm([None, 0.02]) == [None, 0.02]


def test_control_rewards_and_picks(bench):
    solution = ["\\boxed{81}"] * 4
    completions = ["Add the units ...\n\nSo 48 + 33 = 81.\n\n<|end_of_explanation|>",
                   "So 48 + 33 = 81.<|end_of_explanation|>",  # a skip trace is right: the correctness reward cannot tell
                   "So 48 + 33 = 71.<|end_of_explanation|>",
                   "So 48 + 33 = 81."]  # never closed: no reward
    assert bench.CorrectnessReward()(None, completions, question=[""] * 4, solution=solution) == [1.0, 1.0, 0.0, 0.0]
    first, again = bench.RandomReward(0)(None, completions), bench.RandomReward(0)(None, completions)
    assert first == again and len(set(first)) == 4 and all(0 <= r < 1 for r in first)

    cands = [  # question a: one right, one wrong; question b: none right
        {"id": "a", "reward": -1.0, "r_ss": -0.1, "has_end_tag": True, "answer_right": True},
        {"id": "a", "reward": -0.5, "r_ss": -2.0, "has_end_tag": True, "answer_right": False},
        {"id": "b", "reward": -3.0, "r_ss": -1.0, "has_end_tag": True, "answer_right": False},
        {"id": "b", "reward": None, "r_ss": None, "has_end_tag": False, "answer_right": False},
    ]
    assert [c["reward"] for c in bench.pick(cands, "best", 0)] == [-0.5, -3.0]
    assert [c["r_ss"] for c in bench.pick(cands, "best-r_ss", 0)] == [-0.1, -1.0]
    assert [c["id"] for c in bench.pick(cands, "correct", 0)] == ["a"]  # rejection sampling drops question b
    assert len(bench.pick(cands, "random", 0)) == 2


def test_v4_procedure_is_right_and_classified(bench):
    from rlt_data.testing import toy

    text = bench.split_procedure(48, 33)
    assert bench.final_total(text) == 81 and bench.kind(text, toy.step_accuracy(48, 33, text)) == "other procedure"
    assert bench.kind(toy.explain(48, 33), 1.0) == "correct"
    assert bench.kind("So 48 + 33 = 81.", 0.0) == "skips steps"
    mix = bench.TASKS["v4"]
    rows = toy.toy_rows(200, seed=5)
    traces = bench.sft_rows(rows, mix, seed=3)
    kinds = [bench.kind(t["explanation"], toy.step_accuracy(r["a"], r["b"], t["explanation"])) for r, t in zip(rows, traces)]
    assert set(kinds) == {"other procedure", "correct"}  # v4: every trace right, half of them the other procedure
    assert 0.35 < kinds.count("other procedure") / len(kinds) < 0.65
    assert all(bench.final_total(t["explanation"]) == r["a"] + r["b"] for r, t in zip(rows, traces))
    assert bench.sft_rows(rows, mix, seed=4) != traces  # the mixture is drawn anew per seed


def test_smoke_runs_every_arm_and_reports(tmp_path):
    """Every arm trains its teacher and its students, each record is written, and the report is rebuilt from them."""
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(BENCH), "--smoke", "--out", str(out), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = {p.name: json.loads(p.read_text()) for p in (out / "teacher_rl_controls" / "v3").glob("seed0-*.json")}
    assert sorted(records) == sorted(f"seed0-{arm}.json" for arm in ("sft", "rlt-rl", "nokl-rl", "correctness-rl", "random-rl"))
    students = {name for r in records.values() for name in r["students"]}
    assert {"sft-random", "sft-correct", "sft-best", "sft-best-r_ss", "rlt-rl-random", "rlt-rl-best", "nokl-rl-random",
            "correctness-rl-random", "random-rl-random"} <= students
    assert all(0.0 <= r["teacher"]["answer_right"] <= 1.0 and r["teacher"]["kinds_right"] for r in records.values())
    assert "(i) RLT-reward RL beats correctness-reward RL" in (out / "teacher_rl_controls_v3.md").read_text()
