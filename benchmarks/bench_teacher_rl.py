"""Does an RL-trained teacher (GRPO with the RLT reward) teach a weak student better than its SFT start? (toy world v3, CPU)

The toy world is two-digit addition with column-by-column explanations whose steps can be checked.
The teacher learns from traces like R1's: some skip the column steps and state the total
(``--skip-fraction``), some carry an arithmetic slip to a wrong total (``--slip-fraction``), the
rest are right. Per seed:

1. SFT teacher: ``train-teacher sft`` (the tiny recipe's settings, ``--sft-lr`` 3e-4, ``--sft-steps``)
   from the shipped toy teacher on ``--sft-questions`` such traces (the same traces for every
   seed), so it writes each kind about as often as its traces hold them.
2. RL teacher: ``train-teacher grpo`` from the SFT teacher with the RLT reward, as
   ``recipes/teacher/tiny/grpo.yaml`` (reference reward and loss settings, 8 generations, T 0.7,
   lr 1e-4), ``--rl-steps`` steps of ``--rl-questions-per-step`` new questions. The frozen reward
   student is the shipped toy student: it reads an explanation faithfully, so the reward says
   whether an explanation leads it to the answer (``r_ss``) in steps it would take itself (the KL).
3. Both teachers write ``--samples`` explanations (T 0.7, ``rlt-data generate``, same reward) for
   each of ``--distill-questions`` questions neither trained on: (a) their mean RLT reward, (b)
   their step accuracy (fraction of the reference steps stated exactly) and the share of each kind.
4. Four one-explanation-per-question training sets: SFT teacher random sample, SFT teacher best
   of n by reward, RL teacher random sample, RL teacher best of n. (c) The weak student is
   fine-tuned on each (same steps, same start, same seed) and evaluated on ``--eval`` held-out
   questions: accuracy of its boxed answer, greedy decoding.

The weak student (built once, the same for every seed): the shipped toy student fine-tuned for
``--weaken-steps`` on 64 explanations with one slipped column each (and their wrong totals boxed):
a careless student that has learned to slip.

``--skip-fraction 0 --slip-fraction 0.4`` is toy world v2's task (slips only). Seeds run
``--workers`` at a time, one process and one CPU thread each.

Outputs (``--out``): teacher_rl.md (tables), teacher_rl.json (raw numbers),
teacher_rl_reward.png (mean reward per GRPO step, one line per seed).

    OMP_NUM_THREADS=1 python benchmarks/bench_teacher_rl.py          # seeds 0 1 2; under 30 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_toy_quality import accuracy  # noqa: E402

ARMS = ("SFT teacher, random sample", "SFT teacher, best of n", "RL teacher, random sample", "RL teacher, best of n")
KINDS = ("skips steps", "slipped", "correct")
T0 = time.time()


def say(msg: str) -> None:
    print(f"[{time.time() - T0:6.0f}s] {msg}", flush=True)


def quiet() -> None:
    """One CPU thread, no transformers progress bars or rlt_data info lines (main and each worker process)."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("rlt_data").setLevel(logging.WARNING)
    torch.set_num_threads(1)


# -- the world ------------------------------------------------------------------------------------
def slipped(row: dict) -> dict:
    """The row with its slipped explanation and the wrong total that explanation reaches, boxed."""
    text = row["corrupted_explanation"]
    total = re.search(r"= (\d+)\.$", text).group(1)
    return {**row, "explanation": text, "solution": f"\\boxed{{{total}}}"}


def splits(args) -> dict[str, list[dict]]:
    from rlt_data import toy
    from rlt_data.config import preset_values

    sft_file = Path(preset_values("toy")["teacher"]).parent / "teacher_sft.jsonl"
    sft_questions = {json.loads(line)["conversations"][0]["value"] for line in sft_file.read_text().splitlines() if line.strip()}
    pool = [r for r in toy.toy_rows(3000, seed=0)[1600:] if r["question"] not in sft_questions]
    # [0:1600] of the same sequence trained the shipped models; from the rest (minus teacher_sft.jsonl), disjoint slices
    sizes = {"weaken": 64, "rl": args.rl_questions, "distill": args.distill_questions, "eval": args.eval, "sft": args.sft_questions}
    out, at = {}, 0
    for name, n in sizes.items():
        out[name] = pool[at : at + n]
        at += n
    if at > len(pool):
        raise SystemExit(f"only {len(pool)} unseen questions; ask for fewer")
    return out


