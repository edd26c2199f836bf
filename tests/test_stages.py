"""The stages mean their declarations: the order comes from ``needs``, a stage reads only what it
needs, the driver opens each model once per shard and closes it after its last stage, and a new
stage is one class (here registered from the test; in the package, one file with ``STAGE = ...``)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from rlt_data.records import Candidate, Mismatch, Position, Scores, schema
from rlt_data.stages import StageWork, register, stages_for, unregister
from helpers import invoke, read, write_toy_set


def test_order_follows_needs():
    assert [s.name for s in stages_for("generate")] == ["generated", "teacher", "scored"]
    assert [s.name for s in stages_for("score")] == ["generated", "teacher", "scored"]
    assert type(stages_for("score")[0]).__name__ == "GivenExplanations"


class Shout:
    """A stage after the student's: upper-cases each kept candidate's explanation (a stand-in for an
    answer check or a length filter). Declared like the package's stages, nothing else changed."""

    name, needs, role, commands, model = "shout", ("scored",), None, ("generate", "score"), None
    schema = schema(Candidate, Scores, Mismatch, Position)

    def active(self, config) -> bool:
        return True

    def params(self, config) -> dict:
        return {"shout": True}

    def run(self, work: StageWork) -> None:
        for i in work.pending():
            work.write(i, [{**r, "explanation": r["explanation"].upper()} for r in work.read("scored", i)])


@pytest.fixture
def shout():
    register(Shout)
    yield Shout
    unregister(Shout)


def test_a_new_stage_is_one_class(toy_models, tmp_path, shout):
    assert [s.name for s in stages_for("generate")] == ["generated", "teacher", "scored", "shout"]
    dataset = write_toy_set(tmp_path / "set.jsonl", 4, 1)
    out = tmp_path / "run"
    args = ["generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"], "--dataset", dataset,
            "--output", out, "--backend", "dummy", "--num-samples", "2", "--chunk-size", "2", "--max-new-tokens", "40"]
    assert (result := invoke(*args)).exit_code == 0, result.output
    chunks = sorted((out / ".rlt" / "shout").glob("chunk-*.parquet"))
    assert len(chunks) == 2 and pq.read_metadata(chunks[0]).num_rows == 4
    kept = [r for r in read(out / "data")]
    assert kept and all(r["explanation"] == r["explanation"].upper() for r in kept)  # the merge read the last stage
    assert any(r["explanation"] != r["explanation"].upper() for r in read(out / ".rlt" / "scored"))
    stamps = {p.name: p.stat().st_mtime_ns for p in chunks}
    assert (again := invoke(*args)).exit_code == 0, again.output  # resumes: nothing recomputed
    assert {p.name: p.stat().st_mtime_ns for p in sorted((out / ".rlt" / "shout").glob("chunk-*.parquet"))} == stamps


def test_a_stage_reads_only_what_it_needs(tmp_path):
    from rlt_data.shards import RunStore

    work = StageWork("shout", RunStore(tmp_path).shard(0, 1), [], None, {"scored": None}, None, ())
    with pytest.raises(RuntimeError, match="does not declare"):
        work.read("generated", 0)


def test_needs_that_cannot_be_met_are_refused():
    class Orphan(Shout):
        name, needs = "orphan", ("nowhere",)

    register(Orphan)
    try:
        with pytest.raises(RuntimeError, match="nowhere"):
            stages_for("generate")
    finally:
        unregister(Orphan)


def test_models_open_once_per_shard_and_close_after_their_last_stage(toy_models):
    from rlt_data.config import GenerateConfig
    from rlt_data.pipeline import _Models

    config = GenerateConfig.of(teacher=toy_models["teacher"], student=toy_models["student"], dataset="x", output="y", backend="dummy")
    stages = stages_for("generate")
    models = _Models(config, stages)
    generator, teacher, student = (models.opener(k)() for k in range(3))
    assert models.opener(2)() is student and len(models.open) == 3  # asked twice, opened once
    assert type(generator).__name__ == "Generator" and type(teacher).__name__ == type(student).__name__ == "Scorer"
    models.release(0)
    assert len(models.open) == 2
    models.close()
    assert not models.open


def test_a_run_of_the_previous_format_is_refused_then_redone(toy_models, tmp_path):
    """Format 4 recorded no stage order: its shard is refused with the --overwrite hint (one line, exit 2),
    and --overwrite redoes it."""
    import json

    dataset = write_toy_set(tmp_path / "set.jsonl", 3, 2)
    out = tmp_path / "run"
    args = ["generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"], "--dataset", dataset,
            "--output", out, "--backend", "dummy", "--num-samples", "2", "--max-new-tokens", "40"]
    assert (first := invoke(*args)).exit_code == 0, first.output
    for name in ("shard.json", "run.json"):
        path = out / ".rlt" / name
        state = json.loads(path.read_text())
        state.pop("order", None)
        path.write_text(json.dumps({**state, "format": 4}))
    (out / ".rlt" / "run.json").unlink()  # a run whose merge had not happened yet: the shard alone
    old = invoke(*args)
    assert old.exit_code == 2 and "older rlt-data" in old.output and "--overwrite" in old.output, old.output
    assert len(old.output.strip().splitlines()) == 1
    assert (redone := invoke(*args, "--overwrite")).exit_code == 0, redone.output
    assert json.loads((out / ".rlt" / "shard.json").read_text())["order"] == ["generated", "teacher", "scored"]
