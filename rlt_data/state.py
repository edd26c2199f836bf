"""Typed run state: what ``shard.json``, ``done.json`` and ``run.json`` hold, one record each.

Every state file is written and read through these records (``shards.ShardStore``/``RunStore``
``read_*``/``write_*``), so a key is named in one place; values that follow from others are
properties, not keys (a shard's chunk and row counts from ``chunk_rows``, the scoring parameters
from its stages', the selection and shard size from the recorded options). A file of another
format, or missing a key, is read as it is (``format`` says which) and refused by the code that
needs the key (with the ``--overwrite`` hint); a file that is not JSON is one ``UserError``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError


class OldState(UserError):
    """A state file of an older rlt-data: it lacks keys this one reads (``--overwrite`` redoes the run)."""


def _from(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise OldState(f"{where} was written by an older rlt-data (run format {data.get('format')}; it lacks "
                        f"{', '.join(missing)}): pass --overwrite to redo it")
    return cls(**{k: v for k, v in data.items() if k in names})


class _Record:
    """A state file's record: built from its JSON (unknown keys ignored, a missing one: ``OldState``)."""

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "state file") -> Any:
        return _from(cls, data, where)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _WithOptions(_Record):
    """A state that records every option by section (``options.by_section``)."""

    options: dict[str, dict[str, Any]]

    @property
    def selection(self) -> dict[str, Any]:
        """The selection options recorded: for a shard, what the merge uses unless it is told otherwise."""
        return dict(self.options.get("Selection") or {})

    @property
    def max_shard_size(self) -> str:
        return self.options["Output"]["max_shard_size"]


def _merged(stages: dict[str, dict], order: list[str]) -> dict[str, Any]:
    return {k: v for name in order[1:] for k, v in (stages.get(name) or {}).items()}


@dataclass
class ShardState(_WithOptions):
    """``shard.json``: what a shard is made with, written before its first chunk."""

    format: int
    command: str  # generate or score
    generation: dict[str, Any]  # the first stage's parameters and the input's digest: the run's identity
    stages: dict[str, dict[str, Any]]  # each later stage's parameters
    order: list[str]  # the command's stages, first to last (the merge reads the last one's chunks)
    chunking: str  # digest of the shard's question ids in order
    chunk_rows: list[int]  # questions per chunk: what each chunk must hold
    num_input_rows: int
    skipped_rows: dict[str, int]
    decontamination: dict[str, Any] | None  # its parameters and what it flagged in this shard (None: not run)
    schema: str  # the input's row format
    options: dict[str, dict[str, Any]]  # every option, by section (the card shows them so)
    backend: str
    rlt_data_version: str

    @property
    def num_chunks(self) -> int:
        return len(self.chunk_rows)

    @property
    def num_rows(self) -> int:
        return sum(self.chunk_rows)

    @property
    def scoring(self) -> dict[str, Any]:
        """The later stages' parameters, merged (what run.json, the card and the merge compare)."""
        return _merged(self.stages, self.order)

    @property
    def decontamination_params(self) -> dict[str, Any] | None:
        return (self.decontamination or {}).get("params")


@dataclass
class ShardDone(_Record):
    """``done.json``: the shard's completion marker, written after its last chunk."""

    num_rows: int
    num_chunks: int
    num_candidates: int


@dataclass
class RunSummary(_Record):
    """What a merge found and wrote: the end-of-run table (``report.py``) and the card render it."""

    num_questions: int
    num_candidates: int
    num_kept: int
    status_counts: dict[str, int]
    skipped_rows: dict[str, int]
    reward_all: dict[str, float] | None  # mean and quantiles (None: nothing scored)
    reward_kept: dict[str, float] | None
    completion_tokens: int
    kept_student_tokens: int
    data_files: list[str]
    sharegpt_files: list[str]
    candidate_files: list[str]
    chunks_done: str  # "scored/total"
    shards_done: str  # "finished/total"
    plots: list[str] = field(default_factory=list)
    decontamination: dict[str, Any] | None = None
    cost: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunState(_WithOptions):
    """``run.json``: a merged run (its shards' common parameters, where they are, and what was published)."""

    format: int
    command: str
    generation: dict[str, Any]
    scoring: dict[str, Any]
    num_input_rows: int
    schema: str
    num_shards: int
    num_chunks: int
    shard_sources: list[str]  # "." (this folder) or absolute folders holding the shards
    complete: bool
    summary: RunSummary
    options: dict[str, dict[str, Any]]  # by section: this merge's selection and shard size
    card_extra: dict[str, Any]  # what the card shows beside the options ({"backend": ...})
    rlt_data_version: str

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "run.json") -> "RunState":
        state = _from(cls, data, where)
        state.summary = RunSummary.from_json(data["summary"], where) if isinstance(data["summary"], dict) else data["summary"]
        return state

    @property
    def skipped_rows(self) -> dict[str, int]:
        return self.summary.skipped_rows
