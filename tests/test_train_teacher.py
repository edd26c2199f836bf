"""Teacher training (rlt_data.train_teacher): the SFT rows, the RLT reward in GRPO, the recipes, the tiny run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
TEACHER_RECIPES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes" / "teacher").rglob("*.yaml"))


def _grpo_trainer(tmp_path, toy_models, dataset, temperature=0.7, **reward):
    from trl import GRPOConfig, ModelConfig

    from rlt_data.train_teacher import RewardArguments, TeacherDataArguments, build_trainer

    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"), use_cpu=True, bf16=False, per_device_train_batch_size=4, num_generations=4,
        max_completion_length=32, report_to="none", temperature=temperature, max_steps=1,
    )
    return build_trainer(
        "grpo", TeacherDataArguments(dataset=str(dataset), limit=4), args,
        ModelConfig(model_name_or_path=toy_models["teacher"], dtype="float32"),
        RewardArguments(student_model=toy_models["student"], **reward),
    )


@pytest.fixture(scope="module")
def toy_triples():
    """Canonical completions (right and wrong explanations) and one without the end tag."""
    from rlt_data import protocol
    from rlt_data.testing import toy

    rows = toy.toy_rows(6, seed=5)
    completions = [f"{r['explanation']}\n\n{protocol.END_EXPLANATION}" for r in rows[:3]]
    completions += [f"{r['corrupted_explanation']}\n\n{protocol.END_EXPLANATION}" for r in rows[3:5]]
    completions += [rows[5]["explanation"]]  # no end tag: the format penalty
    return rows, completions


@pytest.fixture(scope="module")
def grpo_trainer(tmp_path_factory, toy_models):
    from rlt_data.config import preset_values

    return _grpo_trainer(tmp_path_factory.mktemp("grpo"), toy_models, preset_values("toy")["dataset"])


def test_reward_equals_generate_scoring(grpo_trainer, toy_models, toy_triples):
    """One reward: the GRPO reward callable gives generate's score columns to 1e-5, KL term included."""
    from rlt_data import protocol, scoring
    from rlt_data.backends import transformers_backend as tb

    rows, completions = toy_triples
    reward = grpo_trainer.reward_funcs[0]
    assert reward.trainer is grpo_trainer
    got = reward.score(completions, [r["question"] for r in rows], [r["solution"] for r in rows])
    options = tb.Options(device="cpu", dtype="float32")
    parsed = [
        {"question": r["question"], "solution": r["solution"], **vars(protocol.parse_completion(c))}
        for r, c in zip(rows, completions)
    ]
    config = scoring.RewardConfig(teacher_temperature=0.7)
    teacher = scoring.teacher_think_logprobs(tb.Scorer(toy_models["teacher"], options), parsed, config)
    expected = scoring.student_scores(tb.Scorer(toy_models["student"], options), parsed, teacher, config)
    for g, e in zip(got, expected):
        assert g["kl_mean"] is not None and not g["think_mismatch"]
        for key in scoring.REWARD_TERMS:
            assert abs(g[key] - e[key]) < 1e-5, (key, g[key], e[key])
    assert got[-1]["reward"] < got[0]["reward"] - 0.5  # the missing end tag costs the penalty
    # and what TRL calls: prompts, completions and the dataset's columns as keyword arguments
    called = reward(prompts=["p"] * len(rows), completions=completions, question=[r["question"] for r in rows],
                    solution=[r["solution"] for r in rows], completion_ids=None)
    assert called == pytest.approx([g["reward"] for g in got], abs=1e-6)


def test_student_offload_same_rewards(grpo_trainer, toy_triples):
    """--student_offload: the student waits in CPU memory between reward calls and the rewards do
    not change (on this CPU machine the device is the CPU too: this checks the path, not the saving)."""
    rows, completions = toy_triples
    reward = grpo_trainer.reward_funcs[0]
    args = ([r["question"] for r in rows], [r["solution"] for r in rows])
    before = reward.score(completions, *args)
    reward.args.student_offload = True
    try:
        after = reward.score(completions, *args)
        assert next(reward.student().model.parameters()).device.type == "cpu"
    finally:
        reward.args.student_offload = False
    assert [a["reward"] for a in after] == pytest.approx([b["reward"] for b in before], abs=1e-6)


