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

Ranking within a question: higher reward first, then lower ``sample_index`` (deterministic).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

from .config import SelectionOptions

STATUSES = (
    "kept", "not_best", "below_threshold", "too_long", "think_token_mismatch",
    "empty_explanation", "format_error", "truncated",
)


# The options (keep, top_k, min_reward, max_student_tokens) are declared once, in config.py.
SelectionConfig = SelectionOptions


def invalid_reason(c: dict, config: SelectionConfig) -> str | None:
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


def select(candidates: list[dict], config: SelectionConfig) -> list[str]:
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
    for indices in valid.values():
        ranked = sorted(indices, key=lambda i: (-candidates[i]["reward"], candidates[i]["sample_index"]))
        for rank, i in enumerate(ranked):
            statuses[i] = "kept" if quota is None or rank < quota else "not_best"
    return statuses


def count(statuses: Iterable[str]) -> dict[str, int]:
    """Candidates per status, every status listed (``statuses``: the statuses, or a Counter of them)."""
    counts = Counter(statuses)
    return {s: counts.get(s, 0) for s in STATUSES}
