"""What every stage shares: which chunks are pending, progress bars, and the stop point between chunks."""

from __future__ import annotations

import logging
import threading
from typing import Any

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


def pending(shard: ShardStore, name: str, chunks: list[list[dict]], per_question: int) -> list[int]:
    """The chunks of stage ``name`` still to compute. A chunk file is a cache entry: one that is
    unreadable, made by another run, or holding another number of rows than its chunk's questions
    x ``per_question`` is recomputed (with a warning), and so are the later stages' files of it."""
    todo = []
    for i, chunk in enumerate(chunks):
        problem = shard.chunk_problem(name, i, len(chunk) * per_question)
        if problem is None:
            continue
        if problem != "missing":
            log.warning("shard %s: %s chunk %d %s: recomputing it", shard.name, name, i, problem)
            shard.drop_chunk(name, i)
        todo.append(i)
    return todo


def rows_per_question(config: Any) -> int:
    """Candidates per question: --num-samples for generate, one given explanation for score."""
    return getattr(config, "num_samples", 1)


def scorable(rows: list[dict]) -> list[int]:
    """Truncated samples are never training data: they are not scored."""
    return [k for k, r in enumerate(rows) if not r["truncated"]]
