"""The stages of a shard, one file each: rows -> generate (or given explanations) -> teacher -> student.

A stage declares its ``name`` (the chunk files it writes, ``.rlt/<name>/chunk-*.parquet``), what
it ``needs`` (the stages whose chunk files it reads), the ``params`` that identify its output, and
the model it loads (``role``: which backend, ``--generate-backend`` or ``--score-backend``);
``run`` writes the chunks of a shard that are missing. The driver (``pipeline.run_shard``) runs a
command's stages in order. The rule for reruns, for every stage: when a stage's parameters change,
that stage and every stage after it are recomputed; the first stage's parameters identify the run,
and a run made with others is refused (``--overwrite`` redoes it). Adding a stage (an answer
check, say) is one file here and one line in ``stages_for``; what the stages share (``pending``,
progress bars, the stop point between chunks) is ``common.py``, below them.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..config import ScoringOptions
from ..shards import ShardStore
from .common import STOP  # noqa: F401 (the driver sets it on SIGUSR1)


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
