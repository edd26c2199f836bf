"""The shard contract: which questions a shard owns, and what identifies its work.

Shard ``i`` of ``N`` owns the questions whose id hashes to ``i`` (``shard_of``): every sample of
a question lands in one shard, and the split depends on the ids alone, not on where a loader puts
the rows, so re-reading or reordering the input changes nothing. A shard writes only its own
folder (``shards.ShardStore``) and its completion marker last; a question's samples are seeded by
its id (``backends.derive_seed(seed, id)``), so they are the same whichever shard, chunk or
machine draws them. ``merge.py`` turns the shards into one dataset.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import UserError


def shard_of(row_id: str, count: int) -> int:
    """The shard (0..count-1) that owns the question ``row_id``."""
    if count == 1:
        return 0
    digest = hashlib.sha256(row_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % count


def own_rows(rows: list[dict], index: int, count: int) -> list[dict]:
    """The rows of shard ``index``, in input order, each with its ``row_index`` (position in the input)."""
    return [{**row, "row_index": k} for k, row in enumerate(rows) if shard_of(row["id"], count) == index]


def ids_digest(rows: list[dict], ordered: bool) -> str:
    """A fingerprint of the rows' ids: ``ordered=False`` for the input as a set (what every shard of
    a run must agree on), ``True`` for one shard's chunking (a reordered input chunks differently)."""
    ids = [r["id"] for r in rows]
    return hashlib.sha256("\n".join(ids if ordered else sorted(ids)).encode()).hexdigest()[:16]


def rows_digest(rows: list[dict]) -> str:
    """A fingerprint of the rows' content (id, question, solution, and explanation where given), as
    a set: what every shard of a run must agree on, so input edited between two shards (or before a
    resume) is a different run, not a silent mix of old and new solutions."""
    keys = ("id", "question", "solution", "explanation")
    lines = sorted(json.dumps([r.get(k) for k in keys], ensure_ascii=False) for r in rows)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]


def resolved(path: str | None) -> str | None:
    """A local path as an absolute one (a run resumed from another working directory is the same
    run); anything else (a Hub id) as given."""
    if path and Path(path).expanduser().exists():
        return str(Path(path).expanduser().resolve())
    return path


def changed_keys(new: dict, old: dict) -> list[str]:
    """The parameters that differ between two runs (or shards) of the same kind, sorted."""
    return sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))


def check_split(num_shards: int, shard_index: int | None) -> None:
    if num_shards < 1:
        raise UserError("--num-shards must be at least 1")
    if shard_index is not None and not 0 <= shard_index < num_shards:
        raise UserError(f"--shard-index must be in 0..{num_shards - 1} (--num-shards {num_shards}), not {shard_index}")
