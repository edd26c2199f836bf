"""Which student-aware score picks the explanations that teach? (issue 22; the toy world, CPU)

Design, fixed before any result was seen:

1. Per seed, the shipped toy teacher writes ``--samples`` explanations for each of ``--questions``
   held-out addition questions (``rlt-data generate --preset toy --keep all``): one candidate pool,
   scored once; every column below comes from that one student pass.
2. On that same pool, four one-row-per-question training sets (best of n):
   ``reward`` (the RLT reward, highest: the default), ``rsr`` (Rank-Surprisal Ratio of the
   explanation, lowest), ``student_lp`` (``student_lp_explanation_mean``, highest: likelihood
   selection) and ``random``.
3. The shipped toy student is fine-tuned on each set for the same steps, from the same start and
   seed, and evaluated on held-out questions (accuracy of the boxed answer, greedy decoding).
4. Reported: held-out accuracy mean +- sd over seeds, the step accuracy of each kept set (the
   fraction of an explanation's steps that are right, which the toy task can check), and the
   Spearman correlation of each score with step accuracy over every scored sample (RSR negated, so
   that higher is better for all).

    python benchmarks/bench_scorers.py            # the full version (~40 minutes on 2 CPU cores: ~14 per seed)
    python benchmarks/bench_scorers.py --smoke    # about a minute: the plumbing only, numbers mean nothing
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_toy_quality import accuracy, spearman  # noqa: E402

# name -> (score column, higher is better)
ARMS = {"reward": ("reward", True), "rsr": ("rsr", False), "student_lp": ("student_lp_explanation_mean", True), "random": (None, None)}


def candidate_pool(tmp: Path, train_q: list[dict], args, seed: int) -> list[dict]:
    """Generate and score with the toy models; every scored candidate with an end tag, with its step accuracy."""
    from rlt_data import pipeline
    from rlt_data.testing import toy
    from rlt_data.config import GenerateConfig, build
    from rlt_data.shards import RunStore

    by_id = {r["id"]: r for r in train_q}
    data = tmp / "questions.jsonl"
    data.write_text("".join(json.dumps({k: r[k] for k in ("id", "question", "solution")}) + "\n" for r in train_q))
    config = build(GenerateConfig, None, dict(
        preset="toy", dataset=str(data), output=str(tmp / "run"), num_samples=args.samples, temperature=args.temperature,
        keep="all", seed=seed, backend="transformers", max_new_tokens=args.max_new_tokens,
    ))
    pipeline.generate(config)
    shard = RunStore(tmp / "run").shard(0, 1)
    candidates = [c for i in range(shard.read_state().num_chunks) for c in shard.read_chunk("scored", i)]
    scored = [c for c in candidates if c["reward"] is not None and c["has_end_tag"] and c["rsr"] is not None]
    for c in scored:
        c["step_accuracy"] = toy.step_accuracy(by_id[c["id"]]["a"], by_id[c["id"]]["b"], c["explanation"])
    return scored


def pick(scored: list[dict], seed: int) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for c in scored:
        groups.setdefault(c["id"], []).append(c)
    groups = {k: sorted(v, key=lambda c: c["sample_index"]) for k, v in groups.items() if len(v) >= 2}
    rng = random.Random(seed)
    out = {}
    for name, (column, higher) in ARMS.items():
        if column is None:
            out[name] = [rng.choice(v) for v in groups.values()]
        else:  # best of n; ties: the lower sample_index (selection.py's rule)
            out[name] = [min(v, key=lambda c: (-c[column] if higher else c[column], c["sample_index"])) for v in groups.values()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=96, help="training questions (held out from the toy models' training)")
    parser.add_argument("--samples", type=int, default=4, help="candidates per question")
    parser.add_argument("--temperature", type=float, default=1.2, help="teacher sampling temperature (diversity)")
    parser.add_argument("--max-new-tokens", type=int, default=400, help="teacher sampling limit")
    parser.add_argument("--eval", type=int, default=128, help="held-out evaluation questions")
    parser.add_argument("--steps", type=int, default=120, help="fine-tuning steps per student")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate")
    parser.add_argument("--repeats", type=int, default=3, help="seeds (generation and training)")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the plumbing in seconds")
    args = parser.parse_args()
    if args.smoke:
        args.questions, args.samples, args.eval, args.steps, args.repeats, args.max_new_tokens = 6, 2, 6, 2, 1, 200

    from transformers import AutoTokenizer

    from rlt_data.testing import toy
    from rlt_data.config import preset_values
    from rlt_data.testing import toy_training

    start = time.time()
    pool = toy.toy_rows(2000, seed=0)  # [0:1600] trained the shipped models, [1600:1664] is the shipped set
    train_q = pool[1664 : 1664 + args.questions]
    held_out = pool[1800 : 1800 + args.eval]
    by_id = {r["id"]: r for r in train_q}
    student = preset_values("toy")["student"]
    tok = AutoTokenizer.from_pretrained(student)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in ARMS}
    everything: list[dict] = []
    for repeat in range(args.repeats):
        seed = args.seed + repeat
        with tempfile.TemporaryDirectory() as tmp:
            scored = candidate_pool(Path(tmp), train_q, args, seed)
            everything += scored
            for name, chosen in pick(scored, seed).items():
                rows = [{**by_id[c["id"]], "explanation": c["explanation"]} for c in chosen]
                target = Path(tmp) / name
                shutil.copytree(student, target)
                toy_training.train_causal_lm(target, toy_training.student_pairs(tok, rows), steps=args.steps, lr=args.lr,
                                             batch_size=8, seed=seed)
                step_acc = float(np.mean([c["step_accuracy"] for c in chosen]))
                results[name].append((accuracy(str(target), held_out), step_acc))
    base = accuracy(student, held_out)
    steps = [c["step_accuracy"] for c in everything]
    correlations = {
        "reward": spearman([c["reward"] for c in everything], steps),
        "-rsr": spearman([-c["rsr"] for c in everything], steps),
        "-rsr_turn": spearman([-c["rsr_turn"] for c in everything], steps),
        "student_lp_explanation_mean": spearman([c["student_lp_explanation_mean"] for c in everything], steps),
    }

    print(f"toy world: {len(train_q)} questions x {args.samples} samples (T={args.temperature}); students fine-tuned "
          f"{args.steps} steps (lr {args.lr}); {len(held_out)} held-out questions; {args.repeats} seeds"
          + (" [SMOKE: numbers mean nothing]" if args.smoke else ""))
    print(f"shipped student before fine-tuning: held-out accuracy {base:.3f}")
    print(f"{'best of n by':<14} {'held-out accuracy (mean +- sd)':>32} {'step accuracy of the kept set':>31}")
    for name, values in results.items():
        acc, st = np.array([v[0] for v in values]), np.array([v[1] for v in values])
        print(f"{name:<14} {acc.mean():>22.3f} +- {acc.std():.3f} {st.mean():>24.3f} +- {st.std():.3f}")
    print(f"Spearman with step accuracy over {len(everything)} scored samples: "
          + ", ".join(f"{k} {v:.3f}" for k, v in correlations.items()))
    print(f"({time.time() - start:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "base_accuracy": base, "arms": results,
                                               "spearman_step_accuracy": correlations, "seconds": time.time() - start}, indent=2))


if __name__ == "__main__":
    main()
