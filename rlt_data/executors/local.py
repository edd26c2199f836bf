"""Shards on this machine: in this process, or ``--data-parallel-size`` engine replicas.

One replica runs every shard here, one after another (the worker's ``here``: on the rows the
driver prepared). With ``--data-parallel-size K`` there are ``K`` replica processes (the worker's
command line, ``python -m rlt_data.worker``; vLLM 0.32 refuses ``LLM(data_parallel_size=K)`` in
one process), each running every ``K``-th unfinished shard on its own slice of the GPUs
(``CUDA_VISIBLE_DEVICES``, ``--tensor-parallel-size`` GPUs each). When ``--num-shards`` is not
given, ``K`` replicas split the run into ``K`` shards. Per-question seeds make the rows those of
a one-process run, and a rerun resumes every shard from its finished chunks."""

from __future__ import annotations

import os
import subprocess

from ..errors import UserError
from ..options import EngineOptions, ScaleOutOptions
from ..shards import RunStore, write_json
from . import ShardJob, Worker


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


def run_shards(job: ShardJob, worker: Worker, scale_out: ScaleOutOptions, engine: EngineOptions) -> bool:
    """Every shard of ``job.todo``: here, one after another, or ``K`` at a time in replica processes
    (``--data-parallel-size``, each on ``--tensor-parallel-size`` GPUs of its own)."""
    world = min(engine.data_parallel_size, job.count)
    if world <= 1:
        for index in job.todo:
            worker.here(index)
        return True
    slices = _gpu_slices(world, engine.tensor_parallel_size)
    spec = RunStore(job.output).state_dir / "replica-config.json"
    write_json(spec, job.spec)
    procs = []
    for rank in range(world):
        mine = job.todo[rank::world]
        if not mine:
            continue
        env = dict(os.environ)
        if slices is not None:
            env["CUDA_VISIBLE_DEVICES"] = slices[rank]
        procs.append((mine, subprocess.Popen(worker.argv(spec, job.count, mine), env=env)))
    failed = [(mine, p.wait()) for mine, p in procs]
    failed = [(mine, code) for mine, code in failed if code != 0]
    if failed:
        shards = sorted(i for mine, _ in failed for i in mine)
        raise UserError(f"replica(s) running shard(s) {shards} failed (exit codes {[c for _, c in failed]}); rerun the same command to resume")
    return True
