"""Which samples are kept, and why the others were not.

Every candidate gets exactly one status, checked in this order:

``truncated``            stopped by the length limit: cannot be training data
``format_error``         no ``<|end_of_explanation|>``
``empty_explanation``    nothing between the tags
``think_token_mismatch`` think-span tokens differ between teacher and student contexts (KL undefined)
``too_long``             the training row exceeds ``max_student_tokens`` student tokens
``below_threshold``      reward below ``min_reward``
``not_best``             valid, but outranked by ``keep`` (``best``: one per question; ``top-k``)
``kept``                 in the distillation set

Ranking within a question: by ``keep_by`` (default ``reward``, the RLT reward; any numeric score
column of ``candidates/``, e.g. ``rsr``), highest first (lowest with ``ascending``), then lower
``sample_index`` (deterministic). A candidate whose ``keep_by`` value is empty ranks last.
``min_reward`` always applies to the reward.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

from .options import SelectionOptions

STATUSES = (
    "kept", "not_best", "below_threshold", "too_long", "think_token_mismatch",
    "empty_explanation", "format_error", "truncated",
)


def rankable_columns() -> tuple[dict[str, str], set[str]]:
    """Every column of ``candidates/`` -> its Arrow type; and the numeric ones, which ``keep_by`` may name."""
    import pyarrow as pa

    from .records import Candidate, Scores, Status, fields

    return {name: str(t) for name, t in fields(Candidate, Scores, Status)}, {
        name for name, t in fields(Candidate, Scores) if pa.types.is_integer(t) or pa.types.is_floating(t)}


def check_keep_by(column: str) -> None:
    from .errors import UserError

    every, numeric = rankable_columns()
    if column in numeric:
        return
    names = ", ".join(sorted(numeric))
    if column in every:
        raise UserError(f"--keep-by {column}: not a numeric column ({every[column]}); choose one of {names}")
    raise UserError(f"--keep-by {column}: no such column in candidates/; choose one of {names}")


def describe(selection: dict) -> str:
    """One line for the card: the rule that kept the rows (``selection``: run.json's record of the options)."""
    by = selection.get("keep_by", "reward")
    order = "lowest" if selection.get("ascending") else "highest"
    what = {"best": "the sample", "top-k": f"the {selection.get('top_k')} samples", "all": "every valid sample"}.get(selection.get("keep"), "")
    rule = f"{what} with the {order} `{by}` per question" if selection.get("keep") != "all" else what
    if by == "reward" and not selection.get("ascending"):
        rule += " (the RLT reward)"
    extra = [f"reward >= {selection['min_reward']}"] if selection.get("min_reward") is not None else []
    extra += [f"at most {selection['max_student_tokens']} student tokens"] if selection.get("max_student_tokens") is not None else []
    return rule + (f"; {', '.join(extra)}" if extra else "")


def invalid_reason(c: dict, config: SelectionOptions) -> str | None:
    if c["truncated"]:
        return "truncated"
    if not c["has_end_tag"]:
        return "format_error"
    if not c["explanation"].strip():
        return "empty_explanation"
    if c.get("think_mismatch"):
        return "think_token_mismatch"
    if config.max_student_tokens is not None and c["student_context_tokens"] > config.max_student_tokens:
        return "too_long"
    if config.min_reward is not None and c["reward"] < config.min_reward:
        return "below_threshold"
    return None


def select(candidates: list[dict], config: SelectionOptions) -> list[str]:
    """The status of each candidate, in the input order."""
    statuses: list[str] = [""] * len(candidates)
    valid: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(candidates):
        reason = invalid_reason(c, config)
        if reason:
            statuses[i] = reason
        else:
            valid[c["id"]].append(i)
    quota = {"best": 1, "top-k": config.top_k, "all": None}[config.keep]
    by, sign = config.keep_by, (1 if config.ascending else -1)

    def rank_key(i: int) -> tuple:
        value = candidates[i][by]
        return (value is None, 0.0 if value is None else sign * value, candidates[i]["sample_index"])

    for indices in valid.values():
        ranked = sorted(indices, key=rank_key)
        for rank, i in enumerate(ranked):
            statuses[i] = "kept" if quota is None or rank < quota else "not_best"
    return statuses


def count(statuses: Iterable[str]) -> dict[str, int]:
    """Candidates per status, every status listed (``statuses``: the statuses, or a Counter of them)."""
    counts = Counter(statuses)
    return {s: counts.get(s, 0) for s in STATUSES}
