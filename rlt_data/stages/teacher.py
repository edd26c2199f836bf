"""Stage ``teacher``: the teacher's log-probs of each candidate's think tokens, given the solution (the KL term's first half).

Runs only when the reward has a KL term (``--kl-coefs`` not 0,0); at the teacher temperature
(the sampling temperature for ``generate``, as the reference; ``--temperature-score`` for ``score``).
"""

from __future__ import annotations

from typing import Any

from .. import scoring
from ..records import TeacherThink as Think
from ..records import row, schema
from . import cost
from .common import StageWork, progress_iter, scorable


class TeacherThink:
    name, needs, role, commands = "teacher", ("generated",), "score", ("generate", "score")
    model = ("Scorer", "teacher")
    schema = schema(Think)

    def active(self, config) -> bool:
        """Only for a reward with a KL term (``--kl-coefs`` not 0,0)."""
        return config.reward_config().needs_teacher

    def params(self, config) -> dict[str, Any]:
        return {"teacher": config.teacher, "teacher_temperature": config.reward_config().teacher_t}

    def run(self, work: StageWork) -> None:
        reward, shard = work.config.reward_config(), work.shard
        todo = work.pending()
        if not self.active(work.config) or not todo:
            return
        scorer = cost.CountingScorer(work.model())
        for i in progress_iter(todo, "score (teacher)", shard, self.name):
            rows = work.read("generated", i)
            keep = scorable(rows)
            found = scoring.teacher_think_logprobs(scorer, [rows[k] for k in keep], reward)
            out = [row(Think([], [])) for _ in rows]
            for k, value in zip(keep, found):
                out[k] = value
            work.write_arrays(i, out)  # numpy arrays straight into Arrow lists
            cost.chunk_done(shard, self.name, i, tokens_scored=scorer.take())


STAGE = TeacherThink