def test_teacher_term_at_sampling_temperature(tmp_path, toy_models, toy_triples):
    """Samples drawn at T=1.0 get their teacher term at 1.0 (the student's stays at --temperature-score)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlt_data import protocol, scoring
    from rlt_data.config import GenerateConfig, ScoreConfig, preset_values

    rows, completions = toy_triples
    trainer = _grpo_trainer(tmp_path, toy_models, preset_values("toy")["dataset"], temperature=1.0)
    reward = trainer.reward_funcs[0]
    assert reward.config().teacher_t == 1.0 and reward.config().temperature == 0.7
    parsed = [{"question": r["question"], "solution": r["solution"], **vars(protocol.parse_completion(c))}
              for r, c in zip(rows[:2], completions[:2])]
    from rlt_data.train_teacher import PolicyScorer

    got = scoring.teacher_think_logprobs(PolicyScorer(trainer), parsed, reward.config())
    # naive: the whole context through the checkpoint, full logits, log_softmax(logits / 1.0)
    tok = AutoTokenizer.from_pretrained(toy_models["teacher"])
    model = AutoModelForCausalLM.from_pretrained(toy_models["teacher"], dtype=torch.float32).eval()
    for row, found in zip(parsed, got):
        ctx = protocol.teacher_scoring_context(tok, row["question"], row["explanation"], row["solution"])
        t = scoring.tokenize_context(tok, ctx)
        with torch.no_grad():
            logits = model(torch.tensor([t.ids])).logits[0].float()
        naive = torch.log_softmax(logits / 1.0, -1)[t.think - 1, torch.tensor(t.ids)[t.think]].numpy()
        at_07 = torch.log_softmax(logits / 0.7, -1)[t.think - 1, torch.tensor(t.ids)[t.think]].numpy()
        assert np.abs(np.asarray(found["teacher_think_lp"]) - naive).max() < 1e-4
        assert np.abs(naive - at_07).max() > 1e-2  # the check can tell the two temperatures apart
    # generate: the teacher term at the sampling temperature; score: at --temperature-score
    assert GenerateConfig.of(temperature=1.0).reward_config().teacher_t == 1.0
    assert GenerateConfig.of(temperature=1.0).reward_config().temperature == 0.7
    assert ScoreConfig.of(temperature_score=0.9).reward_config().teacher_t == 0.9


def test_grpo_prompt_is_generates_teacher_prompt(grpo_trainer, toy_models):
    """The GRPO prompt text equals `generate --dry-run`'s byte for byte; the assistant turn stays open."""
    from typer.testing import CliRunner

    from rlt_data import protocol
    from rlt_data.cli import app
    from rlt_data.config import preset_values

    dataset = preset_values("toy")["dataset"]
    result = CliRunner().invoke(app, ["generate", "--dry-run", "--teacher", toy_models["teacher"], "--dataset", dataset, "--limit", "4"])
    assert result.exit_code == 0, result.output
    dry = [json.loads(line)["teacher_prompt"] for line in result.stdout.splitlines() if line.startswith("{")]
    prompts = list(grpo_trainer.train_dataset["prompt"])
    assert prompts == dry and len(prompts) == 4
    for prompt in prompts:
        tail = prompt[prompt.rindex("<|im_start|>assistant\n"):]  # the open assistant turn
        assert tail.startswith(f"<|im_start|>assistant\n{protocol.BEGIN_SOLUTION}")
        assert "<|im_end|>" not in tail and tail.endswith(f"{protocol.END_SOLUTION}\n\n{protocol.BEGIN_EXPLANATION}\n\n")
    # TRL tokenizes the plain-text prompt as generate does (no special tokens added)
    tok = grpo_trainer.processing_class
    assert tok(text=prompts[:1])["input_ids"][0] == tok(prompts[0], add_special_tokens=False).input_ids


