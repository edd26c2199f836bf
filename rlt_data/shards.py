"""Sharded Parquet, atomic writes and resume state.

A run folder is a Hub dataset repository plus a hidden work area::

    DIR/README.md                              dataset card
    DIR/data/train-00000-of-0000N.parquet      the distillation set (kept rows), `messages` (config default)
    DIR/sharegpt/train-00000-of-0000N.parquet  the same rows as `system` + `conversations` (config sharegpt)
    DIR/candidates/train-00000-of-0000N.parquet every sample with its status and scores
    DIR/plots/{reward,explanation_tokens}.png  the card's histograms
    DIR/.rlt/run.json                          parameters, counts, completeness (written by the merge)
    DIR/.rlt/shard.json, DIR/.rlt/done.json    a one-shard run: its parameters, and its completion marker
    DIR/.rlt/<stage>/chunk-00000.parquet       one file per finished chunk and stage
    DIR/.rlt/shards/00003-of-00032/...         shard 3 of a 32-shard run: the same three kinds of files

Every file appears under its final name only when complete (temporary name, fsync, rename), so a
``kill -9`` at any moment loses at most the chunk in flight, and a rerun skips finished chunks.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .locks import Lock
from .state import RunState, ShardDone, ShardState
from .records import Candidate, Mismatch, Position, Scores, ShareGPTRow, Status, TrainingRow, fields, schema

STATE_DIR = ".rlt"
STATE_FORMAT = 5  # of run.json and shard.json: 2: shards (shard.json, done.json), row_index; 3: rows' content digest, labelled chunks; 4: rsr columns; 5: the stages' order

# Every schema is derived from the typed records (records.py): a column is declared once. Each stage
# declares the schema of its own chunk files (``stages/``); the store knows no stage by name.
SCORE_FIELDS = fields(Scores)
# What the last stage of a command writes, one row per candidate, and what the merge reads of it.
CANDIDATE_CHUNK_SCHEMA = schema(Candidate, Scores, Mismatch, Position)
CANDIDATES_SCHEMA = schema(Candidate, Scores, Status)
# Config `default` (data/): what stock trainers read. `messages` (system, user, assistant) is the
# scored student context; there is deliberately no `conversations` column here, because TRL's
# SFTTrainer rebuilds `messages` from `conversations` when both are present (dropping the system turn).
DATA_SCHEMA = schema(TrainingRow, Scores)
# Config `sharegpt` (sharegpt/): the same rows in the Bespoke-Stratos schema (LLaMA-Factory, SkyThought).
SHAREGPT_SCHEMA = schema(ShareGPTRow)
# config name -> folder of its shards, in the order the card lists them
SPLIT_FOLDERS = {"default": "data", "sharegpt": "sharegpt", "candidates": "candidates"}


def atomic_write(path: Path, write) -> None:
    """``write(tmp)`` then rename over ``path``: the file is whole or absent, never half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# Rows per row group of a stage's chunk file: the merge streams a chunk one row group at a time
# from every shard at once, so this bounds its memory (32 shards x 64 rows x 40 KB: ~80 MB).
CHUNK_ROW_GROUP = 64
CHUNK_LABEL = b"rlt_chunk"  # footer key: {"tag": the stage's parameters digest, "rows": row count}


def write_parquet(path: Path, table: pa.Table, row_group_rows: int | None = None, label: dict | None = None) -> None:
    """``label``: JSON kept in the file's footer (a chunk's run and row count, checked when read)."""
    if label is not None:
        table = table.replace_schema_metadata({CHUNK_LABEL: json.dumps(label, sort_keys=True)})

    def write(tmp: Path) -> None:
        if table.num_rows:
            pq.write_table(table, tmp, compression="snappy", row_group_size=row_group_rows)
        else:  # schema only, no row group (an empty row group breaks readers such as `datasets`)
            pq.ParquetWriter(tmp, table.schema, compression="snappy").close()

    atomic_write(path, write)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, "utf-8"))


def read_json(path: Path) -> dict[str, Any] | None:
    """A state file, or None where it does not exist (yet); a damaged one is one ``UserError``."""
    if not path.is_file():
        return None
    from .errors import UserError

    try:
        data = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        data, exc_text = None, str(exc).splitlines()[0]
    else:
        exc_text = "not a JSON object"
    if not isinstance(data, dict):
        what = {"done.json": "the rerun resumes the shard", "shard.json": "the rerun checks its chunk files and keeps those of this run",
                "run.json": "the rerun (or `rlt-data merge DIR`) writes it again"}.get(path.name, "rerun the command")
        raise UserError(f"{path} is damaged ({exc_text}): remove it and rerun the command ({what})")
    return data


