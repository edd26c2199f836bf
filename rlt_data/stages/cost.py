"""What a run cost, per stage and per chunk, kept in the shard's folder (``cost.json``).

Each stage records, for every chunk it computes: its wall time (from the end of the previous chunk
of the same call, so the first chunk a process computes carries the model's load), its
device-seconds (GPUs the stage's backend uses x that wall time; 0 on CPU and with the dummy
backend), and its tokens: ``prompt_tokens``/``completion_tokens`` of the teacher's samples
(``generated``; prompt tokens counted once per sample, as an API bills them), ``tokens_scored``
(every token of the sequences a scoring model ran over: ``teacher``, ``scored``). A chunk's entry
is replaced when the chunk is recomputed and removed with its stage, so a resumed stage adds only
the chunks it computed, and the totals over a run's shards (``merge``) add up.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any

from ..shards import ShardStore, read_json, write_json

FILE = "cost.json"
_LOCAL = threading.local()


def _path(shard: ShardStore):
    return shard.root / FILE


def read(shard: ShardStore) -> dict[str, dict[str, dict[str, float]]]:
    """stage -> chunk index (as text) -> {wall_s, device_s, gpus, ...tokens}."""
    return read_json(_path(shard)) or {}


def reset(shard: ShardStore) -> None:
    _path(shard).unlink(missing_ok=True)


def clear(shard: ShardStore, stage: str) -> None:
    data = read(shard)
    if data.pop(stage, None) is not None:
        write_json(_path(shard), data)


def gpus(config: Any, role: str | None) -> int:
    """GPUs a stage's backend holds: tensor-parallel GPUs for vLLM on a GPU, 1 for transformers on
    CUDA, 0 on CPU, with the dummy backend, or for a stage without a model."""
    if role is None:
        return 0
    backend = config.backend_for(role)
    if backend == "dummy":
        return 0
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        cuda = False
    if backend == "vllm":
        return int(config.tensor_parallel_size) if cuda else 0
    device = str(getattr(config, "device", "auto"))
    return 1 if device.startswith("cuda") or (device == "auto" and cuda) else 0


@contextmanager
def recording(shard: ShardStore, stage: str, num_gpus: int):
    """While ``stage`` runs on ``shard``: ``chunk_done`` records each chunk it computes."""
    _LOCAL.current = {"shard": shard, "stage": stage, "gpus": num_gpus, "mark": time.perf_counter()}
    try:
        yield
    finally:
        _LOCAL.current = None


def chunk_done(shard: ShardStore, stage: str, index: int, **tokens: int) -> None:
    """Chunk ``index`` of ``stage`` is written: record its time since the last mark, and its tokens."""
    now = time.perf_counter()
    current = getattr(_LOCAL, "current", None)
    if current is None or current["shard"] is not shard or current["stage"] != stage:
        current = {"gpus": 0, "mark": now}  # not under `recording` (a library caller): tokens only
    wall = now - current["mark"]
    current["mark"] = now
    data = read(shard)
    data.setdefault(stage, {})[str(index)] = {"wall_s": wall, "device_s": wall * current["gpus"], "gpus": current["gpus"],
                                              **{k: int(v) for k, v in tokens.items()}}
    write_json(_path(shard), data)


class CountingScorer:
    """A scorer that counts the tokens of every sequence it is asked to score (``tokens``)."""

    def __init__(self, inner: Any):
        self._inner, self.tokens = inner, 0

    def logprobs(self, requests, *args, **kwargs):
        self.tokens += sum(len(request[0]) for request in requests)
        return self._inner.logprobs(requests, *args, **kwargs)

    def take(self) -> int:
        n, self.tokens = self.tokens, 0
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


STAGE_ORDER = ("decontaminate", "generated", "teacher", "scored")


def totals(entries: list[dict[str, dict[str, dict[str, float]]]], num_chunks: list[int]) -> dict[str, Any]:
    """The run's cost from its shards' ``cost.json`` (chunks below each shard's chunk count):
    per stage wall and device seconds, chunks and tokens, and the totals."""
    stages: dict[str, dict[str, float]] = {}
    for data, n in zip(entries, num_chunks):
        for stage, chunks in data.items():
            out = stages.setdefault(stage, {"chunks": 0, "wall_s": 0.0, "device_s": 0.0})
            for index, entry in chunks.items():
                if int(index) >= n:
                    continue
                out["chunks"] += 1
                for key, value in entry.items():
                    if key != "gpus":
                        out[key] = out.get(key, 0) + value
    tokens = {
        "prompt_tokens": int(stages.get("generated", {}).get("prompt_tokens", 0)),
        "completion_tokens": int(stages.get("generated", {}).get("completion_tokens", 0)),
        "tokens_scored": {"teacher": int(stages.get("teacher", {}).get("tokens_scored", 0)),
                          "student": int(stages.get("scored", {}).get("tokens_scored", 0))},
    }
    ordered = {k: stages[k] for k in STAGE_ORDER if k in stages} | {k: v for k, v in stages.items() if k not in STAGE_ORDER}
    wall = sum(s["wall_s"] for s in ordered.values())
    device = sum(s["device_s"] for s in ordered.values())
    return {"stages": ordered, **tokens, "wall_s": wall, "device_s": device, "gpu_hours": device / 3600}
