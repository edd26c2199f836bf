"""Decontamination: input rows whose question (or solution) matches a benchmark problem are flagged,
and dropped, before any model runs (``generate``/``score --decontaminate``), or a set is checked on
its own (``rlt-data decontaminate``).

Benchmarks are read with ``evaluate``'s loader (``eval_sets``: the same sets, the same ``--data
NAME=SOURCE`` local copies; here ``--decontaminate-data``); the check is ``contamination.py``:

- ``ngram`` (default; open-r1 ``scripts/decontaminate.py``, after s1): lowercase, collapse
  whitespace, split on whitespace; a row matches a problem when they share one word n-gram
  (``--ngram-size``, 8). A problem of fewer than n words matches a row that contains all of it.
- ``fuzzy`` (OpenThoughts ``decontaminate.py``): rapidfuzz's ``fuzz.ratio`` (normalized Indel
  similarity) between the normalized texts at or above ``--fuzzy-threshold`` (95). rapidfuzz is
  used when installed; otherwise the same ratio is computed here (``contamination.ratio``).

In a run, the result is one stage before generation: its parameters (``params``) are recorded in
every shard; a rerun with other ones recomputes it and every stage after it (the rows to generate
for changed), while the run's identity, the input rows and the generation options, stays. The
result is kept in ``.rlt/decontamination.json`` (every flagged row and its matches), labelled with
those parameters and the input's digest; shards read it instead of loading the benchmarks again.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .errors import UserError
from .options import DecontaminationOptions

log = logging.getLogger("rlt_data")

METHODS = ("ngram", "fuzzy")
FIELDS = ("question", "solution")
STANDALONE_BENCHMARKS = ("aime24", "aime25", "math500", "gpqa_diamond")  # `rlt-data decontaminate` without --decontaminate
CACHE_FILE = "decontamination.json"
EXAMPLES = 3  # per benchmark, in run.json and the card
SNIPPET = 160  # characters of a problem shown as an example


def _names(value: str) -> list[str]:
    return [n.strip() for n in str(value).split(",") if n.strip()]


def parse_data(value: str | None) -> dict[str, str]:
    """``NAME=SOURCE[,NAME=SOURCE]`` -> {name: source}."""
    out = {}
    for entry in _names(value or ""):
        name, sep, source = entry.partition("=")
        if not sep or not name.strip() or not source.strip():
            raise UserError(f"--decontaminate-data takes NAME=SOURCE[,NAME=SOURCE] (e.g. math500=./math500.jsonl), not {entry!r}")
        out[name.strip()] = source.strip()
    return out


def validate(config: DecontaminationOptions) -> None:
    """The decontamination section, checked without loading anything."""
    from .eval_sets import BENCHMARKS

    if config.decontaminate_method not in METHODS:
        raise UserError(f"--decontaminate-method must be one of {', '.join(METHODS)}, not {config.decontaminate_method!r}")
    if config.ngram_size < 1:
        raise UserError(f"--ngram-size must be at least 1, not {config.ngram_size}")
    if not 0 <= config.fuzzy_threshold <= 100:
        raise UserError(f"--fuzzy-threshold must be in 0..100, not {config.fuzzy_threshold}")
    fields = _names(config.decontaminate_fields)
    if not fields or any(f not in FIELDS for f in fields):
        raise UserError(f"--decontaminate-fields takes question, solution or question,solution, not {config.decontaminate_fields!r}")
    if config.decontaminate is None:
        return
    names = _names(config.decontaminate)
    if not names:
        raise UserError("--decontaminate takes comma-separated benchmarks, e.g. aime24,aime25,math500,gpqa_diamond")
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise UserError(f"--decontaminate: unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    extra = [n for n in parse_data(config.decontaminate_data) if n not in names]
    if extra:
        raise UserError(f"--decontaminate-data {extra[0]}=...: {extra[0]!r} is not among --decontaminate ({', '.join(names)})")


def params(config: DecontaminationOptions) -> dict[str, Any] | None:
    """What identifies the stage's output (None: not run). Only the active method's setting counts."""
    if not config.decontaminate:
        return None
    from .sharding import resolved

    method = config.decontaminate_method
    return {
        "benchmarks": _names(config.decontaminate),
        "data": {k: resolved(v) for k, v in sorted(parse_data(config.decontaminate_data).items())},
        "method": method,
        **({"ngram_size": config.ngram_size} if method == "ngram" else {"fuzzy_threshold": float(config.fuzzy_threshold)}),
        "fields": _names(config.decontaminate_fields),
        "keep_contaminated": bool(config.keep_contaminated),
    }


def load_problems(p: dict[str, Any]) -> list[tuple[tuple[str, str], str]]:
    """((benchmark, problem id), problem text) of every benchmark, through evaluate's loader."""
    from .eval_sets import load_items, resolve

    return [((bench.name, item.id), item.question) for bench in resolve(p["benchmarks"], p["data"]) for item in load_items(bench)]


