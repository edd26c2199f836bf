"""One dataset from a run's shards: check them, select, write ``data/``, ``sharegpt/``,
``candidates/`` and one card.

The merge is the last step of every run (a serial run is one shard) and ``rlt-data merge`` for
shards that ran elsewhere (Slurm, by hand, on several folders). It refuses shards without their
completion marker (unless partial), shards made with other parameters (naming the keys), chunk
files of another schema and a question id in two shards. Rows are written in input order, as one
machine would have written them, streaming: selection needs one chunk's scalar columns, and each
shard contributes one batch of rows at a time, so memory does not grow with the run.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import protocol, selection
from .records import ShareGPTRow, TrainingRow, row
from .config import SelectOptions
from .options import SelectionOptions, parse_size
from .errors import UserError, first_line
from .sharding import changed_keys
from .state import RunState, RunSummary, ShardState
from .shards import CANDIDATE_CHUNK_SCHEMA, CANDIDATES_SCHEMA, CHUNK_ROW_GROUP, DATA_SCHEMA, SCORE_FIELDS, SHAREGPT_SCHEMA, SPLIT_FOLDERS, STATE_FORMAT, RunStore, ShardStore

# what selection reads of a candidate: its id, every column that is one number or flag (scores, token
# counts: a selection option on any of them needs no change here), and the explanation only as "empty
# or not" (the texts stay on disk until a kept row is written)
SELECTION_COLUMNS = ["id", "explanation", *(f.name for f in CANDIDATE_CHUNK_SCHEMA
                                           if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type))]
BATCH_ROWS = 256


# -- finding and checking shards ----------------------------------------------------------------
@dataclass
class Found:
    """The shards of one split, as found on disk (each state and marker read once)."""

    count: int
    shards: list[ShardStore]
    states: list[ShardState]
    finished: int  # shards with their done.json


def find_shards(sources: list[RunStore], count: int | None, partial: bool) -> Found:
    """The shards of one ``count``-way split across ``sources``: each present once and finished."""
    counts = sorted({n for src in sources for n in src.shard_counts()})
    where = ", ".join(str(src.root) for src in sources)
    if count is None:
        if not counts:
            raise UserError(f"no rlt-data shards in {where}")
        if len(counts) > 1:
            raise UserError(f"{where} hold shards of several splits (--num-shards {', '.join(map(str, counts))}); pass --num-shards N")
        count = counts[0]
    shards, states = [], []
    missing, unfinished = [], []
    for i in range(count):
        here = [(s, st) for s in (src.shard(i, count) for src in sources) if (st := s.read_state()) is not None]
        if len(here) > 1:
            raise UserError(f"shard {here[0][0].name} is in more than one folder ({', '.join(str(s.run_root) for s, _ in here)})")
        if not here:
            missing.append(i)
            continue
        if here[0][0].read_done() is None:
            unfinished.append(i)
        shards.append(here[0][0])
        states.append(here[0][1])
    if (missing or unfinished) and not partial:
        parts = [f"{len(missing)} missing ({_list(missing)})"] * bool(missing) + [f"{len(unfinished)} unfinished, no done.json ({_list(unfinished)})"] * bool(unfinished)
        raise UserError(f"{where}: of {count} shards, {' and '.join(parts)}: run them (the same command resumes), or pass --allow-partial")
    if not shards:
        raise UserError(f"{where}: no shard of {count} has started")
    return Found(count, shards, states, len(shards) - len(unfinished))


def _list(indices: list[int], most: int = 8) -> str:
    return ", ".join(map(str, indices[:most])) + (", ..." if len(indices) > most else "")


def check_params(found: Found) -> None:
    """Every shard made with the same generation and scoring parameters."""
    flat = lambda st: {"command": st.command, "format": st.format, **st.generation, **st.scoring,  # noqa: E731
                       "decontamination": st.decontamination_params, "order": st.order}
    for shard, state in zip(found.shards, found.states):  # older chunks lack columns: they would merge as empty scores
        if state.format != STATE_FORMAT:
            raise UserError(f"shard {shard.name} ({shard.run_root}) was written by an older rlt-data (run format {state.format}, "
                            f"this one reads {STATE_FORMAT}): rerun it with --overwrite")
    first = flat(found.states[0])
    for shard, state in zip(found.shards[1:], found.states[1:]):
        keys = changed_keys(flat(state), first)
        if keys:
            raise UserError(f"shard {shard.name} ({shard.run_root}) was made with other parameters than shard {found.shards[0].name}: "
                            f"{', '.join(keys)}; rerun it with the same options (--overwrite redoes it)")


def scored_chunks(shards: list[ShardStore], states: list[ShardState]) -> tuple[list[list[int]], int]:
    """Per shard, its scored chunk indices (its last stage's: the candidates with their scores); and the
    number of chunks of the shards found."""
    done = [[i for i in range(st.num_chunks) if s.has_chunk(st.order[-1], i)] for s, st in zip(shards, states)]
    return done, sum(st.num_chunks for st in states)


def progress(store: RunStore, state: RunState) -> tuple[int, int]:
    """(chunks scored, chunks) of a merged run's shards, counted on disk now (``push-to-hub``'s refusal)."""
    count = state.num_shards
    shards = [s for src in run_sources(store, state) for s in src.shards_present(count)]
    done, total = scored_chunks(shards, [s.read_state() for s in shards])
    return sum(map(len, done)), total


def run_sources(store: RunStore, state: RunState) -> list[RunStore]:
    return [store if p == "." else RunStore(p) for p in state.shard_sources]


# -- rows in input order --------------------------------------------------------------------------
_UNREADABLE = (pa.ArrowInvalid, pa.ArrowTypeError, OSError, KeyError, ValueError)


def _unreadable(path: Path, exc: BaseException) -> UserError:
    return UserError(f"{path} cannot be read as a scored chunk: {first_line(exc)}")


def _read(shard: ShardStore, stage: str, index: int, columns: list[str] | None = None) -> pa.Table:
    try:
        return shard.read_chunk_table(stage, index, columns)
    except _UNREADABLE as exc:
        raise _unreadable(shard.chunk_path(stage, index), exc)


def _stream(shard: ShardStore, stage: str, chunks: list[int], sel: SelectionOptions) -> Iterator[tuple[tuple[int, int], dict]]:
    """The shard's candidates with their status, in input order (its chunks follow the input)."""
    schema = CANDIDATE_CHUNK_SCHEMA
    for i in chunks:
        scalars = _read(shard, stage, i, list(dict.fromkeys([*SELECTION_COLUMNS, sel.keep_by]))).to_pylist()
        for c in scalars:
            c["explanation"] = "x" if c["explanation"].strip() else ""
        statuses = selection.select(scalars, sel)
        del scalars
        offset = 0
        for rows in _batches(shard, stage, i, schema):
            for k, candidate in enumerate(rows):
                candidate["status"] = statuses[offset + k]
                yield (candidate["row_index"], candidate["sample_index"]), candidate
            offset += len(rows)


