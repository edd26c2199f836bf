"""What a run cost, per stage and per chunk, kept in the shard's folder (``cost.json``).

Each stage records, for every chunk it computes: its wall time (from the end of the previous chunk
of the same call, so the first chunk a process computes carries the model's load), its
device-seconds (GPUs the stage's backend uses x that wall time; 0 on CPU and with the dummy
backend), and its tokens: ``prompt_tokens``/``completion_tokens`` of the teacher's samples
(``generated``; prompt tokens counted once per sample, as an API bills them), ``tokens_scored``
(every token of the sequences a scoring model ran over, with the ``model`` the stage runs: the
teacher's or the student's, as the stage declares it). A chunk's entry
is replaced when the chunk is recomputed and removed with its stage, so a resumed stage adds only
the chunks it computed, and the totals over a run's shards (``merge``) add up.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any

from ..options import EngineOptions
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


def gpus(backend: str | None, engine: EngineOptions) -> int:
    """GPUs a stage's backend holds: tensor-parallel GPUs for vLLM on a GPU, 1 for transformers on
    CUDA, 0 on CPU, with the dummy backend, or for a stage without a model (``backend`` None)."""
    if backend is None or backend == "dummy":
        return 0
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        cuda = False
    if backend == "vllm":
        return int(engine.tensor_parallel_size) if cuda else 0
    device = str(engine.device)
    return 1 if device.startswith("cuda") or (device == "auto" and cuda) else 0


@contextmanager
def recording(shard: ShardStore, stage: str, num_gpus: int, model: str | None = None):
    """While ``stage`` runs on ``shard``: ``chunk_done`` records each chunk it computes (``model``: the
    option naming the stage's model, ``teacher`` or ``student``: whose scoring tokens they are)."""
    _LOCAL.current = {"shard": shard, "stage": stage, "gpus": num_gpus, "model": model, "mark": time.perf_counter()}
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
    model = {"model": current["model"]} if current.get("model") and "tokens_scored" in tokens else {}
    data.setdefault(stage, {})[str(index)] = {"wall_s": wall, "device_s": wall * current["gpus"], "gpus": current["gpus"],
                                              **model, **{k: int(v) for k, v in tokens.items()}}
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


LEGACY_MODELS = {"teacher": "teacher", "scored": "student"}  # entries written before the model was recorded


def totals(entries: list[dict[str, dict[str, dict[str, float]]]], num_chunks: list[int], order: list[str]) -> dict[str, Any]:
    """The run's cost from its shards' ``cost.json`` (chunks below each shard's chunk count):
    per stage (in the run's stage ``order``) wall and device seconds, chunks and tokens, and the
    totals; the tokens scored by each model."""
    stages: dict[str, dict[str, float]] = {}
    scored = {"teacher": 0, "student": 0}
    for data, n in zip(entries, num_chunks):
        for stage, chunks in data.items():
            out = stages.setdefault(stage, {"chunks": 0, "wall_s": 0.0, "device_s": 0.0})
            for index, entry in chunks.items():
                if int(index) >= n:
                    continue
                out["chunks"] += 1
                for key, value in entry.items():
                    if key not in ("gpus", "model"):
                        out[key] = out.get(key, 0) + value
                if "tokens_scored" in entry:
                    model = entry.get("model") or LEGACY_MODELS.get(stage, stage)
                    scored[model] = scored.get(model, 0) + int(entry["tokens_scored"])
    tokens = {
        "prompt_tokens": int(sum(s.get("prompt_tokens", 0) for s in stages.values())),
        "completion_tokens": int(sum(s.get("completion_tokens", 0) for s in stages.values())),
        "tokens_scored": scored,
    }
    ordered = {k: stages[k] for k in order if k in stages} | {k: v for k, v in stages.items() if k not in order}
    wall = sum(s["wall_s"] for s in ordered.values())
    device = sum(s["device_s"] for s in ordered.values())
    return {"stages": ordered, **tokens, "wall_s": wall, "device_s": device, "gpu_hours": device / 3600}
