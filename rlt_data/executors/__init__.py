"""Executors: who runs a run's shards (``sharding.py``'s contract), and where.

The driver (``pipeline.generate``/``score``) prepares the input, decides which shards are left,
picks the executor by name (``executor``) and merges after it. An executor receives the work as
plain data, a ``ShardJob``, and a ``Worker`` that says how a shard starts, so it never imports the
driver: ``local`` runs the shards in this process or in ``--data-parallel-size`` processes on this
machine's GPUs (``python -m rlt_data.worker``); ``ray`` as Ray Core tasks on a cluster (each
calling the worker's function); ``slurm`` writes a job array whose tasks run
``rlt-data <command> --shard-index I`` and a dependent merge job. Every worker reads the rows the
driver prepared (``.rlt/input.parquet`` for a Hub split, a local file where it is).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..options import EXECUTOR_CHOICES as EXECUTORS  # declared once, beside --executor
from ..options import Command, EngineOptions, ScaleOutOptions, scheduling


@dataclass(frozen=True)
class ShardJob:
    """The shards an executor is to run: the run's options as plain data, and what the driver knows."""

    spec: dict[str, Any]  # to_spec(config, command): what a worker in another process rebuilds the options from
    output: str  # the run folder
    count: int  # shards in the run
    todo: list[int]  # the shards not finished with these parameters, in order
    chunks: list[int]  # chunks per shard, every shard of the run: what a progress bar counts
    stages: list[str]  # the stages whose chunk files count as progress (those that load a model)

    @property
    def command(self) -> str:
        return self.spec["command"]


@dataclass(frozen=True)
class Worker:
    """How the work of a shard starts, wherever an executor runs it."""

    here: Callable[[int], Any]  # shard i in this process, on the rows the driver prepared
    # "module:function" (the driver's: ``rlt_data.worker:run_shard``): function(spec, index, count)
    # runs shard ``index`` from a spec alone, in any process (a Ray task calls it, pickled by
    # reference); ``python -m module SPEC_FILE COUNT I,J,...`` runs shards in a process of its own
    entry: str

    def function(self) -> Callable[[dict[str, Any], int, int], Any]:
        module, _, name = self.entry.partition(":")
        return getattr(importlib.import_module(module), name)

    def argv(self, spec_file: Path, count: int, indices: list[int]) -> list[str]:
        """The command line of a process that runs shards ``indices`` of ``count`` (this Python)."""
        return [sys.executable, "-m", self.entry.partition(":")[0], str(spec_file), str(count), ",".join(map(str, indices))]


def executor(name: str) -> Callable[[ShardJob, Worker, ScaleOutOptions, EngineOptions], bool]:
    """``run_shards(job, worker, scale_out, engine)`` of executor ``name``: runs the job's shards (True:
    the driver merges now) or hands them to a scheduler that merges after them (False). It receives
    the scale-out and engine sections (how many replicas, GPUs per shard, the cluster), nothing else."""
    if name not in EXECUTORS:
        raise ValueError(f"no executor {name!r}")
    return importlib.import_module(f"{__name__}.{name}").run_shards


def to_spec(config: Command, command: str) -> dict[str, Any]:
    """A run's options as plain data (flat, as its flags), for a process or a Ray task that runs some
    of its shards; ``scheduling``: the options that say how the shards run, not what they compute."""
    return {"command": command, "options": config.flat(), "scheduling": sorted(scheduling(config))}


def from_spec(spec: dict[str, Any]) -> tuple[Any, str]:
    """The options and command of ``to_spec``."""
    from ..config import COMMANDS

    return COMMANDS[spec["command"]].of(**spec["options"]), spec["command"]