def skipped(row: dict) -> str:
    """An explanation that skips the column steps and states the total (right), as R1 traces skip steps."""
    return f"So {row['a']} + {row['b']} = {row['a'] + row['b']}."


def kind(explanation: str, step_accuracy: float) -> str:
    """One of KINDS: "skips steps" (no column step first), "correct" (every reference step stated), "slipped"."""
    if not explanation.strip().startswith("Add the"):
        return "skips steps"
    return "correct" if step_accuracy == 1.0 else "slipped"


def sft_rows(rows: list[dict], args) -> list[dict]:
    """The teacher's SFT traces, the same for every seed: ``--skip-fraction`` skip the column steps,
    ``--slip-fraction`` carry one arithmetic slip to a wrong total, the rest are right."""
    rng = random.Random(0)
    out = []
    for r in rows:
        u = rng.random()
        text = skipped(r) if u < args.skip_fraction else r["corrupted_explanation"] if u < args.skip_fraction + args.slip_fraction else r["explanation"]
        out.append({"id": r["id"], "question": r["question"], "solution": r["solution"], "explanation": text})
    return out


def write_questions(path: Path, rows: list[dict], keys: tuple[str, ...] = ("id", "question", "solution")) -> str:
    path.write_text("".join(json.dumps({k: r[k] for k in keys}) + "\n" for r in rows))
    return str(path)