def _batches(shard: ShardStore, stage: str, index: int, schema: pa.Schema) -> Iterator[list[dict]]:
    path = shard.chunk_path(stage, index)
    # pre_buffer off: pyarrow would otherwise buffer the whole file, for every shard at once
    batches = pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=CHUNK_ROW_GROUP, use_threads=False)
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            rows = pa.Table.from_batches([batch]).select(schema.names).cast(schema).to_pylist()
        except _UNREADABLE as exc:
            raise _unreadable(path, exc)
        yield rows


def _data_row(c: dict) -> dict:
    """A row of config ``default`` (``data/``): ``messages`` is the scored student context, system turn first."""
    return row(
        TrainingRow(id=c["id"], question=c["question"], solution=c["solution"], explanation=c["explanation"],
                    messages=protocol.training_messages(c["question"], c["explanation"], c["solution"]),
                    sample_index=c["sample_index"], num_explanation_tokens=c["num_think_tokens"]),
        {name: c[name] for name, _ in SCORE_FIELDS},
    )


def _sharegpt_row(c: dict) -> dict:
    """The same row in config ``sharegpt`` (``sharegpt/``): Bespoke-Stratos ``system`` + ``conversations``."""
    return row(ShareGPTRow(id=c["id"], system=protocol.student_system_prompt(),
                           conversations=protocol.training_conversations(c["question"], c["explanation"], c["solution"])))


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    q = np.quantile(np.asarray(values, dtype=np.float64), [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1])
    return {"mean": float(np.mean(values)), **dict(zip(("min", "p10", "p25", "median", "p75", "p90", "max"), map(float, q)))}


class _Totals:
    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.rewards_all: list[float] = []
        self.rewards_kept: list[float] = []
        self.lengths_all: list[int] = []
        self.lengths_kept: list[int] = []
        self.candidates = self.kept = self.completion_tokens = self.kept_tokens = 0
        self.owner: dict[str, int] = {}

    def add(self, row: dict, shard: int) -> None:
        if self.owner.setdefault(row["id"], shard) != shard:
            raise UserError(f"question id {row['id']!r} is in two shards ({self.owner[row['id']]} and {shard}): "
                            "the shards come from different inputs or splits")
        self.statuses[row["status"]] += 1
        self.candidates += 1
        self.completion_tokens += row["num_completion_tokens"] or 0
        if row["reward"] is not None:
            self.rewards_all.append(row["reward"])
            self.lengths_all.append(row["num_think_tokens"])
        if row["status"] == "kept":
            self.kept += 1
            self.rewards_kept.append(row["reward"])
            self.lengths_kept.append(row["num_think_tokens"])
            self.kept_tokens += row["student_context_tokens"] or 0


