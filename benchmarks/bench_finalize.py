"""Finalize at scale: peak memory and time of `rlt-data merge` on a synthetic finished run.

    python benchmarks/bench_finalize.py                                # 17k and 68k questions x 4 samples, 20 KB completions
    python benchmarks/bench_finalize.py --questions 2000 8000          # smaller
    python benchmarks/bench_finalize.py --shards 32                    # a run of 32 shards (the merge of a sharded run)
    python benchmarks/bench_finalize.py --baseline-pythonpath ../old   # also run another checkout's rlt_data (same run format)

No model: the scored chunk files, shard states and done markers are written directly (as
`generate` leaves them), then `rlt-data merge DIR` runs in a fresh process whose peak RSS
(``wait4``) and wall time are printed, for each size. The merge must stay bounded: the peak RSS
should grow neither with the number of questions nor (much) with the number of shards.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_run(root: Path, questions: int, samples: int, completion_bytes: int, chunk_size: int, shards: int) -> None:
    """A finished run of ``shards`` shards (as ``generate --num-shards`` leaves it, before the merge)."""

    from rlt_data import __version__
    from rlt_data.config import GenerateConfig
    from rlt_data.options import SelectionOptions, by_section
    from rlt_data.shards import CANDIDATE_CHUNK_SCHEMA, STATE_FORMAT, RunStore
    from rlt_data.sharding import shard_of
    from rlt_data.stages import stages_for
    from rlt_data.state import ShardDone, ShardState

    store = RunStore(root)
    rng = random.Random(0)
    words = [f"w{k}" for k in range(5000)]
    # a pool of random texts, drawn from per row: writing 68k x 4 rows of fresh text would take longer than the merge
    pool = [" ".join(rng.choice(words) for _ in range(completion_bytes // 6))[:completion_bytes] for _ in range(256)]
    generation = {
        "teacher": "synthetic", "dataset": "synthetic", "split": "train", "num_samples": samples, "temperature": 0.7,
        "top_p": 1.0, "max_new_tokens": 16384, "seed": 0, "chunk_size": chunk_size, "rows": "synthetic",
    }
    owned: list[list[int]] = [[] for _ in range(shards)]
    for q in range(questions):
        owned[shard_of(f"q{q:08d}", shards)].append(q)
    for index, mine in enumerate(owned):
        shard = store.shard(index, shards)
        num_chunks = -(-len(mine) // chunk_size)
        for c in range(num_chunks):
            rows = []
            for q in mine[c * chunk_size : (c + 1) * chunk_size]:
                for k in range(samples):
                    text = rng.choice(pool)
                    rows.append({
                        "id": f"q{q:08d}", "question": f"What is {q} + {k}?", "solution": f"\\boxed{{{q + k}}}",
                        "sample_index": k, "completion": text + "\n\n<|end_of_explanation|>", "explanation": text,
                        "has_end_tag": True, "truncated": False, "num_completion_tokens": completion_bytes // 4,
                        "reward": rng.gauss(-2, 1), "r_ss": -1.0, "r_kl": 1.0, "lp_solution_mean": -1.0, "lp_solution_min": -2.0,
                        "kl_mean": 0.3, "kl_max": 1.0, "num_solution_tokens": 8, "num_think_tokens": completion_bytes // 4,
                        "student_context_tokens": completion_bytes // 4 + 400, "think_mismatch": False, "row_index": q,
                    })
            shard.write_chunk("scored", c, rows, CANDIDATE_CHUNK_SCHEMA)
        chunk_rows = [len(mine[c * chunk_size : (c + 1) * chunk_size]) for c in range(num_chunks)]
        scoring = {"student": "synthetic", "temperature_score": 0.7, "lp_coefs": [1.0, 0.01], "kl_coefs": [3.0, 0.03],
                   "format_penalty": -1.0}
        options = by_section(GenerateConfig.of(teacher="synthetic", student="synthetic", dataset="synthetic", output=str(root)))
        options["Selection"] = vars(SelectionOptions())
        shard.write_state(ShardState(
            format=STATE_FORMAT, command="generate", generation=generation,
            stages={"teacher": {"teacher": "synthetic", "teacher_temperature": 0.7}, "scored": scoring},
            order=[s.name for s in stages_for("generate")], chunking="synthetic", chunk_rows=chunk_rows,
            num_input_rows=questions, skipped_rows={}, decontamination=None, schema="flat", options=options,
            backend="synthetic", rlt_data_version=__version__,
        ))
        shard.mark_done(ShardDone(num_rows=len(mine), num_chunks=num_chunks, num_candidates=len(mine) * samples))


def measure(run_dir: Path, pythonpath: str | None) -> tuple[float, float]:
    """Peak RSS (GB) and wall time (s) of `rlt-data merge RUN_DIR` in a fresh process."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rlt_data.cli", "merge", str(run_dir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=pythonpath or ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"merge failed: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 2**20, elapsed  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, nargs="+", default=[17000, 68000])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--completion-bytes", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--shards", type=int, default=1, help="shards of the run (1: a serial run)")
    parser.add_argument("--baseline-pythonpath", help="a checkout whose rlt_data is measured too (e.g. a git worktree of an older commit)")
    parser.add_argument("--workdir", help="where the synthetic runs go (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rlt-bench-finalize-"))
    print(f"{'questions':>10} {'candidates':>11} {'text GB':>8} | {'code':>9} {'peak RSS GB':>12} {'time s':>8}")
    for n in args.questions:
        run_dir = work / f"run-{n}-{args.shards}"
        if not run_dir.is_dir():
            write_run(run_dir, n, args.samples, args.completion_bytes, args.chunk_size, args.shards)
        text_gb = n * args.samples * args.completion_bytes * 2 / 1e9  # completion + explanation
        for label, path in (("this", None), ("baseline", args.baseline_pythonpath)):
            if label == "baseline" and not path:
                continue
            rss, seconds = measure(run_dir, path)
            print(f"{n:>10} {n * args.samples:>11} {text_gb:>8.2f} | {label:>9} {rss:>12.2f} {seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
