"""Stage ``scored``: the student's log-probs of the solution (and of the think tokens, for the KL term) -> the reward."""

from __future__ import annotations

from typing import Any

from .. import scoring
from ..options import identity
from ..records import Mismatch, Scores, row
from ..shards import CANDIDATE_CHUNK_SCHEMA
from . import cost
from .common import StageWork, progress_iter, scorable


class StudentScores:
    name, needs, role, commands = "scored", ("generated", "teacher"), "score", ("generate", "score")
    model = ("Scorer", "student")
    schema = CANDIDATE_CHUNK_SCHEMA  # every candidate with its scores: what the merge reads of the last stage

    def active(self, config) -> bool:
        return True

    def params(self, config) -> dict[str, Any]:
        """The reward section (``options.RewardOptions``): a new reward option joins by itself."""
        return identity(config.reward)

    def run(self, work: StageWork) -> None:
        config, shard = work.config, work.shard
        reward = config.reward_config()
        todo = work.pending()
        if not todo:
            return
        scorer = cost.CountingScorer(work.model())
        if reward.needs_teacher:
            from ..models import load_tokenizer

            scoring.check_tokenizers(load_tokenizer(config.teacher), scorer.tokenizer, reward)
        empty = row(Scores(), Mismatch())
        for i in progress_iter(todo, "score (student)", shard, self.name):
            rows = work.read("generated", i)
            keep = scorable(rows)
            teacher = None
            if reward.needs_teacher:
                teacher_rows = work.arrays("teacher", i)
                teacher = [teacher_rows[k] for k in keep]
            scores = scoring.student_scores(scorer, [rows[k] for k in keep], teacher, reward)
            out = [{**r, **empty} for r in rows]
            for k, value in zip(keep, scores):
                out[k].update(value)
            work.write(i, out)
            cost.chunk_done(shard, self.name, i, tokens_scored=scorer.take())


STAGE = StudentScores
