"""Stage ``generated`` for ``rlt-data generate``: the teacher samples explanations, seeded per question."""

from __future__ import annotations

import time
from typing import Any

from .. import protocol
from ..backends import derive_seed
from ..backends import SamplingConfig
from ..options import identity
from ..records import Candidate, Position, row, schema
from ..sharding import resolved
from . import cost
from .common import StageWork, progress, stop_point


class Generate:
    name, needs, role, commands = "generated", (), "generate", ("generate",)
    model = ("Generator", "teacher")  # backend class, and the option naming its model
    schema = schema(Candidate, Position)

    def active(self, config) -> bool:
        return True

    def params(self, config) -> dict[str, Any]:
        """What identifies the run's generations (with the input's ids; a change is refused, not recomputed):
        the input, sampling and chunking sections' options, all but those marked ``identity=False``."""
        return (identity(config.input) | identity(config.sampling) | identity(config.output)
                | {"dataset": resolved(config.input.dataset)})

    def run(self, work: StageWork) -> None:
        shard, chunks, config = work.shard, work.chunks, work.config
        todo = work.pending()
        if not todo:
            return
        generator = work.model()
        sampling = SamplingConfig.of(config.sampling)
        bar = progress(sum(map(len, chunks)), "generate", "q")
        bar.update(sum(len(chunks[i]) for i in range(len(chunks)) if i not in set(todo)))
        start, n_samples, n_tokens = time.perf_counter(), 0, 0
        try:
            for i in todo:
                prompts = [protocol.render_teacher_prompt(generator.tokenizer, r["question"], r["solution"]) for r in chunks[i]]
                # seeded by question: the same samples whichever shard, chunk or machine draws them
                samples = generator.generate(prompts, sampling, [derive_seed(config.sampling.seed, r["id"]) for r in chunks[i]])
                work.write(i, candidates(chunks[i], samples))
                prompt_tokens = sum(len(generator.tokenizer.encode(p, add_special_tokens=False)) for p in prompts)
                cost.chunk_done(shard, self.name, i, prompt_tokens=prompt_tokens * config.rows_per_question,
                                completion_tokens=sum(s.num_tokens or 0 for group in samples for s in group))
                n_samples += sum(map(len, samples))
                n_tokens += sum(s.num_tokens for group in samples for s in group)
                elapsed = max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(samples_s=f"{n_samples / elapsed:.2f}", tok_s=f"{n_tokens / elapsed:.0f}")
                bar.update(len(chunks[i]))
                stop_point(shard, self.name)
        finally:
            bar.close()


STAGE = Generate


def candidates(chunk: list[dict], samples) -> list[dict]:
    out = []
    for question, group in zip(chunk, samples):
        for k, sample in enumerate(group):
            parsed = protocol.parse_completion(sample.text)
            out.append(row(
                Candidate(id=question["id"], question=question["question"], solution=question["solution"], sample_index=k,
                          completion=sample.text, explanation=parsed.explanation, has_end_tag=parsed.has_end_tag,
                          truncated=sample.truncated, num_completion_tokens=sample.num_tokens),
                Position(question["row_index"]),
            ))
    return out
