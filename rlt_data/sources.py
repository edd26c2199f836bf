"""Input sets -> normalized rows ``{id, question, solution[, explanation]}``.

Recognized without flags:
- Bespoke-Stratos / OpenThoughts rows: ``conversations`` of ``{from, value}``; the solution is the
  text inside the assistant turn's ``<|begin_of_solution|>`` tags, the thought (for ``score``) the
  text inside ``<|begin_of_thought|>`` tags.
- ``messages`` rows of ``{role, content}``; an assistant turn without solution tags is the
  solution as a whole.
- Flat rows with a question column (``question``, ``problem`` or ``prompt``) and a ``solution``
  column (and an ``explanation`` column for ``score``).

Rows that cannot be used are skipped and counted by reason (``--strict``: refused): empty question,
no solution, no solution tags, no explanation, duplicate id, ``bad_type``: a question,
solution, explanation or chat turn that is not text (a number, a list, a dict; a flat row's numeric
solution is read as its text, an integral float such as ``117.0`` as ``117``), and
``control_text``: a question, solution or explanation that contains a protocol tag or a chat
control token (``<|end_of_solution|>``, ``<|im_end|>``: such text would read back as another
solution, or open turns of its own in the teacher's and the student's contexts). A missing value
(``None``, or a NaN cell of a Parquet float column) is missing: an empty question, no solution.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import protocol
from .errors import MissingColumn, UserError, first_line
from .models import is_local

QUESTION_COLUMNS = ("question", "problem", "prompt")
SOLUTION_COLUMNS = ("solution",)
EXPLANATION_COLUMNS = ("explanation",)
ID_COLUMNS = ("id",)
FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass
class LoadedRows:
    rows: list[dict[str, str]]
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    schema: str = ""
    num_input_rows: int = 0


def _local_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in FILE_SUFFIXES)
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(path).parts)]
    if not files:
        raise UserError(f"no .jsonl, .json or .parquet files in {path}")
    return files


def _read_jsonl(path: Path, text: str) -> list[Any]:
    """JSON lines split on ``\n`` only: U+2028, U+2029 and U+0085 are text inside a string, not line
    breaks (``str.splitlines`` would cut a valid line there)."""
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"cannot parse {path}, line {number}: {exc.msg} (column {exc.colno})") from None
    return records


def _read_file(path: Path) -> list[dict[str, Any]]:
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        text = path.read_text("utf-8")
        if path.suffix == ".jsonl" or not text.lstrip().startswith("["):
            return _read_jsonl(path, text)
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError("expected a JSON list of objects")
        return data
    except UserError:
        raise
    except Exception as exc:  # any parse failure is the user's input, not a bug
        raise UserError(f"cannot parse {path}: {type(exc).__name__}" + (f": {first_line(exc)}" if str(exc).strip() else ""))


def read_records(dataset: str, split: str = "train", subset: str | None = None, revision: str | None = None) -> list[dict]:
    """Raw records of a local file/folder or a Hub dataset."""
    path = Path(dataset).expanduser()
    if path.exists():
        records: list[dict] = []
        for file in _local_files(path):
            records.extend(_read_file(file))
        if not all(isinstance(r, dict) for r in records):
            raise UserError(f"{dataset}: every record must be a JSON object")
        return records
    if path.suffix in FILE_SUFFIXES or is_local(dataset):
        raise UserError(f"dataset not found: {dataset}")
    import datasets

    try:
        ds = datasets.load_dataset(dataset, name=subset, split=split, revision=revision)
    except Exception as exc:
        first = first_line(exc)
        raise UserError(f"cannot load dataset {dataset!r} from the Hub: {first}")
    return ds.to_list()


def _missing(value: Any) -> bool:
    """None, or a float NaN (how pandas and Arrow float columns spell a missing cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> Any:
    """A missing cell is empty text; anything else stays as it is (a non-string is a ``bad_type`` row)."""
    return "" if _missing(value) else value


def _number_text(value: Any) -> Any:
    """A flat row's numeric answer as its text: ``42`` and ``117.0`` (an integer in a float column)
    both as integers, ``0.5`` as ``0.5``; infinities stay numbers (``bad_type``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        if value.is_integer():
            return str(int(value))
    return str(value)


# Protocol tags and chat control tokens (<|im_end|>, <|end_of_solution|>, <|eot_id|>, ...): text that
# carries one would change what the teacher and the student read, or what a row parses back to.
CONTROL_TEXT = re.compile(r"<\|[A-Za-z0-9_]+\|>")


def _turns(turns: Any, role_key: str, text_key: str) -> dict[str, str]:
    """First user and first assistant text of a chat, by normalized role."""
    roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
    found: dict[str, str] = {}
    for turn in turns or []:
        if not isinstance(turn, dict):
            continue
        role = roles.get(str(turn.get(role_key, "")).lower())
        if role and role not in found:
            found[role] = _text(turn.get(text_key))
    return found


def detect_schema(columns: Iterable[str], question_column: str | None, solution_column: str | None) -> str:
    columns = set(columns)
    if question_column or solution_column:
        return "flat"
    if "conversations" in columns:
        return "conversations"
    if "messages" in columns:
        return "messages"
    if columns & set(QUESTION_COLUMNS) and columns & set(SOLUTION_COLUMNS):
        return "flat"
    raise UserError(
        "no recognizable question/solution columns; saw columns "
        f"{sorted(columns)}; expected 'conversations', 'messages', or one of {list(QUESTION_COLUMNS)} "
        "with 'solution' (or pass --question-column/--solution-column)"
    )


def _pick(columns: set[str], override: str | None, candidates: tuple[str, ...], what: str) -> str:
    if override:
        if override not in columns:
            raise MissingColumn(f"{what} column {override!r} not found; saw columns {sorted(columns)}", what)
        return override
    for name in candidates:
        if name in columns:
            return name
    raise MissingColumn(f"no {what} column (one of {list(candidates)}); saw columns {sorted(columns)}", what)


def _row_id(record: dict, question: str, solution: str) -> str:
    for key in ID_COLUMNS:
        value = record.get(key)
        if not _missing(value) and value != "":
            return str(_number_text(value))
    return hashlib.sha256(f"{question}\0{solution}".encode("utf-8")).hexdigest()[:16]


def normalize(
    records: list[dict],
    *,
    question_column: str | None = None,
    solution_column: str | None = None,
    with_explanation: bool = False,
    explanation_column: str | None = None,
    limit: int | None = None,
    strict: bool = False,
) -> LoadedRows:
    """Turn raw records into rows; rows that cannot be used are counted by reason (or raise)."""
    if limit is not None:
        records = records[:limit]
    if not records:
        raise UserError("the dataset has no rows")
    columns: set[str] = set()
    for record in records[:100]:
        columns.update(record)
    schema = detect_schema(columns, question_column, solution_column)
    if schema == "flat":
        qcol = _pick(columns, question_column, QUESTION_COLUMNS, "question")
        scol = _pick(columns, solution_column, SOLUTION_COLUMNS, "solution")
        ecol = _pick(columns, explanation_column, EXPLANATION_COLUMNS, "explanation") if with_explanation else None
    out = LoadedRows(rows=[], schema=schema, num_input_rows=len(records))
    seen: set[str] = set()
    for index, record in enumerate(records):
        explanation: str | None = None
        if schema == "flat":
            question, solution = _text(record.get(qcol)), _number_text(_text(record.get(scol)))
            if ecol:
                explanation = None if _missing(record.get(ecol)) else record.get(ecol)
            problem = None
        else:
            key, role, text = ("conversations", "from", "value") if schema == "conversations" else ("messages", "role", "content")
            turns = _turns(record.get(key), role, text)
            question = turns.get("user", "")
            answer = turns.get("assistant", "")
            problem = None if isinstance(answer, str) else "bad_type"
            solution = protocol.extract_tagged(answer, protocol.BEGIN_SOLUTION, protocol.END_SOLUTION) if problem is None else ""
            if solution is None:
                if schema == "conversations" or protocol.BEGIN_THOUGHT in answer:
                    problem = "no_solution_tags"
                else:
                    solution = answer
            if with_explanation:
                explanation = record.get(explanation_column or "explanation")
                explanation = None if _missing(explanation) else explanation
                if explanation is None and problem is None:
                    explanation = protocol.extract_tagged(answer, protocol.BEGIN_THOUGHT, protocol.END_THOUGHT)
        if problem is None and not all(isinstance(v, str) for v in (question, solution, _text(explanation))):
            problem = "bad_type"  # a number, list or dict where text belongs: no guess at how to render it
        if problem is None:
            if not question.strip():
                problem = "empty_question"
            elif not (solution or "").strip():
                problem = "no_solution"
            elif with_explanation and not (explanation or "").strip():
                problem = "no_explanation"
            elif any(CONTROL_TEXT.search(v) for v in (question, solution, explanation or "")):
                problem = "control_text"
        if problem is None:
            row_id = _row_id(record, question, solution)
            if row_id in seen:
                problem = "duplicate_id"
        if problem is not None:
            if strict:
                raise UserError(f"row {index} cannot be used: {problem} (drop --strict to skip such rows)")
            out.skipped[problem] += 1
            continue
        seen.add(row_id)
        row = {"id": row_id, "question": question, "solution": solution.strip()}
        if with_explanation:
            row["explanation"] = str(explanation).strip()
        out.rows.append(row)
    return out


def load_rows(
    dataset: str,
    *,
    split: str = "train",
    subset: str | None = None,
    revision: str | None = None,
    **kwargs: Any,
) -> LoadedRows:
    return normalize(read_records(dataset, split=split, subset=subset, revision=revision), **kwargs)


def read_input(options: Any, *, with_explanation: bool = False, explanation_column: str | None = None) -> LoadedRows:
    """The rows of an input section (``options.InputOptions``: dataset, split, subset, revision, columns,
    limit, strict); ``explanation_column``/``with_explanation``: the given explanations of ``score``."""
    return load_rows(
        options.dataset, split=options.split, subset=options.subset, revision=options.revision,
        question_column=options.question_column, solution_column=options.solution_column, limit=options.limit,
        strict=options.strict, with_explanation=with_explanation, explanation_column=explanation_column,
    )
