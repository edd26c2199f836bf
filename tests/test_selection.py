from rlt_data.options import SelectionOptions
from rlt_data.selection import count, select


def cand(id, k, reward, **kw):
    base = dict(id=id, sample_index=k, reward=reward, truncated=False, has_end_tag=True, explanation="e",
                think_mismatch=False, student_context_tokens=100)
    return {**base, **kw}


ROWS = [
    cand("a", 0, -2.0),
    cand("a", 1, -1.0),
    cand("a", 2, -1.0),  # tie with sample 1: the lower sample_index wins
    cand("a", 3, None, truncated=True, has_end_tag=False),
    cand("b", 0, -0.5, has_end_tag=False),
    cand("b", 1, -3.0, student_context_tokens=5000),
    cand("b", 2, -4.0, explanation="  "),
    cand("c", 0, None, think_mismatch=True),
    cand("c", 1, -9.0),
]


def test_best_per_question_and_every_drop_reason():
    statuses = select(ROWS, SelectionOptions(max_student_tokens=1000))
    assert statuses == [
        "not_best", "kept", "not_best", "truncated", "format_error", "too_long", "empty_explanation",
        "think_token_mismatch", "kept",
    ]
    assert count(statuses)["kept"] == 2 and sum(count(statuses).values()) == len(ROWS)


def test_min_reward_top_k_and_all():
    assert select(ROWS, SelectionOptions(min_reward=-5))[-1] == "below_threshold"
    top2 = select(ROWS, SelectionOptions(keep="top-k", top_k=2))
    assert top2[:3] == ["not_best", "kept", "kept"]
    every = select(ROWS, SelectionOptions(keep="all"))
    assert every[:3] == ["kept"] * 3 and every[5] == "kept"  # no length limit given


def test_keep_by_any_column_ascending_and_empty_values_last():
    rows = [cand("a", 0, -1.0, rsr=3.0), cand("a", 1, -2.0, rsr=1.5), cand("a", 2, -3.0, rsr=None),
            cand("b", 0, -1.0, rsr=None), cand("b", 1, -1.0, rsr=None)]
    assert select(rows, SelectionOptions()) == ["kept", "not_best", "not_best", "kept", "not_best"]  # the reward, as before
    assert select(rows, SelectionOptions(keep_by="rsr", ascending=True)) == ["not_best", "kept", "not_best", "kept", "not_best"]
    assert select(rows, SelectionOptions(keep_by="rsr")) == ["kept", "not_best", "not_best", "kept", "not_best"]
    assert select(rows, SelectionOptions(keep="top-k", top_k=2, keep_by="rsr", ascending=True))[:3] == ["kept", "kept", "not_best"]


def test_select_keep_by_rsr_ascending_on_a_run(toy_models, tmp_path):
    """End to end (dummy backend: no weights): the kept row of each question has the lowest RSR of its valid candidates."""
    from collections import defaultdict

    from helpers import invoke, read, write_toy_set

    out = tmp_path / "run"
    result = invoke("generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"],
                    "--dataset", write_toy_set(tmp_path / "set.jsonl", 6, 5), "--output", out, "--backend", "dummy",
                    "--num-samples", "4", "--max-new-tokens", "200")
    assert result.exit_code == 0, result.output
    by_reward = {r["id"]: r["sample_index"] for r in read(out / "data")}
    result = invoke("select", out, "--keep-by", "rsr", "--ascending")
    assert result.exit_code == 0, result.output
    candidates = read(out / "candidates")
    valid = defaultdict(list)
    for c in candidates:
        assert c["rsr"] is not None and c["rsr_turn"] is not None and c["student_lp_explanation_mean"] is not None
        if c["status"] in ("kept", "not_best"):
            valid[c["id"]].append(c)
    kept = {r["id"]: r for r in read(out / "data")}
    assert set(kept) == set(valid) and len(kept) >= 4
    for qid, group in valid.items():
        lowest = min(group, key=lambda c: (c["rsr"], c["sample_index"]))
        assert kept[qid]["sample_index"] == lowest["sample_index"] and kept[qid]["rsr"] == lowest["rsr"]
    assert by_reward != {q: r["sample_index"] for q, r in kept.items()}  # another rule, other rows
    card = (out / "README.md").read_text()
    assert "| kept by | the sample with the lowest `rsr` per question |" in card
    invoke("select", out)
    assert "with the highest `reward` per question (the RLT reward)" in (out / "README.md").read_text()
    import json

    state_path = out / ".rlt" / "run.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "format": 3}))  # a run of the previous format: no rsr columns
    old = invoke("select", out, "--keep-by", "rsr", "--ascending")
    assert old.exit_code == 2 and "older rlt-data (run format 3)" in old.output