def read_record(path: Path, cls: Any) -> Any:
    """The typed state record (``state.py``) in ``path``; None when there is no file."""
    data = read_json(path)
    return None if data is None else cls.from_json(data, str(path))


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True))


def shard_name(index: int, count: int) -> str:
    return f"{index:05d}-of-{count:05d}"


class ShardStore:
    """One shard's work area: ``shard.json`` (its parameters, written first), one file per finished
    chunk and stage, and ``done.json`` (its completion marker, written last).

    A one-shard run keeps these directly in ``.rlt/`` (the layout of a serial run); shard ``i`` of
    ``N > 1`` in ``.rlt/shards/0000i-of-0000N/``. A shard writes nothing outside its folder, so
    shards can run on any machine that mounts the run folder, in any order, and twice.
    """

    def __init__(self, run_root: str | Path, index: int, count: int):
        self.run_root, self.index, self.count = Path(run_root), index, count
        base = self.run_root / STATE_DIR
        self.root = base if count == 1 else base / "shards" / shard_name(index, count)
        # stage -> digest of the parameters its chunks are made with (pipeline.stage_tags): written
        # into every chunk's footer, so a chunk of another run (or another seed) is never taken as done
        self.tags: dict[str, str] = {}

    def lock(self) -> Lock:
        return Lock(self.root / "shard.lock", f"shard {self.name} of {self.run_root}")

    def clean_temp(self) -> int:
        """Remove the temporary files of writers killed mid-write (``.name.tmp-PID``) in this shard."""
        return _clean_temp(self.root, skip=("shards",) if self.count == 1 else ())

    @property
    def name(self) -> str:
        return shard_name(self.index, self.count)

    def has_state(self) -> bool:
        return (self.root / "shard.json").is_file()

    def read_state(self) -> ShardState | None:
        return read_record(self.root / "shard.json", ShardState)

    def write_state(self, state: ShardState) -> None:
        write_json(self.root / "shard.json", state.to_json())

    def read_done(self) -> ShardDone | None:
        return read_record(self.root / "done.json", ShardDone)

    def mark_done(self, done: ShardDone) -> None:
        write_json(self.root / "done.json", done.to_json())

    def clear_done(self) -> None:
        (self.root / "done.json").unlink(missing_ok=True)

    def stage_folders(self) -> list[Path]:
        """The folders of this shard's stages: those holding nothing but chunk files."""
        def is_stage(folder: Path) -> bool:
            return folder.is_dir() and folder.name != "shards" and all(p.name.startswith(("chunk-", ".chunk-")) for p in folder.iterdir())

        return sorted(f for f in self.root.iterdir() if is_stage(f)) if self.root.is_dir() else []

    def wipe(self) -> None:
        """This shard's files only (a one-shard run shares ``.rlt/`` with run.json and other shards)."""
        for folder in self.stage_folders():
            shutil.rmtree(folder, ignore_errors=True)
        for name in ("shard.json", "done.json"):
            (self.root / name).unlink(missing_ok=True)

    def chunk_path(self, stage: str, index: int) -> Path:
        return self.root / stage / f"chunk-{index:05d}.parquet"

    def has_chunk(self, stage: str, index: int) -> bool:
        return self.chunk_path(stage, index).is_file()

    def chunk_problem(self, stage: str, index: int, rows: int) -> str | None:
        """What is wrong with a stage's chunk file (None: it is whole and this run's): ``missing``,
        unreadable, made with other parameters, or holding another number of rows than ``rows``."""
        path = self.chunk_path(stage, index)
        if not path.is_file():
            return "missing"
        try:
            meta = pq.read_metadata(path)
            label = json.loads((meta.metadata or {}).get(CHUNK_LABEL, b"null"))
        except Exception as exc:  # truncated, not Parquet, bad footer: a cache entry to redo
            return f"is unreadable ({type(exc).__name__})"
        if not isinstance(label, dict):
            return "carries no run label"
        if stage in self.tags and label.get("tag") != self.tags[stage]:
            return "was made by another run (other parameters)"
        if meta.num_rows != rows or label.get("rows") != rows:
            return f"holds {meta.num_rows} rows, not {rows}"
        return None

    def drop_chunk(self, stages: tuple[str, ...] | list[str], index: int) -> None:
        """Remove chunk ``index`` of each of ``stages`` (a stage and those after it: they were made from it)."""
        for name in stages:
            self.chunk_path(name, index).unlink(missing_ok=True)

    def _label(self, stage: str, rows: int) -> dict:
        return {"tag": self.tags.get(stage), "rows": rows}

    def write_chunk(self, stage: str, index: int, rows: list[dict], schema: pa.Schema) -> None:
        table = pa.Table.from_pylist(rows, schema=schema)
        write_parquet(self.chunk_path(stage, index), table, CHUNK_ROW_GROUP, self._label(stage, len(rows)))

    def write_table(self, stage: str, index: int, rows: list[dict], schema: pa.Schema) -> None:
        """Like ``write_chunk``, for rows of numpy arrays: each column converted by Arrow as a whole."""
        columns = {name: pa.array([r[name] for r in rows], type=schema.field(name).type) for name in schema.names}
        table = pa.table(columns, schema=schema)
        write_parquet(self.chunk_path(stage, index), table, CHUNK_ROW_GROUP, self._label(stage, len(rows)))

    def read_chunk(self, stage: str, index: int, schema: pa.Schema | None = None) -> list[dict]:
        return self.read_chunk_table(stage, index, schema=schema).to_pylist()

    def read_arrays(self, stage: str, index: int, schema: pa.Schema | None = None) -> list[dict]:
        """The rows of a chunk of list columns, each value a numpy view (no Python object per element)."""
        table = self.read_chunk_table(stage, index, schema=schema)
        columns = {}
        for name in table.column_names:
            col = table.column(name).combine_chunks()
            offsets, values = col.offsets.to_numpy(), col.values.to_numpy(zero_copy_only=False)
            columns[name] = [values[offsets[k]:offsets[k + 1]] for k in range(len(col))]
        return [{name: columns[name][k] for name in columns} for k in range(table.num_rows)]

    def read_chunk_table(self, stage: str, index: int, columns: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
        """``schema``: the stage's (its declared column types; default: the file's own)."""
        return pq.read_table(self.chunk_path(stage, index), schema=schema, columns=columns)

    def clear_stage(self, stage: str) -> None:
        shutil.rmtree(self.root / stage, ignore_errors=True)


def _clean_temp(root: Path, skip: tuple[str, ...] = (), recursive: bool = True) -> int:
    """Remove the ``.NAME.tmp-PID`` files of other processes under ``root``. Called only under the
    lock of what ``root`` holds (the run's, or the shard's), so no other writer is alive there,
    whichever host it ran on: its files are what a killed writer left."""
    removed = 0
    for path in (root.rglob if recursive else root.glob)(".*.tmp-*") if root.is_dir() else []:
        if any(part in skip for part in path.relative_to(root).parts[:-1]):
            continue
        pid = path.name.rsplit(".tmp-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.state_dir = self.root / STATE_DIR

    def lock(self) -> Lock:
        return Lock(self.state_dir / "run.lock", str(self.root))

    def clean_temp(self) -> int:
        """Temporary files of killed writers in the published folders, the card's and the run's state."""
        folders = sum(_clean_temp(self.root / name) for name in (*SPLIT_FOLDERS.values(), "plots"))
        return folders + _clean_temp(self.root, recursive=False) + _clean_temp(self.state_dir, recursive=False)

    # -- run state ---------------------------------------------------------------------------
    def has_state(self) -> bool:
        return (self.state_dir / "run.json").is_file()

    def read_state(self) -> RunState | None:
        return read_record(self.state_dir / "run.json", RunState)

    def write_state(self, state: RunState) -> None:
        write_json(self.state_dir / "run.json", state.to_json())

    # -- finalize: data/, sharegpt/, candidates/, plots, card and run.json rewritten as one --------
    def begin_finalize(self) -> None:
        """Written before the published folders change, removed once the card and run.json match them:
        while it exists, a reader must not trust the folder (``push-to-hub`` refuses it)."""
        write_text(self.state_dir / "finalizing", "the published files are being rewritten\n")

    def end_finalize(self) -> None:
        (self.state_dir / "finalizing").unlink(missing_ok=True)

    def finalizing(self) -> bool:
        """A finalize started and did not finish (killed): data/ and the card may be of two selections."""
        return (self.state_dir / "finalizing").is_file()

    def busy_shards(self) -> list[str]:
        """Shards of this folder that a live process is working on (their lock is not stale)."""
        from .locks import describe

        locks = [self.state_dir / "shard.lock", *sorted((self.state_dir / "shards").glob("*/shard.lock"))]
        busy = []
        for path in locks:
            holder = Lock(path, str(path.parent)).live_holder()
            if holder is not None:
                busy.append(f"{path.parent.name if path.parent != self.state_dir else 'the shard'} ({describe(holder)})")
        return busy

    def wipe(self) -> None:
        """Remove everything a run writes (and nothing else) from the folder; the run's lock stays."""
        busy = self.busy_shards()
        if busy:
            from .errors import UserError

            raise UserError(f"{self.root} has shards at work ({'; '.join(busy[:3])}{', ...' if len(busy) > 3 else ''}): "
                            "wait for them, or stop them (scancel, kill) before --overwrite")
        for name in (*SPLIT_FOLDERS.values(), "plots"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for path in self.state_dir.iterdir() if self.state_dir.is_dir() else []:
            if path.name != "run.lock":
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        (self.root / "README.md").unlink(missing_ok=True)

    # -- shards ------------------------------------------------------------------------------
    def shard(self, index: int, count: int) -> ShardStore:
        return ShardStore(self.root, index, count)

    def shard_counts(self) -> list[int]:
        """The shard counts N of the shards in this folder (1 for a serial run's ``.rlt/shard.json``)."""
        counts = {1} if (self.state_dir / "shard.json").is_file() else set()
        for folder in (self.state_dir / "shards").glob("*-of-*"):
            if (folder / "shard.json").is_file():
                counts.add(int(folder.name.split("-of-")[1]))
        return sorted(counts)

    def shards_present(self, count: int) -> list[ShardStore]:
        """The shards of an ``N = count`` split that have started here (their ``shard.json`` exists)."""
        return [s for s in (self.shard(i, count) for i in range(count)) if s.has_state()]

    # -- published splits --------------------------------------------------------------------
    def shard_writer(self, folder: str, schema: pa.Schema, max_shard_bytes: int) -> "ShardWriter":
        return ShardWriter(self.root / folder, schema, max_shard_bytes)


class ShardWriter:
    """Streams tables into ``folder/train-XXXXX-of-YYYYY.parquet``, one chunk at a time.

    A new file starts once the current one holds ``max_shard_bytes`` (Arrow's in-memory size of
    the rows, the measure ``datasets`` uses for ``max_shard_size``); a row is never split and a
    shard never left empty. Files are written under hidden temporary names and get their final
    ``-of-N`` names in :meth:`close`, when N is known; shards of an older layout are removed then.
    A crash before ``close`` leaves the old shards as they were (the parts are removed by
    :meth:`abort` or by the next writer of the folder); a crash inside ``close`` can leave old and
    new shards side by side until the rerun, which rewrites them. Memory: the rows of one
    :meth:`write` call.
    """

    def __init__(self, folder: Path, schema: pa.Schema, max_shard_bytes: int):
        self.folder, self.schema, self.max_bytes = Path(folder), schema, max_shard_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(".part-*.parquet.tmp-*"):  # left by a finalize that crashed
            stale.unlink()
        self._parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._bytes = 0

    def _open(self) -> None:
        path = self.folder / f".part-{len(self._parts):05d}.parquet.tmp-{os.getpid()}"
        self._parts.append(path)
        self._writer = pq.ParquetWriter(path, self.schema, compression="snappy")
        self._bytes = 0

    def _close_current(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open()
            rest = table.slice(offset)
            per_row = max(1, rest.nbytes // rest.num_rows)
            fits = (self.max_bytes - self._bytes) // per_row
            if fits <= 0 and self._bytes > 0:
                self._close_current()
                continue
            piece = rest.slice(0, max(1, fits))
            self._writer.write_table(piece)
            self._bytes += piece.nbytes
            offset += piece.num_rows
            if self._bytes >= self.max_bytes:
                self._close_current()

    def abort(self) -> None:
        """Drop what was written (an error or an interrupt before :meth:`close`): old shards stay."""
        self._close_current()
        for part in self._parts:
            part.unlink(missing_ok=True)
        self._parts.clear()

    def close(self) -> list[str]:
        """Give the shards their final names; returns them in order."""
        self._close_current()
        if not self._parts:  # no row at all: one schema-only file (an empty row group breaks readers)
            self._open()
            self._close_current()
        names = [f"train-{k:05d}-of-{len(self._parts):05d}.parquet" for k in range(len(self._parts))]
        for part, name in zip(self._parts, names):
            with open(part, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(part, self.folder / name)
        for old in self.folder.glob("*.parquet"):
            if old.name not in names:
                old.unlink()
        return names
