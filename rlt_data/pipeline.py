"""The data flow of a run: rows -> prompts -> generate -> score -> select -> shards -> card.

A run is ``N`` shards (``--num-shards``, 1 by default; ``sharding.py``). Each shard works chunk
by chunk and writes one file per finished chunk and stage (``shards.ShardStore``); a rerun skips
what is done. Each model is loaded only while its stage has work, and freed before the next one
loads, so one GPU holds one model at a time. The driver (``generate``/``score``) prepares the
input once, hands the shards to an executor (``executors/``: here, replica processes, Ray or
Slurm, each starting ``worker.py``'s entry or the ``--shard-index`` command), then ``merge.py``
selects over them and writes the dataset and its card.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

from . import __version__, decontaminate, merge, protocol, sharding, sources
from .backends import load_backend
from .config import GenerateConfig, ScoreConfig, ScoringCommand
from .errors import UserError
from .executors import ShardJob, Worker, executor, to_spec
from .executors.slurm import refuse_queued
from .locks import STALE_S
from .models import is_local
from .options import by_section
from .shards import SPLIT_FOLDERS, STATE_FORMAT, RunStore, ShardStore
from .state import OldState, ShardDone, ShardState
from .stages import StageWork, stages_for

log = logging.getLogger("rlt_data")

@dataclass
class Prepared(sources.LoadedRows):
    """The rows a run works on (after decontamination, each with ``row_index``, its position in the
    input), the input as read (``input``), and the decontamination stage's result (None: not run)."""

    input: sources.LoadedRows | None = None
    decontamination: dict[str, Any] | None = None
    rows_digest: str = ""


def decontamination_params(config: ScoringCommand) -> dict[str, Any] | None:
    return decontaminate.params(config.decontamination)


