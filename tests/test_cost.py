"""What a run cost (issue #22, part 3): tokens, wall time and device-seconds per stage, recorded per
chunk in each shard's cost.json; the merged run.json and card show the totals over shards; a resumed
stage adds only the chunks it computed; `select` changes nothing. Dummy backend (plumbing only)."""

from __future__ import annotations

import json

from helpers import gen_args, invoke, write_toy_set


def _shard_sums(run):
    sums = {"prompt_tokens": 0, "completion_tokens": 0, "teacher": 0, "student": 0, "chunks": 0}
    for path in sorted((run / ".rlt" / "shards").glob("*/cost.json")):
        data = json.loads(path.read_text())
        for stage, key in (("generated", "prompt_tokens"), ("generated", "completion_tokens"), ("teacher", "tokens_scored"),
                           ("scored", "tokens_scored")):
            total = sum(entry[key] for entry in data.get(stage, {}).values())
            sums[{"generated": key, "teacher": "teacher", "scored": "student"}[stage]] += total
        sums["chunks"] += len(data.get("generated", {}))
    return sums


def test_sharded_cost_totals_equal_the_sum_over_shards(toy_models, tmp_path):
    dataset = write_toy_set(tmp_path / "set.jsonl", 10, 4)
    run = tmp_path / "run"
    args = gen_args(toy_models, dataset, run, "--backend", "dummy", "--num-shards", "2", samples=2, chunk_size=2)
    assert invoke(*args).exit_code == 0
    sums = _shard_sums(run)
    assert sums["prompt_tokens"] > 0 and sums["completion_tokens"] > 0 and sums["teacher"] > 0 and sums["student"] > 0
    state = json.loads((run / ".rlt" / "run.json").read_text())
    cost = state["summary"]["cost"]
    assert (cost["prompt_tokens"], cost["completion_tokens"], cost["tokens_scored"]["teacher"], cost["tokens_scored"]["student"]) \
        == (sums["prompt_tokens"], sums["completion_tokens"], sums["teacher"], sums["student"])
    assert cost["stages"]["generated"]["chunks"] == sums["chunks"] == state["num_chunks"]
    assert cost["device_s"] == 0 and cost["wall_s"] > 0  # the dummy backend holds no GPU
    card = (run / "README.md").read_text()
    kept, total = state["summary"]["num_kept"], state["summary"]["num_candidates"]
    assert f"{kept} explanations kept of {total} sampled; 0.00 GPU-hours." in card
    assert f"Teacher tokens generated: {sums['prompt_tokens']:,} prompt, {sums['completion_tokens']:,} completion" in card
    assert f"{sums['teacher']:,} by the teacher, {sums['student']:,} by the student" in card

    # a resumed stage adds only the chunks it computed: a lost generated chunk is recomputed, counted once
    shard0 = sorted((run / ".rlt" / "shards").iterdir())[0]
    (shard0 / "generated" / "chunk-00000.parquet").unlink()
    (shard0 / "done.json").unlink()
    assert invoke(*args).exit_code == 0
    again = json.loads((run / ".rlt" / "run.json").read_text())["summary"]["cost"]
    assert again["stages"]["generated"]["chunks"] == state["num_chunks"] and again["prompt_tokens"] == cost["prompt_tokens"]
    assert again["tokens_scored"] == cost["tokens_scored"]

    # select re-selects; the cost is the run's, unchanged
    assert invoke("select", run, "--keep", "all").exit_code == 0
    assert json.loads((run / ".rlt" / "run.json").read_text())["summary"]["cost"] == again
