"""Shards on this machine: in this process, or ``--data-parallel-size`` engine replicas.

One replica runs every shard here, one after another. With ``--data-parallel-size K`` each shard
runs in a process of its own (``python -m rlt_data.executors.local``; vLLM 0.32 refuses
``LLM(data_parallel_size=K)`` in one process), ``K`` at a time, each on its own slice of the GPUs
(``CUDA_VISIBLE_DEVICES``, ``--tensor-parallel-size`` GPUs each). When ``--num-shards`` is not
given, ``K`` replicas split the run into ``K`` shards. Per-question seeds make the rows those of
a one-process run, and a rerun resumes every shard from its finished chunks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..shards import read_json, write_json
from . import from_spec, to_spec


def _gpu_slices(world: int, per_replica: int) -> list[str] | None:
    """Device lists for each replica, or None on a machine without CUDA GPUs."""
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:
        count = 0
    if count == 0:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = [d.strip() for d in visible.split(",")] if visible else [str(i) for i in range(count)]
    if world * per_replica > len(devices):
        raise UserError(
            f"--data-parallel-size {world} x --tensor-parallel-size {per_replica} needs {world * per_replica} GPUs; "
            f"{len(devices)} are visible"
        )
    return [",".join(devices[r * per_replica : (r + 1) * per_replica]) for r in range(world)]


def run_shards(config: Any, command: str, count: int, prepared: Any) -> None:
    from .. import pipeline
    from ..shards import RunStore

    world = min(config.data_parallel_size, count)
    store = RunStore(config.output)
    todo = [i for i in range(count) if not pipeline.shard_is_done(store.shard(i, count), config, command, prepared[1])]
    if world <= 1:
        for index in todo:
            pipeline.run_shard(config, command, index, count, prepared)
        return
    slices = _gpu_slices(world, config.tensor_parallel_size)
    spec = store.state_dir / "replica-config.json"
    write_json(spec, to_spec(config, command))
    procs = []
    for rank in range(world):
        mine = todo[rank::world]
        if not mine:
            continue
        env = dict(os.environ)
        if slices is not None:
            env["CUDA_VISIBLE_DEVICES"] = slices[rank]
        args = [sys.executable, "-m", "rlt_data.executors.local", str(spec), str(count), ",".join(map(str, mine))]
        procs.append((mine, subprocess.Popen(args, env=env)))
    failed = [(mine, p.wait()) for mine, p in procs]
    failed = [(mine, code) for mine, code in failed if code != 0]
    if failed:
        shards = sorted(i for mine, _ in failed for i in mine)
        raise UserError(f"replica(s) running shard(s) {shards} failed (exit codes {[c for _, c in failed]}); rerun the same command to resume")


def main(argv: list[str]) -> int:
    from .. import pipeline

    config, command = from_spec(read_json(Path(argv[0])))
    count, indices = int(argv[1]), [int(i) for i in argv[2].split(",")]
    prepared = pipeline.prepare(config, command)
    for index in indices:
        pipeline.run_shard(config, command, index, count, prepared)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
