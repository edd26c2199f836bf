"""The RLT reward as a TRL reward function (:class:`RLTReward`), and its options.

It scores each completion with the same :mod:`rlt_data.scoring` code as ``generate``: the frozen
student for the solution and think log-probs, the policy itself (:class:`PolicyScorer`: no grad,
TRL's fused LM head, at the sampling temperature) for the teacher term. The options' defaults are
``generate``'s (:class:`rlt_data.options.RewardOptions`, :class:`rlt_data.options.EngineOptions`),
given here as TRL's parser reads them (:func:`rlt_data.options.trl_field`; pairs as lists).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import protocol, scoring
from ..errors import UserError
from ..models import DTYPES
from ..options import EngineOptions, RewardOptions, trl_field


@dataclass
class RewardArguments:
    """The RLT reward of the GRPO phase (defaults: ``generate``'s, the reference's ``teacher_rlt.yaml``)."""

    student_model: str | None = trl_field(RewardOptions, "student", help="Frozen student whose log-probs score each explanation.")
    student_dtype: str = trl_field(EngineOptions, "dtype")
    temperature_score: float = trl_field(
        RewardOptions, "temperature_score", help="T of the student's log-probs; the teacher term uses the sampling temperature."
    )
    lp_coefs: list[float] = trl_field(RewardOptions, "lp_coefs", help="Coefficients on [mean, min] of the solution log-probs.", convert=list)
    kl_coefs: list[float] = trl_field(RewardOptions, "kl_coefs", help="Coefficients on [mean, max] of the teacher-student KL.", convert=list)
    format_penalty: float = trl_field(RewardOptions, "format_penalty", help="Added when <|end_of_explanation|> is missing.")
    reward_max_tokens_per_batch: int = trl_field(EngineOptions, "max_tokens_per_batch", help="Tokens per scoring forward pass of the student.")
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
            from ..backends import transformers_backend

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