def _chunks(rows: list[dict], size: int) -> list[list[dict]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _backend_options(config: ScoringCommand, role: str):
    module = load_backend(config.backend_for(role))
    return module, module.options_from(config.engine)


def backend_names(config: ScoringCommand, command: str) -> str:
    """What the card records: one name, or ``generate: A, score: B``."""
    score = config.backend_for("score")
    generate = config.backend_for("generate") if command == "generate" else score
    return score if generate == score else f"generate: {generate}, score: {score}"


def scoring_params(config: ScoringCommand) -> dict[str, Any]:
    """The parameters of the scoring stages, merged (what run.json, the card and the merge compare)."""
    return {k: v for stage in stages_for("score")[1:] for k, v in stage.params(config).items()}


def _other_run(where: Any, keys: list[str]) -> UserError:
    return UserError(
        f"{where} holds a run made with other parameters ({', '.join(keys) or 'command'}); "
        "pass --overwrite to replace it, or choose another --output"
    )


# -- run identity: refuse a different run, rescore when only scoring changed -------------------
def check_run(config: ScoringCommand, command: str, generation: dict) -> RunStore:
    """Before any shard starts: the folder holds nothing, this run, or (with --overwrite) is cleared."""
    store = RunStore(config.folder)
    started = store.has_state() or store.shard_counts()
    if started and config.output.overwrite:  # before reading it: a run of an older format is redone too
        store.wipe()
        return store
    state = store.read_state()
    if not started and store.root.exists() and any((store.root / n).exists() for n in (*SPLIT_FOLDERS.values(), "README.md")):
        if not config.output.overwrite:
            raise UserError(f"{store.root} already holds a dataset that rlt-data did not write; pass --overwrite or pick another --output")
        store.wipe()
        return store
    if state is not None and state.format != STATE_FORMAT:
        raise UserError(f"{store.root} was written by an older rlt-data (run format {state.format}); pass --overwrite to redo it")
    previous = [state] if state is not None else []
    previous += [s.read_state() for s in store.shards_present(config.shard_count())]
    for old in previous:
        if old.command != command or old.generation != generation:
            raise _other_run(store.root, sharding.changed_keys(generation, old.generation) if old.command == command else [])
    return store


def stage_tags(config: ScoringCommand, command: str, generation: dict) -> dict[str, str]:
    """Per stage, a digest of what its chunks are made from (the run's generation and the stage's
    own parameters): written into each chunk's footer and checked when the chunk is read."""
    import hashlib

    tags = {}
    for k, stage in enumerate(stages_for(command)):
        params = generation if k == 0 else stage.params(config)
        if k == 0 and decontamination_params(config) is not None:  # the rows generated depend on it
            params = {**generation, "decontamination": decontamination_params(config)}
        text = json.dumps([command, generation, params], sort_keys=True, default=str)
        tags[stage.name] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return tags


def shard_is_done(shard: ShardStore, config: ScoringCommand, command: str, generation: dict) -> bool:
    """Finished with these parameters, every scored chunk present, this run's and whole: an
    executor need not start it again (other scoring parameters make a finished shard rescore; a
    missing or short chunk makes it resume, instead of a marker trusted forever)."""
    try:
        state, done = shard.read_state(), shard.read_done()
    except OldState:
        return False  # its shard refuses it (or, with --overwrite, redoes it)
    if done is None or state is None or state.format != STATE_FORMAT or state.command != command \
            or state.generation != generation or state.scoring != scoring_params(config) \
            or state.order != [s.name for s in stages_for(command)] \
            or state.decontamination_params != decontamination_params(config):
        return False
    shard.tags = stage_tags(config, command, generation)
    per_question = config.rows_per_question
    last = state.order[-1]
    problems = [i for i, n in enumerate(state.chunk_rows) if shard.chunk_problem(last, i, n * per_question) is not None]
    if problems or done.num_chunks != state.num_chunks:
        log.warning("shard %s: marked done but chunk(s) %s of %s are missing or damaged: resuming it", shard.name,
                    ", ".join(map(str, problems)) or "?", last)
        shard.clear_done()
        return False
    return True


def open_shard(shard: ShardStore, config: ScoringCommand, command: str, rows: sources.LoadedRows, own: list[dict], generation: dict) -> None:
    """Write the shard's parameters, applying the rule of ``stages/``: a shard made with other
    parameters of its first stage is refused (or, with --overwrite, redone); when a later stage's
    parameters changed, that stage and every stage after it are recomputed. Decontamination comes
    before the first stage: other decontamination parameters recompute every stage (the rows to
    generate for changed), within the same run."""
    from .stages import cost

    stages = stages_for(command)[1:]
    now = {stage.name: stage.params(config) for stage in stages}
    decon = decontamination_params(config)
    shard.tags = stage_tags(config, command, generation)
    shard.clean_temp()  # temporary files of writers killed mid-write
    chunking = sharding.ids_digest(own, ordered=True)
    try:
        state = shard.read_state()
    except OldState:
        if not config.output.overwrite:
            raise
        state = None
        shard.wipe()
    if state is not None and config.output.overwrite and (state.format != STATE_FORMAT or state.generation != generation
                                                   or state.chunking != chunking):
        shard.wipe()
        state = None
    if state is None:
        cost.reset(shard)  # what an earlier run of this folder spent is not this run's
    if state is not None:
        if state.format != STATE_FORMAT:
            raise UserError(f"{shard.root} was written by an older rlt-data; pass --overwrite to redo it")
        if state.command != command or state.generation != generation:
            raise _other_run(f"{shard.run_root} (shard {shard.name})", sharding.changed_keys(generation, state.generation) if state.command == command else [])
        before_decon = state.decontamination_params
        if before_decon != decon:
            redo = [s.name for s in stages_for(command)]
            log.warning("shard %s: decontamination parameters changed (%s): recomputing decontamination, %s", shard.name,
                        ", ".join(sharding.changed_keys(decon or {}, before_decon or {})) or "on/off", ", ".join(redo))
            for name in redo:
                shard.clear_stage(name)
                cost.clear(shard, name)
            shard.clear_done()
            state = replace(state, chunking=chunking, stages={})
        if state.chunking != chunking:
            raise UserError(f"{shard.run_root}: the input rows of shard {shard.name} come in another order than when it started; "
                            "pass --overwrite to redo the shard")
        before = state.stages
        for k, stage in enumerate(stages):
            if before.get(stage.name) != now[stage.name]:
                redo = [s.name for s in stages[k:]]
                log.warning("shard %s: %s parameters changed (%s): recomputing %s", shard.name, stage.name,
                            ", ".join(sharding.changed_keys(now[stage.name], before.get(stage.name) or {})), ", ".join(redo))
                for name in redo:
                    shard.clear_stage(name)
                    cost.clear(shard, name)
                shard.clear_done()
                break
    chunk_rows = [len(c) for c in _chunks(own, config.output.chunk_size)]
    shard.write_state(ShardState(
        format=STATE_FORMAT, command=command, generation=generation, stages=now,
        order=[stage.name for stage in stages_for(command)], chunking=chunking, chunk_rows=chunk_rows,
        num_input_rows=rows.num_input_rows, skipped_rows=dict(rows.skipped),
        # the stage before the first: its parameters and, for this shard's rows, what it flagged and removed
        decontamination=_shard_decontamination(shard, rows), schema=rows.schema,
        options=_recorded_options(config),  # every option, by section (run.json and the card show them so)
        backend=backend_names(config, command), rlt_data_version=__version__,
    ))


def _shard_decontamination(shard: ShardStore, rows: sources.LoadedRows) -> dict[str, Any] | None:
    result = getattr(rows, "decontamination", None)
    if result is None:
        return None
    mine = lambda r: sharding.shard_of(r["id"], shard.count) == shard.index  # noqa: E731
    source = getattr(rows, "input", None) or rows
    ids = {r["id"] for r in source.rows if mine(r)}
    return decontaminate.shard_summary(result, ids, len(ids))


def _recorded_options(config: ScoringCommand) -> dict[str, dict[str, Any]]:
    """The options a shard records: a Slurm array task runs with `--executor local --shard-index i`
    (what its config.yaml says), but the run's executor is Slurm."""
    import os

    options = by_section(config)
    if os.environ.get("SLURM_ARRAY_JOB_ID") and "Scale-out" in options:
        options["Scale-out"]["executor"] = "slurm"
    return options


def _load_rows(config: ScoringCommand, with_explanation: bool = False) -> sources.LoadedRows:
    return sources.read_input(config.input, with_explanation=with_explanation, explanation_column=config.explanation_column)


# -- commands ---------------------------------------------------------------------------------
def dry_run(config: GenerateConfig, emit: Callable[[str], None]) -> None:
    from .models import load_tokenizer

    tokenizer = load_tokenizer(config.teacher)
    for row in _load_rows(config).rows:
        prompt = protocol.render_teacher_prompt(tokenizer, row["question"], row["solution"])
        emit(json.dumps({"id": row["id"], "teacher_prompt": prompt}, ensure_ascii=False))


# -- a shard, and a whole run ----------------------------------------------------------------
# A Hub split, normalized once by the command that drives a run: every shard process, replica, Ray
# task and Slurm job reads this file instead of downloading and parsing the whole split again (a
# local file is read where it is: cheap, and its edits are seen; the run identity digests the rows).
INPUT_FILE = "input.parquet"
INPUT_LABEL = b"rlt_input"


def _input_params(config: ScoringCommand, with_explanation: bool) -> dict[str, Any]:
    return asdict(config.input) | {"explanation_column": config.explanation_column, "with_explanation": with_explanation}


def _local_input(config: ScoringCommand) -> bool:
    return bool(config.input.dataset) and is_local(config.input.dataset)


def _cached_input(config: ScoringCommand, with_explanation: bool) -> sources.LoadedRows | None:
    import pyarrow.parquet as pq

    path = RunStore(config.folder).state_dir / INPUT_FILE
    if _local_input(config) or not path.is_file():
        return None  # a local file or folder: read it
    try:
        table = pq.read_table(path)
        label = json.loads((table.schema.metadata or {}).get(INPUT_LABEL, b"null"))
    except Exception:  # damaged: load the split again (the driver rewrites it)
        return None
    if not isinstance(label, dict) or label.get("params") != _input_params(config, with_explanation):
        return None
    from collections import Counter

    return sources.LoadedRows(rows=table.to_pylist(), skipped=Counter(label["skipped"]), schema=label["schema"],
                              num_input_rows=label["num_input_rows"])


def _cache_input(store: RunStore, config: ScoringCommand, rows: sources.LoadedRows, with_explanation: bool) -> None:
    import pyarrow as pa

    from .shards import write_parquet

    if _local_input(config):
        return
    label = {"params": _input_params(config, with_explanation), "skipped": dict(rows.skipped), "schema": rows.schema,
             "num_input_rows": rows.num_input_rows}
    table = pa.Table.from_pylist(rows.rows).replace_schema_metadata({INPUT_LABEL: json.dumps(label, default=str)})
    write_parquet(store.state_dir / INPUT_FILE, table)


def prepare(config: ScoringCommand, command: str, input_ready: bool = False) -> tuple[Prepared, dict]:
    """The rows to work on (decontaminated), and the parameters that identify the run's generations
    (the same in every shard): the input's content and the first stage's options. Decontamination is
    not part of that identity: another --decontaminate redoes the stages within the same run.
    ``input_ready``: a worker of a driver that has just written ``.rlt/input.parquet`` (read it even
    under --overwrite)."""
    with_explanation = command == "score"
    fresh = config.output.overwrite and not input_ready  # the driver's --overwrite reads the input anew
    cached = None if fresh else _cached_input(config, with_explanation)
    loaded = cached or _load_rows(config, with_explanation=with_explanation)
    if not loaded.rows:
        raise UserError(f"no usable rows in {config.input.dataset} (skipped: {dict(loaded.skipped)})")
    digest = sharding.rows_digest(loaded.rows)
    generation = stages_for(command)[0].params(config) | {"rows": digest}
    rows = loaded.rows  # positions given by sharding.own_rows, as before
    result = None
    decon = decontamination_params(config)
    if decon is not None:  # rows removed: each keeps its input position
        rows = [{**r, "row_index": k} for k, r in enumerate(loaded.rows)]
        result = decontaminate.cached(RunStore(config.folder).state_dir, decon, digest) or decontaminate.run_check(rows, decon)
        if not decon["keep_contaminated"]:
            drop = {f["id"] for f in result["flagged"]}  # by id: the cache holds for the rows as a set, in any order
            rows = [r for r in rows if r["id"] not in drop]
            if not rows:
                raise UserError(f"every row of {config.input.dataset} matches a benchmark problem ({', '.join(decon['benchmarks'])}); "
                                "nothing is left to generate for")
    prepared = Prepared(rows=rows, skipped=loaded.skipped, schema=loaded.schema, num_input_rows=loaded.num_input_rows,
                        input=loaded, decontamination=result, rows_digest=digest)
    return prepared, generation


def own_rows(rows: list[dict], index: int, count: int) -> list[dict]:
    """The rows of shard ``index``, in input order, each with its ``row_index`` (its position in the
    input, set by ``prepare``: decontamination removes rows, not positions)."""
    if rows and "row_index" not in rows[0]:
        return sharding.own_rows(rows, index, count)
    return [r for r in rows if sharding.shard_of(r["id"], count) == index]


def run_shard(config: ScoringCommand, command: str, index: int, count: int,
              prepared: tuple[sources.LoadedRows, dict] | None = None, lock_wait_s: float = 2 * STALE_S) -> ShardDone:
    """Every stage of shard ``index`` of ``count``: resumable and idempotent; the marker is written last."""
    from .stages import cost

    rows, generation = prepared or prepare(config, command)
    own = own_rows(rows.rows, index, count)
    shard = RunStore(config.folder).shard(index, count)
    # one process per shard; a retried shard waits for a lock whose holder on another host may be gone
    with shard.lock().acquire(wait_s=lock_wait_s), stop_on_sigusr1():
        open_shard(shard, config, command, rows, own, generation)
        chunks = _chunks(own, config.output.chunk_size)
        stages = stages_for(command)
        names, schemas = [s.name for s in stages], {s.name: s.schema for s in stages}
        models = _Models(config, stages)
        try:
            for k, stage in enumerate(stages):
                work = StageWork(stage.name, shard, chunks, config, {n: schemas[n] for n in stage.needs}, stage.schema,
                                 tuple(names[k + 1:]), models.opener(k))
                backend = None if stage.role is None else config.backend_for(stage.role)
                model = None if stage.model is None else stage.model[1]
                with cost.recording(shard, stage.name, cost.gpus(backend, config.engine), model):
                    stage.run(work)
                models.release(k)
        finally:
            models.close()
        done = ShardDone(num_rows=len(own), num_chunks=len(chunks), num_candidates=sum(map(len, chunks)) * config.rows_per_question)
        shard.mark_done(done)
    return done


class _Models:
    """The stages' models (``Stage.model``: a backend class and the option naming the model), each opened
    on first use, shared by the stages that run the same one, and closed after the last of them: one
    GPU holds one model at a time (the teacher's generator is freed before the student loads)."""

    def __init__(self, config: ScoringCommand, stages: list) -> None:
        self.config, self.stages, self.open = config, stages, {}
        self.keys = [None if s.model is None else (config.backend_for(s.role), s.model[0], config.get(s.model[1]))
                     for s in stages]

    def opener(self, k: int) -> Callable[[], Any] | None:
        key, stage = self.keys[k], self.stages[k]
        if key is None:
            return None

        def get() -> Any:
            if key not in self.open:
                module, options = _backend_options(self.config, stage.role)
                self.open[key] = getattr(module, key[1])(key[2], options)
            return self.open[key]

        return get

    def release(self, k: int) -> None:
        """After stage ``k``: close its model unless a later stage runs it too."""
        if self.keys[k] in self.open and self.keys[k] not in self.keys[k + 1:]:
            self.open.pop(self.keys[k]).close()

    def close(self) -> None:
        while self.open:
            self.open.popitem()[1].close()


@contextmanager
def stop_on_sigusr1():
    """While a shard runs, SIGUSR1 (a Slurm job ten minutes before its time limit) asks it to stop
    after the chunk in flight (``stages.STOP``; ``errors.Stopped``): nothing computed is lost."""
    import signal
    import threading

    from .stages import STOP

    STOP.clear()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        yield  # signal handlers live in the main thread (Ray runs tasks in the worker's main thread)
        return
    previous = signal.signal(signal.SIGUSR1, lambda *_: STOP.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)
        STOP.clear()


WORKER = "rlt_data.worker:run_shard"  # a shard in another process: a Ray task, a replica (python -m rlt_data.worker)


def shard_job(config: ScoringCommand, command: str, prepared: tuple[Prepared, dict], count: int) -> ShardJob:
    """What an executor is given: the run's options as plain data, the shards not finished with
    these parameters, and each shard's chunks with the stages whose chunk files show progress."""
    rows, generation = prepared
    store = RunStore(config.folder)
    todo = [i for i in range(count) if not shard_is_done(store.shard(i, count), config, command, generation)]
    chunks = [len(_chunks(own_rows(rows.rows, i, count), config.output.chunk_size)) for i in range(count)]
    stages = [s.name for s in stages_for(command) if s.role is not None and s.active(config)]
    return ShardJob(spec=to_spec(config, command), output=config.folder, count=count, todo=todo, chunks=chunks, stages=stages)


def _run(config: ScoringCommand, command: str) -> dict[str, Any] | None:
    """The command: one shard (``--shard-index``), or every shard through the executor, then the merge."""
    prepared = prepare(config, command)
    for role in ("generate", "score"):
        load_backend(config.backend_for(role))  # fail early, with one line, if a backend cannot load
    count, scale_out = config.shard_count(), config.scale_out
    if scale_out.shard_index is not None:  # one shard of a run that others (Slurm, by hand) run too
        done = run_shard(config, command, scale_out.shard_index, count, prepared)
        log.info("shard %d of %d done (%d questions); `rlt-data merge %s` once every shard is", scale_out.shard_index, count,
                 done.num_rows, config.folder)
        return None
    if scale_out.executor == "slurm" and scale_out.submit:  # before anything is rewritten: not over jobs of this run
        refuse_queued(config.folder, command)
    rows, generation = prepared
    with RunStore(config.folder).lock():  # one driver per run folder: a second one is refused, naming this one
        store = check_run(config, command, generation)
        store.clean_temp()
        # every worker (replica, Ray task, Slurm job) reads the rows prepared here: the file for a Hub split
        _cache_input(store, config, rows.input or rows, with_explanation=command == "score")
        if rows.decontamination is not None:  # shard processes and jobs read it instead of loading the benchmarks
            decontaminate.write_cache(store.state_dir, rows.decontamination, rows.rows_digest)
        job = shard_job(config, command, prepared, count)
        worker = Worker(here=lambda index: run_shard(config, command, index, count, prepared), entry=WORKER)
        if not executor(scale_out.executor)(job, worker, scale_out, config.engine):
            return None  # a scheduler runs the shards, and the merge after them
        return merge.merge(store, [store], count, config.selection, config.output.max_shard_size)  # the selection and shard size only


def generate(config: GenerateConfig) -> dict[str, Any] | None:
    return _run(config, "generate")


def score(config: ScoreConfig) -> dict[str, Any] | None:
    return _run(config, "score")