def _snippet(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 3] + "..."


def check(rows: list[dict], p: dict[str, Any], problems: list[tuple[tuple[str, str], str]]) -> dict[int, list[dict]]:
    """Position in ``rows`` -> its matches ({benchmark, problem_id, field, match, problem}), for the flagged rows."""
    from . import contamination

    text_of = dict(problems)
    found: dict[int, list[dict]] = {}
    if p["method"] == "ngram":
        index = contamination.build_index(problems, n=p["ngram_size"], whole_short=True)
        for field in p["fields"]:
            for m in contamination.match([r.get(field) or "" for r in rows], index):
                by_bench: dict[str, str] = {}
                for bench, pid in sorted(m.keys):
                    by_bench.setdefault(bench, pid)
                found.setdefault(m.row, []).extend(
                    {"benchmark": b, "problem_id": pid, "field": field, "match": m.ngram, "problem": _snippet(text_of[(b, pid)])}
                    for b, pid in by_bench.items())
        return found
    best = _fuzzy_matcher(problems, p["fuzzy_threshold"])
    for field in p["fields"]:
        for k, r in enumerate(rows):
            hit = best(r.get(field) or "")
            if hit is not None:
                score, (bench, pid) = hit
                found.setdefault(k, []).append({"benchmark": bench, "problem_id": pid, "field": field,
                                                "match": f"ratio {score:.1f}", "problem": _snippet(text_of[(bench, pid)])})
    return found


def _fuzzy_matcher(problems, threshold: float):
    """text -> (ratio, key) of the closest problem at or above ``threshold``, or None: rapidfuzz's
    ``process.extractOne`` when installed, else ``contamination.FuzzyIndex`` (the same ratio)."""
    from . import contamination

    try:
        from rapidfuzz import fuzz, process
    except ImportError:
        index = contamination.build_fuzzy_index(problems, threshold)

        def best(text: str):
            hit = index.best(text)
            return None if hit is None else (hit[0], hit[1])

        return best
    keys = [k for k, _ in problems]
    texts = [contamination.normalize(t) for _, t in problems]

    def best_rf(text: str):
        hit = process.extractOne(contamination.normalize(text), texts, scorer=fuzz.ratio, score_cutoff=threshold)
        return None if hit is None else (float(hit[1]), keys[hit[2]])

    return best_rf


def run_check(rows: list[dict], p: dict[str, Any]) -> dict[str, Any]:
    """The stage's result over ``rows`` (with ``id``): every flagged row and its matches, and the time it took."""
    start = time.perf_counter()
    problems = load_problems(p)
    found = check(rows, p, problems)
    flagged = [{"row_index": k, "id": rows[k]["id"], "benchmarks": sorted({m["benchmark"] for m in found[k]}), "matches": found[k]}
               for k in sorted(found)]
    wall = time.perf_counter() - start
    log.info("decontaminate: %d rows checked against %d problems of %s (%s): %d flagged, %s, in %.1f s", len(rows), len(problems),
             ", ".join(p["benchmarks"]), p["method"], len(flagged), "kept" if p["keep_contaminated"] else "dropped", wall)
    return {"params": p, "rows_checked": len(rows), "benchmark_problems": dict(Counter(k[0] for k, _ in problems)),
            "flagged": flagged, "wall_s": wall}


# -- in a run: cached once per input and parameters ----------------------------------------------
def cached(state_dir: Path, p: dict[str, Any], rows_digest: str) -> dict[str, Any] | None:
    path = Path(state_dir) / CACHE_FILE
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("label") != {"params": p, "rows": rows_digest}:
        return None
    return data


def write_cache(state_dir: Path, result: dict[str, Any], rows_digest: str) -> None:
    from .shards import write_json

    if cached(state_dir, result["params"], rows_digest) is not None:
        return  # already there (a rerun): left as it is
    write_json(Path(state_dir) / CACHE_FILE, {**result, "label": {"params": result["params"], "rows": rows_digest}})


