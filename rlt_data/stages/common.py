"""What every stage shares: what the driver hands it (``StageWork``: its chunks, its inputs, its
model), which chunks are pending, progress bars, and the stop point between chunks."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import Stopped
from ..shards import ShardStore

log = logging.getLogger("rlt_data")


def progress(total: int, desc: str, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5)


# Set by SIGUSR1 (pipeline.run_shard): finish the chunk in flight, then stop (a Slurm job's time limit is near)
STOP = threading.Event()


def stop_point(shard: ShardStore, name: str) -> None:
    """Between two chunks: stop here if a stop was asked for (their files are whole; a rerun resumes)."""
    if STOP.is_set():
        raise Stopped(f"stopped on request (SIGUSR1) after a finished {name} chunk of shard {shard.name}; "
                      "rerun the same command to resume")


def progress_iter(items: list[int], desc: str, shard: ShardStore | None = None, name: str = ""):
    bar = progress(len(items), desc, "chunk")
    try:
        for item in items:
            yield item
            bar.update(1)
            if shard is not None:
                stop_point(shard, name)
    finally:
        bar.close()


@dataclass
class StageWork:
    """What the driver (``pipeline.run_shard``) hands a stage for one shard: the shard's chunks of
    questions, the options, the chunk files of the stages it ``needs`` (and of no other), and its model,
    opened by the driver on first use, shared with a later stage that runs the same one, and closed
    after the last stage that uses it."""

    name: str
    shard: ShardStore
    chunks: list[list[dict]]
    config: Any
    needs: dict[str, Any]  # name -> Arrow schema of each stage this one reads
    schema: Any  # of this stage's chunk files
    later: tuple[str, ...]  # the stages made from this one's chunks (a redone chunk drops theirs)
    open_model: Callable[[], Any] | None = None

    def model(self) -> Any:
        if self.open_model is None:
            raise RuntimeError(f"stage {self.name} declares no model")
        return self.open_model()

    def _need(self, stage: str) -> Any:
        if stage not in self.needs:
            raise RuntimeError(f"stage {self.name} reads {stage}, which it does not declare in `needs`")
        return self.needs[stage]

    def read(self, stage: str, index: int) -> list[dict]:
        """Chunk ``index`` of a stage this one needs, as rows."""
        return self.shard.read_chunk(stage, index, self._need(stage))

    def arrays(self, stage: str, index: int) -> list[dict]:
        """Chunk ``index`` of a needed stage of list columns, each value a numpy view."""
        return self.shard.read_arrays(stage, index, self._need(stage))

    def write(self, index: int, rows: list[dict]) -> None:
        self.shard.write_chunk(self.name, index, rows, self.schema)

    def write_arrays(self, index: int, rows: list[dict]) -> None:
        """Rows of numpy arrays: each column converted by Arrow as a whole."""
        self.shard.write_table(self.name, index, rows, self.schema)

    def pending(self, per_question: int | None = None) -> list[int]:
        """This stage's chunks still to compute (``pending``); ``per_question``: rows per question
        (default: the command's, ``rows_per_question``)."""
        per = self.config.rows_per_question if per_question is None else per_question
        return pending(self.shard, self.name, self.chunks, per, (self.name, *self.later))


def pending(shard: ShardStore, name: str, chunks: list[list[dict]], per_question: int, drop: tuple[str, ...]) -> list[int]:
    """The chunks of stage ``name`` still to compute. A chunk file is a cache entry: one that is
    unreadable, made by another run, or holding another number of rows than its chunk's questions
    x ``per_question`` is recomputed (with a warning), and so are the files of it in ``drop`` (this
    stage's and the later stages')."""
    todo = []
    for i, chunk in enumerate(chunks):
        problem = shard.chunk_problem(name, i, len(chunk) * per_question)
        if problem is None:
            continue
        if problem != "missing":
            log.warning("shard %s: %s chunk %d %s: recomputing it", shard.name, name, i, problem)
            shard.drop_chunk(drop, i)
        todo.append(i)
    return todo


def scorable(rows: list[dict]) -> list[int]:
    """Truncated samples are never training data: they are not scored."""
    return [k for k, r in enumerate(rows) if not r["truncated"]]
