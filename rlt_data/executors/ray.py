"""Shards as Ray Core tasks: ``--executor ray --num-shards N`` on an existing Ray cluster.

One task per unfinished shard, asking for ``--tensor-parallel-size`` GPUs (none on a cluster
without GPUs) and retried ``--max-retries`` times when its worker dies (a node lost, an OOM kill);
a retry resumes from the shard's finished chunks, because a shard's files live in the shared
output folder (NFS, Lustre: every node must mount ``--output`` at the same path). The driver needs
no GPU: it shows one progress bar over every shard's chunks, then merges.

Ray Core rather than Ray Data's LLM processor: that keeps only ``outputs[0]`` (``n > 1`` lost),
pins an older vLLM and assigns rows to files non-deterministically.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from ..errors import UserError, first_line
from ..options import EngineOptions, ScaleOutOptions
from ..shards import RunStore
from . import ShardJob, Worker


def _run_shard(function: Callable[[dict[str, Any], int, int], Any], spec: dict[str, Any], index: int, count: int) -> Any:
    """The task: one shard, on whichever node Ray picks, by the worker's function (pickled by
    reference; the options travel as plain data, and the worker reads the rows the driver prepared)."""
    return function(spec, index, count)


def _chunk_files(store: RunStore, index: int, count: int, stages: list[str]) -> int:
    root = store.shard(index, count).root
    return sum(1 for stage in stages for _ in (root / stage).glob("chunk-*.parquet"))


def run_shards(job: ShardJob, worker: Worker, scale_out: ScaleOutOptions, engine: EngineOptions) -> bool:
    """One task per shard of ``job.todo``; a progress bar over every shard's chunks until they end."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'rlt-data[ray]'")
    from tqdm.auto import tqdm

    store, count = RunStore(job.output), job.count
    address = scale_out.ray_address or os.environ.get("RAY_ADDRESS")
    connected = ray.is_initialized()  # a caller's own connection (a notebook, a test) stays open
    try:
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # no cluster at that address, a version mismatch
        raise UserError(f"cannot connect to Ray{f' at {address}' if address else ''}: {first_line(exc)}")
    gpus = engine.tensor_parallel_size if ray.cluster_resources().get("GPU", 0) else 0
    task = ray.remote(_run_shard).options(num_gpus=gpus, max_retries=scale_out.max_retries, retry_exceptions=False)
    function = worker.function()
    refs = {task.remote(function, job.spec, i, count): i for i in job.todo}
    # every stage's chunk files count (generation and the teacher's pass take most of a run), so the
    # bar moves, and tqdm's ETA means something, from the first chunk on
    bar = tqdm(total=sum(job.chunks) * len(job.stages), desc=f"{job.command} ({count} shards on Ray: {', '.join(job.stages)})",
               unit="chunk", dynamic_ncols=True)
    failed: dict[int, str] = {}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=2.0)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as exc:  # the task raised, or its retries ran out
                    failed[refs[ref]] = first_line(exc)
            bar.n = sum(_chunk_files(store, i, count, job.stages) for i in range(count))
            bar.refresh()
    finally:
        bar.close()
        if not connected:
            ray.shutdown()
    if failed:
        first = min(failed)
        raise UserError(f"{len(failed)} of {count} shards failed (shard {first}: {failed[first]}); "
                        "rerun the same command to resume them from their finished chunks")
    return True
