"""Does selecting explanations by the RLT reward keep the ones that teach? (the toy world, CPU)

1. The shipped toy teacher writes ``--samples`` explanations for each of ``--questions`` addition
   questions it never saw in training (``rlt-data generate --preset toy --keep all``).
2. Per question, three one-row training sets: (a) the sample the reward keeps (best),
   (b) a random sample, (c) the sample the reward rejects (worst).
3. The shipped toy student is fine-tuned on each set for the same steps, from the same start,
   and evaluated on held-out questions: accuracy of the boxed answer, greedy decoding.
4. Also: Spearman rank correlation between reward and step accuracy (the fraction of the
   explanation's steps that are right, which the task can check), over every scored sample.

    python benchmarks/bench_toy_quality.py            # ~8 minutes on 2 CPU cores (3 repeats)
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def spearman(x: list[float], y: list[float]) -> float:
    def ranks(v):
        v = np.asarray(v, dtype=np.float64)
        order = v.argsort(kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for value in np.unique(v):  # average ranks of ties
            r[v == value] = r[v == value].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def accuracy(model_dir: str, rows: list[dict], max_new_tokens: int = 200) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlt_data import protocol

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    hits = 0
    for start in range(0, len(rows), 16):
        batch = rows[start : start + 16]
        prompts = [
            tok.apply_chat_template(protocol.training_messages(r["question"], "", "")[:2], tokenize=False, add_generation_prompt=True)
            for r in batch
        ]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        for r, seq in zip(batch, out[:, enc["input_ids"].shape[1] :]):
            text = tok.decode(seq, skip_special_tokens=True)
            solution = protocol.extract_tagged(text, protocol.BEGIN_SOLUTION, protocol.END_SOLUTION) or ""
            found = re.search(r"\\boxed\{(\d+)\}", solution)
            hits += bool(found and int(found.group(1)) == r["a"] + r["b"])
    return hits / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=96)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=1.2, help="teacher sampling temperature (diversity)")
    parser.add_argument("--eval", type=int, default=128, help="held-out questions")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from rlt_data.testing import toy
    from rlt_data.testing import toy_training
    from rlt_data.config import preset_values

    start = time.time()
    pool = toy.toy_rows(2000, seed=0)  # [0:1600] trained the shipped models, [1600:1664] is the shipped set
    train_q = pool[1664 : 1664 + args.questions]
    held_out = pool[1800 : 1800 + args.eval]
    student = preset_values("toy")["student"]
    tok = AutoTokenizer.from_pretrained(student)
    results: dict[str, list[tuple[float, float]]] = {}
    rewards, step_accs = [], []
    for repeat in range(args.repeats):
        seed = args.seed + repeat
        with tempfile.TemporaryDirectory() as tmp:
            arms, scored = sample_arms(Path(tmp), train_q, args, seed)
            rewards += [c["reward"] for c in scored]
            step_accs += [c["step_accuracy"] for c in scored]
            for name, rows in arms.items():
                target = Path(tmp) / name.split()[0]
                shutil.copytree(student, target)
                toy_training.train_causal_lm(target, toy_training.student_pairs(tok, rows), steps=args.steps, lr=args.lr, batch_size=8, seed=seed)
                step_acc = float(np.mean([toy.step_accuracy(r["a"], r["b"], r["explanation"]) for r in rows]))
                results.setdefault(name, []).append((accuracy(str(target), held_out), step_acc))
    base = accuracy(student, held_out)

    print(f"toy world: {len(train_q)} questions x {args.samples} samples (T={args.temperature}); students fine-tuned "
          f"{args.steps} steps (lr {args.lr}); {len(held_out)} held-out questions; {args.repeats} repeats (generation and training seeds)")
    print(f"shipped student before fine-tuning: held-out accuracy {base:.3f}")
    print(f"{'training set':<26} {'held-out accuracy (mean +- sd)':>32} {'step accuracy of its explanations':>34}")
    for name, values in results.items():
        acc, steps = np.array([v[0] for v in values]), np.array([v[1] for v in values])
        print(f"{name:<26} {acc.mean():>22.3f} +- {acc.std():.3f} {steps.mean():>34.3f}")
    print(f"Spearman(reward, step accuracy) over {len(rewards)} scored samples: {spearman(rewards, step_accs):.3f}")
    print(f"({time.time() - start:.0f}s)")


def sample_arms(tmp: Path, train_q: list[dict], args, seed: int):
    """Generate with the toy teacher; per question the best, a random and the worst sample by reward."""
    import json

    from rlt_data import pipeline
    from rlt_data.testing import toy
    from rlt_data.config import GenerateConfig, build
    from rlt_data.shards import RunStore

    by_id = {r["id"]: r for r in train_q}
    data = tmp / "questions.jsonl"
    data.write_text("".join(json.dumps({k: r[k] for k in ("id", "question", "solution")}) + "\n" for r in train_q))
    config = build(GenerateConfig, None, dict(
        preset="toy", dataset=str(data), output=str(tmp / "run"), num_samples=args.samples, temperature=args.temperature,
        keep="all", seed=seed, backend="transformers",
    ))
    pipeline.generate(config)
    shard = RunStore(tmp / "run").shard(0, 1)
    candidates = [c for i in range(shard.read_state().num_chunks) for c in shard.read_chunk("scored", i)]
    scored = [c for c in candidates if c["reward"] is not None and c["has_end_tag"]]
    for c in scored:
        c["step_accuracy"] = toy.step_accuracy(by_id[c["id"]]["a"], by_id[c["id"]]["b"], c["explanation"])
    groups: dict[str, list[dict]] = {}
    for c in scored:
        groups.setdefault(c["id"], []).append(c)
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    rng = random.Random(seed)
    picks = {
        "kept (best reward)": [max(v, key=lambda c: c["reward"]) for v in groups.values()],
        "random": [rng.choice(v) for v in groups.values()],
        "rejected (worst reward)": [min(v, key=lambda c: c["reward"]) for v in groups.values()],
    }
    arms = {name: [{**by_id[c["id"]], "explanation": c["explanation"]} for c in chosen] for name, chosen in picks.items()}
    return arms, scored


if __name__ == "__main__":
    main()
