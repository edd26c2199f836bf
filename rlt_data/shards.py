"""Sharded Parquet, atomic writes and resume state.

A run folder is a Hub dataset repository plus a hidden work area::

    DIR/README.md                              dataset card
    DIR/data/train-00000-of-0000N.parquet      the distillation set (kept rows), `messages` (config default)
    DIR/sharegpt/train-00000-of-0000N.parquet  the same rows as `system` + `conversations` (config sharegpt)
    DIR/candidates/train-00000-of-0000N.parquet every sample with its status and scores
    DIR/.rlt/run.json                          parameters, counts, completeness
    DIR/.rlt/<stage>/chunk-00000.parquet       one file per finished chunk and stage

Every file appears under its final name only when complete (temporary name, fsync, rename), so a
``kill -9`` at any moment loses at most the chunk in flight, and a rerun skips finished chunks.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

STATE_DIR = ".rlt"
STAGES = ("generated", "teacher", "scored")

_FLOAT = pa.float64()
GENERATED_FIELDS = [
    ("id", pa.string()), ("question", pa.string()), ("solution", pa.string()), ("sample_index", pa.int32()),
    ("completion", pa.string()), ("explanation", pa.string()), ("has_end_tag", pa.bool_()),
    ("truncated", pa.bool_()), ("num_completion_tokens", pa.int32()),
]
SCORE_FIELDS = [
    ("reward", _FLOAT), ("r_ss", _FLOAT), ("r_kl", _FLOAT), ("lp_solution_mean", _FLOAT),
    ("lp_solution_min", _FLOAT), ("kl_mean", _FLOAT), ("kl_max", _FLOAT), ("num_solution_tokens", pa.int32()),
    ("num_think_tokens", pa.int32()), ("student_context_tokens", pa.int32()),
]
SCHEMAS = {
    "generated": pa.schema(GENERATED_FIELDS),
    "teacher": pa.schema([("teacher_think_ids", pa.list_(pa.int32())), ("teacher_think_lp", pa.list_(pa.float32()))]),
    "scored": pa.schema(GENERATED_FIELDS + SCORE_FIELDS + [("think_mismatch", pa.bool_())]),
}
CANDIDATES_SCHEMA = pa.schema(GENERATED_FIELDS + SCORE_FIELDS + [("status", pa.string())])
# Config `default` (data/): what stock trainers read. `messages` (system, user, assistant) is the
# scored student context; there is deliberately no `conversations` column here, because TRL's
# SFTTrainer rebuilds `messages` from `conversations` when both are present (dropping the system turn).
DATA_SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("question", pa.string()), ("solution", pa.string()), ("explanation", pa.string()),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("sample_index", pa.int32()), ("num_explanation_tokens", pa.int32()),
    ]
    + SCORE_FIELDS
)
# Config `sharegpt` (sharegpt/): the same rows in the Bespoke-Stratos schema (LLaMA-Factory, SkyThought).
SHAREGPT_SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("system", pa.string()),
        ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
    ]
)
# config name -> folder of its shards, in the order the card lists them
SPLIT_FOLDERS = {"default": "data", "sharegpt": "sharegpt", "candidates": "candidates"}


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_parquet(path: Path, table: pa.Table) -> None:
    def write(tmp: Path) -> None:
        if table.num_rows:
            pq.write_table(table, tmp, compression="snappy")
        else:  # schema only, no row group (an empty row group breaks readers such as `datasets`)
            pq.ParquetWriter(tmp, table.schema, compression="snappy").close()

    _atomic(path, write)


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text, "utf-8"))


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.state_dir = self.root / STATE_DIR

    # -- run state ---------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any] | None:
        path = self.state_dir / "run.json"
        return json.loads(path.read_text("utf-8")) if path.is_file() else None

    def write_state(self, state: dict[str, Any]) -> None:
        write_text(self.state_dir / "run.json", json.dumps(state, indent=2, sort_keys=True))

    def exists(self) -> bool:
        return (self.state_dir / "run.json").is_file()

    def wipe(self) -> None:
        """Remove everything a run writes (and nothing else) from the folder."""
        for name in (STATE_DIR, *SPLIT_FOLDERS.values()):
            shutil.rmtree(self.root / name, ignore_errors=True)
        (self.root / "README.md").unlink(missing_ok=True)

    # -- per-stage chunks --------------------------------------------------------------------
    def chunk_path(self, stage: str, index: int) -> Path:
        return self.state_dir / stage / f"chunk-{index:05d}.parquet"

    def has_chunk(self, stage: str, index: int) -> bool:
        return self.chunk_path(stage, index).is_file()

    def write_chunk(self, stage: str, index: int, rows: list[dict]) -> None:
        write_parquet(self.chunk_path(stage, index), pa.Table.from_pylist(rows, schema=SCHEMAS[stage]))

    def read_chunk(self, stage: str, index: int) -> list[dict]:
        return pq.read_table(self.chunk_path(stage, index), schema=SCHEMAS[stage]).to_pylist()

    def clear_stage(self, stage: str) -> None:
        shutil.rmtree(self.state_dir / stage, ignore_errors=True)

    # -- published splits --------------------------------------------------------------------
    def write_split(self, folder: str, table: pa.Table, max_shard_bytes: int) -> list[str]:
        """Write ``folder/train-XXXXX-of-YYYYY.parquet`` shards; remove shards of an older layout."""
        wanted = min(max(1, math.ceil(table.nbytes / max_shard_bytes)), max(1, table.num_rows))
        per_shard = max(1, math.ceil(table.num_rows / wanted))
        num_shards = max(1, math.ceil(table.num_rows / per_shard))  # never an empty trailing shard
        names = []
        for k in range(num_shards):
            name = f"train-{k:05d}-of-{num_shards:05d}.parquet"
            write_parquet(self.root / folder / name, table.slice(k * per_shard, per_shard))
            names.append(name)
        for old in (self.root / folder).glob("*.parquet"):
            if old.name not in names:
                old.unlink()
        return names
