"""One dataclass per command's options: defaults, help text, YAML files and flag overrides.

The CLI builds its options from these fields (``cli.py``), so a default or a help text lives in
exactly one place. Precedence: dataclass default < ``--config FILE.yaml`` < command-line flag.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError


def opt(default: Any, help: str) -> Any:
    """A field with its help text: the one place an option's default and help are declared."""
    return field(default=default, metadata={"help": help})


def parse_pair(value: Any, name: str) -> tuple[float, float]:
    """``"1,0.01"`` or ``[1, 0.01]`` -> ``(1.0, 0.01)``."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        pair = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or not all(math.isfinite(x) for x in pair):
        raise UserError(f"--{name.replace('_', '-')} takes two numbers, e.g. 1,0.01; got {value!r}")
    return pair  # type: ignore[return-value]


def parse_size(value: Any, flag: str = "--max-shard-size") -> int:
    """``"500MB"`` -> bytes (decimal units, like ``datasets``; KiB/MiB/GiB binary)."""
    if isinstance(value, int):
        return value
    text = str(value).strip().upper()
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}
    for unit, scale in units.items():
        if text.endswith(unit):
            number = text[: -len(unit)]
            break
    else:
        number, scale = text, 1
    try:
        size = int(float(number) * scale)  # inf and 1e400 raise OverflowError, nan ValueError
    except (ValueError, OverflowError):
        raise UserError(f"{flag}: cannot read {value!r} (use e.g. 500MB)") from None
    if size <= 0:
        raise UserError(f"{flag} must be positive")
    return size


def logprob_budget_bytes(config: Any) -> int | None:
    """``--logprob-budget`` in bytes; None (the device's default) when unset or not an option of ``config``."""
    budget = getattr(config, "logprob_budget", None)  # commands that only generate (evaluate) have none
    return parse_size(budget, "--logprob-budget") if budget else None


def vllm_args_dict(value: Any) -> dict:
    """``--vllm-args``: a JSON object (or, from YAML, a mapping)."""
    import json

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise UserError(f"--vllm-args must be a JSON object: {exc}")
    if not isinstance(value, dict):
        raise UserError("--vllm-args must be a JSON object, e.g. '{\"kv_cache_dtype\": \"fp8\"}'")
    return value


# -- options by concern: each class is one section of --help, run.json and the card ------------
@dataclass
class InputOptions:
    """The input set."""

    SECTION = "Input"
    dataset: str | None = opt(None, "Hub dataset id, or local .jsonl/.json/.parquet files or a folder of them.")
    split: str = opt("train", "Dataset split (Hub datasets).")
    subset: str | None = opt(None, "Dataset configuration name (Hub datasets).")
    revision: str | None = opt(None, "Dataset revision: branch, tag or commit (Hub datasets).")
    question_column: str | None = opt(None, "Question column of flat rows (default: question, problem or prompt).")
    solution_column: str | None = opt(None, "Solution column of flat rows (default: solution).")
    limit: int | None = opt(None, "Use only the first N rows.")
    strict: bool = opt(False, "Fail on unusable rows instead of skipping and counting them.")


@dataclass
class RewardOptions:
    """The student's reward (RLT_SPEC): what scores an explanation."""

    SECTION = "Scoring"
    student: str | None = opt(None, "Student model (Hub id or folder) whose log-probs score each explanation.")
    temperature_score: float = opt(0.7, "Temperature T of the scoring log-probs: log_softmax(logits / T).")
    lp_coefs: tuple[float, float] = opt((1.0, 0.01), "Coefficients on (mean, min) of the student's solution log-probs: a,b on the command line, a list in YAML.")
    kl_coefs: tuple[float, float] = opt((3.0, 0.03), "Coefficients on (mean, max) of the teacher-student KL over the explanation; 0,0 scores with the student alone.")
    format_penalty: float = opt(-1.0, "Added to the reward when <|end_of_explanation|> is missing.")

    def reward(self, teacher_temperature: float | None = None):
        """The reward; ``teacher_temperature``: T of the teacher's think log-probs (default: --temperature-score)."""
        from .scoring import RewardConfig

        return RewardConfig(
            temperature=self.temperature_score,
            lp_coefs=parse_pair(self.lp_coefs, "lp_coefs"),
            kl_coefs=parse_pair(self.kl_coefs, "kl_coefs"),
            format_penalty=self.format_penalty,
            teacher_temperature=teacher_temperature,
        )


@dataclass
class DecontaminationOptions:
    """Benchmark problems removed from the input before any model runs (``decontaminate.py``)."""

    SECTION = "Decontamination"
    decontaminate: str | None = opt(None, "Comma-separated benchmarks (aime24, aime25, math500, gpqa_diamond, toy) whose problems are removed from the input before generation; default: off (the card says it was not run).")
    decontaminate_method: str = opt("ngram", "ngram (a shared word n-gram after lowercasing and collapsing whitespace: open-r1's) or fuzzy (ratio >= --fuzzy-threshold between the texts: OpenThoughts').")
    ngram_size: int = opt(8, "ngram: words per n-gram (open-r1's 8).")
    fuzzy_threshold: float = opt(95.0, "fuzzy: least rapidfuzz fuzz.ratio (0-100) that flags a row (OpenThoughts' 95).")
    decontaminate_fields: str = opt("question", "Text checked: question, solution, or question,solution.")
    decontaminate_data: str | None = opt(None, "NAME=SOURCE[,NAME=SOURCE]: read a benchmark from a local file/folder or another Hub id (as evaluate --data).")
    keep_contaminated: bool = opt(False, "Keep flagged rows (counted, and listed in .rlt/decontamination.json) instead of dropping them.")

    def validate_decontamination(self) -> None:
        from .decontaminate import validate

        validate(self)


@dataclass
class DecontaminateOptions(InputOptions, DecontaminationOptions):
    """``rlt-data decontaminate``: a set (or a run's kept rows) checked on its own."""

    SECTION = "Output"
    output: str | None = opt(None, "Folder for report.json and train.parquet (the rows without flagged ones); without it the report is printed only.")

    def validate(self) -> None:
        self.validate_decontamination()
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")


@dataclass
class SelectionOptions:
    """Which candidates become training rows (``selection.py`` applies them)."""

    SECTION = "Selection"
    keep: str = opt("best", "Which valid samples to keep per question: best, top-k or all.")
    top_k: int = opt(1, "How many samples per question --keep top-k keeps.")
    min_reward: float | None = opt(None, "Drop samples whose reward is below this.")
    max_student_tokens: int | None = opt(None, "Drop samples whose training row is longer than this many student tokens.")
    keep_by: str = opt("reward", "Rank a question's valid samples by this numeric score column (candidates/), e.g. reward "
                       "(the RLT reward), rsr, rsr_turn, student_lp_explanation_mean, kl_mean; highest first.")
    ascending: bool = opt(False, "Rank --keep-by lowest first (rsr: lower is better).")

    def selection(self) -> "SelectionOptions":
        """Just the selection options, checked."""
        from .errors import UserError
        from .selection import check_keep_by

        check_keep_by(self.keep_by)

        if self.keep not in ("best", "all", "top-k"):
            raise UserError(f"--keep must be best, all or top-k, not {self.keep!r}")
        if self.keep == "top-k" and self.top_k < 1:
            raise UserError("--top-k must be at least 1")
        if self.max_student_tokens is not None and self.max_student_tokens < 1:
            raise UserError("--max-student-tokens must be at least 1")
        return SelectionOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SelectionOptions)})