def shard_summary(result: dict[str, Any] | None, own_ids: set[str], num_own_input: int) -> dict[str, Any] | None:
    """What a shard records of the stage (its own rows): rows checked, flagged and removed per benchmark, examples."""
    if result is None:
        return None
    mine = [f for f in result["flagged"] if f["id"] in own_ids]
    keep = result["params"]["keep_contaminated"]
    per_bench = Counter(b for f in mine for b in f["benchmarks"])
    examples: dict[str, list] = {}
    for f in mine:
        for m in f["matches"]:
            if len(examples.setdefault(m["benchmark"], [])) < EXAMPLES and f["id"] not in {e["id"] for e in examples[m["benchmark"]]}:
                examples[m["benchmark"]].append({"id": f["id"], "row_index": f["row_index"], **{k: m[k] for k in ("problem_id", "field", "match", "problem")}})
    return {
        "params": result["params"], "rows_checked": num_own_input, "rows_flagged": len(mine), "rows_removed": 0 if keep else len(mine),
        "flagged": {b: per_bench.get(b, 0) for b in result["params"]["benchmarks"]},
        "removed": {b: 0 if keep else per_bench.get(b, 0) for b in result["params"]["benchmarks"]},
        "examples": examples, "wall_s": result["wall_s"],
    }


def combine(summaries: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The run's decontamination from its shards' summaries (sums; the first three examples per benchmark, by input row)."""
    present = [s for s in summaries if s]
    if not present:
        return None
    out = {"params": present[0]["params"], "wall_s": present[0]["wall_s"]}
    for key in ("rows_checked", "rows_flagged", "rows_removed"):
        out[key] = sum(s[key] for s in present)
    for key in ("flagged", "removed"):
        total: Counter = Counter()
        for s in present:
            total.update(s[key])
        out[key] = {b: total.get(b, 0) for b in out["params"]["benchmarks"]}
    out["examples"] = {b: sorted((e for s in present for e in s["examples"].get(b, [])), key=lambda e: e["row_index"])[:EXAMPLES]
                       for b in out["params"]["benchmarks"]}
    return out


# -- `rlt-data decontaminate SOURCE` -------------------------------------------------------------
def standalone(source: str, config: Any) -> dict[str, Any]:
    """Check ``source`` (a run folder's kept rows, or any dataset ``generate`` reads) and write
    ``--output``: ``report.json`` (parameters, counts per benchmark, every flagged row and its
    matches) and ``train.parquet``, the rows without the flagged ones (all of them with
    ``--keep-contaminated``, flagged in ``contaminated``/``contamination``). Without ``--output``:
    the report only, printed."""
    import pyarrow as pa

    if not config.decontamination.decontaminate:
        config.decontamination.decontaminate = ",".join(STANDALONE_BENCHMARKS)
        validate(config.decontamination)
    p = params(config.decontamination)
    rows, columns = _standalone_rows(source, config)
    result = run_check(rows, p)
    flagged = {f["row_index"]: f for f in result["flagged"]}
    summary = combine([shard_summary(result, {r["id"] for r in rows}, len(rows))])
    report = {"source": source, **summary, "rows_written": None, "flagged_rows": result["flagged"],
              "benchmark_problems": result["benchmark_problems"]}
    if config.report.output:
        from .shards import write_json, write_parquet

        out = Path(config.report.output).expanduser()
        if out.exists() and not out.is_dir():
            raise UserError(f"--output {out} is a file, not a folder")
        kept = []
        for k, r in enumerate(rows):
            if k in flagged and not p["keep_contaminated"]:
                continue
            row = {c: r.get(c) for c in columns}
            if p["keep_contaminated"]:
                row["contaminated"] = k in flagged
                row["contamination"] = json.dumps(flagged[k]["matches"], ensure_ascii=False) if k in flagged else None
            kept.append(row)
        table = pa.Table.from_pylist(kept) if kept else pa.table({c: pa.array([], pa.string()) for c in columns})
        write_parquet(out / "train.parquet", table)
        report["rows_written"] = len(kept)
        write_json(out / "report.json", report)
    return report


def _standalone_rows(source: str, config: Any) -> tuple[list[dict], list[str]]:
    """The rows to check, each with ``id``, ``question`` and ``solution``, and the columns a copy keeps."""
    from dataclasses import replace

    import pyarrow.parquet as pq

    from .sources import read_input

    path = Path(source).expanduser()
    shards = sorted((path / "data").glob("train-*.parquet")) if path.is_dir() else []
    if shards:  # a run folder: its kept rows, every column
        table = pq.read_table(shards)
        rows = table.to_pylist()
        for k, r in enumerate(rows):
            r.setdefault("id", str(k))
        return rows, [c for c in table.column_names]
    loaded = read_input(replace(config.input, dataset=source))
    if not loaded.rows:
        raise UserError(f"no usable rows in {source} (skipped: {dict(loaded.skipped)})")
    return loaded.rows, list(loaded.rows[0])
