"""Commands' options: each command a dataclass of the sections of ``options.py`` (``Command``), with
the checks that need other modules (the command edge), YAML files and flag overrides.

The CLI builds its flags from the sections' fields (``cli.py``), so a default or a help text lives
in exactly one place, ``options.py``. Precedence: dataclass default < preset < ``--config FILE.yaml``
< command-line flag. A YAML key is an option's name, whatever its section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .options import (
    ATTENTION_CHOICES,
    EXECUTOR_CHOICES,
    KERNEL_CHOICES,
    Command,
    DecontaminationOptions,
    EngineOptions,
    GivenOptions,
    InputOptions,
    MergeFolderOptions,
    OutputOptions,
    PublishOptions,
    ReportOptions,
    RewardOptions,
    SamplingOptions,
    ScaleOutOptions,
    SelectionOptions,
    ShardSizeOptions,
    StartOptions,
    check_repo_id,
    option_fields,
    parse_pair,
    parse_size,
    part,
    read_yaml_mapping,
    vllm_args_dict,
)

__all__ = ["DecontaminateOptions", "GenerateConfig", "MergeOptions", "ScoreConfig", "ScoringCommand", "SelectOptions",
           "build", "preset_values"]


def check_selection(selection: SelectionOptions) -> None:
    """The selection section, checked (``--keep-by`` against the candidates' columns)."""
    from .selection import check_keep_by

    selection.check_selection()
    check_keep_by(selection.keep_by)


def check_scale_out(scale_out: ScaleOutOptions, engine: EngineOptions) -> None:
    """``--num-shards``, ``--executor`` and the Slurm options, together (and ``--data-parallel-size``)."""
    from .sharding import check_split

    s = scale_out
    check_split(s.num_shards, s.shard_index)
    if s.executor not in EXECUTOR_CHOICES:
        raise UserError(f"--executor must be one of {', '.join(EXECUTOR_CHOICES)}, not {s.executor!r}")
    if s.shard_index is not None and (s.executor != "local" or engine.data_parallel_size > 1):
        raise UserError("--shard-index runs one shard in this process: it goes with --executor local and --data-parallel-size 1")
    if s.executor in ("ray", "slurm") and s.num_shards < 2:
        raise UserError(f"--executor {s.executor} spreads shards over machines: pass --num-shards N (N >= 2)")
    if s.max_retries < 0 or s.slurm_cpus_per_task < 1 or (s.slurm_gpus_per_task or 0) < 0 or (s.slurm_max_parallel or 1) < 1 \
            or s.slurm_merge_cpus < 1:
        raise UserError("--max-retries and --slurm-gpus-per-task must be >= 0, --slurm-cpus-per-task, --slurm-max-parallel "
                        "and --slurm-merge-cpus >= 1")
    if s.executor == "slurm":
        from .slurm_time import check_memory, check_time, seconds

        # the shard jobs are signalled 600 s before their limit to requeue: keep time to work before that
        if seconds(s.slurm_time, "--slurm-time") < 15 * 60:
            raise UserError(f"--slurm-time {s.slurm_time} leaves no time to work: a shard job is told to requeue "
                            "10 minutes before its limit; give at least 15 minutes (e.g. 04:00:00)")
        check_time(s.slurm_merge_time, "--slurm-merge-time")
        check_memory(s.slurm_mem, "--slurm-mem")
        check_memory(s.slurm_merge_mem, "--slurm-merge-mem")


def check_engine(engine: EngineOptions) -> None:
    e = engine
    if e.scoring_attention not in ATTENTION_CHOICES:
        raise UserError(f"--scoring-attention must be one of {', '.join(ATTENTION_CHOICES)}, not {e.scoring_attention!r}")
    if e.logprob_kernel not in KERNEL_CHOICES:
        raise UserError(f"--logprob-kernel must be one of {', '.join(KERNEL_CHOICES)}, not {e.logprob_kernel!r}")
    if e.logprob_budget is not None:
        parse_size(e.logprob_budget, "--logprob-budget")
    if e.tensor_parallel_size < 1 or e.data_parallel_size < 1:
        raise UserError("--tensor-parallel-size and --data-parallel-size must be at least 1")
    if not 0 < e.gpu_memory_utilization <= 1:
        raise UserError("--gpu-memory-utilization must be in (0, 1]")
    if e.max_model_len is not None and e.max_model_len < 1:
        raise UserError("--max-model-len must be at least 1")
    if e.vllm_args is not None:
        vllm_args_dict(e.vllm_args)


def check_limit(input: InputOptions) -> None:
    if input.limit is not None and input.limit < 1:
        raise UserError("--limit must be at least 1")


@dataclass
class DecontaminateOptions(Command):
    """``rlt-data decontaminate``: a set (or a run's kept rows) checked on its own."""

    input: InputOptions = part(InputOptions)
    decontamination: DecontaminationOptions = part(DecontaminationOptions)
    report: ReportOptions = part(ReportOptions)

    def validate(self) -> None:
        from .decontaminate import validate

        validate(self.decontamination)
        check_limit(self.input)


@dataclass
class SelectOptions(Command):
    """``rlt-data select``: selection and shard size; nothing is recomputed."""

    selection: SelectionOptions = part(SelectionOptions)
    size: ShardSizeOptions = part(ShardSizeOptions)

    def validate(self) -> None:
        check_selection(self.selection)
        parse_size(self.size.max_shard_size)


@dataclass
class MergeOptions(SelectOptions):
    """``rlt-data merge``: which shards, and where the dataset goes."""

    merge: MergeFolderOptions = part(MergeFolderOptions)


@dataclass
class ScoringCommand(Command):
    """The sections of a command that scores and selects (``generate``, ``score``)."""

    input: InputOptions = part(InputOptions)
    decontamination: DecontaminationOptions = part(DecontaminationOptions)
    reward: RewardOptions = part(RewardOptions)
    selection: SelectionOptions = part(SelectionOptions)
    output: OutputOptions = part(OutputOptions)
    engine: EngineOptions = part(EngineOptions)
    scale_out: ScaleOutOptions = part(ScaleOutOptions)

    @property
    def folder(self) -> str:
        """The run folder (``--output``)."""
        return self.output.output

    def validate(self) -> None:
        for name in ("dataset", "output", "student"):
            if not self.get(name):
                raise UserError(f"--{name} is required")
        if self.output.chunk_size < 1 or self.engine.batch_size < 1 or self.engine.max_tokens_per_batch < 1:
            raise UserError("--chunk-size, --batch-size and --max-tokens-per-batch must be at least 1")
        check_engine(self.engine)
        check_limit(self.input)
        if self.reward.temperature_score <= 0:
            raise UserError("--temperature-score must be positive")
        from .models import check_model_path

        for model in (self.reward.student, self.teacher):
            if model:
                check_model_path(model)  # a missing local folder fails now, not after the first stage
        if Path(self.folder).expanduser().exists() and not Path(self.folder).expanduser().is_dir():
            raise UserError(f"--output {self.folder} is a file, not a folder")
        from .decontaminate import validate

        self.reward_config(), check_selection(self.selection), parse_size(self.output.max_shard_size)
        validate(self.decontamination)
        check_scale_out(self.scale_out, self.engine)

    @property
    def teacher(self) -> str | None:
        return None

    @property
    def rows_per_question(self) -> int:
        """Candidates per input row."""
        return 1

    @property
    def explanation_column(self) -> str | None:
        """The input's explanation column (``score``'s)."""
        return None

    @property
    def generate_backend(self) -> str | None:
        """``--generate-backend`` (``generate``'s)."""
        return None

    def teacher_temperature(self) -> float:
        """T of the teacher's think log-probs: ``--temperature-score`` (``generate``: the sampling temperature)."""
        return self.reward.temperature_score

    def reward_config(self):
        """The reward (``scoring.RewardConfig``) of the reward section, at this command's teacher temperature."""
        from .scoring import RewardConfig

        return RewardConfig.of(self.reward, self.teacher_temperature())

    def backend_for(self, role: str) -> str:
        """The backend of a stage: ``generate`` or ``score``."""
        from .backends import default_backend

        own = self.engine.score_backend if role == "score" else self.generate_backend
        return own or self.engine.backend or default_backend()

    def shard_count(self) -> int:
        """Shards of the run: --num-shards, or one per --data-parallel-size replica when that is not given."""
        s = self.scale_out
        return s.num_shards if s.num_shards > 1 or s.shard_index is not None else self.engine.data_parallel_size


@dataclass
class GenerateConfig(ScoringCommand):
    """``rlt-data generate``."""

    sampling: SamplingOptions = part(SamplingOptions)
    publish: PublishOptions = part(PublishOptions)
    start: StartOptions = part(StartOptions)

    @property
    def teacher(self) -> str | None:
        return self.sampling.teacher

    @property
    def rows_per_question(self) -> int:
        return self.sampling.num_samples

    @property
    def generate_backend(self) -> str | None:
        return self.sampling.generate_backend

    def validate(self) -> None:
        if not self.teacher:
            raise UserError("--teacher is required")
        if self.start.dry_run:
            if not self.input.dataset:
                raise UserError("--dataset is required")
            return
        super().validate()
        s = self.sampling
        if s.num_samples < 1 or s.max_new_tokens < 1:
            raise UserError("--num-samples and --max-new-tokens must be at least 1")
        if s.temperature <= 0 or not 0 < s.top_p <= 1:
            raise UserError("--temperature must be positive and --top-p in (0, 1]")
        if self.publish.push_to_hub:
            check_repo_id(self.publish.push_to_hub, "--push-to-hub")

    def teacher_temperature(self) -> float:
        """As the reference: the teacher's think log-probs at the temperature the samples were drawn with."""
        return self.sampling.temperature


@dataclass
class ScoreConfig(ScoringCommand):
    """``rlt-data score``: score explanations that already exist."""

    given: GivenOptions = part(GivenOptions)

    @property
    def teacher(self) -> str | None:
        return self.given.teacher

    @property
    def explanation_column(self) -> str | None:
        return self.given.explanation_column

    def validate(self) -> None:
        super().validate()
        if not self.teacher and self.reward_config().needs_teacher:
            raise UserError("the KL term needs the teacher: pass --teacher MODEL, or --kl-coefs 0,0")


COMMANDS = {"generate": GenerateConfig, "score": ScoreConfig}  # the commands a shard job runs, by name


def load_yaml(path: str | Path, cls: type) -> dict[str, Any]:
    data = read_yaml_mapping(path)
    names = {f.name for _, f in option_fields(cls)}
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
    for _, f in option_fields(cls):
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
    config = cls.of(**check_types(cls, values))
    config.validate()
    return config
