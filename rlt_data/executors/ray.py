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
from typing import Any

from ..errors import UserError, first_line
from . import from_spec, to_spec


def _run_shard(spec: dict[str, Any], index: int, count: int) -> dict[str, Any]:
    """The task: one shard, on whichever node Ray picks (the config travels as plain data)."""
    from .. import pipeline

    config, command = from_spec(spec)
    return pipeline.run_shard(config, command, index, count)


def _chunk_files(store, index: int, count: int, stages: list[str]) -> int:
    root = store.shard(index, count).root
    return sum(1 for stage in stages for _ in (root / stage).glob("chunk-*.parquet"))


def run_shards(config: Any, command: str, count: int, prepared: Any) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'rlt-data[ray]'")
    from tqdm.auto import tqdm

    from ..pipeline import _chunks, shard_is_done
    from ..sharding import own_rows
    from ..shards import RunStore
    from ..stages import stages_for

    store = RunStore(config.output)
    rows = prepared[0].rows
    chunks = [len(_chunks(own_rows(rows, i, count), config.chunk_size)) for i in range(count)]
    address = config.ray_address or os.environ.get("RAY_ADDRESS")
    connected = ray.is_initialized()  # a caller's own connection (a notebook, a test) stays open
    try:
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # no cluster at that address, a version mismatch
        raise UserError(f"cannot connect to Ray{f' at {address}' if address else ''}: {first_line(exc)}")
    gpus = config.tensor_parallel_size if ray.cluster_resources().get("GPU", 0) else 0
    task = ray.remote(_run_shard).options(num_gpus=gpus, max_retries=config.max_retries, retry_exceptions=False)
    spec = to_spec(config, command)
    todo = [i for i in range(count) if not shard_is_done(store.shard(i, count), config, command, prepared[1])]
    refs = {task.remote(spec, i, count): i for i in todo}
    # every stage's chunk files count (generation and the teacher's pass take most of a run), so the
    # bar moves, and tqdm's ETA means something, from the first chunk on
    stages = [s.name for s in stages_for(command) if s.role is not None and (s.name != "teacher" or config.reward().needs_teacher)]
    bar = tqdm(total=sum(chunks) * len(stages), desc=f"{command} ({count} shards on Ray: {', '.join(stages)})", unit="chunk",
               dynamic_ncols=True)
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
            bar.n = sum(_chunk_files(store, i, count, stages) for i in range(count))
            bar.refresh()
    finally:
        bar.close()
        if not connected:
            ray.shutdown()
    if failed:
        first = min(failed)
        raise UserError(f"{len(failed)} of {count} shards failed (shard {first}: {failed[first]}); "
                        "rerun the same command to resume them from their finished chunks")
