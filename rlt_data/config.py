"""Commands' options: each command a composition of the sections of ``options.py``, with the checks
that need other modules (the command edge), YAML files and flag overrides.

The CLI builds its flags from the sections' fields (``cli.py``), so a default or a help text lives
in exactly one place, ``options.py``. Precedence: dataclass default < preset < ``--config FILE.yaml``
< command-line flag.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .options import (
    ATTENTION_CHOICES,
    EXECUTOR_CHOICES,
    KERNEL_CHOICES,
    DecontaminationOptions,
    EngineOptions,
    InputOptions,
    OutputOptions,
    PublishOptions,
    RewardOptions,
    SamplingOptions,
    ScaleOutOptions,
    SelectionOptions,
    ShardSizeOptions,
    check_repo_id,
    opt,
    parse_pair,
    parse_size,
    read_yaml_mapping,
    section,
    vllm_args_dict,
)

__all__ = ["DecontaminateOptions", "GenerateConfig", "MergeOptions", "ScoreConfig", "ScoringOptions", "SelectOptions",
           "build", "preset_values"]


def check_selection(config: Any) -> SelectionOptions:
    """The selection options of ``config``, checked (``--keep-by`` against the candidates' columns)."""
    from .selection import check_keep_by

    selection = section(config, SelectionOptions)
    selection.check_selection()
    check_keep_by(selection.keep_by)
    return selection


def check_scale_out(config: Any) -> None:
    """``--num-shards``, ``--executor`` and the Slurm options, together."""
    from .sharding import check_split

    check_split(config.num_shards, config.shard_index)
    if config.executor not in EXECUTOR_CHOICES:
        raise UserError(f"--executor must be one of {', '.join(EXECUTOR_CHOICES)}, not {config.executor!r}")
    if config.shard_index is not None and (config.executor != "local" or config.data_parallel_size > 1):
        raise UserError("--shard-index runs one shard in this process: it goes with --executor local and --data-parallel-size 1")
    if config.executor in ("ray", "slurm") and config.num_shards < 2:
        raise UserError(f"--executor {config.executor} spreads shards over machines: pass --num-shards N (N >= 2)")
    if config.max_retries < 0 or config.slurm_cpus_per_task < 1 or (config.slurm_gpus_per_task or 0) < 0 or (config.slurm_max_parallel or 1) < 1 \
            or config.slurm_merge_cpus < 1:
        raise UserError("--max-retries and --slurm-gpus-per-task must be >= 0, --slurm-cpus-per-task, --slurm-max-parallel "
                        "and --slurm-merge-cpus >= 1")
    if config.executor == "slurm":
        from .slurm_time import check_memory, check_time, seconds

        # the shard jobs are signalled 600 s before their limit to requeue: keep time to work before that
        if seconds(config.slurm_time, "--slurm-time") < 15 * 60:
            raise UserError(f"--slurm-time {config.slurm_time} leaves no time to work: a shard job is told to requeue "
                            "10 minutes before its limit; give at least 15 minutes (e.g. 04:00:00)")
        check_time(config.slurm_merge_time, "--slurm-merge-time")
        check_memory(config.slurm_mem, "--slurm-mem")
        check_memory(config.slurm_merge_mem, "--slurm-merge-mem")


@dataclass
class DecontaminateOptions(InputOptions, DecontaminationOptions):
    """``rlt-data decontaminate``: a set (or a run's kept rows) checked on its own."""

    SECTION = "Output"
    output: str | None = opt(None, "Folder for report.json and train.parquet (the rows without flagged ones); without it the report is printed only.")

    def validate(self) -> None:
        from .decontaminate import validate

        validate(self)
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")


@dataclass
class SelectOptions(SelectionOptions, ShardSizeOptions):
    """``rlt-data select``: selection and shard size; nothing is recomputed."""

    def validate(self) -> None:
        check_selection(self)
        parse_size(self.max_shard_size)


@dataclass
class MergeOptions(SelectOptions):
    """``rlt-data merge``: which shards, and where the dataset goes."""

    SECTION = "Merge"
    output: str | None = opt(None, "Where the dataset goes (default: the first folder).")
    num_shards: int | None = opt(None, "Which split to merge when a folder holds shards of several (default: the one there is).")
    allow_partial: bool = opt(False, "Merge the chunks scored so far (missing or unfinished shards); the card says the run is partial.")


# -- commands: options composed per command, as TRL composes ScriptArguments, SFTConfig, ModelConfig --
@dataclass
class ScoringOptions(InputOptions, DecontaminationOptions, RewardOptions, SelectionOptions, OutputOptions, EngineOptions, ScaleOutOptions):
    """Everything a command that scores and selects takes."""

    def validate(self) -> None:
        for name in ("dataset", "output", "student"):
            if not getattr(self, name):
                raise UserError(f"--{name} is required")
        if self.scoring_attention not in ATTENTION_CHOICES:
            raise UserError(f"--scoring-attention must be one of {', '.join(ATTENTION_CHOICES)}, not {self.scoring_attention!r}")
        if self.logprob_kernel not in KERNEL_CHOICES:
            raise UserError(f"--logprob-kernel must be one of {', '.join(KERNEL_CHOICES)}, not {self.logprob_kernel!r}")
        if self.logprob_budget is not None:
            parse_size(self.logprob_budget, "--logprob-budget")
        if self.chunk_size < 1 or self.batch_size < 1 or self.max_tokens_per_batch < 1:
            raise UserError("--chunk-size, --batch-size and --max-tokens-per-batch must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")
        if self.temperature_score <= 0:
            raise UserError("--temperature-score must be positive")
        from .models import check_model_path

        for model in (self.student, getattr(self, "teacher", None)):
            if model:
                check_model_path(model)  # a missing local folder fails now, not after the first stage
        if Path(self.output).expanduser().exists() and not Path(self.output).expanduser().is_dir():
            raise UserError(f"--output {self.output} is a file, not a folder")
        if self.tensor_parallel_size < 1 or self.data_parallel_size < 1:
            raise UserError("--tensor-parallel-size and --data-parallel-size must be at least 1")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise UserError("--gpu-memory-utilization must be in (0, 1]")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise UserError("--max-model-len must be at least 1")
        if self.vllm_args is not None:
            vllm_args_dict(self.vllm_args)
        from .decontaminate import validate

        self.reward(), check_selection(self), parse_size(self.max_shard_size)
        validate(self)
        check_scale_out(self)

    def reward(self, teacher_temperature: float | None = None):
        """The reward (``scoring.RewardConfig``); ``teacher_temperature``: T of the teacher's think log-probs (default: --temperature-score)."""
        from .scoring import RewardConfig

        return RewardConfig(
            temperature=self.temperature_score,
            lp_coefs=parse_pair(self.lp_coefs, "lp_coefs"),
            kl_coefs=parse_pair(self.kl_coefs, "kl_coefs"),
            format_penalty=self.format_penalty,
            teacher_temperature=teacher_temperature,
        )

    def backend_for(self, role: str) -> str:
        """The backend of a stage: ``generate`` or ``score``."""
        from .backends import default_backend

        return getattr(self, f"{role}_backend", None) or self.backend or default_backend()

    def engine(self) -> EngineOptions:
        """The engine section: all a backend receives."""
        return section(self, EngineOptions)

    def shard_count(self) -> int:
        """Shards of the run: --num-shards, or one per --data-parallel-size replica when that is not given."""
        return self.num_shards if self.num_shards > 1 or self.shard_index is not None else self.data_parallel_size


@dataclass
class GenerateConfig(ScoringOptions, SamplingOptions, PublishOptions):
    """``rlt-data generate``."""

    SECTION = "Input"
    preset: str | None = opt(None, "toy: the shipped tiny teacher, student and addition set (offline demo); any option overrides it.", scheduling=True)
    dry_run: bool = opt(False, "Print one JSON line {id, teacher_prompt} per input row and exit; loads only the teacher tokenizer.", scheduling=True)

    def validate(self) -> None:
        if not self.teacher:
            raise UserError("--teacher is required")
        if self.dry_run:
            if not self.dataset:
                raise UserError("--dataset is required")
            return
        super().validate()
        if self.num_samples < 1 or self.max_new_tokens < 1:
            raise UserError("--num-samples and --max-new-tokens must be at least 1")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise UserError("--temperature must be positive and --top-p in (0, 1]")
        if self.push_to_hub:
            check_repo_id(self.push_to_hub, "--push-to-hub")

    def sampling(self):
        """How the teacher samples (``backends.SamplingConfig``)."""
        from .backends import SamplingConfig

        return SamplingConfig(self.num_samples, self.temperature, self.top_p, self.max_new_tokens)

    def reward(self, teacher_temperature: float | None = None):
        """As the reference: the teacher's think log-probs at the temperature the samples were drawn with."""
        return super().reward(self.temperature if teacher_temperature is None else teacher_temperature)


@dataclass
class ScoreConfig(ScoringOptions):
    """``rlt-data score``: score explanations that already exist."""

    SECTION = "Scoring"
    teacher: str | None = opt(None, "Teacher model for the KL term (omit with --kl-coefs 0,0).")
    explanation_column: str | None = opt(None, "Explanation column (default: explanation; Bespoke-Stratos rows use their thought).")

    def validate(self) -> None:
        super().validate()
        if not self.teacher and self.reward().needs_teacher:
            raise UserError("the KL term needs the teacher: pass --teacher MODEL, or --kl-coefs 0,0")


def load_yaml(path: str | Path, cls: type) -> dict[str, Any]:
    data = read_yaml_mapping(path)
    names = {f.name for f in dataclasses.fields(cls)}
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{path}: unknown option(s) {', '.join(unknown)}")
    return data


def preset_values(name: str) -> dict[str, Any]:
    """Option values of a named preset. ``toy``: the shipped toy world (``scripts/build_toy_world.py``)."""
    from importlib import resources

    if name != "toy":
        raise UserError(f"unknown preset {name!r}; the only preset is 'toy'")
    root = Path(str(resources.files("rlt_data").joinpath("resources/toy")))
    return {
        "teacher": str(root / "teacher"), "student": str(root / "student"), "dataset": str(root / "set.jsonl"),
        "num_samples": 4, "max_new_tokens": 160, "chunk_size": 16, "batch_size": 16,
    }


_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text"}


def check_types(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Each value as its field's type (YAML gives any type): ints stay ints, numbers become floats,
    numbers given for text become text; anything else (``num_samples: many``, a list for a path) is a UserError."""
    out = dict(values)
    for f in dataclasses.fields(cls):
        if f.name not in values or values[f.name] is None:
            continue
        value, kind = values[f.name], str(f.type).split(" |")[0]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "int" and number and float(value).is_integer():
            out[f.name] = int(value)
        elif kind == "float" and number:
            out[f.name] = float(value)
            if not math.isfinite(out[f.name]):  # inf, nan: never a usable temperature, reward or fraction
                raise UserError(f"--{f.name.replace('_', '-')} must be a finite number, not {value!r}")
        elif kind == "bool" and isinstance(value, bool):
            pass
        elif kind == "str" and (isinstance(value, str) or number):
            out[f.name] = str(value)
        elif kind == "tuple[float, float]":
            out[f.name] = parse_pair(value, f.name)
        elif kind in _KINDS:
            raise UserError(f"--{f.name.replace('_', '-')} takes {_KINDS[kind]}, not {value!r}")
    return out


def build(cls: type, config_file: str | None, overrides: dict[str, Any]):
    """Dataclass defaults < preset < YAML file < flags given on the command line (not None)."""
    values = load_yaml(config_file, cls) if config_file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("preset"):
        values = {**preset_values(values["preset"]), **values}
    if isinstance(values.get("vllm_args"), dict):
        import json

        values["vllm_args"] = json.dumps(values["vllm_args"])
    config = cls(**check_types(cls, values))
    config.validate()
    return config