@dataclass
class ShardSizeOptions:
    SECTION = "Output"
    max_shard_size: str = opt("500MB", "Largest Parquet shard, e.g. 500MB.")


@dataclass
class OutputOptions(ShardSizeOptions):
    """The run folder and its shards."""

    SECTION = "Output"
    output: str | None = opt(None, "Output folder, laid out as a Hub dataset repository.")
    chunk_size: int = opt(256, "Questions per chunk: the unit of resume (a crash loses at most one chunk).")
    overwrite: bool = opt(False, "Replace a run in --output made with other parameters.")


@dataclass
class SelectOptions(SelectionOptions, ShardSizeOptions):
    """``rlt-data select``: selection and shard size; nothing is recomputed."""

    def validate(self) -> None:
        self.selection()
        parse_size(self.max_shard_size)


@dataclass
class MergeOptions(SelectOptions):
    """``rlt-data merge``: which shards, and where the dataset goes."""

    SECTION = "Merge"
    output: str | None = opt(None, "Where the dataset goes (default: the first folder).")
    num_shards: int | None = opt(None, "Which split to merge when a folder holds shards of several (default: the one there is).")
    allow_partial: bool = opt(False, "Merge the chunks scored so far (missing or unfinished shards); the card says the run is partial.")


@dataclass
class EngineOptions:
    """Inference engines: which backend, on what device, with what batches."""

    SECTION = "Engine"
    backend: str | None = opt(None, "transformers, vllm or dummy (hash-derived text and log-probs, for plumbing tests), for generation and scoring (default: vllm when importable and a GPU is present).")
    score_backend: str | None = opt(None, "Backend of the scoring stages only (default: --backend).")
    device: str = opt("auto", "Torch device for the transformers backend (auto: cuda if available).")
    dtype: str = opt("auto", "auto (bfloat16 on GPU, float32 on CPU), bfloat16, float16 or float32.")
    batch_size: int = opt(8, "Prompts per generate() call on the transformers backend.")
    max_tokens_per_batch: int = opt(16384, "Tokens per scoring forward pass (transformers: rows packed without padding; a longer row alone).")
    scoring_attention: str = opt("auto", "Transformers scoring attention: auto, torch-varlen, flash-attn, segments or padded.")
    logprob_kernel: str = opt("auto", "Transformers scoring output layer: auto (= chunked), chunked, or fused (TRL's kernel).")
    logprob_budget: str | None = opt(None, "Logits held at once when scoring, e.g. 256MB (default: 32MiB on CPU, free GPU memory / 32 within 32MiB-1GiB).")
    tensor_parallel_size: int = opt(1, "vLLM: GPUs per engine replica (tensor parallelism).")
    data_parallel_size: int = opt(1, "Engine replicas on this machine, each on its own GPUs and its own chunks (vLLM).")
    gpu_memory_utilization: float = opt(0.9, "vLLM: fraction of each GPU's memory the engine may use.")
    max_model_len: int | None = opt(None, "vLLM: context length of the engines (default: the model's).")
    enforce_eager: bool = opt(False, "vLLM: no CUDA graphs / compilation (slower, starts faster).")
    vllm_args: str | None = opt(None, "vLLM: extra engine arguments as a JSON object, e.g. '{\"kv_cache_dtype\": \"fp8\"}'.")

    def backend_for(self, role: str) -> str:
        """The backend of a stage: ``generate`` or ``score``."""
        from .backends import default_backend

        return getattr(self, f"{role}_backend", None) or self.backend or default_backend()


