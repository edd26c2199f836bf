"""Data parallelism on one machine: N engine replicas over disjoint chunks, merged by the run folder.

vLLM 0.32 refuses ``LLM(data_parallel_size=N)`` in a single process, so each replica is its own
process (``python -m rlt_data.replicas``) with its own slice of the GPUs
(``CUDA_VISIBLE_DEVICES``, ``tensor_parallel_size`` GPUs each) and the chunks ``i % N == rank``.
Chunks are written by the same atomic, per-chunk store as a single process, so resume works the
same, and per-chunk seeds make the rows identical to a one-replica run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from .errors import UserError


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


def run_replicas(config, command: str) -> None:
    from .shards import RunStore

    world = config.data_parallel_size
    slices = _gpu_slices(world, config.tensor_parallel_size)
    store = RunStore(config.output)
    spec = store.state_dir / "replica-config.json"
    spec.write_text(json.dumps({"command": command, "class": type(config).__name__, "config": dataclasses.asdict(config)}))
    procs = []
    for rank in range(world):
        env = dict(os.environ)
        if slices is not None:
            env["CUDA_VISIBLE_DEVICES"] = slices[rank]
        procs.append(subprocess.Popen([sys.executable, "-m", "rlt_data.replicas", str(spec), str(rank), str(world)], env=env))
    codes = [p.wait() for p in procs]
    failed = [r for r, c in enumerate(codes) if c != 0]
    if failed:
        raise UserError(f"replica(s) {failed} failed (exit codes {[codes[r] for r in failed]}); rerun the same command to resume")


def main(argv: list[str]) -> int:
    from . import config as config_module
    from . import pipeline

    spec_path, rank, world = argv[0], int(argv[1]), int(argv[2])
    spec = json.loads(open(spec_path, encoding="utf-8").read())
    cls = getattr(config_module, spec["class"])
    pipeline.run_stages(cls(**spec["config"]), spec["command"], rank=rank, world=world)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
