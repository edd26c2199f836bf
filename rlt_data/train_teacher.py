"""Train an RLT teacher with TRL: an SFT warm-up, then GRPO with the RLT reward.

    rlt-data train-teacher sft  --config recipes/teacher/Qwen2.5-7B-Instruct/sft/config.yaml
    rlt-data train-teacher grpo --config recipes/teacher/Qwen2.5-7B-Instruct/grpo/config.yaml
    # several GPUs: accelerate launch --config_file recipes/accelerate_configs/zero3.yaml \\
    #     -m rlt_data.train_teacher grpo --config ...

The two phases are two TRL scripts (``make_parser()``, ``main(...)``) in :mod:`rlt_data.teacher`:

- ``sft`` (:mod:`rlt_data.teacher.sft`): the warm-up on reasoning traces. Options: TRL's
  ``SFTConfig`` and ``ModelConfig`` plus :class:`TeacherDataArguments`.
- ``grpo`` (:mod:`rlt_data.teacher.grpo`): TRL's ``GRPOTrainer`` with :class:`RLTReward`
  (:mod:`rlt_data.teacher.reward`). Options: ``GRPOConfig``, ``ModelConfig``,
  :class:`TeacherDataArguments`, :class:`RewardArguments` and :class:`PlanArguments`.

This module picks the script of the phase (``rlt-data train-teacher``, ``python -m
rlt_data.train_teacher``, ``accelerate launch -m rlt_data.train_teacher``) and keeps the names it
had before the split importable from here. A rerun of the same command resumes from the last
checkpoint in ``output_dir``. Beside the model, ``rlt_run.json`` records the options, library
versions and the reward curve.
"""

from __future__ import annotations

import sys
from typing import Any

from .errors import UserError
from .teacher import grpo, sft
from .teacher.common import TeacherDataArguments, load_teacher_rows, run_record, trainer_errors
from .teacher.grpo import PlanArguments, check_vllm, grpo_example, launched_layout, memory_plan, warn_if_too_big
from .teacher.reward import PolicyScorer, RewardArguments, RLTReward, whole_model_loading
from .teacher.sft import end_of_turn, sft_example
from .train import cli as run_cli

__all__ = [
    "PHASES", "SCRIPTS", "build_trainer", "cli", "main",
    "TeacherDataArguments", "load_teacher_rows", "run_record", "trainer_errors",  # teacher.common
    "end_of_turn", "sft_example",  # teacher.sft
    "PlanArguments", "check_vllm", "grpo_example", "launched_layout", "memory_plan", "warn_if_too_big",  # teacher.grpo
    "PolicyScorer", "RewardArguments", "RLTReward", "whole_model_loading",  # teacher.reward
]

SCRIPTS = {"sft": sft, "grpo": grpo}
PHASES = tuple(SCRIPTS)


def _parse(phase: str, argv: list[str]) -> tuple:
    """``(data_args, training_args, model_args, reward_args, plan_args)`` of ``phase`` (the last two
    None for sft)."""
    if phase == "sft":
        return (*sft.parse(argv), None, None)
    return grpo.parse(argv)


def build_trainer(phase: str, data_args: Any, training_args: Any, model_args: Any, reward_args: Any = None, plan_args: Any = None,
                  reward_func: Any = None):
    """The TRL trainer of ``phase`` (:func:`rlt_data.teacher.sft.build_trainer`,
    :func:`rlt_data.teacher.grpo.build_trainer`: ``reward_func`` replaces the RLT reward there)."""
    if phase == "sft":
        return sft.build_trainer(data_args, training_args, model_args)
    return grpo.build_trainer(data_args, training_args, model_args, reward_args, plan_args, reward_func=reward_func)


def main(argv: list[str]) -> Any:
    if argv[:1] in (["--help"], ["-h"]):
        print(__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1] + "\n\n`rlt-data train-teacher PHASE --help` lists every option of a phase.")
        return None
    if not argv or argv[0] not in PHASES:
        raise UserError(f"choose a phase: rlt-data train-teacher {{{','.join(PHASES)}}} --config FILE.yaml [options]")
    return SCRIPTS[argv[0]].run(argv[1:])


def cli(argv: list[str]) -> None:
    run_cli(argv, main)


if __name__ == "__main__":
    cli(sys.argv[1:])