def test_sft_labels_on_completion_only(tmp_path, toy_models):
    """Teacher SFT: Bespoke-Stratos rows, the thought as explanation; labels on the completion tokens only."""
    from trl import ModelConfig, SFTConfig

    from rlt_data import protocol
    from rlt_data.testing import toy
    from rlt_data.train_teacher import TeacherDataArguments, build_trainer

    rows = toy.toy_rows(3, seed=9)
    records = [
        {"system": protocol.student_system_prompt(), "conversations": [
            {"from": "user", "value": r["question"]},
            {"from": "assistant", "value": protocol.student_assistant_turn(r["explanation"], r["solution"])},
        ]} for r in rows
    ]
    data = write_jsonl(tmp_path / "stratos.jsonl", records)
    args = SFTConfig(output_dir=str(tmp_path / "sft"), use_cpu=True, bf16=False, report_to="none", max_steps=1, max_length=2048)
    trainer = build_trainer("sft", TeacherDataArguments(dataset=str(data)), args, ModelConfig(model_name_or_path=toy_models["teacher"], dtype="float32"))
    tok = trainer.processing_class
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    for k, r in enumerate(rows):
        prompt = protocol.render_teacher_prompt(tok, r["question"], r["solution"])
        completion = f"{r['explanation']}\n\n{protocol.END_EXPLANATION}<|im_end|>"
        prompt_ids = tok(prompt, add_special_tokens=False).input_ids
        full_ids = tok(prompt + completion, add_special_tokens=False).input_ids
        assert full_ids[: len(prompt_ids)] == prompt_ids  # the prompt ends on a token boundary
        ids, labels = batch["input_ids"][k].tolist(), batch["labels"][k].tolist()
        assert ids[: len(full_ids)] == full_ids
        for i, (token, label) in enumerate(zip(ids, labels)):
            if i < len(prompt_ids) or i >= len(full_ids):
                assert label == -100, (i, tok.decode([token]))
            else:
                assert label == token, (i, tok.decode([token]))
        assert tok.decode([t for t in labels if t != -100]) == completion


@pytest.mark.parametrize("recipe", TEACHER_RECIPES)
def test_teacher_recipes_parse_with_trl(recipe):
    from rlt_data.train_teacher import _parse

    phase = "sft" if "sft" in Path(recipe).parts or Path(recipe).stem == "sft" else "grpo"
    # use_cpu: only because transformers refuses bf16 without a GPU at validation time
    data, training, model, reward, plan = _parse(phase, ["--config", str(ROOT / recipe), "--use_cpu", "true"])
    assert (plan is None) == (phase == "sft")
    assert data.dataset and model.model_name_or_path
    if phase == "grpo":
        assert reward.student_model and (reward.lp_coefs, reward.kl_coefs, reward.format_penalty) == ([1.0, 0.01], [3.0, 0.03], -1.0)
        assert (training.loss_type, training.use_bias_correction_kl, training.temperature, training.top_p, training.top_k) == ("grpo", False, 0.7, 1.0, 0)
        assert training.beta == 0.04 and training.sync_ref_model and training.ref_model_mixup_alpha == 0.9
    if "Qwen2.5" in recipe and phase == "sft":
        assert (training.learning_rate, training.num_train_epochs, training.warmup_steps, training.weight_decay) == (1e-5, 10, 0.05, 1e-4)
        assert (training.adam_beta1, training.adam_beta2, training.max_length, training.packing) == (0.9, 0.95, 16384, False)
        assert training.bf16 and model.dtype == "bfloat16" and training.lr_scheduler_type.value == "cosine"
    if "Qwen2.5" in recipe:
        assert training.ddp_timeout >= 18000  # trl's 1800 s kills ranks that wait for the slowest generator or a save
    if "Qwen2.5" in recipe and phase == "grpo":
        assert (training.num_generations, training.learning_rate, training.max_steps, training.max_completion_length) == (64, 1e-6, 125, 16384)
        assert training.ref_model_sync_steps == 32 and training.lr_scheduler_type.value == "constant" and model.dtype == "bfloat16"
        assert training.vllm_importance_sampling_correction is False  # trl 1.16's default is on; the reference has none
        assert training.use_vllm and training.per_device_train_batch_size == 1  # one ~17k-token sequence per micro-step
        # 1024 completions per optimizer step: 8 GPUs colocated, or 4 training GPUs beside a vLLM server
        gpus = {"colocate": 8, "server": 4}[training.vllm_mode]
        completions = training.per_device_train_batch_size * training.gradient_accumulation_steps * gpus
        assert completions == 1024 and completions % training.num_generations == 0
        # what TRL generates per optimizer step with those GPUs (steps_per_generation = accumulation)
        assert training.per_device_train_batch_size * gpus * training.steps_per_generation == 1024


def _cli(*args, cwd=ROOT):
    import os

    # one thread: the tiny models gain nothing from more, and oversubscribed cores slow torch 10x
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rlt_data.cli", "train-teacher", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=900, env=env)