@dataclass
class ScaleOutOptions:
    """Shards, and who runs them (``sharding.py``, ``executors/``)."""

    SECTION = "Scale-out"
    num_shards: int = opt(1, "Split the run into N shards by question id (each shard its own files and a done marker; merged at the end).")
    shard_index: int | None = opt(None, "Run only this shard (0..N-1) and do not merge: for jobs that others schedule; then `rlt-data merge`.")
    executor: str = opt("local", "Who runs the shards: local (this machine; --data-parallel-size processes), ray (a Ray cluster) or slurm (writes an sbatch job array).")
    ray_address: str | None = opt(None, "Ray cluster address (default: RAY_ADDRESS, else a local Ray instance).")
    max_retries: int = opt(3, "Ray: retries of a shard whose worker died; a retry resumes from its finished chunks.")
    slurm_partition: str | None = opt(None, "Slurm: partition of the jobs.")
    slurm_account: str | None = opt(None, "Slurm: account charged.")
    slurm_time: str = opt("24:00:00", "Slurm: time limit per shard job; a job past it is requeued and resumes.")
    slurm_gpus_per_task: int | None = opt(None, "Slurm: GPUs per shard job (default: --tensor-parallel-size).")
    slurm_cpus_per_task: int = opt(8, "Slurm: CPUs per shard job.")
    slurm_mem: str = opt("64G", "Slurm: memory per shard job.")
    slurm_setup: str | None = opt(None, "Slurm: shell line(s) run first in every job, e.g. 'source /shared/venv/bin/activate'.")
    slurm_max_parallel: int | None = opt(None, "Slurm: at most this many shard jobs at once (the job array's throttle).")
    slurm_merge_partition: str | None = opt(None, "Slurm: partition of the merge job (default: --slurm-partition; it needs no GPU).")
    slurm_merge_cpus: int = opt(2, "Slurm: CPUs of the merge job.")
    slurm_merge_mem: str = opt("16G", "Slurm: memory of the merge job.")
    slurm_merge_time: str = opt("04:00:00", "Slurm: time limit of the merge job.")
    submit: bool = opt(False, "Slurm: submit the jobs with sbatch instead of printing the command.")

    def validate_scale_out(self) -> None:
        from .executors import EXECUTORS
        from .sharding import check_split

        check_split(self.num_shards, self.shard_index)
        if self.executor not in EXECUTORS:
            raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, not {self.executor!r}")
        if self.shard_index is not None and (self.executor != "local" or getattr(self, "data_parallel_size", 1) > 1):
            raise UserError("--shard-index runs one shard in this process: it goes with --executor local and --data-parallel-size 1")
        if self.executor in ("ray", "slurm") and self.num_shards < 2:
            raise UserError(f"--executor {self.executor} spreads shards over machines: pass --num-shards N (N >= 2)")
        if self.max_retries < 0 or self.slurm_cpus_per_task < 1 or (self.slurm_gpus_per_task or 0) < 0 or (self.slurm_max_parallel or 1) < 1 \
                or self.slurm_merge_cpus < 1:
            raise UserError("--max-retries and --slurm-gpus-per-task must be >= 0, --slurm-cpus-per-task, --slurm-max-parallel "
                            "and --slurm-merge-cpus >= 1")
        if self.executor == "slurm":
            from .slurm_time import check_memory, check_time, seconds

            # the shard jobs are signalled 600 s before their limit to requeue: keep time to work before that
            if seconds(self.slurm_time, "--slurm-time") < 15 * 60:
                raise UserError(f"--slurm-time {self.slurm_time} leaves no time to work: a shard job is told to requeue "
                                "10 minutes before its limit; give at least 15 minutes (e.g. 04:00:00)")
            check_time(self.slurm_merge_time, "--slurm-merge-time")
            check_memory(self.slurm_mem, "--slurm-mem")
            check_memory(self.slurm_merge_mem, "--slurm-merge-mem")

    def shard_count(self) -> int:
        """Shards of the run: --num-shards, or one per --data-parallel-size replica when that is not given."""
        return self.num_shards if self.num_shards > 1 or self.shard_index is not None else getattr(self, "data_parallel_size", 1)