# -- teachers -------------------------------------------------------------------------------------
def train_sft_teacher(base: str, out: Path, data: str, args, seed: int) -> None:
    from trl import ModelConfig, SFTConfig

    from rlt_data.train import fit
    from rlt_data.train_teacher import TeacherDataArguments, build_trainer

    config = SFTConfig(
        output_dir=str(out), use_cpu=True, bf16=False, max_steps=args.sft_steps, learning_rate=args.sft_lr,
        lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=1e-4, adam_beta1=0.9, adam_beta2=0.95,
        per_device_train_batch_size=8, gradient_accumulation_steps=1, max_length=1024, packing=False,
        completion_only_loss=True, logging_steps=5, save_strategy="no", report_to="none", seed=seed,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = build_trainer("sft", TeacherDataArguments(dataset=data), config, ModelConfig(model_name_or_path=base, dtype="float32"))
    fit(trainer)


def train_rl_teacher(sft_dir: Path, out: Path, questions: str, reward_student: str, args, seed: int) -> list[float]:
    """GRPO with the RLT reward; returns the mean reward of each step's completions."""
    from trl import GRPOConfig, ModelConfig

    from rlt_data.train import fit
    from rlt_data.train_teacher import RewardArguments, TeacherDataArguments, build_trainer

    config = GRPOConfig(
        output_dir=str(out), use_cpu=True, bf16=False, num_generations=args.generations,
        per_device_train_batch_size=args.generations * args.rl_questions_per_step, gradient_accumulation_steps=1,
        max_steps=args.rl_steps, learning_rate=args.rl_lr, lr_scheduler_type="constant", beta=0.04, loss_type="grpo",
        use_bias_correction_kl=False, sync_ref_model=True, ref_model_mixup_alpha=0.9, ref_model_sync_steps=8,
        temperature=0.7, top_p=1.0, top_k=0, max_completion_length=args.max_tokens, logging_steps=1,
        save_strategy="no", report_to="none", seed=seed, dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = build_trainer(
        "grpo", TeacherDataArguments(dataset=questions), config, ModelConfig(model_name_or_path=str(sft_dir), dtype="float32"),
        RewardArguments(student_model=reward_student),  # reference reward settings
    )
    fit(trainer)
    return [float(e["reward"]) for e in trainer.state.log_history if "reward" in e]


def sample(teacher: str, student: str, rows: list[dict], tmp: Path, args, seed: int) -> list[dict]:
    """``--samples`` scored explanations per question (rlt-data generate, --keep all)."""
    from rlt_data import pipeline, toy
    from rlt_data.config import GenerateConfig, build
    from rlt_data.shards import RunStore

    by_id = {r["id"]: r for r in rows}
    config = build(GenerateConfig, None, dict(
        teacher=teacher, student=student, dataset=write_questions(tmp / "distill.jsonl", rows), output=str(tmp / "run"),
        num_samples=args.samples, temperature=0.7, max_new_tokens=args.max_tokens, keep="all", seed=seed,
        backend="transformers", chunk_size=16, batch_size=16,
    ))
    pipeline.generate(config)
    shard = RunStore(tmp / "run").shard(0, 1)
    out = [c for i in range(shard.read_state()["num_chunks"]) for c in shard.read_chunk("scored", i)]
    for c in out:
        r = by_id[c["id"]]
        c["step_accuracy"] = toy.step_accuracy(r["a"], r["b"], c["explanation"]) if c["has_end_tag"] else 0.0
        c["kind"] = kind(c["explanation"], c["step_accuracy"]) if c["has_end_tag"] else "no end tag"
    return out


def arms(candidates: list[dict], by_id: dict[str, dict], seed: int) -> tuple[list[dict], list[dict]]:
    """One explanation per question: a random valid sample, and the best of n by reward."""
    groups: dict[str, list[dict]] = {}
    for c in candidates:
        if c["reward"] is not None and c["has_end_tag"]:
            groups.setdefault(c["id"], []).append(c)
    rng = random.Random(seed)
    ids = sorted(groups)
    rand = [rng.choice(groups[i]) for i in ids]
    best = [max(groups[i], key=lambda c: c["reward"]) for i in ids]
    to_rows = lambda picks: [{**by_id[c["id"]], "explanation": c["explanation"], "_step": c["step_accuracy"], "_kind": c["kind"]} for c in picks]  # noqa: E731
    return to_rows(rand), to_rows(best)


# -- report ---------------------------------------------------------------------------------------
def ms(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def plot(curves: dict[int, list[float]], path: Path) -> None:
    """Mean reward per GRPO step, one line per seed, and their mean (bold): PIL only."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, left, right, top, bottom = 720, 440, 70, 130, 40, 50
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    steps = max(len(c) for c in curves.values())
    values = [v for c in curves.values() for v in c]
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    x = lambda s: left + (width - left - right) * (s - 1) / max(steps - 1, 1)  # noqa: E731
    y = lambda v: top + (height - top - bottom) * (hi - v) / (hi - lo)  # noqa: E731
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        draw.line([left - 4, y(v), left, y(v)], fill="black")
        draw.text((5, y(v) - 6), f"{v:.2f}", fill="black", font=font)
    for s in sorted({1, steps, *range(0, steps + 1, max(1, steps // 8))} - {0}):
        draw.line([x(s), height - bottom, x(s), height - bottom + 4], fill="black")
        draw.text((x(s) - 6, height - bottom + 8), str(s), fill="black", font=font)
    draw.text((left + 150, height - 22), "GRPO step", fill="black", font=font)
    draw.text((left, 12), "RLT reward of the teacher's completions (mean per step)", fill="black", font=font)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for k, (seed, curve) in enumerate(sorted(curves.items())):
        color = colors[k % len(colors)]
        draw.line([(x(s + 1), y(v)) for s, v in enumerate(curve)], fill=color, width=1)
        draw.text((width - right + 10, top + 16 * k), f"seed {seed}", fill=color, font=font)
    n = min(len(c) for c in curves.values())
    mean = [float(np.mean([c[s] for c in curves.values()])) for s in range(n)]
    draw.line([(x(s + 1), y(v)) for s, v in enumerate(mean)], fill="black", width=3)
    draw.text((width - right + 10, top + 16 * len(curves)), "mean", fill="black", font=font)
    img.save(path)


def report(results: dict, args, out: Path) -> None:
    seeds = results["seeds"]
    per = results["per_seed"]
    lines = [
        f"Toy world v3 (`python benchmarks/bench_teacher_rl.py`), seeds {' '.join(map(str, seeds))}, "
        f"{results['wall_s'] / 60:.1f} min on {results['cores']} CPU cores ({args.workers} seeds at a time). The teacher's SFT "
        f"traces: {args.skip_fraction:.0%} skip the column steps, {args.slip_fraction:.0%} carry a slip. Weak student before "
        f"distillation: held-out accuracy {results['weak_student_accuracy']:.3f} (shipped toy student: {results['shipped_student_accuracy']:.3f}).",
        "",
        "| teacher | RLT reward of its explanations (held-out questions) | step accuracy | skip the steps | slipped | correct |",
        "|---|---|---|---|---|---|",
    ]
    col = lambda rows, key: ms([r[key] for r in rows])  # noqa: E731
    kinds = lambda rows: " | ".join(ms([r["kinds"][k] for r in rows]) for k in KINDS)  # noqa: E731
    for t in ("sft", "rl"):
        name = "SFT teacher (before RL)" if t == "sft" else f"RL teacher (after {args.rl_steps} GRPO steps)"
        rows = [per[s]["teacher"][t] for s in map(str, seeds)]
        lines.append(f"| {name} | {col(rows, 'reward')} | {col(rows, 'step_accuracy')} | {kinds(rows)} |")
    lines += [
        "",
        "| weak student fine-tuned on | held-out accuracy | training explanations: step accuracy | skip the steps | slipped | correct |",
        "|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        rows = [per[s]["arms"][arm] for s in map(str, seeds)]
        lines.append(f"| {arm} | {col(rows, 'accuracy')} | {col(rows, 'step_accuracy')} | {kinds(rows)} |")
    c = results["claim"]
    lines += [
        "",
        f"RL-teacher data beats SFT-teacher data by more than 2 sd: random sample {c['rl_beats_sft_random']} "
        f"({c['gap_random']:+.3f} vs 2 sd = {c['two_sd_random']:.3f}), best of n {c['rl_beats_sft_best']} "
        f"({c['gap_best']:+.3f} vs 2 sd = {c['two_sd_best']:.3f}); best of n beats random: SFT teacher "
        f"{c['best_beats_random_sft']}, RL teacher {c['best_beats_random_rl']}. Claim holds: **{c['holds']}**.",
        "",
        "![reward over GRPO steps](teacher_rl_reward.png)",
        "",
    ]
    (out / "teacher_rl.md").write_text("\n".join(lines))
    print("\n".join(lines))


def claim(per: dict, seeds: list[int]) -> dict:
    acc = {arm: np.array([per[str(s)]["arms"][arm]["accuracy"] for s in seeds]) for arm in ARMS}

    def sd(*arms_):  # the larger seed sd of the two arms compared
        return max(float(acc[a].std(ddof=1)) if len(seeds) > 1 else 0.0 for a in arms_)

    gap_r = float(acc[ARMS[2]].mean() - acc[ARMS[0]].mean())
    gap_b = float(acc[ARMS[3]].mean() - acc[ARMS[1]].mean())
    out = {
        "gap_random": gap_r, "two_sd_random": 2 * sd(ARMS[0], ARMS[2]), "gap_best": gap_b, "two_sd_best": 2 * sd(ARMS[1], ARMS[3]),
        "best_beats_random_sft": bool(acc[ARMS[1]].mean() > acc[ARMS[0]].mean()),
        "best_beats_random_rl": bool(acc[ARMS[3]].mean() > acc[ARMS[2]].mean()),
    }
    out["rl_beats_sft_random"] = gap_r > out["two_sd_random"]
    out["rl_beats_sft_best"] = gap_b > out["two_sd_best"]
    out["holds"] = bool((out["rl_beats_sft_random"] or out["rl_beats_sft_best"])
                        and (out["best_beats_random_sft"] or out["best_beats_random_rl"]))
    return out


# -- one seed -------------------------------------------------------------------------------------
def rates(kinds: list[str]) -> dict[str, float]:
    return {k: sum(x == k for x in kinds) / max(len(kinds), 1) for k in KINDS}


def run_seed(seed: int, args, root: Path, data: dict) -> dict:
    """Teachers, samples and the four students of one seed (in its own process when --workers > 1)."""
    from transformers import AutoTokenizer

    from rlt_data.config import preset_values
    from rlt_data.testing import toy_training

    quiet()
    shipped = preset_values("toy")["student"]
    teacher_base = preset_values("toy")["teacher"] if args.teacher_base == "teacher" else shipped
    tok = AutoTokenizer.from_pretrained(shipped)
    by_id = {r["id"]: r for r in data["distill"]}
    weak = root / "weak-student"
    tmp = root / f"seed{seed}"
    tmp.mkdir()
    train_sft_teacher(teacher_base, tmp / "sft", str(root / "teacher_sft.jsonl"), args, seed)
    say(f"seed {seed}: SFT teacher trained ({args.sft_steps} steps)")
    curve = train_rl_teacher(tmp / "sft", tmp / "rl", str(root / "rl.jsonl"), shipped, args, seed)
    say(f"seed {seed}: RL teacher trained ({args.rl_steps} GRPO steps); reward first 4 steps "
        f"{np.mean(curve[:4]):.3f} -> last 4 {np.mean(curve[-4:]):.3f}")
    record: dict = {"teacher": {}, "arms": {}, "reward_curve": curve}
    sets = []
    for t in ("sft", "rl"):
        (tmp / f"gen-{t}").mkdir()
        cands = sample(str(tmp / t), shipped, data["distill"], tmp / f"gen-{t}", args, seed)
        valid = [c for c in cands if c["reward"] is not None]
        record["teacher"][t] = {
            "reward": float(np.mean([c["reward"] for c in valid])),
            "step_accuracy": float(np.mean([c["step_accuracy"] for c in cands])),
            "end_tag_rate": float(np.mean([c["has_end_tag"] for c in cands])),
            "kinds": rates([c["kind"] for c in cands]),
            "samples": len(cands),
        }
        say(f"seed {seed}: {t} teacher on {len(data['distill'])} held-out questions x {args.samples}: "
            f"reward {record['teacher'][t]['reward']:.3f}, step accuracy {record['teacher'][t]['step_accuracy']:.3f}, "
            f"{record['teacher'][t]['kinds']}")
        sets += list(arms(cands, by_id, seed))
    for arm, rows in zip(ARMS, sets):
        student = tmp / "student"
        shutil.rmtree(student, ignore_errors=True)
        shutil.copytree(weak, student)
        toy_training.train_causal_lm(student, toy_training.student_pairs(tok, rows), steps=args.student_steps, lr=args.student_lr, seed=seed)
        acc = accuracy(str(student), data["eval"])
        record["arms"][arm] = {"accuracy": acc, "step_accuracy": float(np.mean([r["_step"] for r in rows])),
                               "kinds": rates([r["_kind"] for r in rows]), "rows": len(rows)}
        say(f"seed {seed}: student on '{arm}' ({len(rows)} rows, step accuracy "
            f"{record['arms'][arm]['step_accuracy']:.3f}): held-out accuracy {acc:.3f}")
    shutil.rmtree(tmp, ignore_errors=True)
    return record


def _run_seed(payload) -> tuple[int, dict]:
    seed, args, root, data = payload
    return seed, run_seed(seed, args, root, data)


# -- main -----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one full run (teachers, samples, students) per seed")
    parser.add_argument("--workers", type=int, default=2, help="seeds run at once, one process (one CPU thread) each")
    parser.add_argument("--sft-questions", type=int, default=256, help="questions of the teacher's SFT traces")
    parser.add_argument("--skip-fraction", type=float, default=0.4, help="SFT traces that skip the column steps")
    parser.add_argument("--slip-fraction", type=float, default=0.2, help="SFT traces with one arithmetic slip")
    parser.add_argument("--sft-steps", type=int, default=60, help="teacher SFT steps (batch 8)")
    parser.add_argument("--sft-lr", type=float, default=3e-4,
                        help="at 2e-3 (the tiny recipe's, which starts from the student) SFT from the shipped teacher "
                             "broke its copying of the operands; at 3e-4 the teacher imitates its traces")
    parser.add_argument("--teacher-base", choices=("teacher", "student"), default="teacher",
                        help="SFT starts from the shipped toy teacher (default) or, as the tiny recipe, the shipped student")
    parser.add_argument("--rl-questions", type=int, default=64, help="questions the GRPO phase trains on")
    parser.add_argument("--rl-questions-per-step", type=int, default=4)
    parser.add_argument("--generations", type=int, default=8, help="GRPO completions per question")
    parser.add_argument("--rl-steps", type=int, default=16)
    parser.add_argument("--rl-lr", type=float, default=1e-4, help="the tiny GRPO recipe's")
    parser.add_argument("--max-tokens", type=int, default=128, help="longest explanation (GRPO and sampling)")
    parser.add_argument("--distill-questions", type=int, default=64, help="held-out questions the teachers explain")
    parser.add_argument("--samples", type=int, default=4, help="n of best of n")
    parser.add_argument("--weaken-steps", type=int, default=30)
    parser.add_argument("--student-steps", type=int, default=40)
    parser.add_argument("--student-lr", type=float, default=1e-3)
    parser.add_argument("--eval", type=int, default=96, help="held-out questions for the student")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args()

    import multiprocessing
    import os

    from transformers import AutoTokenizer

    from rlt_data.config import preset_values
    from rlt_data.testing import toy_training

    quiet()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shipped = preset_values("toy")["student"]
    tok = AutoTokenizer.from_pretrained(shipped)
    data = splits(args)
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        weak = root / "weak-student"
        shutil.copytree(shipped, weak)
        toy_training.train_causal_lm(weak, toy_training.student_pairs(tok, [slipped(r) for r in data["weaken"]]),
                                     steps=args.weaken_steps, lr=args.student_lr, seed=0)
        weak_acc, shipped_acc = accuracy(str(weak), data["eval"]), accuracy(shipped, data["eval"])
        say(f"weak student: held-out accuracy {weak_acc:.3f} (shipped student {shipped_acc:.3f}, {len(data['eval'])} questions)")
        write_questions(root / "rl.jsonl", data["rl"])
        write_questions(root / "teacher_sft.jsonl", sft_rows(data["sft"], args), ("id", "question", "solution", "explanation"))
        payloads = [(seed, args, root, data) for seed in args.seeds]
        if args.workers > 1:
            with multiprocessing.get_context("spawn").Pool(min(args.workers, len(payloads)), maxtasksperchild=1) as pool:
                done = dict(pool.imap_unordered(_run_seed, payloads))
        else:
            done = dict(map(_run_seed, payloads))
        per = {str(seed): done[seed] for seed in args.seeds}
    curves = {seed: per[str(seed)]["reward_curve"] for seed in args.seeds}
    results = {
        "seeds": args.seeds, "args": vars(args), "cores": os.cpu_count(), "wall_s": time.time() - T0,
        "weak_student_accuracy": weak_acc, "shipped_student_accuracy": shipped_acc, "per_seed": per,
        "claim": claim(per, args.seeds),
    }
    (out / "teacher_rl.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(curves, out / "teacher_rl_reward.png")
    report(results, args, out)
    say("done")


if __name__ == "__main__":
    main()
