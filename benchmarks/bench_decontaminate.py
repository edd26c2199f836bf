"""Decontamination throughput on synthetic rows: rows/s of the check `generate --decontaminate` and
`rlt-data decontaminate` run (``decontaminate.check``), against a synthetic benchmark the size of
aime24 + aime25 + math500 + gpqa_diamond (758 problems).

    python benchmarks/bench_decontaminate.py                 # 17k rows (the Stratos set's size), ngram and fuzzy
    python benchmarks/bench_decontaminate.py --rows 1000000 --methods ngram
    python benchmarks/bench_decontaminate.py --smoke         # seconds: what the test suite runs

Rows are ~60 words drawn from a 5,000-word vocabulary (Zipf-like), 1% of them planted copies of a
benchmark problem; the planted rows must all be found. Prints the machine, rows/s and seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlt_data.decontaminate import check  # noqa: E402


def _words(rng: random.Random, vocab: list[str], weights: list[float], n: int) -> str:
    return " ".join(rng.choices(vocab, weights, k=n))


def synthetic(num_rows: int, num_problems: int, seed: int = 0) -> tuple[list[dict], list, set[int]]:
    rng = random.Random(seed)
    vocab = [f"w{k}" for k in range(5000)]
    weights = [1.0 / (k + 1) for k in range(len(vocab))]
    problems = [(("bench", str(k)), _words(rng, vocab, weights, rng.randint(25, 90))) for k in range(num_problems)]
    rows, planted = [], set()
    for k in range(num_rows):
        if rng.random() < 0.01:
            planted.add(k)
            text = "Return your final response within \\boxed{}. " + problems[rng.randrange(num_problems)][1].upper()
        else:
            text = _words(rng, vocab, weights, rng.randint(30, 90))
        rows.append({"id": str(k), "question": text})
    return rows, problems, planted


def machine() -> str:
    return f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, Python {platform.python_version()}".replace("  ", " ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=17_000)
    ap.add_argument("--problems", type=int, default=758)
    ap.add_argument("--methods", default="ngram,fuzzy")
    ap.add_argument("--fuzzy-rows", type=int, default=None, help="rows for the fuzzy method (default: --rows)")
    ap.add_argument("--smoke", action="store_true", help="2,000 rows, 100 problems: seconds")
    args = ap.parse_args()
    if args.smoke:
        args.rows, args.problems = 2000, 100
    print(f"machine: {machine()}")
    for method in args.methods.split(","):
        n = args.fuzzy_rows if method == "fuzzy" and args.fuzzy_rows else args.rows
        rows, problems, planted = synthetic(n, args.problems)
        p = {"method": method, "ngram_size": 8, "fuzzy_threshold": 95.0, "fields": ["question"]}
        start = time.perf_counter()
        found = check(rows, p, problems)
        wall = time.perf_counter() - start
        missed = planted - set(found)
        if method == "ngram" and missed:
            raise SystemExit(f"ngram missed {len(missed)} planted rows")
        print(f"{method}: {n} rows x {len(problems)} problems in {wall:.2f} s = {n / wall:,.0f} rows/s; "
              f"{len(found)} flagged ({len(planted)} planted, {len(planted & set(found))} found)")


if __name__ == "__main__":
    main()
