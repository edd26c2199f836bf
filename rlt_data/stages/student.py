"""Stage ``scored``: the student's log-probs of the solution (and of the think tokens, for the KL term) -> the reward."""

from __future__ import annotations

from typing import Any

from .. import scoring
from ..options import RewardOptions, identity
from ..records import Mismatch, Scores, row
from . import cost
from .common import pending, progress_iter, rows_per_question, scorable



class StudentScores:
    name, needs, role = "scored", ("generated", "teacher"), "score"

    def params(self, config) -> dict[str, Any]:
        """The reward section (``options.RewardOptions``): a new reward option joins by itself."""
        return identity(config, RewardOptions)

    def run(self, shard, chunks: list[list[dict]], config, backend, options) -> None:
        reward = config.reward()
        todo = pending(shard, self.name, chunks, rows_per_question(config))
        if not todo:
            return
        scorer = cost.CountingScorer(backend.Scorer(config.student, options))
        try:
            if reward.needs_teacher:
                from ..models import load_tokenizer

                scoring.check_tokenizers(load_tokenizer(config.teacher), scorer.tokenizer, reward)
            empty = row(Scores(), Mismatch())
            for i in progress_iter(todo, "score (student)", shard, self.name):
                rows = shard.read_chunk("generated", i)
                keep = scorable(rows)
                teacher = None
                if reward.needs_teacher:
                    teacher_rows = shard.read_arrays("teacher", i)
                    teacher = [teacher_rows[k] for k in keep]
                scores = scoring.student_scores(scorer, [rows[k] for k in keep], teacher, reward)
                out = [{**r, **empty} for r in rows]
                for k, value in zip(keep, scores):
                    out[k].update(value)
                shard.write_chunk(self.name, i, out)
                cost.chunk_done(shard, self.name, i, tokens_scored=scorer.take())
        finally:
            scorer.close()
