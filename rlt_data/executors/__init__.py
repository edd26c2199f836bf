"""Executors: who runs a run's shards (``sharding.py``'s contract), and where.

Each module offers ``run_shards(config, command, count, prepared)`` (or, for Slurm, writes the
job that does): ``local`` runs them in this process or in ``--data-parallel-size`` processes on
this machine's GPUs; ``ray`` as Ray Core tasks on a cluster; ``slurm`` writes a job array and a
dependent merge job. Every executor ends the same way: ``merge.merge`` over the shard folders.
"""

from typing import Any

EXECUTORS = ("local", "ray", "slurm")


def to_spec(config: Any, command: str) -> dict[str, Any]:
    """A run's options as plain data, for a process or a Ray task that runs some of its shards."""
    import dataclasses

    return {"command": command, "class": type(config).__name__, "config": dataclasses.asdict(config)}


def from_spec(spec: dict[str, Any]) -> tuple[Any, str]:
    """The options and command of ``to_spec``."""
    from .. import config as config_module

    return getattr(config_module, spec["class"])(**spec["config"]), spec["command"]
