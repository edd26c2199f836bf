from rlt_data.selection import SelectionConfig, count, select


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
    statuses = select(ROWS, SelectionConfig(max_student_tokens=1000))
    assert statuses == [
        "not_best", "kept", "not_best", "truncated", "format_error", "too_long", "empty_explanation",
        "think_token_mismatch", "kept",
    ]
    assert count(statuses)["kept"] == 2 and sum(count(statuses).values()) == len(ROWS)


def test_min_reward_top_k_and_all():
    assert select(ROWS, SelectionConfig(min_reward=-5))[-1] == "below_threshold"
    top2 = select(ROWS, SelectionConfig(keep="top-k", top_k=2))
    assert top2[:3] == ["not_best", "kept", "kept"]
    every = select(ROWS, SelectionConfig(keep="all"))
    assert every[:3] == ["kept"] * 3 and every[5] == "kept"  # no length limit given
