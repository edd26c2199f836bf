"""The work of a run's shards outside the driver's process: what an executor starts.

``run_shard(spec, index, count)`` runs one shard from a run's options as plain data
(``executors.to_spec``): a Ray task calls it. ``python -m rlt_data.worker SPEC_FILE COUNT I,J,...``
runs shards ``I, J, ...`` one after another in a process of its own (a ``--data-parallel-size``
replica). Either way the rows are the ones the driver prepared: ``.rlt/input.parquet`` for a Hub
split (written by the driver just before, so read even under ``--overwrite``), a local file where
it is; decontamination comes from the driver's cache too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from . import pipeline
from .executors import from_spec
from .shards import read_json


def _prepared(spec: dict[str, Any]) -> tuple[Any, str, tuple[pipeline.Prepared, dict]]:
    config, command = from_spec(spec)
    return config, command, pipeline.prepare(config, command, input_ready=True)


def run_shard(spec: dict[str, Any], index: int, count: int) -> dict[str, Any]:
    """Shard ``index`` of ``count``: resumable, like every shard (``pipeline.run_shard``)."""
    config, command, prepared = _prepared(spec)
    return pipeline.run_shard(config, command, index, count, prepared)


def run_shards(spec: dict[str, Any], count: int, indices: list[int]) -> list[dict[str, Any]]:
    """Shards ``indices`` of ``count``, one after another, on rows prepared once."""
    config, command, prepared = _prepared(spec)
    return [pipeline.run_shard(config, command, index, count, prepared) for index in indices]


def main(argv: list[str]) -> int:
    run_shards(read_json(Path(argv[0])), int(argv[1]), [int(i) for i in argv[2].split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
