"""The memory plan of teacher GRPO (rlt_data.memory_plan, `train-teacher grpo --plan`): its arithmetic
against real models' parameter counts and KV caches, the 7B recipe's figures, and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "teacher" / "Qwen2.5-7B-Instruct" / "grpo" / "config.yaml"


def _grpo_args(*extra: str):
    from rlt_data.train_teacher import _parse

    _, training, model, reward, plan = _parse("grpo", ["--config", str(RECIPE), "--use_cpu", "true", *extra])
    return training, model, reward, plan


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_parameter_count_equals_the_models(role, toy_models, random_models):
    """Shape.num_parameters from config.json alone equals the loaded model's parameter count."""
    from transformers import AutoModelForCausalLM

    from rlt_data.memory_plan import shape_of

    for folder in (toy_models[role], random_models[role]):
        model = AutoModelForCausalLM.from_pretrained(folder)
        assert shape_of(folder).num_parameters() == sum(p.numel() for p in model.parameters()), folder


@pytest.mark.parametrize("name", ["qwen2.5-1.5b", "qwen2.5-7b", "qwen2.5-32b"])
def test_known_shapes_count_like_transformers(name):
    """The recipes' shapes, built by transformers on the meta device (no memory): same count, and the
    published sizes (1.54B, 7.62B, 32.76B)."""
    import torch
    from transformers import AutoModelForCausalLM

    from rlt_data.memory_plan import KNOWN_SHAPES

    shape = KNOWN_SHAPES[name]
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(shape.to_hf_config())
    assert shape.num_parameters() == sum(p.numel() for p in model.parameters())
    assert round(shape.num_parameters() / 1e9, 2) == {"qwen2.5-1.5b": 1.54, "qwen2.5-7b": 7.62, "qwen2.5-32b": 32.76}[name]


def test_kv_bytes_per_token_equals_a_real_cache(toy_models):
    """kv_bytes_per_token is what transformers' own KV cache holds per token."""
    import torch
    from transformers import AutoModelForCausalLM

    from rlt_data.memory_plan import shape_of

    model = AutoModelForCausalLM.from_pretrained(toy_models["teacher"], dtype=torch.float32)
    tokens = 37
    with torch.no_grad():
        cache = model(torch.arange(tokens)[None] % 100, use_cache=True).past_key_values
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert held == tokens * shape_of(toy_models["teacher"]).kv_bytes_per_token(dtype_bytes=4)


def test_seven_b_recipe_fits_80gb_with_kv_cache_left():
    """The shipped 7B recipe on 8 x 80 GiB: every figure of the README's table, and it fits."""
    from rlt_data.memory_plan import GiB, KNOWN_SHAPES
    from rlt_data.train_teacher import memory_plan

    training, model, reward, plan_args = _grpo_args()
    plan = memory_plan(training, model, reward, plan_args)
    p = KNOWN_SHAPES["qwen2.5-7b"].num_parameters()
    parts = {c.name: c.bytes for c in plan.components}
    # ZeRO-3 over 8 GPUs: 2 (weights) + 2 (gradients) + 12 (Adam, fp32 master) bytes per parameter / 8
    assert parts["policy weights (bf16)"] + parts["policy gradients (bf16)"] + parts["Adam states + fp32 master weights"] == 16 * p // 8
    assert parts["student (bf16, whole)"] == 2 * p and parts["vLLM weights (bf16)"] == 2 * p
    assert parts["vLLM weights (bf16)"] + parts["vLLM KV cache + profiling activations"] == int(0.3 * 80 * GiB)
    phase, peak = plan.peak()
    assert plan.fits() and plan.overflow() is None and peak < 80 * GiB
    assert plan.kv_tokens >= plan.sequence_tokens == 1024 + 16384  # at least one whole sequence in the KV cache
    # the student kept off the GPU between reward calls leaves the other phases 2 x 7.6 GB lighter
    reward.student_offload = True
    offloaded = memory_plan(training, model, reward, plan_args)
    assert offloaded.peak_bytes("training") == plan.peak_bytes("training") - 2 * p


def test_former_recipe_does_not_fit_and_says_what_overflows():
    """8 completions per micro-step (the recipe before this plan): the plan names the training
    activations, and a launched run warns before loading weights."""
    from rlt_data.train_teacher import memory_plan, warn_if_too_big

    training, model, reward, plan_args = _grpo_args(
        "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "16", "--reward_rows_per_pass", "8")
    plan = memory_plan(training, model, reward, plan_args)
    assert not plan.fits()
    problem = plan.overflow()
    assert problem.startswith("training needs") and "activations" in problem
    assert "does not fit: training needs" in plan.render()
    warning = warn_if_too_big(plan)
    assert warning and "unlikely to fit" in warning and "activations" in warning


def test_plan_command_prints_without_loading_weights(capsys):
    """`train-teacher grpo --plan` prints the table and exits 0; the recipe's models are not on disk
    (outputs/... and a Hub id), so nothing could have been loaded."""
    from rlt_data.train_teacher import cli

    cli(["grpo", "--config", str(RECIPE), "--use_cpu", "true", "--plan"])
    out = capsys.readouterr().out
    assert "Memory plan per GPU (8 GPUs of 80.0 GiB, ZeRO-3)" in out and "\n  fits" in out
    assert "vLLM KV cache:" in out and "student (bf16, whole)" in out


@pytest.mark.parametrize("flags, expected", [
    (["--plan_zero_stage", "5"], "--plan_zero_stage must be 0, 1, 2 or 3"),
    (["--plan_num_gpus", "0"], "must be positive"),
    (["--model_name_or_path", "someone/unknown-model"], "no config.json for someone/unknown-model"),
])
def test_plan_bad_input_one_line_exit_2(flags, expected, capsys):
    from rlt_data.train_teacher import cli

    with pytest.raises(SystemExit) as exit_info:
        cli(["grpo", "--config", str(RECIPE), "--use_cpu", "true", "--plan", *flags])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("Error:") and expected in err and "Traceback" not in err