@pytest.mark.parametrize(
    "case",
    ["no_phase", "missing_config", "no_trace", "missing_model", "missing_student", "different_tokenizers", "student_dtype"],
)
def test_bad_input_one_line_exit_2(case, tmp_path, toy_models, random_models, capsys):
    from rlt_data.testing import tiny

    flat = write_jsonl(tmp_path / "flat.jsonl", [{"question": "What is 1 + 2?", "solution": "3"}])
    common = ["--output_dir", str(tmp_path / "out"), "--use_cpu", "true", "--report_to", "none"]
    if case == "no_phase":
        args = ["--config", "x.yaml"]
    elif case == "missing_config":
        args = ["sft", "--config", str(tmp_path / "nope.yaml")]
    elif case == "no_trace":
        args = ["sft", "--model_name_or_path", toy_models["teacher"], "--dataset", str(flat), *common]
    elif case == "missing_model":
        args = ["sft", "--model_name_or_path", str(tmp_path / "no-model"), "--dataset", str(flat), *common]
    elif case == "missing_student":
        args = ["grpo", "--model_name_or_path", toy_models["teacher"], "--student_model", str(tmp_path / "no-student"), "--dataset", str(flat), *common]
    elif case == "student_dtype":
        args = ["grpo", "--model_name_or_path", toy_models["teacher"], "--student_model", toy_models["student"],
                "--student_dtype", "fp8", "--dataset", str(flat), *common]
    else:  # a student with another tokenizer while the KL coefficients are not 0
        other = tiny.build_model(tmp_path / "other", tokenizer=tiny.build_tokenizer(vocab_size=400))
        args = ["grpo", "--model_name_or_path", random_models["teacher"], "--student_model", str(other), "--dataset", str(flat), *common]
    if case == "no_phase":  # the real entry point, once
        result = _cli(*args)
        code, stderr = result.returncode, result.stderr
    else:  # in-process (TRL imports once): the same cli() the command calls
        from rlt_data.train_teacher import cli

        with pytest.raises(SystemExit) as exit_info:
            cli(args)
        code, stderr = exit_info.value.code, capsys.readouterr().err
    assert code == 2, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-2000:]
    expected = {
        "no_phase": "choose a phase", "missing_config": "config file not found", "no_trace": "reasoning trace",
        "missing_model": "model not found", "missing_student": "model not found", "different_tokenizers": "tokenizers differ",
        "student_dtype": "--student_dtype must be one of",
    }[case]
    assert expected in errors[0]


@pytest.mark.slow
def test_tiny_recipe_sft_then_grpo(tmp_path, toy_models):
    """recipes/teacher/tiny end to end on CPU: SFT, then GRPO whose reward rises; the teacher works in generate."""
    sft_out, grpo_out = tmp_path / "sft", tmp_path / "grpo"
    result = _cli("sft", "--config", "recipes/teacher/tiny/sft.yaml", "--output_dir", str(sft_out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (sft_out / "rlt_run.json").is_file() and (sft_out / "model.safetensors").is_file()
    result = _cli("grpo", "--config", "recipes/teacher/tiny/grpo.yaml", "--model_name_or_path", str(sft_out), "--output_dir", str(grpo_out))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((grpo_out / "rlt_run.json").read_text())
    rewards = [e["reward"] for e in record["curve"] if "reward" in e]
    assert len(rewards) == 16 and Path(record["reward"]["student_model"]).resolve() == Path(toy_models["student"]).resolve()
    assert record["training"]["loss_type"] == "grpo" and "trl" in record["versions"]
    assert all("rlt/r_kl" in e and "rlt/r_ss" in e for e in record["curve"] if "reward" in e)
    assert np.mean(rewards[-4:]) > np.mean(rewards[:4]), rewards
    # the trained teacher is a --teacher for generate, no flag needed
    from typer.testing import CliRunner

    from rlt_data.cli import app
    from rlt_data.config import preset_values

    run = CliRunner().invoke(app, [
        "generate", "--teacher", str(grpo_out), "--student", toy_models["student"], "--dataset", preset_values("toy")["dataset"],
        "--limit", "2", "--num-samples", "2", "--max-new-tokens", "128", "--output", str(tmp_path / "run"),
    ])
    assert run.exit_code == 0, run.output
    assert list((tmp_path / "run" / "data").glob("*.parquet"))