@dataclass
class SamplingOptions:
    """The teacher and how it samples (``generate``)."""

    SECTION = "Generation"
    teacher: str | None = opt(None, "Teacher model (Hub id or folder) that writes the explanations.")
    num_samples: int = opt(1, "Explanations sampled per question.")
    temperature: float = opt(0.7, "Sampling temperature of the teacher.")
    top_p: float = opt(1.0, "Nucleus sampling top-p of the teacher (no top-k, no min-p).")
    max_new_tokens: int = opt(16384, "Longest explanation, in teacher tokens; longer ones are 'truncated'.")
    seed: int = opt(0, "Sampling seed: a rerun with the same seed repeats the samples.")
    generate_backend: str | None = opt(None, "Backend of the generation stage only (default: --backend).")

    def sampling(self):
        from .backends import SamplingConfig

        return SamplingConfig(self.num_samples, self.temperature, self.top_p, self.max_new_tokens)


@dataclass
class PublishOptions:
    """Publishing a finished run (``generate --push-to-hub``)."""

    SECTION = "Output"
    push_to_hub: str | None = opt(None, "Push the finished run to this Hub dataset repo (token from HF_TOKEN or `hf auth login`).")
    private: bool = opt(False, "With --push-to-hub: create the repo private.")


@dataclass
class PushOptions:
    """``rlt-data push-to-hub``."""

    SECTION = "Push"
    repo_id: str = opt("", "Dataset repo id, e.g. user/stratos-rlt.")
    private: bool = opt(False, "Create the repo private.")
    revision: str | None = opt(None, "Branch to push to (created from main if missing).")
    token: str | None = opt(None, "Hub token (default: HF_TOKEN or the stored login). Never printed.")
    commit_message: str = opt("Upload RLT distillation set with rlt-data", "Commit message.")
    create_pr: bool = opt(False, "Open a pull request instead of committing to the branch.")
    endpoint: str | None = opt(None, "Hub endpoint (default: HF_ENDPOINT or https://huggingface.co).")
    allow_partial: bool = opt(False, "Publish an incomplete run's finished chunks.")
    dry_run: bool = opt(False, "Print the operations and upload nothing.")
    files_per_commit: int = opt(50, "Shards per commit: a crash keeps the commits already made.")
    max_retries: int = opt(5, "Retries of a call on HTTP 429/5xx or a dropped connection.")

    def validate(self) -> None:
        from .hub import check_endpoint, check_repo_id

        check_repo_id(self.repo_id, "REPO_ID")
        check_endpoint(self.endpoint)
        if self.files_per_commit < 1:
            raise UserError("--files-per-commit must be at least 1")
        if self.max_retries < 0:
            raise UserError("--max-retries must be 0 or more")


