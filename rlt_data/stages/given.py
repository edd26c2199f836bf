"""Stage ``generated`` for ``rlt-data score``: the given explanations stand in for generations (no model)."""

from __future__ import annotations

from typing import Any

from ..options import identity
from ..records import Candidate, Position, row, schema
from ..sharding import resolved
from . import cost
from .common import StageWork


class GivenExplanations:
    name, needs, role, commands, model = "generated", (), None, ("score",), None
    schema = schema(Candidate, Position)

    def active(self, config) -> bool:
        return True

    def params(self, config) -> dict[str, Any]:
        """The input and its chunking identify the given explanations (a new input option joins by itself)."""
        return (identity(config.input) | identity(config.output)
                | {"explanation_column": config.given.explanation_column, "dataset": resolved(config.input.dataset)})

    def run(self, work: StageWork) -> None:
        for i in work.pending(1):
            work.write(i, [
                row(Candidate(id=r["id"], question=r["question"], solution=r["solution"], sample_index=0, completion=r["explanation"],
                              explanation=r["explanation"], has_end_tag=True, truncated=False, num_completion_tokens=None),
                    Position(r["row_index"]))
                for r in work.chunks[i]
            ])
            cost.chunk_done(work.shard, self.name, i)


STAGE = GivenExplanations