# -- the merge ------------------------------------------------------------------------------------
def merge(output: RunStore, sources: list[RunStore], count: int | None, sel: SelectionOptions, max_shard_size: str,
          partial: bool = False) -> RunSummary:
    """Select over the shards of ``sources`` and (re)write ``output``'s splits, card and run.json:
    the selection section, and the largest shard (``--max-shard-size``)."""
    return _merge(output, sources, find_shards(sources, count, partial), sel, max_shard_size, partial)


def _merge(output: RunStore, sources: list[RunStore], found: Found, sel: SelectionOptions, max_shard_size: str,
           partial: bool) -> RunSummary:
    from . import card

    check_params(found)
    max_bytes = parse_size(max_shard_size)
    count, shards, states, finished = found.count, found.shards, found.states, found.finished
    done, total_chunks = scored_chunks(shards, states)
    if not any(done):
        raise UserError(f"{', '.join(str(s.root) for s in sources)}: no chunk is scored yet; nothing to publish")
    complete = finished == count and all(len(d) == st.num_chunks for d, st in zip(done, states))
    if not complete and not partial:
        raise UserError(f"{output.root}: {total_chunks - sum(map(len, done))} of {total_chunks} chunks are not scored yet; rerun the command")
    schemas = {"default": DATA_SCHEMA, "sharegpt": SHAREGPT_SCHEMA, "candidates": CANDIDATES_SCHEMA}
    output.begin_finalize()  # cleared once the card and run.json describe the new shards
    writers = {name: output.shard_writer(SPLIT_FOLDERS[name], schema, max_bytes) for name, schema in schemas.items()}
    totals = _Totals()
    buffer: list[dict] = []

    def flush() -> None:
        kept = [c for c in buffer if c["status"] == "kept"]
        writers["candidates"].write(pa.Table.from_pylist(buffer, schema=CANDIDATES_SCHEMA))
        writers["default"].write(pa.Table.from_pylist([_data_row(c) for c in kept], schema=DATA_SCHEMA))
        writers["sharegpt"].write(pa.Table.from_pylist([_sharegpt_row(c) for c in kept], schema=SHAREGPT_SCHEMA))
        buffer.clear()

    streams = [
        ((key, shard.index, candidate) for key, candidate in _stream(shard, state.order[-1], chunks, sel))
        for shard, state, chunks in zip(shards, states, done)
    ]
    try:
        for _, index, candidate in heapq.merge(*streams, key=lambda t: t[0]):
            totals.add(candidate, index)
            buffer.append(candidate)
            if len(buffer) >= BATCH_ROWS:
                flush()
        flush()
    except BaseException:  # an error or an interrupt: the published shards stay as they were
        for writer in writers.values():
            writer.abort()
        output.end_finalize()
        raise
    files = {name: writer.close() for name, writer in writers.items()}
    from .plots import write_plots

    plots = write_plots(output.root, {"reward": (totals.rewards_all, totals.rewards_kept),
                                      "explanation_tokens": (totals.lengths_all, totals.lengths_kept)})
    first = states[0]
    summary = RunSummary(
        num_questions=sum(st.num_rows for st in states), num_candidates=totals.candidates, num_kept=totals.kept,
        status_counts=selection.count(totals.statuses), skipped_rows=first.skipped_rows,
        reward_all=_stats(totals.rewards_all), reward_kept=_stats(totals.rewards_kept),
        completion_tokens=int(totals.completion_tokens), kept_student_tokens=int(totals.kept_tokens),
        data_files=files["default"], sharegpt_files=files["sharegpt"], candidate_files=files["candidates"],
        chunks_done=f"{sum(map(len, done))}/{total_chunks}", shards_done=f"{finished}/{count}", plots=plots,
        **_decontamination_and_cost(shards, states),
    )
    recorded = {section: dict(values) for section, values in first.options.items()}
    # this merge's selection and shard size, not the ones the shards were started with
    recorded["Selection"] = asdict(sel)
    recorded.setdefault("Output", {})["max_shard_size"] = max_shard_size
    # the run's split, not the first shard's own index (every shard ran with its --shard-index)
    scale = recorded.setdefault("Scale-out", {})
    scale.pop("shard_index", None)
    scale["num_shards"] = count
    state = RunState(
        format=first.format, command=first.command, generation=first.generation, scoring=first.scoring,
        num_input_rows=first.num_input_rows, schema=first.schema, num_shards=count, num_chunks=total_chunks,
        shard_sources=["." if Path(src.root).resolve() == Path(output.root).resolve() else str(Path(src.root).resolve()) for src in sources],
        complete=complete, summary=summary, options=recorded, card_extra={"backend": first.backend},
        rlt_data_version=first.rlt_data_version,
    )
    card.write_card(output, state, schemas)
    output.write_state(state)
    output.end_finalize()
    return summary