def section_of(cls: type, name: str) -> str:
    """The section (``SECTION`` of the options class that declares ``name``) of a field of ``cls``."""
    for klass in cls.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return getattr(klass, "SECTION", "Options")
    return "Options"


def by_section(config: Any) -> dict[str, dict[str, Any]]:
    """The options of ``config`` grouped by section (``run.json`` and the card record them so)."""
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(config):
        out.setdefault(section_of(type(config), f.name), {})[f.name] = getattr(config, f.name)
    return out


# -- commands: options composed per command, as TRL composes ScriptArguments, SFTConfig, ModelConfig --
@dataclass
class ScoringOptions(InputOptions, DecontaminationOptions, RewardOptions, SelectionOptions, OutputOptions, EngineOptions, ScaleOutOptions):
    """Everything a command that scores and selects takes."""

    def validate(self) -> None:
        for name in ("dataset", "output", "student"):
            if not getattr(self, name):
                raise UserError(f"--{name} is required")
        from .backends.transformers_backend import ATTENTION_CHOICES, KERNEL_CHOICES

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
        self.reward(), self.selection(), parse_size(self.max_shard_size)
        self.validate_decontamination()
        self.validate_scale_out()


@dataclass
class GenerateConfig(ScoringOptions, SamplingOptions, PublishOptions):
    """``rlt-data generate``."""

    SECTION = "Input"
    preset: str | None = opt(None, "toy: the shipped tiny teacher, student and addition set (offline demo); any option overrides it.")
    dry_run: bool = opt(False, "Print one JSON line {id, teacher_prompt} per input row and exit; loads only the teacher tokenizer.")

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
            from .hub import check_repo_id

            check_repo_id(self.push_to_hub, "--push-to-hub")

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


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML options file: it exists, parses, and holds a mapping (else one-line ``UserError``s)."""
    import yaml

    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot parse {path}: {str(exc).splitlines()[0]}")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of option names to values")
    return data


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
