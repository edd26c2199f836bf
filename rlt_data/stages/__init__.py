"""The stages of a shard, one file each: rows -> generate (or given explanations) -> teacher -> student.

A stage declares its ``name`` (the chunk files it writes, ``.rlt/<name>/chunk-*.parquet``), what
it ``needs`` (the stages whose chunk files it reads), the ``params`` that identify its output, and
the model it loads (``role``: which backend, ``--generate-backend`` or ``--score-backend``);
``run`` writes the chunks of a shard that are missing. The driver (``pipeline.run_shard``) runs a
command's stages in order. The rule for reruns, for every stage: when a stage's parameters change,
that stage and every stage after it are recomputed; the first stage's parameters identify the run,
and a run made with others is refused (``--overwrite`` redoes it). Adding a stage (an answer
check, say) is one file here and one line in ``stages_for``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from ..config import ScoringOptions
from ..errors import Stopped
from ..shards import ShardStore

log = logging.getLogger("rlt_data")


class Stage(Protocol):
    name: str
    needs: tuple[str, ...]
    role: str | None  # "generate" or "score": the backend it runs on; None: no model

    def params(self, config: ScoringOptions) -> dict[str, Any]: ...

    def run(self, shard: ShardStore, chunks: list[list[dict]], config: ScoringOptions, backend: Any, options: Any) -> None: ...


def stages_for(command: str) -> list[Stage]:
    from .generate import Generate
    from .given import GivenExplanations
    from .student import StudentScores
    from .teacher import TeacherThink

    return [Generate() if command == "generate" else GivenExplanations(), TeacherThink(), StudentScores()]


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