def _decontamination_and_cost(shards: list[ShardStore], states: list[ShardState]) -> dict[str, Any]:
    """Summed over the shards: what decontamination flagged and removed (None: not run), and what the run
    cost (``stages/cost.py``; a re-selection reads the same files, so ``select`` does not change it)."""
    from . import decontaminate
    from .stages import cost

    decon = decontaminate.combine([st.decontamination for st in states])
    spent = cost.totals([cost.read(s) for s in shards], [st.num_chunks for st in states], states[0].order)
    if decon is not None:  # computed once for the run, before the shards
        spent["stages"] = {"decontaminate": {"chunks": 0, "wall_s": decon["wall_s"], "device_s": 0.0}, **spent["stages"]}
        spent["wall_s"] += decon["wall_s"]
    return {"decontamination": decon, "cost": spent}


def merge_folders(folders: list[str], flags: dict[str, Any]) -> RunSummary:
    """``rlt-data merge DIR...``: the shards of every folder into ``--output`` (default: the first
    folder). ``flags``: ``MergeOptions`` fields given on the command line (None: not given);
    selection and shard size default to what the shards were started with."""
    sources = [RunStore(f) for f in folders]
    for src in sources:
        if not src.root.is_dir():
            raise UserError(f"{src.root} is not a folder")
    target = RunStore(flags.get("output") or folders[0])
    if target.root.exists() and not target.root.is_dir():
        raise UserError(f"--output {target.root} is a file, not a folder")
    partial = bool(flags.get("allow_partial"))
    with target.lock():
        return _merge_found(target, sources, flags, partial)


def _merge_found(target: RunStore, sources: list[RunStore], flags: dict[str, Any], partial: bool) -> RunSummary:
    found = find_shards(sources, flags.get("num_shards"), partial)
    first = found.states[0]
    values = {**first.selection, "max_shard_size": first.max_shard_size}
    names = SelectOptions.owners()
    values.update({k: v for k, v in flags.items() if v is not None and k in names})
    options = SelectOptions.of(**values)
    options.validate()
    return _merge(target, sources, found, options.selection, options.size.max_shard_size, partial)


def _state(output: str | Path) -> tuple[RunStore, RunState]:
    store = RunStore(output)
    state = store.read_state()
    if state is None:
        hint = "; its shards are not merged yet: rlt-data merge DIR" if store.shard_counts() else ""
        raise UserError(f"{store.root} is not an rlt-data run (no .rlt/run.json){hint}")
    return store, state


def reselect(output: str, overrides: dict[str, Any]) -> RunSummary:
    """``rlt-data select``: re-apply selection to a merged run; nothing is recomputed.

    Selection options not given take their defaults, as in ``generate``: the result depends only
    on the run's candidates and this call's options.
    """
    store, state = _state(output)
    options = SelectOptions.of(**{"max_shard_size": state.max_shard_size, **{k: v for k, v in overrides.items() if v is not None}})
    options.validate()
    if state.format != STATE_FORMAT:  # older chunks lack score columns (format 4: rsr, rsr_turn, ...; 5: the stages' order)
        raise UserError(f"{store.root} was written by an older rlt-data (run format {state.format}): its candidates lack "
                        "this version's score columns; rerun its generate or score command with --overwrite to rescore it")
    with store.lock():  # not beside a run writing this folder, nor another select
        return merge(store, run_sources(store, state), state.num_shards, options.selection, options.size.max_shard_size)


def finalize_partial(output: str | Path) -> RunSummary:
    """Select over the chunks scored so far (for ``push-to-hub --allow-partial``)."""
    store, state = _state(output)
    return merge(store, run_sources(store, state), state.num_shards, SelectionOptions(**state.selection), state.max_shard_size, partial=True)


def prepare_push(output: str | Path, allow_partial: bool) -> tuple[int, int] | None:
    """``push-to-hub``'s command layer, before ``hub.push``: for an incomplete run, its (chunks scored,
    chunks) counted on disk now, the numbers of push's refusal; with ``allow_partial``, the run is first
    selected over the chunks scored so far (``finalize_partial``) and None is returned. Nothing is done
    for a complete run, a folder that is no run, or one whose last rewrite was interrupted: push
    publishes the first and refuses the others."""
    store = RunStore(output)
    state = store.read_state()
    if state is None or state.complete or store.finalizing():
        return None
    if not allow_partial:
        return progress(store, state)
    with store.lock():  # not beside a run writing this folder; released before push takes it
        state = store.read_state()
        if state is not None and not state.complete and not store.finalizing():
            finalize_partial(output)
    return None
