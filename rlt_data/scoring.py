"""The RLT reward (RLT_SPEC sections 4 and 8), exact and memory-bounded.

For a question Q, solution S and explanation E (both stripped):

- Student context: the student's chat template over [student system prompt, Q,
  ``<|begin_of_thought|>\\n\\nE\\n\\n<|end_of_thought|>\\n\\n<|begin_of_solution|>\\n\\nS\\n\\n<|end_of_solution|>``]
  (the training row itself). Teacher context: the teacher's template over [teacher system prompt,
  Q, ``<|begin_of_solution|>\\n\\nS\\n\\n<|end_of_solution|>\\n\\n<|begin_of_explanation|>\\n\\nE\\n\\n<|end_of_explanation|>``].
- Each context is tokenized as one whole string with offsets. A token belongs to a span when its
  characters lie entirely inside it (think span ``\\n\\nE\\n\\n``, solution span ``\\n\\nS\\n\\n``);
  a token straddling a boundary belongs to neither.
- A token's log-prob is ``log_softmax(logits[i-1] / T)[id_i]`` in float32, T = 0.7 by default. As in
  the reference (``trainers/teacher_rewards.py``), the teacher's think log-probs are taken at the
  temperature the samples were drawn with (``teacher_temperature``: ``generate --temperature`` and
  GRPO's ``temperature``) and the student's at ``temperature``; ``score`` on existing traces uses
  ``--temperature-score`` for both.
- ``lp_s``: student log-probs of the solution tokens. ``kl_t``: teacher minus student log-probs
  of the think tokens (a single-sample estimate of KL(teacher || student)).
- ``r_ss = a0 * mean(lp_s) + a1 * min(lp_s)``; ``r_kl = b0 * mean(kl_t) + b1 * max(kl_t)``;
  ``reward = r_ss - r_kl + (format_penalty if the end tag is missing else 0)``, defaults
  ``a = [1, 0.01]``, ``b = [3, 0.03]``, ``format_penalty = -1``.

Student-aware scores beside the reward (issue 22), from the same student pass (the output layer's
chunked log-softmax also counts each token's rank: ``backends/logprobs.py``), at temperature 1 on
the raw logits whatever ``temperature`` is:

- ``rsr``: the Rank-Surprisal Ratio (arXiv 2601.14249) of the explanation tokens (the think span):
  ``nll_t = logsumexp(z_t) - z_t[y_t]``, ``rank_t = min(1 + #{v : z_t[v] > z_t[y_t]}, 100)``,
  ``rsr = sum rank_t / sum nll_t``; lower is better. ``rsr_turn``: the same over the whole
  assistant turn (tags, explanation and solution: every token inside the assistant message's
  content, the paper's "response"; the end-of-turn token excluded).
- ``student_lp_explanation_mean``: the mean of ``-nll_t`` over the explanation tokens, i.e. the
  student's plain log-likelihood per token at T = 1 (likelihood selection); ``rsr``'s
  denominator is ``-n * student_lp_explanation_mean``.
- The teacher-student gap is the KL term's per-token values, already in ``kl_mean``/``kl_max``.

Each is empty when its span has no token (or, for the ratios, when its surprisal sums to 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import protocol
from .errors import UserError
from .options import RewardOptions, default_of, parse_pair


@dataclass(frozen=True)
class RewardConfig:
    # defaults: the reward section's (options.RewardOptions), declared there once
    temperature: float = default_of(RewardOptions, "temperature_score")
    lp_coefs: tuple[float, float] = default_of(RewardOptions, "lp_coefs")  # on [mean, min] of the solution log-probs
    kl_coefs: tuple[float, float] = default_of(RewardOptions, "kl_coefs")  # on [mean, max] of the think-token KL terms
    format_penalty: float = default_of(RewardOptions, "format_penalty")  # added when <|end_of_explanation|> is missing
    teacher_temperature: float | None = None  # T of the teacher's think log-probs; None: ``temperature``

    @classmethod
    def of(cls, options: RewardOptions, teacher_temperature: float | None = None) -> "RewardConfig":
        """The reward of the reward section (``--lp-coefs`` and ``--kl-coefs`` checked as pairs)."""
        return cls(temperature=options.temperature_score, lp_coefs=parse_pair(options.lp_coefs, "lp_coefs"),
                   kl_coefs=parse_pair(options.kl_coefs, "kl_coefs"), format_penalty=options.format_penalty,
                   teacher_temperature=teacher_temperature)

    @property
    def teacher_t(self) -> float:
        return self.temperature if self.teacher_temperature is None else self.teacher_temperature

    @property
    def needs_teacher(self) -> bool:
        return any(c != 0 for c in self.kl_coefs)


# The keys of reward_terms(); the token counts come with them in student_scores(). The Parquet
# schema of all score columns is shards.SCORE_FIELDS.
REWARD_TERMS = ("reward", "r_ss", "r_kl", "lp_solution_mean", "lp_solution_min", "kl_mean", "kl_max")
# Student-only scores at T = 1 (module docstring): defined even where the KL term is not.
STUDENT_TERMS = ("rsr", "rsr_turn", "student_lp_explanation_mean")


@dataclass
class Tokenized:
    ids: list[int]
    think: np.ndarray  # token indices inside the think span
    solution: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    turn: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the assistant content (student context)


def span_tokens(offsets: list[tuple[int, int]] | np.ndarray, span: tuple[int, int]) -> np.ndarray:
    """Indices of the tokens whose characters lie entirely inside ``span`` (``offsets``: one
    ``(start, end)`` per token)."""
    start, end = span
    bounds = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    return np.flatnonzero((bounds[:, 0] >= start) & (bounds[:, 1] <= end)).astype(np.int64)


def tokenize_context(tokenizer: Any, context: protocol.ScoringContext) -> Tokenized:
    enc = tokenizer(context.text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    think = span_tokens(offsets, context.think)
    solution = span_tokens(offsets, context.solution) if context.solution else np.zeros(0, dtype=np.int64)
    turn = np.zeros(0, dtype=np.int64)
    if context.solution:  # the student context's assistant content: <|begin_of_thought|> ... <|end_of_solution|>
        turn = span_tokens(offsets, (context.think[0] - len(protocol.BEGIN_THOUGHT), context.solution[1] + len(protocol.END_SOLUTION)))
    # Position 0 has no preceding logits; a span never starts there in a chat-rendered context.
    return Tokenized(list(enc["input_ids"]), think[think > 0], solution[solution > 0], turn[turn > 0])


def reward_terms(lp_solution: np.ndarray, kl: np.ndarray | None, has_end_tag: bool, config: RewardConfig) -> dict:
    """The reward and its parts from per-token student log-probs and KL terms."""
    lp = np.asarray(lp_solution, dtype=np.float64)
    r_ss = config.lp_coefs[0] * lp.mean() + config.lp_coefs[1] * lp.min()
    if kl is not None and len(kl):
        kl = np.asarray(kl, dtype=np.float64)
        kl_mean, kl_max = float(kl.mean()), float(kl.max())
        r_kl = config.kl_coefs[0] * kl_mean + config.kl_coefs[1] * kl_max
    else:
        kl_mean = kl_max = None
        r_kl = 0.0
    reward = r_ss - r_kl + (0.0 if has_end_tag else config.format_penalty)
    return {
        "reward": float(reward),
        "r_ss": float(r_ss),
        "r_kl": float(r_kl),
        "lp_solution_mean": float(lp.mean()),
        "lp_solution_min": float(lp.min()),
        "kl_mean": kl_mean,
        "kl_max": kl_max,
    }


def check_tokenizers(teacher_tokenizer: Any, student_tokenizer: Any, config: RewardConfig) -> None:
    from .models import same_tokenizer

    if config.needs_teacher and not same_tokenizer(teacher_tokenizer, student_tokenizer):
        raise UserError(
            "teacher and student tokenizers differ, so the KL term is undefined; "
            "pass --kl-coefs 0,0 to score with the student's log-probs alone"
        )


def teacher_think_logprobs(scorer: Any, rows: list[dict], config: RewardConfig) -> list[dict]:
    """Teacher log-probs of the think tokens at ``config.teacher_t``, given the solution (the KL term's first half)."""
    tokenized = [
        tokenize_context(scorer.tokenizer, protocol.teacher_scoring_context(scorer.tokenizer, r["question"], r["explanation"], r["solution"]))
        for r in rows
    ]
    lps = scorer.logprobs([(t.ids, t.think) for t in tokenized], config.teacher_t)
    return [  # numpy, not Python lists: long traces have tens of thousands of think tokens
        {"teacher_think_ids": np.asarray(t.ids, dtype=np.int32)[t.think], "teacher_think_lp": np.asarray(lp, dtype=np.float32)}
        for t, lp in zip(tokenized, lps)
    ]


def rank_surprisal_ratio(lp_raw: np.ndarray, rank: np.ndarray) -> float | None:
    """``sum(rank) / sum(-lp_raw)`` (RSR); None for no token or a zero surprisal sum."""
    nll = -np.asarray(lp_raw, dtype=np.float64)
    total = float(nll.sum())
    if not len(nll) or total <= 0:
        return None
    return float(np.asarray(rank, dtype=np.float64).sum() / total)


def student_terms(lp_raw_think: np.ndarray, rank_think: np.ndarray, lp_raw_turn: np.ndarray, rank_turn: np.ndarray) -> dict:
    """The student-only columns (``STUDENT_TERMS``) from T = 1 log-probs and ranks of the two spans."""
    return {
        "rsr": rank_surprisal_ratio(lp_raw_think, rank_think),
        "rsr_turn": rank_surprisal_ratio(lp_raw_turn, rank_turn),
        "student_lp_explanation_mean": float(np.asarray(lp_raw_think, dtype=np.float64).mean()) if len(lp_raw_think) else None,
    }


def student_scores(scorer: Any, rows: list[dict], teacher: list[dict] | None, config: RewardConfig) -> list[dict]:
    """Score columns for each row (``teacher`` from :func:`teacher_think_logprobs`, or None).

    ``think_mismatch`` is True where the think-span tokens differ between the two contexts, so
    the KL term is undefined for that row; its reward is left empty (the student-only terms are not).
    """
    tokenized = [
        tokenize_context(scorer.tokenizer, protocol.student_scoring_context(scorer.tokenizer, r["question"], r["explanation"], r["solution"]))
        for r in rows
    ]

    # One forward pass per row gives every span: think, solution, then the rest of the assistant turn (tags).
    def positions(t: Tokenized) -> tuple[np.ndarray, np.ndarray]:
        rest = np.setdiff1d(t.turn, np.concatenate([t.think, t.solution]))
        return np.concatenate([t.think, t.solution, rest]).astype(np.int64), rest

    requested = [positions(t) for t in tokenized]
    stats = scorer.logprobs([(t.ids, p) for t, (p, _) in zip(tokenized, requested)], config.temperature, ranks=True)
    out = []
    for k, (row, t, st) in enumerate(zip(rows, tokenized, stats)):
        n_think, n_sol = len(t.think), len(t.solution)
        lp, lp_raw, rank = np.asarray(st[0]), np.asarray(st[1]), np.asarray(st[2])
        lp_think, lp_sol = lp[:n_think], lp[n_think : n_think + n_sol]
        in_turn = np.isin(requested[k][0], t.turn)
        base = {
            "num_solution_tokens": n_sol,
            "num_think_tokens": n_think,
            "student_context_tokens": len(t.ids),
            "think_mismatch": False,
            **student_terms(lp_raw[:n_think], rank[:n_think], lp_raw[in_turn], rank[in_turn]),
        }
        kl = None
        if teacher is not None:
            if not np.array_equal(np.asarray(teacher[k]["teacher_think_ids"]), np.asarray(t.ids, dtype=np.int64)[t.think]):
                out.append({**base, **dict.fromkeys(REWARD_TERMS), "think_mismatch": True})
                continue
            kl = np.asarray(teacher[k]["teacher_think_lp"], dtype=np.float64) - lp_think
        out.append({**base, **reward_terms(lp_sol, kl, row["has_end_tag"], config)})
    return out
