"""Stage ``teacher``: the teacher's log-probs of each candidate's think tokens, given the solution (the KL term's first half).

Runs only when the reward has a KL term (``--kl-coefs`` not 0,0); at the teacher temperature
(the sampling temperature for ``generate``, as the reference; ``--temperature-score`` for ``score``).
"""

from __future__ import annotations

from typing import Any

from .. import scoring
from ..records import TeacherThink as Think
from ..records import row
from . import cost
from .common import pending, progress_iter, rows_per_question, scorable


class TeacherThink:
    name, needs, role = "teacher", ("generated",), "score"

    def params(self, config) -> dict[str, Any]:
        return {"teacher": config.teacher, "teacher_temperature": config.reward().teacher_t}

    def run(self, shard, chunks: list[list[dict]], config, backend, options) -> None:
        reward = config.reward()
        todo = pending(shard, self.name, chunks, rows_per_question(config))
        if not reward.needs_teacher or not todo:
            return
        scorer = cost.CountingScorer(backend.Scorer(config.teacher, options))
        try:
            for i in progress_iter(todo, "score (teacher)", shard, self.name):
                rows = shard.read_chunk("generated", i)
                keep = scorable(rows)
                found = scoring.teacher_think_logprobs(scorer, [rows[k] for k in keep], reward)
                out = [row(Think([], [])) for _ in rows]
                for k, value in zip(keep, found):
                    out[k] = value
                shard.write_table(self.name, i, out)  # numpy arrays straight into Arrow lists
                cost.chunk_done(shard, self.name, i, tokens_scored=scorer.take())
        finally:
            scorer.close()
