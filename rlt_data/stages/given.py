"""Stage ``generated`` for ``rlt-data score``: the given explanations stand in for generations (no model)."""

from __future__ import annotations

from typing import Any

from ..records import Candidate, Position, row
from ..sharding import resolved
from . import cost, pending


class GivenExplanations:
    name, needs, role = "generated", (), None
    KEYS = ("dataset", "split", "subset", "revision", "question_column", "solution_column", "explanation_column", "limit", "chunk_size")

    def params(self, config) -> dict[str, Any]:
        return {k: getattr(config, k) for k in self.KEYS} | {"dataset": resolved(config.dataset)}

    def run(self, shard, chunks: list[list[dict]], config, backend, options) -> None:
        for i in pending(shard, self.name, chunks, 1):
            shard.write_chunk(self.name, i, [
                row(Candidate(id=r["id"], question=r["question"], solution=r["solution"], sample_index=0, completion=r["explanation"],
                              explanation=r["explanation"], has_end_tag=True, truncated=False, num_completion_tokens=None),
                    Position(r["row_index"]))
                for r in chunks[i]
            ])
            cost.chunk_done(shard, self.name, i)
