"""Decontamination (issue #22, part 1): benchmark problems are removed from the input before any
model runs, by a shared word 8-gram (open-r1) or a fuzzy ratio (OpenThoughts); counted in run.json
and the card; other decontamination parameters recompute that stage and every stage after it, and
nothing before. Benchmarks come through evaluate's loader: the toy benchmark, and a small local
"math500" (``--decontaminate-data math500=FILE``). Runs use the dummy backend (plumbing only).
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import gen_args, invoke, read, write_jsonl, write_toy_set

from rlt_data import contamination

LONG = ("Let a and b be positive integers such that the sum of their squares equals the product of "
        "their cubes plus seven; find the smallest possible value of a plus b")
FUZZY = "Compute the number of ordered pairs of integers x and y with x squared plus y squared at most twenty five."
BENCH = [{"id": "p-long", "problem": LONG, "answer": "3"}, {"id": "p-fuzzy", "problem": FUZZY, "answer": "81"}]
TOY_Q = "What is 78 + 52?"  # the toy benchmark's first problem (5 words: matched whole)
L = LONG.split()
PLANTED = [
    ("verbatim", f"Return your final response within \\boxed{{}}. {TOY_Q}", True),
    ("case-space", "  WHAT   is 78\n +   52?  ", True),
    ("one-8gram", "Consider this: " + " ".join(L[3:11]) + " -- otherwise unrelated words here", True),
    ("only-7", "Consider this: " + " ".join(L[3:10]) + " -- otherwise unrelated words here", False),
]


def _dataset(root: Path, n_toy: int = 6) -> Path:
    from rlt_data.testing import toy

    rows = [{"id": f"toy-{k}", "question": r["question"], "solution": r["solution"]} for k, r in enumerate(toy.toy_rows(n_toy, seed=5))]
    rows += [{"id": name, "question": q, "solution": "\\boxed{1}"} for name, q, _ in PLANTED]
    rows.append({"id": "one-char", "question": FUZZY.replace("twenty five", "twenty fives"), "solution": "\\boxed{81}"})
    return write_jsonl(root / "set.jsonl", rows)


@pytest.fixture
def files(tmp_path):
    return _dataset(tmp_path), write_jsonl(tmp_path / "math500.jsonl", BENCH)


def _decon(bench: Path, *extra) -> list:
    return ["--decontaminate", "toy,math500", "--decontaminate-data", f"math500={bench}", *extra]


def _gen(models, dataset, out, *extra):
    return invoke(*gen_args(models, dataset, out, "--backend", "dummy", *extra, samples=2, chunk_size=3))


def test_ngram_rules():
    index = contamination.build_index({("b", "1"): LONG, ("toy", "0"): TOY_Q}, whole_short=True)
    texts = [q for _, q, _ in PLANTED]
    hit = {m.row for m in contamination.match(texts, index)}
    assert hit == {k for k, (_, _, removed) in enumerate(PLANTED) if removed}
    # evaluate's cross-check keeps open-r1's rule: a problem shorter than n words never matches
    assert not contamination.match([TOY_Q], contamination.build_index({("toy", "0"): TOY_Q}))


def test_fuzzy_ratio_matches_a_naive_indel_ratio():
    def naive(a, b):
        d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                d[i + 1][j + 1] = d[i][j] + 1 if x == y else max(d[i][j + 1], d[i + 1][j])
        return 100.0 if not a and not b else 200.0 * d[-1][-1] / (len(a) + len(b))

    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("abd ") for _ in range(rng.randint(0, 40)))
        assert contamination.ratio(a, b) == pytest.approx(naive(a, b))
    index = contamination.build_fuzzy_index({("b", "f"): FUZZY, ("b", "l"): LONG}, 95)
    assert index.best(FUZZY[:-1] + "!")[1] == ("b", "f")  # one character edited
    assert index.best(FUZZY.upper())[1] == ("b", "f")  # normalized (lowercased) first
    assert index.best(FUZZY[: len(FUZZY) // 2]) is None


def test_generate_removes_planted_rows_and_counts_them(toy_models, files, tmp_path, caplog):
    dataset, bench = files
    caplog.set_level(logging.INFO, logger="rlt_data")
    result = _gen(toy_models, dataset, tmp_path / "run", *_decon(bench))
    assert result.exit_code == 0, result.output
    kept_ids = {r["id"] for r in read(tmp_path / "run" / "candidates")}
    removed = {name for name, _, gone in PLANTED if gone} | {"one-char"}  # the edited copy keeps 8-grams of FUZZY too
    assert not kept_ids & removed and "only-7" in kept_ids and len(kept_ids) == 6 + 1
    state = json.loads((tmp_path / "run" / ".rlt" / "run.json").read_text())
    d = state["summary"]["decontamination"]
    assert d["removed"] == {"toy": 2, "math500": 2} and d["rows_removed"] == 4 and d["rows_checked"] == 6 + len(PLANTED) + 1
    assert [e["id"] for e in d["examples"]["toy"]] == ["verbatim", "case-space"]
    card = (tmp_path / "run" / "README.md").read_text()
    assert "| toy | 2 | 2 |" in card and "| math500 | 2 | 2 |" in card and "problem `p-long`" in card
    flagged = json.loads((tmp_path / "run" / ".rlt" / "decontamination.json").read_text())["flagged"]
    assert {f["id"] for f in flagged} == removed


def test_reordered_input_drops_the_same_rows(toy_models, files, tmp_path):
    """The cached decontamination holds for the rows as a set: after the input is reordered (and
    rerun with --overwrite, as the refusal says), the flagged rows are dropped by id, never by position."""
    dataset, bench = files
    assert _gen(toy_models, dataset, tmp_path / "run", *_decon(bench)).exit_code == 0
    first = {r["id"] for r in read(tmp_path / "run" / "candidates")}
    lines = dataset.read_text().splitlines()
    dataset.write_text("\n".join(reversed(lines)) + "\n")
    again = _gen(toy_models, dataset, tmp_path / "run", *_decon(bench), "--overwrite")
    assert again.exit_code == 0, again.output
    assert {r["id"] for r in read(tmp_path / "run" / "candidates")} == first


def test_card_warns_when_not_run(toy_models, tmp_path):
    dataset = write_toy_set(tmp_path / "set.jsonl", 4, 3)
    assert _gen(toy_models, dataset, tmp_path / "run").exit_code == 0
    assert "decontamination was not run" in (tmp_path / "run" / "README.md").read_text()


def test_fuzzy_removes_a_one_character_edit(toy_models, files, tmp_path):
    dataset, bench = files
    out = tmp_path / "fz"
    # the standalone command, report and copy; fuzzy on questions: only the edit of FUZZY is that close
    result = invoke("decontaminate", dataset, "--decontaminate", "math500", "--decontaminate-data", f"math500={bench}",
                    "--decontaminate-method", "fuzzy", "--output", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [f["id"] for f in report["flagged_rows"]] == ["one-char"] and report["removed"] == {"math500": 1}
    assert "one-char" not in {r["id"] for r in pq.read_table(out / "train.parquet").to_pylist()}
    kept = invoke("decontaminate", dataset, "--decontaminate", "math500", "--decontaminate-data", f"math500={bench}",
                  "--decontaminate-method", "fuzzy", "--keep-contaminated", "--output", out)
    assert kept.exit_code == 0, kept.output
    rows = pq.read_table(out / "train.parquet").to_pylist()
    assert len(rows) == 6 + len(PLANTED) + 1 and [r["id"] for r in rows if r["contaminated"]] == ["one-char"]


def test_other_parameters_recompute_decontamination_and_what_follows_only(toy_models, files, tmp_path, caplog):
    dataset, bench = files
    run = tmp_path / "run"
    assert _gen(toy_models, dataset, run, *_decon(bench)).exit_code == 0
    state_dir = run / ".rlt"
    cache = state_dir / "decontamination.json"
    before = {p.name: p.stat().st_mtime_ns for p in (state_dir / "generated").glob("*.parquet")}
    cache_time = cache.stat().st_mtime_ns
    # a scoring change: the decontamination stage and the generations stay as they are
    caplog.set_level(logging.INFO, logger="rlt_data")
    caplog.clear()
    assert _gen(toy_models, dataset, run, *_decon(bench), "--kl-coefs", "0,0").exit_code == 0
    assert "rows checked against" not in caplog.text and cache.stat().st_mtime_ns == cache_time
    assert before == {p.name: p.stat().st_mtime_ns for p in (state_dir / "generated").glob("*.parquet")}
    # other decontamination parameters: recomputed, then every stage after it, in the same run (no --overwrite)
    caplog.clear()
    result = _gen(toy_models, dataset, run, *_decon(bench, "--ngram-size", "7"), "--kl-coefs", "0,0")
    assert result.exit_code == 0, result.output
    assert "rows checked against" in caplog.text and "recomputing decontamination, generated, teacher, scored" in caplog.text
    assert json.loads((state_dir / "run.json").read_text())["summary"]["decontamination"]["removed"]["math500"] == 3
    fresh = tmp_path / "fresh"
    assert _gen(toy_models, dataset, fresh, *_decon(bench, "--ngram-size", "7"), "--kl-coefs", "0,0").exit_code == 0
    assert read(run / "candidates") == read(fresh / "candidates")
    assert "only-7" not in {r["id"] for r in read(run / "candidates")}


def test_bench_smoke():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_decontaminate.py"), "--smoke"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "rows/s" in out.stdout
