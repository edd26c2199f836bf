"""The options of every command, one dataclass per concern (a section of ``--help``, ``run.json`` and the card).

Pure data: this module imports nothing from rlt_data but ``errors``. Each field carries its default
and its help text, the one place they are declared; ``Literal``-like choices are the tuples below.
A command (``config.py``) is a ``Command``: a dataclass whose fields are sections
(``config.sampling.temperature``), as TRL's scripts take ``(script_args, training_args,
model_args)``; each part of the house receives only its section (a backend the ``EngineOptions``,
the student stage's parameters ``identity(config.reward)``). Checks that need no other module are
the sections' ``check_*`` methods; checks that need other modules (model paths, ``--keep-by``
columns) run at the command edge (``config.py``). The CLI and the YAML file see the sections'
fields flat (``--temperature``, ``temperature:``): an option's name is unique within a command.

Adding an option: one field in its section. The CLI flag, the YAML key, ``run.json``, the card's
options table and (unless ``identity=False``) the stage parameters a rerun is checked against all
follow from the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

ATTENTION_CHOICES = ("auto", "torch-varlen", "flash-attn", "segments", "padded")  # --scoring-attention
KERNEL_CHOICES = ("auto", "chunked", "fused")  # --logprob-kernel
EXECUTOR_CHOICES = ("local", "ray", "slurm")  # --executor (executors/<name>.py)
KEEP_CHOICES = ("best", "all", "top-k")  # --keep


def opt(default: Any, help: str, identity: bool = True, scheduling: bool = False) -> Any:
    """A field with its help text: the one place an option's default and help are declared.

    ``identity=False``: the option does not change what a stage computes (where the output goes,
    how a run is scheduled), so it is not part of the stage parameters a rerun is checked against.
    ``scheduling=True``: it says how this command runs its shards (an executor, a submission, a
    push after the merge), so a shard job of another process does not receive it."""
    return field(default=default, metadata={"help": help, "identity": identity, "scheduling": scheduling})


def default_of(section: type, name: str) -> Any:
    """The default of option ``name`` of ``section``: for a record outside the options (``scoring.RewardConfig``,
    ``backends.SamplingConfig``) that takes it, so that it is declared once."""
    (source,) = [f for f in dataclasses.fields(section) if f.name == name]
    return source.default


def trl_field(section: type, name: str, help: str | None = None, convert: Any = None) -> Any:
    """A field of a dataclass read by TRL's parser (``HfArgumentParser``, whose field metadata holds
    argparse keywords only) with the default of option ``name`` of ``section``, and its help unless
    ``help`` is given: the default stays declared once, in the section. ``convert``: the value as that
    parser takes it (``list`` for a pair, read there as ``nargs="+"``), made fresh for each instance."""
    (source,) = [f for f in dataclasses.fields(section) if f.name == name]
    metadata = {"help": source.metadata["help"] if help is None else help}
    if convert is not None:
        return field(default_factory=lambda: convert(source.default), metadata=metadata)
    return field(default=source.default, metadata=metadata)


def scheduling(config: Any) -> set[str]:
    """The options of a command that schedule its shards rather than say what a shard computes."""
    return {f.name for _, f in option_fields(type(config)) if f.metadata.get("scheduling")}


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


def logprob_budget_bytes(engine: Any) -> int | None:
    """``--logprob-budget`` of an ``EngineOptions`` in bytes; None (the device's default) when unset."""
    return parse_size(engine.logprob_budget, "--logprob-budget") if engine.logprob_budget else None


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


def check_repo_id(repo_id: str, flag: str) -> None:
    """``user/name`` (or ``name``) as the Hub spells repo ids; checked before any network call."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise UserError(f"{flag}: {repo_id!r} is not a Hub repo id (user/name, with letters, digits, '-', '_' and '.')") from None


def check_endpoint(endpoint: str | None) -> None:
    from urllib.parse import urlparse

    if endpoint is None:
        return
    url = urlparse(endpoint)
    if url.scheme not in ("http", "https") or not url.netloc or " " in endpoint:
        raise UserError(f"--endpoint: {endpoint!r} is not an http(s) URL, e.g. https://huggingface.co")


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


# -- sections ----------------------------------------------------------------------------------
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
    strict: bool = opt(False, "Fail on unusable rows instead of skipping and counting them.", identity=False)


@dataclass
class RewardOptions:
    """The student's reward (RLT_SPEC): what scores an explanation."""

    SECTION = "Scoring"
    student: str | None = opt(None, "Student model (Hub id or folder) whose log-probs score each explanation.")
    temperature_score: float = opt(0.7, "Temperature T of the scoring log-probs: log_softmax(logits / T).")
    lp_coefs: tuple[float, float] = opt((1.0, 0.01), "Coefficients on (mean, min) of the student's solution log-probs: a,b on the command line, a list in YAML.")
    kl_coefs: tuple[float, float] = opt((3.0, 0.03), "Coefficients on (mean, max) of the teacher-student KL over the explanation; 0,0 scores with the student alone.")
    format_penalty: float = opt(-1.0, "Added to the reward when <|end_of_explanation|> is missing.")


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

    def check_selection(self) -> None:
        """The checks that need no other module (``--keep-by`` names a column: ``selection.check_keep_by``)."""
        if self.keep not in KEEP_CHOICES:
            raise UserError(f"--keep must be best, all or top-k, not {self.keep!r}")
        if self.keep == "top-k" and self.top_k < 1:
            raise UserError("--top-k must be at least 1")
        if self.max_student_tokens is not None and self.max_student_tokens < 1:
            raise UserError("--max-student-tokens must be at least 1")


@dataclass
class ShardSizeOptions:
    SECTION = "Output"
    max_shard_size: str = opt("500MB", "Largest Parquet shard, e.g. 500MB.", identity=False)


@dataclass
class OutputOptions(ShardSizeOptions):
    """The run folder and its shards."""

    SECTION = "Output"
    output: str | None = opt(None, "Output folder, laid out as a Hub dataset repository.", identity=False)
    chunk_size: int = opt(256, "Questions per chunk: the unit of resume (a crash loses at most one chunk).")
    overwrite: bool = opt(False, "Replace a run in --output made with other parameters.", identity=False, scheduling=True)


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
    data_parallel_size: int = opt(1, "Engine replicas on this machine, each on its own GPUs and its own chunks (vLLM).", scheduling=True)
    gpu_memory_utilization: float = opt(0.9, "vLLM: fraction of each GPU's memory the engine may use.")
    max_model_len: int | None = opt(None, "vLLM: context length of the engines (default: the model's).")
    enforce_eager: bool = opt(False, "vLLM: no CUDA graphs / compilation (slower, starts faster).")
    vllm_args: str | None = opt(None, "vLLM: extra engine arguments as a JSON object, e.g. '{\"kv_cache_dtype\": \"fp8\"}'.")


@dataclass
class ScaleOutOptions:
    """Shards, and who runs them (``sharding.py``, ``executors/``)."""

    SECTION = "Scale-out"
    num_shards: int = opt(1, "Split the run into N shards by question id (each shard its own files and a done marker; merged at the end).")
    shard_index: int | None = opt(None, "Run only this shard (0..N-1) and do not merge: for jobs that others schedule; then `rlt-data merge`.", scheduling=True)
    executor: str = opt("local", "Who runs the shards: local (this machine; --data-parallel-size processes), ray (a Ray cluster) or slurm (writes an sbatch job array).", scheduling=True)
    ray_address: str | None = opt(None, "Ray cluster address (default: RAY_ADDRESS, else a local Ray instance).")
    max_retries: int = opt(3, "Ray: retries of a shard whose worker died; a retry resumes from its finished chunks.")
    slurm_partition: str | None = opt(None, "Slurm: partition of the jobs.", scheduling=True)
    slurm_account: str | None = opt(None, "Slurm: account charged.", scheduling=True)
    slurm_time: str = opt("24:00:00", "Slurm: time limit per shard job; a job past it is requeued and resumes.", scheduling=True)
    slurm_gpus_per_task: int | None = opt(None, "Slurm: GPUs per shard job (default: --tensor-parallel-size).", scheduling=True)
    slurm_cpus_per_task: int = opt(8, "Slurm: CPUs per shard job.", scheduling=True)
    slurm_mem: str = opt("64G", "Slurm: memory per shard job.", scheduling=True)
    slurm_setup: str | None = opt(None, "Slurm: shell line(s) run first in every job, e.g. 'source /shared/venv/bin/activate'.", scheduling=True)
    slurm_max_parallel: int | None = opt(None, "Slurm: at most this many shard jobs at once (the job array's throttle).", scheduling=True)
    slurm_merge_partition: str | None = opt(None, "Slurm: partition of the merge job (default: --slurm-partition; it needs no GPU).", scheduling=True)
    slurm_merge_cpus: int = opt(2, "Slurm: CPUs of the merge job.", scheduling=True)
    slurm_merge_mem: str = opt("16G", "Slurm: memory of the merge job.", scheduling=True)
    slurm_merge_time: str = opt("04:00:00", "Slurm: time limit of the merge job.", scheduling=True)
    submit: bool = opt(False, "Slurm: submit the jobs with sbatch instead of printing the command.", scheduling=True)


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
    generate_backend: str | None = opt(None, "Backend of the generation stage only (default: --backend).", identity=False)


@dataclass
class PublishOptions:
    """Publishing a finished run (``generate --push-to-hub``)."""

    SECTION = "Output"
    push_to_hub: str | None = opt(None, "Push the finished run to this Hub dataset repo (token from HF_TOKEN or `hf auth login`).", scheduling=True)
    private: bool = opt(False, "With --push-to-hub: create the repo private.", scheduling=True)


@dataclass
class StartOptions:
    """How ``generate`` starts: from a preset, or only printing the prompts."""

    SECTION = "Input"
    preset: str | None = opt(None, "toy: the shipped tiny teacher, student and addition set (offline demo); any option overrides it.", scheduling=True)
    dry_run: bool = opt(False, "Print one JSON line {id, teacher_prompt} per input row and exit; loads only the teacher tokenizer.", scheduling=True)


@dataclass
class GivenOptions:
    """``score``: the explanations that exist, and the teacher of the KL term."""

    SECTION = "Scoring"
    teacher: str | None = opt(None, "Teacher model for the KL term (omit with --kl-coefs 0,0).")
    explanation_column: str | None = opt(None, "Explanation column (default: explanation; Bespoke-Stratos rows use their thought).")


@dataclass
class MergeFolderOptions:
    """``merge``: which shards, and where the dataset goes."""

    SECTION = "Merge"
    output: str | None = opt(None, "Where the dataset goes (default: the first folder).")
    num_shards: int | None = opt(None, "Which split to merge when a folder holds shards of several (default: the one there is).")
    allow_partial: bool = opt(False, "Merge the chunks scored so far (missing or unfinished shards); the card says the run is partial.")


@dataclass
class ReportOptions:
    """``decontaminate``: where the report goes."""

    SECTION = "Output"
    output: str | None = opt(None, "Folder for report.json and train.parquet (the rows without flagged ones); without it the report is printed only.")


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
        check_repo_id(self.repo_id, "REPO_ID")
        check_endpoint(self.endpoint)
        if self.files_per_commit < 1:
            raise UserError("--files-per-commit must be at least 1")
        if self.max_retries < 0:
            raise UserError("--max-retries must be 0 or more")


# -- commands: dataclasses of sections --------------------------------------------------------------
def part(cls: type) -> Any:
    """A command's field holding section ``cls`` (its defaults unless given)."""
    return field(default_factory=cls, metadata={"section": cls})


def option_fields(cls: type) -> list[tuple[type, dataclasses.Field]]:
    """``(section class, field)`` of every option of ``cls``: a command's sections' fields, in order,
    or a plain options dataclass's own (``PushOptions``, ``EvalOptions``)."""
    if not issubclass(cls, Command):
        return [(cls, f) for f in dataclasses.fields(cls)]
    return [(section, f) for section in cls.parts().values() for f in dataclasses.fields(section)]


def label(section: type, name: str) -> str:
    """The label (``SECTION``, a panel of ``--help``) of option ``name`` of ``section``: that of the
    class that declares it (a section may extend another)."""
    for klass in section.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return getattr(klass, "SECTION", "Options")
    return "Options"


def section_of(cls: type, name: str) -> str:
    """The section label of option ``name`` of ``cls`` (a command or a plain options dataclass)."""
    return next((label(section, f.name) for section, f in option_fields(cls) if f.name == name), "Options")


@dataclass
class Command:
    """A command's options: one field per section (``part(InputOptions)``...), each option's name
    unique across them. ``of(**flat)`` builds it from flat option names (the CLI's flags, a YAML
    file, a shard job's spec), ``flat()`` gives them back."""

    @classmethod
    def parts(cls) -> dict[str, type]:
        """Field name -> section class."""
        return {f.name: f.metadata["section"] for f in dataclasses.fields(cls)}

    @classmethod
    def owners(cls) -> dict[str, str]:
        """Option name -> the field (section) holding it."""
        owners: dict[str, str] = {}
        for name, section in cls.parts().items():
            for f in dataclasses.fields(section):
                if f.name in owners:
                    raise TypeError(f"{cls.__name__}: option {f.name!r} is in two sections ({owners[f.name]}, {name})")
                owners[f.name] = name
        return owners

    @classmethod
    def of(cls, **values: Any):
        """The command from flat option values (a name no section has is a TypeError, as a dataclass's)."""
        owners, grouped = cls.owners(), {name: {} for name in cls.parts()}
        for key, value in values.items():
            if key not in owners:
                raise TypeError(f"{cls.__name__} has no option {key!r}")
            grouped[owners[key]][key] = value
        return cls(**{name: section(**grouped[name]) for name, section in cls.parts().items()})

    def flat(self) -> dict[str, Any]:
        """Every option, flat (``of`` takes it back)."""
        return {k: v for name in self.parts() for k, v in dataclasses.asdict(getattr(self, name)).items()}

    def get(self, name: str) -> Any:
        """Option ``name``, for a part that names an option (a stage's ``model``: ``"teacher"``)."""
        return getattr(getattr(self, self.owners()[name]), name)


def by_section(config: Any) -> dict[str, dict[str, Any]]:
    """The options of ``config`` grouped by section label (``run.json`` and the card record them so)."""
    out: dict[str, dict[str, Any]] = {}
    values = config.flat() if isinstance(config, Command) else dataclasses.asdict(config)
    for section, f in option_fields(type(config)):
        out.setdefault(label(section, f.name), {})[f.name] = values[f.name]
    return out


def identity(section: Any) -> dict[str, Any]:
    """The options of ``section`` that identify a stage's output (all but ``identity=False``); tuples as lists (JSON)."""
    out = {}
    for f in dataclasses.fields(section):
        if f.metadata.get("identity", True):
            value = getattr(section, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


@dataclass
class EvalOptions:
    """``rlt-data evaluate MODEL``: the benchmarks, the preset and what overrides it, the output, the engine.

    Its flags are declared as typer declares them by hand (``cli.options_command(..., plain=True)``):
    each carries its default, and ``--benchmarks``, ``--k`` and ``--data`` are read here into the
    lists and mapping the evaluation uses (a list or a mapping given in Python is kept). Checks that
    need the presets run in ``evaluate.EvalConfig.resolved``. The engine fields keep evaluate's own
    flags: only ``--dtype`` reads as ``EngineOptions``'s; ``engine()`` makes the backends' section.
    """

    SECTION = "Evaluate"
    model: str = opt("", "The student: Hub id or local folder.")
    benchmarks: str | list[str] = opt("aime24,math500,gpqa_diamond", "Comma-separated: aime24, aime25, math500, gpqa_diamond, toy.")
    output: str | None = opt(None, "Results folder (default: evals/<model>).")
    preset: str = opt("skythought", "skythought (the paper's: Sky-T1 system prompt, SkyThought's prompts, greedy, 1 sample, "
                      "SkyThought's extraction) or lighteval (open-r1's: no system prompt, lighteval's prompts, T 0.6, "
                      "top-p 0.95, 64/4/8/1 samples on AIME24/MATH500/GPQA-D/AIME25, lighteval's extraction); any option "
                      "given overrides it.")
    extraction: str | None = opt(None, "strict (last \\boxed{} only), skythought (boxed, then 'the answer is', 'final answer "
                                 "is', the last number; GPQA: the last standalone A-D) or lighteval (math-verify, expression "
                                 "+ LaTeX targets). Default: the preset's.")
    num_samples: int | None = opt(None, "Samples per question, every benchmark (default: the preset's; pass@1 is averaged over them).")
    k: str | list[int] | None = opt(None, "Comma-separated k for unbiased pass@k and maj@k, each <= the samples per question "
                                    "(default: 1 and the number of samples).")
    temperature: float | None = opt(None, "Default: the preset's (skythought: 0 with 1 sample, 0.6 with more; lighteval: 0.6).")
    top_p: float | None = opt(None, "Default: the preset's (skythought: 1.0 with 1 sample, 0.95 with more; lighteval: 0.95).")
    max_new_tokens: int | None = opt(None, "Longest response (default: the preset's, 32768).")
    seed: int = opt(0, "Sampling seed (with the question id, per question): reruns repeat the samples.")
    limit: int | None = opt(None, "First N questions of each benchmark (smoke tests).")
    system_prompt: str | None = opt(None, "stratos (the student's training prompt), none, or @FILE (default: the preset's: "
                                    "stratos for skythought, none for lighteval).")
    training_data: str | None = opt(None, "RUN_OR_DATASET the student was trained on: warn, with counts, where benchmark "
                                    "problems share a word 8-gram with its questions.")
    data: list[str] | dict[str, str] | None = opt(None, "NAME=SOURCE: read a benchmark from another Hub id or a local file/folder (repeatable).")
    chunk_size: int | None = opt(None, "Questions per generate call, the unit of resume (default: 256 on vLLM, --batch-size on transformers).")
    overwrite: bool = opt(False, "Replace results made with other parameters.")
    update_card: bool = opt(False, "Write the results into the model card's model-index.")
    push_to_hub: str | None = opt(None, "Push the updated model card to this model repo (implies --update-card).")
    token: str | None = field(default=None, repr=False,  # never printed
                              metadata=opt(None, "Hub token (default: HF_TOKEN or the stored login). Never printed.").metadata)
    backend: str | None = opt(None, "transformers or vllm (default: vllm when importable and a GPU is present).")
    device: str = opt("auto", "transformers backend: torch device.")
    dtype: str = opt("auto", "auto (bfloat16 on GPU, float32 on CPU), bfloat16, float16 or float32.")
    batch_size: int = opt(16, "transformers backend: prompts per generate() call.")
    tensor_parallel_size: int = opt(1, "vLLM: GPUs per engine.")
    gpu_memory_utilization: float = opt(0.9, "vLLM: fraction of GPU memory the engine may use.")
    max_model_len: int | None = opt(None, "vLLM: context length (default: the model's).")
    enforce_eager: bool = opt(False, "vLLM: no CUDA graphs.")
    vllm_args: str | None = opt(None, "vLLM: extra engine arguments as a JSON object.")

    def __post_init__(self) -> None:
        """``--benchmarks a,b``, ``--k 1,4`` and ``--data NAME=SOURCE`` (repeated) as a list, a list and a mapping."""
        if isinstance(self.benchmarks, str):
            self.benchmarks = [b.strip() for b in self.benchmarks.split(",") if b.strip()]
        if isinstance(self.k, str):
            try:
                self.k = [int(v) for v in self.k.split(",") if v.strip()]
            except ValueError:
                raise UserError(f"--k takes comma-separated whole numbers (e.g. 1,4,8), not {self.k!r}") from None
        if not isinstance(self.data, dict):
            sources: dict[str, str] = {}
            for entry in self.data or []:
                name, sep, source = entry.partition("=")
                if not sep or not name.strip() or not source.strip():
                    raise UserError(f"--data takes NAME=SOURCE (e.g. gpqa_diamond=./gpqa_diamond.parquet), not {entry!r}")
                sources[name.strip()] = source.strip()
            self.data = sources

    def engine(self) -> EngineOptions:
        """The engine section (all a backend receives): evaluate's engine flags, and ``EngineOptions``'
        defaults for the options evaluate has no flag for (scoring's, data parallelism)."""
        return EngineOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(EngineOptions) if hasattr(self, f.name)})
