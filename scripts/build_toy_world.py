"""Build the toy world shipped in rlt_data/resources/toy/: the task set and a trained tiny teacher and student.

Deterministic (fixed seeds, CPU): `python scripts/build_toy_world.py` rewrites the same files.
The teacher learns the teacher format (question + solution in, explanation out), the student the
student format (question in, thought + solution out), both on the training questions; the shipped
set (set.jsonl) and the benchmark's held-out questions are disjoint from them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rlt_data.testing import toy
from rlt_data.testing import tiny, toy_training

ROOT = Path(__file__).resolve().parents[1] / "rlt_data" / "resources" / "toy"
SHAPE = dict(hidden_size=128, num_layers=4, num_heads=4, max_position_embeddings=2048, embedding_std=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--out", type=Path, default=ROOT)
    args = parser.parse_args()
    rows = toy.toy_rows(2000, seed=0)
    train, shipped = rows[:1600], rows[1600:1664]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "set.jsonl").write_text(
        "".join(json.dumps({"id": r["id"], "question": r["question"], "solution": r["solution"]}) + "\n" for r in shipped)
    )
    (args.out / "benchmark.jsonl").write_text("".join(json.dumps(r) + "\n" for r in toy.benchmark_rows()))
    tokenizer = tiny.build_tokenizer()
    for name, pairs, seed in (("teacher", toy_training.teacher_pairs, 1), ("student", toy_training.student_pairs, 2)):
        path = args.out / name
        shutil.rmtree(path, ignore_errors=True)
        tiny.build_model(path, seed=seed, tokenizer=tokenizer, **SHAPE)
        start = time.time()
        losses = toy_training.train_causal_lm(path, pairs(tokenizer, train), steps=args.steps, lr=3e-3, batch_size=16, seed=seed)
        print(f"{name}: {args.steps} steps in {time.time() - start:.0f}s, loss {losses[0]:.3f} -> {sum(losses[-20:]) / 20:.3f}")


if __name__ == "__main__":
    main()
