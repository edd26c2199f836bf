"""The stages of a shard, one file each: rows -> generate (or given explanations) -> teacher -> student.

A stage is a class in its own module here, named by the module's ``STAGE``. It declares its ``name``
(the chunk files it writes, ``.rlt/<name>/chunk-*.parquet``, with its Arrow ``schema``), what it
``needs`` (the stages whose chunk files it reads: the only ones ``StageWork`` lets it read, and what
orders the stages), the ``commands`` it belongs to, the ``params`` that identify its output, its
``model`` (a backend class and the option naming the model: the driver opens it once per shard, on
first use, and closes it after the last stage that runs it) on the backend of its ``role``
(``--generate-backend`` or ``--score-backend``), and whether it is ``active`` for the options
(its chunks count in the progress of a scale-out run). ``run(work)`` writes the chunks of a shard
that are missing. The last stage of a command writes every candidate with its scores
(``shards.CANDIDATE_CHUNK_SCHEMA``): the merge reads it.

The rule for reruns, for every stage: when a stage's parameters change, that stage and every stage
after it are recomputed; the first stage's parameters identify the run, and a run made with others
is refused (``--overwrite`` redoes it). Adding a stage (an answer check, say) is one file here; what
the stages share (``StageWork``, ``pending``, progress bars, the stop point between chunks) is
``common.py``, below them.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any, Protocol

from ..config import ScoringCommand
from .common import STOP, StageWork  # noqa: F401 (the driver sets STOP on SIGUSR1)


class Stage(Protocol):
    name: str
    needs: tuple[str, ...]
    commands: tuple[str, ...]
    role: str | None  # "generate" or "score": the backend it runs on; None: no model
    model: tuple[str, str] | None  # (backend class, option naming the model), e.g. ("Scorer", "student")
    schema: Any  # pyarrow.Schema of its chunk files

    def active(self, config: ScoringCommand) -> bool: ...

    def params(self, config: ScoringCommand) -> dict[str, Any]: ...

    def run(self, work: StageWork) -> None: ...


_REGISTERED: list[type] = []  # stages added by code outside this folder (``register``)


def register(stage: type) -> type:
    """Add a stage class defined elsewhere (a plugin, a test); returns it (usable as a decorator)."""
    _REGISTERED.append(stage)
    return stage


def unregister(stage: type) -> None:
    _REGISTERED.remove(stage)


@functools.cache
def _in_folder() -> tuple[type, ...]:
    """The ``STAGE`` of every module of this folder (listed once per process)."""
    classes = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if getattr(module, "STAGE", None) is not None:
            classes.append(module.STAGE)
    return tuple(classes)


def _found() -> list[type]:
    return [*_in_folder(), *_REGISTERED]


def stages_for(command: str) -> list[Stage]:
    """The stages of ``command`` in the order their ``needs`` give (a stage after every stage it reads;
    among stages free to run, by name): the first is the one that needs nothing."""
    stages = {}
    for cls in _found():
        if command in cls.commands:
            if cls.name in stages:
                raise RuntimeError(f"two stages of {command} are named {cls.name!r}: {type(stages[cls.name]).__name__}, {cls.__name__}")
            stages[cls.name] = cls()
    order: list[Stage] = []
    while len(order) < len(stages):
        done = {s.name for s in order}
        ready = sorted(n for n, s in stages.items() if n not in done and all(need in done for need in s.needs))
        if not ready:
            missing = {n: [x for x in s.needs if x not in stages] for n, s in stages.items() if n not in done}
            raise RuntimeError(f"stages of {command} whose needs cannot be met (unknown stage or a circle): {missing}")
        order.append(stages[ready[0]])
    return order
