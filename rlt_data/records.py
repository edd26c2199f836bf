"""Typed records: what flows between the stages, and what the published configs hold.

Each record is a dataclass; its Arrow schema is derived from its fields here, once
(``schema(...)``), so a column is named and typed in one place. Chunk files store records of a
stage (``shards.SCHEMAS``), the published configs (``data/``, ``sharegpt/``, ``candidates/``) are
built from them (``merge.py``), and the stages build them (``stages/``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


def _arrow(default: Any, arrow_type: pa.DataType) -> Any:
    """A field whose Arrow type is not the one its Python type maps to."""
    return field(default=default, metadata={"arrow": arrow_type})


_TYPES = {
    "str": pa.string(), "str | None": pa.string(), "bool": pa.bool_(), "int": pa.int32(), "int | None": pa.int32(),
    "float": pa.float64(), "float | None": pa.float64(), "list[int]": pa.list_(pa.int32()), "list[float]": pa.list_(pa.float32()),
}


def fields(*records: type) -> list[tuple[str, pa.DataType]]:
    out = []
    for record in records:
        for f in dataclasses.fields(record):
            out.append((f.name, f.metadata.get("arrow") or _TYPES[str(f.type)]))
    return out


def schema(*records: type) -> pa.Schema:
    """The Arrow schema of the records' fields, in order."""
    return pa.schema(fields(*records))


def row(*parts: Any) -> dict[str, Any]:
    """One dict of several records' fields (the row of a chunk file or a published config)."""
    out: dict[str, Any] = {}
    for part in parts:
        out.update(dataclasses.asdict(part) if dataclasses.is_dataclass(part) else part)
    return out


@dataclass
class Candidate:
    """One sample of a question, as the generate stage writes it (``score`` makes one per given explanation)."""

    id: str
    question: str
    solution: str
    sample_index: int
    completion: str  # the raw teacher text after the prompt
    explanation: str  # between the tags (protocol.parse_completion)
    has_end_tag: bool
    truncated: bool  # stopped by --max-new-tokens: never scored, never kept
    num_completion_tokens: int | None


@dataclass
class Position:
    """Where a question stands in the input: a merge of shards writes rows in input order with it."""

    row_index: int = _arrow(0, pa.int64())


@dataclass
class TeacherThink:
    """The teacher stage's output for a candidate: its think tokens and their log-probs (at teacher T)."""

    teacher_think_ids: list[int]
    teacher_think_lp: list[float]


@dataclass
class Scores:
    """The student stage's output for a candidate: the reward and its parts (RLT_SPEC); empty when not scored."""

    reward: float | None = None
    r_ss: float | None = None
    r_kl: float | None = None
    lp_solution_mean: float | None = None
    lp_solution_min: float | None = None
    kl_mean: float | None = None
    kl_max: float | None = None
    # student-only scores at T = 1 from the same pass (scoring.STUDENT_TERMS; select --keep-by any of them)
    rsr: float | None = None  # Rank-Surprisal Ratio of the explanation tokens (lower: better)
    rsr_turn: float | None = None  # the same over the whole assistant turn
    student_lp_explanation_mean: float | None = None  # the student's mean log-prob of the explanation tokens
    num_solution_tokens: int | None = None
    num_think_tokens: int | None = None
    student_context_tokens: int | None = None


@dataclass
class Mismatch:
    think_mismatch: bool = False  # think tokens differ between the teacher and student contexts: no KL, no reward


@dataclass
class Status:
    status: str  # selection.STATUSES


@dataclass
class TrainingRow:
    """A row of config ``default`` (``data/``): ``messages`` is the scored student context, system turn first."""

    id: str
    question: str
    solution: str
    explanation: str
    messages: list = _arrow(None, pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))
    sample_index: int = 0
    num_explanation_tokens: int | None = None


@dataclass
class ShareGPTRow:
    """The same row in config ``sharegpt`` (``sharegpt/``): the Bespoke-Stratos schema."""

    id: str
    system: str
    conversations: list = _arrow(None, pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())])))
