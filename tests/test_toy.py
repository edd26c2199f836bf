"""The shipped toy world: its set is what the build script writes, the demo command makes a valid
run, and the reward ranks explanations with correct steps above ones with a carried slip."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rlt_data import scoring
from rlt_data.testing import toy
from rlt_data.backends import transformers_backend as hf
from rlt_data.cli import app
from rlt_data.config import preset_values


def test_shipped_set_is_the_scripts_output():
    shipped = [json.loads(line) for line in open(preset_values("toy")["dataset"], encoding="utf-8")]
    expected = [{"id": r["id"], "question": r["question"], "solution": r["solution"]} for r in toy.toy_rows(2000, seed=0)[1600:1664]]
    assert shipped == expected


def test_explanations_and_step_accuracy():
    assert toy.explain(58, 67) == (
        "Add the units: 8 + 7 = 15, write 5, carry 1.\n\nAdd the tens: 5 + 6 + 1 = 12, write 2, carry 1.\n\n"
        "Write the final carry 1.\n\nSo 58 + 67 = 125."
    )
    slip = toy.explain(58, 67, slip=(0, -1))  # 8 + 7 = 14: the wrong units digit is carried through
    assert slip.endswith("So 58 + 67 = 124.") and toy.step_accuracy(58, 67, slip) == 0.5
    assert toy.step_accuracy(58, 67, toy.explain(58, 67)) == 1.0


@pytest.mark.slow
def test_demo_command_writes_a_valid_run(tmp_path):
    import datasets

    result = CliRunner().invoke(app, ["generate", "--preset", "toy", "--output", str(tmp_path / "toy"), "--limit", "16"])
    assert result.exit_code == 0, result.output
    kept = datasets.load_dataset(str(tmp_path / "toy"), split="train")
    assert 12 <= kept.num_rows <= 16 and kept[0]["messages"][2]["content"].startswith("<|begin_of_thought|>")


@pytest.mark.slow
def test_reward_ranks_correct_steps_above_corrupted():
    """Measured with the shipped models: 60 of 60 held-out questions (threshold 54, i.e. 90%)."""
    models = preset_values("toy")
    options = hf.Options(device="cpu", dtype="float32")
    teacher, student = hf.Scorer(models["teacher"], options), hf.Scorer(models["student"], options)
    rows = toy.toy_rows(2000, seed=0)[1700:1760]  # seen by neither model
    config = scoring.RewardConfig()

    def rewards(explanations):
        items = [{**r, "explanation": e, "has_end_tag": True} for r, e in zip(rows, explanations)]
        return [s["reward"] for s in scoring.student_scores(student, items, scoring.teacher_think_logprobs(teacher, items, config), config)]

    good = rewards([r["explanation"] for r in rows])
    bad = rewards([r["corrupted_explanation"] for r in rows])
    wins = sum(g > b for g, b in zip(good, bad))
    assert wins >= 54, wins


def test_training_loop_lowers_the_loss(tmp_path, tokenizer):
    from rlt_data.testing import tiny, toy_training

    path = tiny.build_model(tmp_path / "m", seed=3, tokenizer=tokenizer, embedding_std=None)
    losses = toy_training.train_causal_lm(path, toy_training.teacher_pairs(tokenizer, toy.toy_rows(16, seed=1)), steps=25, batch_size=4)
    assert sum(losses[-5:]) < sum(losses[:5])
