"""Exports of a run for other training stacks. ``sdft``: ``RUN_DIR/sdft/train.parquet``, the kept rows as
TRL's on-policy self-distillation rows (``trl.experimental.sdft.SDFTTrainer``; ``trl.DistillationTrainer``
reads its ``prompt`` column): ``prompt``, the student's chat up to the user turn (system prompt and
question, conversational), and ``privileged_context``, what the self-teacher sees besides: the
solution, or (``--with-explanation``) the kept assistant turn (explanation and solution, as trained on).
``llamafactory``: the ``dataset_info.json`` entry that
LLaMA-Factory (the reference's SFT stack) needs to read the run's ``sharegpt`` config (folder
``sharegpt/``, the Bespoke-Stratos columns): ShareGPT formatting, ``conversations`` of
``from``/``value`` with ``user``/``assistant`` roles, and the ``system`` column; and
``llamafactory-NAME.yaml``, the data settings of a LLaMA-Factory training YAML with a ``cutoff_len``
that cuts no row (LLaMA-Factory's default, 2,048, cuts reasoning rows silently).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import protocol
from .errors import UserError
from .shards import SPLIT_FOLDERS, write_text

FORMATS = ("llamafactory", "sdft")
SDFT_FOLDER = "sdft"
LLAMAFACTORY_CONFIG = "sharegpt"  # the card config (and folder) the entry reads


def llamafactory_entry(hub_repo: str | None = None) -> dict:
    """A local entry names the folder (``file_name``, relative to ``dataset_dir``); a Hub entry names the
    repo and its config (``subset``, LLaMA-Factory's ``load_dataset(name=...)``)."""
    if hub_repo:
        entry: dict = {"hf_hub_url": hub_repo, "subset": LLAMAFACTORY_CONFIG, "split": "train"}
    else:
        entry = {"file_name": SPLIT_FOLDERS[LLAMAFACTORY_CONFIG]}
    entry.update(
        {
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "user", "assistant_tag": "assistant"},
        }
    )
    return entry


def snippet_path(run_dir: str | Path, name: str = "rlt_data") -> Path:
    return Path(run_dir) / f"llamafactory-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.yaml"


def llamafactory_snippet(root: Path, name: str, hub_repo: str | None = None) -> str:
    """The data keys of a LLaMA-Factory SFT YAML for this run: ``dataset_dir``, ``dataset`` and
    ``cutoff_len`` (:func:`rlt_data.card.recommended_max_length` of the longest row)."""
    from .card import longest_row, recommended_max_length

    longest = longest_row(root)
    measured = f"the longest row is {longest:,} tokens of the student's tokenizer" if longest is not None else "no row was kept"
    source = f"Hub repo {hub_repo}, config {LLAMAFACTORY_CONFIG}" if hub_repo else f"{SPLIT_FOLDERS[LLAMAFACTORY_CONFIG]}/"
    return "\n".join([
        f"# LLaMA-Factory data settings for this rlt-data run ({source}): merge them into your SFT YAML.",
        f"# cutoff_len: {measured}; LLaMA-Factory's default (2048) would cut longer rows silently.",
        f"dataset_dir: {json.dumps(str(root.resolve()))}",
        f"dataset: {name}",
        f"cutoff_len: {recommended_max_length(longest)}",
        "# template: qwen   # the student's chat template in LLaMA-Factory (qwen for Qwen2.5)",
        "",
    ])


def sdft_row(question: str, explanation: str, solution: str, with_explanation: bool = False) -> dict:
    """One SDFT row: ``prompt`` = [system, user] of the training row; ``privileged_context`` = the solution, or the
    assistant turn of the training row (explanation and solution) with ``with_explanation``."""
    messages = protocol.training_messages(question, explanation, solution)
    return {"prompt": messages[:2], "privileged_context": messages[2]["content"] if with_explanation else solution.strip()}


SDFT_SCHEMA = pa.schema([
    ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    ("privileged_context", pa.string()), ("id", pa.string()), ("sample_index", pa.int32()),
])


def export_sdft(root: Path, with_explanation: bool = False) -> Path:
    """``RUN_DIR/sdft/train.parquet`` from the kept rows (``data/``), streamed shard by shard."""
    shards = sorted((root / SPLIT_FOLDERS["default"]).glob("*.parquet"))
    if not shards:
        raise UserError(f"{root} has no {SPLIT_FOLDERS['default']}/*.parquet shards; run generate or score first")
    out = root / SDFT_FOLDER / "train.parquet"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".parquet.tmp")
    with pq.ParquetWriter(tmp, SDFT_SCHEMA) as writer:
        for shard in shards:
            for batch in pq.ParquetFile(shard).iter_batches(columns=["id", "question", "explanation", "solution", "sample_index"]):
                rows = [{**sdft_row(r["question"], r["explanation"], r["solution"], with_explanation),
                         "id": r["id"], "sample_index": r["sample_index"]} for r in batch.to_pylist()]
                writer.write_table(pa.Table.from_pylist(rows, schema=SDFT_SCHEMA))
    tmp.replace(out)
    return out


def export(run_dir: str | Path, fmt: str, name: str = "rlt_data", hub_repo: str | None = None, with_explanation: bool = False) -> Path:
    """``llamafactory``: write (or update) ``RUN_DIR/dataset_info.json``, and ``RUN_DIR/llamafactory-NAME.yaml`` (the
    YAML snippet: ``dataset_dir: RUN_DIR``, ``dataset: NAME``, ``cutoff_len``); returns the first.
    ``sdft``: write ``RUN_DIR/sdft/train.parquet`` (:func:`export_sdft`); returns it."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not name.strip():
        raise UserError("--name must not be empty (it names the dataset entry and the snippet file)")
    if Path(run_dir).is_dir() and not (Path(run_dir) / ".rlt" / "run.json").is_file():
        raise UserError(f"{run_dir} is not an rlt-data run (no .rlt/run.json): export reads a folder generate, score or merge wrote")
    if with_explanation and fmt != "sdft":
        raise UserError("--with-explanation applies to --format sdft only")
    if fmt == "sdft":
        if hub_repo is not None:
            raise UserError("--hub-repo applies to --format llamafactory only")
        root = Path(run_dir)
        if not root.is_dir():
            raise UserError(f"run folder not found: {root}")
        return export_sdft(root, with_explanation)
    if hub_repo is not None:
        from .options import check_repo_id

        check_repo_id(hub_repo, "--hub-repo")
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"run folder not found: {root}")
    folder = SPLIT_FOLDERS[LLAMAFACTORY_CONFIG]
    if not list((root / folder).glob("*.parquet")):
        if list((root / "data").glob("*.parquet")):
            raise UserError(f"{root} has no {folder}/*.parquet shards (made by an older rlt-data); run `rlt-data select {root}` with the run's selection options first")
        raise UserError(f"{root} has no {folder}/*.parquet shards; run generate or score first")
    path = root / "dataset_info.json"
    try:
        info = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); fix or remove it")
    if not isinstance(info, dict):
        raise UserError(f"{path} is not a JSON object; fix or remove it")
    info[name] = llamafactory_entry(hub_repo)
    write_text(path, json.dumps(info, indent=2) + "\n")
    write_text(snippet_path(root, name), llamafactory_snippet(root, name, hub_repo))
    return path
