"""What does the RLT reward add over what users already do? Teachers and students on the toy world (CPU).

The toy world is two-digit addition with column-by-column explanations whose steps can be checked.
A teacher learns from R1-like traces, then writes explanations that a weak student is fine-tuned
on; the student's held-out accuracy is what a distillation set is worth. Three tasks (``--task``),
the mixture of the teacher's SFT traces:

- ``v3``: 40% skip the column steps and state the (right) total, 20% carry one arithmetic slip to a
  wrong total, 40% are right (R1 traces skip steps and make slips).
- ``slips-only``: 40% slipped, 60% right (toy world v2's task).
- ``v4``: every trace is right and reaches the right total; half use the student's own column steps,
  half a procedure the student never saw ("split the second number": 48 + 30 = 78, 78 + 3 = 81).
  Only the student can tell them apart: a correctness filter cannot.

Arms (``--arm``; each is one teacher, and the student(s) trained on its data):

- ``sft``: the SFT teacher's samples, four ways: a random sample per question (raw distillation,
  as Bespoke-Stratos), rejection sampling by final-answer correctness (a random correct sample;
  questions without one dropped: the Bespoke/OpenThoughts filter), best of n by the RLT reward, and
  best of n by the student's solution term ``r_ss`` alone (selection without the KL term).
- ``rlt-rl``: GRPO with the RLT reward (reference coefficients): a random sample, and best of n.
- ``nokl-rl``: GRPO with the RLT reward without its KL term (``kl_coefs 0 0``): a random sample.
- ``correctness-rl``: GRPO with reward 1 when the explanation's final total equals the solution,
  else 0 (plain RL on answers): a random sample.
- ``random-rl``: GRPO with a uniform random reward (a control: what noise alone does): a random sample.

Every RL arm has the same budget (steps, questions, completions, lr), seed and SFT start. Per seed,
the SFT data's mixture is drawn anew and the teacher trained anew. The design, the comparisons and
the test are fixed in ``benchmarks/results/teacher_rl_controls.md`` before any student result.

Outputs: one JSON record per (task, seed, arm) under ``--out``/teacher_rl_controls/<task>/ (a rerun
skips the records that exist: long runs resume), and ``--out``/teacher_rl_controls_<task>.md/.json,
the tables with paired t-tests across seeds (``--report`` rebuilds them from the records alone).

    OMP_NUM_THREADS=1 python benchmarks/bench_teacher_rl.py --task v3            # every arm, seeds 0-4
    python benchmarks/bench_teacher_rl.py --task v4 --arm correctness-rl --seeds 0 1
    python benchmarks/bench_teacher_rl.py --smoke                                # every arm, tiny, < 3 min
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
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

T0 = time.time()
TASKS = {  # fraction of the SFT traces that skip the steps, slip, or use the other procedure
    "v3": {"skip": 0.4, "slip": 0.2, "other": 0.0},
    "slips-only": {"skip": 0.0, "slip": 0.4, "other": 0.0},
    "v4": {"skip": 0.0, "slip": 0.0, "other": 0.5},
    # v4's traces again, with an SFT teacher that learns the second procedure: its SFT steps and learning
    # rate are chosen on the seed-0 teacher alone (--teacher-only) by the rule in teacher_rl_controls.md
    "v4b": {"skip": 0.0, "slip": 0.0, "other": 0.5},
    # v4b's again: its teacher started the split procedure but almost never reached the right total with
    # it; v4c's SFT setting is chosen (--teacher-only) by right split-procedure explanations
    "v4c": {"skip": 0.0, "slip": 0.0, "other": 0.5},
}
RL_ARMS = ("rlt-rl", "nokl-rl", "correctness-rl", "random-rl")
ARMS = ("sft", *RL_ARMS)
STUDENT_ARMS = {  # student arm -> (teacher arm, how one explanation per question is picked)
    "sft-random": ("sft", "random"),
    "sft-correct": ("sft", "correct"),
    "sft-best": ("sft", "best"),
    "sft-best-r_ss": ("sft", "best-r_ss"),
    "rlt-rl-random": ("rlt-rl", "random"),
    "rlt-rl-best": ("rlt-rl", "best"),
    "nokl-rl-random": ("nokl-rl", "random"),
    "correctness-rl-random": ("correctness-rl", "random"),
    "random-rl-random": ("random-rl", "random"),
}
LABELS = {
    "sft-random": "SFT teacher, random sample (raw distillation)",
    "sft-correct": "SFT teacher, correct final answer (rejection sampling)",
    "sft-best": "SFT teacher, best of n by RLT reward",
    "sft-best-r_ss": "SFT teacher, best of n by r_ss (no KL term)",
    "rlt-rl-random": "RLT-reward GRPO teacher, random sample",
    "rlt-rl-best": "RLT-reward GRPO teacher, best of n by RLT reward",
    "nokl-rl-random": "RLT reward without KL, GRPO teacher, random sample",
    "correctness-rl-random": "correctness-reward GRPO teacher, random sample",
    "random-rl-random": "random-reward GRPO teacher, random sample",
}
# (name, better arm, worse arm): the claims the README states; the first three are primary (Holm-corrected)
COMPARISONS = (
    ("(i) RLT-reward RL beats correctness-reward RL", "rlt-rl-random", "correctness-rl-random"),
    ("(ii) RLT-reward selection beats correctness filtering", "sft-best", "sft-correct"),
    ("(iii) the KL term matters (RL)", "rlt-rl-random", "nokl-rl-random"),
    ("the KL term matters (selection)", "sft-best", "sft-best-r_ss"),
    ("RLT-reward RL beats raw distillation", "rlt-rl-random", "sft-random"),
    ("RLT-reward RL beats a random reward", "rlt-rl-random", "random-rl-random"),
    ("RLT-reward RL + selection beats selection alone", "rlt-rl-best", "sft-best"),
    ("correctness filtering beats raw distillation", "sft-correct", "sft-random"),
)
PRIMARY = 3
KINDS = ("skips steps", "other procedure", "slipped", "correct")


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


def skipped(row: dict) -> str:
    """An explanation that skips the column steps and states the total (right), as R1 traces skip steps."""
    return f"So {row['a']} + {row['b']} = {row['a'] + row['b']}."


def split_procedure(a: int, b: int) -> str:
    """v4's other procedure, right in every step: split the second number into tens and ones, add each."""
    tens, ones = b // 10 * 10, b % 10
    return f"Split {b} into {tens} and {ones}.\n\n{a} + {tens} = {a + tens}.\n\n{a + tens} + {ones} = {a + b}.\n\nSo {a} + {b} = {a + b}."


def final_total(explanation: str) -> int | None:
    """The explanation's final total: its last number."""
    numbers = re.findall(r"\d+", explanation)
    return int(numbers[-1]) if numbers else None


def kind(explanation: str, step_accuracy: float) -> str:
    """One of KINDS, from how the explanation starts and whether every column step is the reference's."""
    text = explanation.strip()
    if text.startswith("Split"):
        return "other procedure"
    if not text.startswith("Add the"):
        return "skips steps"
    return "correct" if step_accuracy == 1.0 else "slipped"


def splits(args) -> dict[str, list[dict]]:
    from rlt_data.testing import toy
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


def sft_rows(rows: list[dict], mix: dict[str, float], seed: int) -> list[dict]:
    """The teacher's SFT traces, the task's mixture drawn anew per seed."""
    rng = random.Random(seed)
    out = []
    for r in rows:
        u = rng.random()
        if u < mix["skip"]:
            text = skipped(r)
        elif u < mix["skip"] + mix["slip"]:
            text = r["corrupted_explanation"]
        elif u < mix["skip"] + mix["slip"] + mix["other"]:
            text = split_procedure(r["a"], r["b"])
        else:
            text = r["explanation"]
        out.append({"id": r["id"], "question": r["question"], "solution": r["solution"], "explanation": text})
    return out


def write_questions(path: Path, rows: list[dict], keys: tuple[str, ...] = ("id", "question", "solution")) -> str:
    path.write_text("".join(json.dumps({k: r[k] for k in keys}) + "\n" for r in rows))
    return str(path)


# -- rewards of the controls ----------------------------------------------------------------------
class CorrectnessReward:
    """1 when the completion closes its explanation and the explanation's final total is the solution's, else 0."""

    __name__ = "correctness"

    def __call__(self, prompts, completions, question, solution, **kwargs):
        from rlt_data import protocol

        out = []
        for text, sol in zip(completions, solution):
            parsed = protocol.parse_completion(text if isinstance(text, str) else text[-1]["content"])
            want = final_total(sol)
            out.append(float(parsed.has_end_tag and final_total(parsed.explanation) == want))
        return out


class RandomReward:
    """A uniform random reward in [0, 1), seeded: what GRPO does with noise alone."""

    __name__ = "random"

    def __init__(self, seed: int):
        self.rng = random.Random(f"random-reward-{seed}")

    def __call__(self, prompts, completions, **kwargs):
        return [self.rng.random() for _ in completions]


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


def train_rl_teacher(arm: str, sft_dir: Path, out: Path, questions: str, reward_student: str, args, seed: int) -> list[float]:
    """GRPO from the SFT teacher with the arm's reward; returns the mean reward of each step's completions."""
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
    reward = RewardArguments(student_model=reward_student)  # reference reward settings
    if arm == "nokl-rl":
        reward = RewardArguments(student_model=reward_student, kl_coefs=[0.0, 0.0])
    func = {"correctness-rl": CorrectnessReward(), "random-rl": RandomReward(seed)}.get(arm)
    trainer = build_trainer("grpo", TeacherDataArguments(dataset=questions), config,
                            ModelConfig(model_name_or_path=str(sft_dir), dtype="float32"), reward, reward_func=func)
    fit(trainer)
    return [float(e["reward"]) for e in trainer.state.log_history if "reward" in e]


def sample(teacher: str, student: str, rows: list[dict], tmp: Path, args, seed: int) -> list[dict]:
    """``--samples`` explanations per question, scored with the RLT reward (rlt-data generate, --keep all)."""
    from rlt_data import pipeline
    from rlt_data.testing import toy
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
    out = [c for i in range(shard.read_state().num_chunks) for c in shard.read_chunk("scored", i)]
    keep = ("id", "explanation", "has_end_tag", "reward", "r_ss", "r_kl")
    out = [{k: c.get(k) for k in keep} for c in out]
    for c in out:
        r = by_id[c["id"]]
        c["step_accuracy"] = toy.step_accuracy(r["a"], r["b"], c["explanation"]) if c["has_end_tag"] else 0.0
        c["kind"] = kind(c["explanation"], c["step_accuracy"]) if c["has_end_tag"] else "no end tag"
        c["answer_right"] = bool(c["has_end_tag"] and final_total(c["explanation"]) == r["a"] + r["b"])
    return out


def pick(candidates: list[dict], how: str, seed: int) -> list[dict]:
    """One explanation per question among the valid samples (closed and scored)."""
    groups: dict[str, list[dict]] = {}
    for c in candidates:
        if c["reward"] is not None and c["has_end_tag"]:
            groups.setdefault(c["id"], []).append(c)
    rng = random.Random(f"{seed}-{how}")
    out = []
    for i in sorted(groups):
        group = groups[i]
        if how == "random":
            out.append(rng.choice(group))
        elif how == "correct":
            right = [c for c in group if c["answer_right"]]
            if right:  # rejection sampling drops a question with no right sample
                out.append(rng.choice(right))
        elif how == "best":
            out.append(max(group, key=lambda c: c["reward"]))
        elif how == "best-r_ss":
            out.append(max(group, key=lambda c: c["r_ss"]))
        else:
            raise ValueError(how)
    return out


def profile(rows: list[dict]) -> dict:
    return {
        "step_accuracy": float(np.mean([c["step_accuracy"] for c in rows])) if rows else 0.0,
        "answer_right": float(np.mean([c["answer_right"] for c in rows])) if rows else 0.0,
        "kinds": {k: sum(c["kind"] == k for c in rows) / max(len(rows), 1) for k in KINDS},
        # of all rows, those of each kind whose final total is right (v4c's rule reads "other procedure")
        "kinds_right": {k: sum(c["kind"] == k and c["answer_right"] for c in rows) / max(len(rows), 1) for k in KINDS},
        "rows": len(rows),
    }


# -- jobs (each in its own process) ---------------------------------------------------------------
def teacher_job(seed: int, args, root: Path, data: dict) -> None:
    """The seed's SFT teacher and its scored samples (what every arm of the seed starts from)."""
    quiet()
    from rlt_data.config import preset_values

    toy = preset_values("toy")
    work = root / f"seed{seed}"
    work.mkdir(exist_ok=True)
    if not (work / "sft" / "config.json").exists():
        base = toy["teacher"] if args.teacher_base == "teacher" else toy["student"]
        data_file = write_questions(work / "teacher_sft.jsonl", sft_rows(data["sft"], TASKS[args.task], seed),
                                    ("id", "question", "solution", "explanation"))
        train_sft_teacher(base, work / "sft", data_file, args, seed)
        say(f"{args.task} seed {seed}: SFT teacher trained ({args.sft_steps} steps)")
    if not (work / "cands-sft.json").exists():
        shutil.rmtree(work / "gen-sft", ignore_errors=True)
        (work / "gen-sft").mkdir()
        cands = sample(str(work / "sft"), toy["student"], data["distill"], work / "gen-sft", args, seed)
        (work / "cands-sft.json").write_text(json.dumps(cands))
        shutil.rmtree(work / "gen-sft", ignore_errors=True)


def arm_job(seed: int, arm: str, args, root: Path, data: dict) -> dict:
    """One arm of one seed: its teacher (GRPO for the RL arms), its samples, its students."""
    quiet()
    from transformers import AutoTokenizer

    from rlt_data.config import preset_values
    from rlt_data.testing import toy_training

    t0 = time.time()
    student_model = preset_values("toy")["student"]
    work = root / f"seed{seed}"
    record: dict = {"task": args.task, "seed": seed, "arm": arm, "settings": settings(args)}
    if arm == "sft":
        cands = json.loads((work / "cands-sft.json").read_text())
    else:
        tmp = work / arm
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        record["reward_curve"] = train_rl_teacher(arm, work / "sft", tmp / "teacher", str(root / "rl.jsonl"), student_model, args, seed)
        (tmp / "gen").mkdir()
        cands = sample(str(tmp / "teacher"), student_model, data["distill"], tmp / "gen", args, seed)
        shutil.rmtree(tmp, ignore_errors=True)
    valid = [c for c in cands if c["reward"] is not None]
    record["teacher"] = {**profile(cands), "reward": float(np.mean([c["reward"] for c in valid])) if valid else None,
                         "end_tag_rate": float(np.mean([c["has_end_tag"] for c in cands]))}
    reward = record["teacher"]["reward"]
    say(f"{args.task} seed {seed} {arm}: teacher reward {'-' if reward is None else f'{reward:.3f}'}, kinds {record['teacher']['kinds']}, "
        f"answer right {record['teacher']['answer_right']:.3f}")
    tok = AutoTokenizer.from_pretrained(student_model)
    by_id = {r["id"]: r for r in data["distill"]}
    record["students"] = {}
    for name, (teacher_arm, how) in STUDENT_ARMS.items():
        if teacher_arm != arm:
            continue
        picks = pick(cands, how, seed)
        rows = [{**by_id[c["id"]], "explanation": c["explanation"]} for c in picks]
        student = work / f"student-{arm}"
        shutil.rmtree(student, ignore_errors=True)
        shutil.copytree(root / "weak-student", student)
        if rows:  # a teacher with no valid sample leaves the weak student as it is
            toy_training.train_causal_lm(student, toy_training.student_pairs(tok, rows), steps=args.student_steps,
                                         lr=args.student_lr, seed=seed)
        acc = accuracy(str(student), data["eval"])
        shutil.rmtree(student, ignore_errors=True)
        record["students"][name] = {"accuracy": acc, **profile(picks)}
        say(f"{args.task} seed {seed}: student on {name} ({len(rows)} rows): held-out accuracy {acc:.3f}")
    record["wall_s"] = time.time() - t0
    return record


def teachers_only(args, out: Path, root: Path, data: dict) -> None:
    """Each seed's SFT teacher and the kinds of its explanations (4 per held-out question, T 0.7): a
    record per seed and setting, no student arm."""
    from concurrent.futures import ProcessPoolExecutor

    import multiprocessing

    with ProcessPoolExecutor(max_workers=max(1, args.workers), mp_context=multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        list(pool.map(_run, [("teacher", (s, args, root, data)) for s in args.seeds]))
    for s in args.seeds:
        cands = json.loads((root / f"seed{s}" / "cands-sft.json").read_text())
        record = {"task": args.task, "seed": s, "settings": settings(args), "teacher": profile(cands)}
        path = records_dir(out, args.task) / f"teacher-only-seed{s}-steps{args.sft_steps}-lr{args.sft_lr:g}.json"
        path.write_text(json.dumps(record, indent=1) + "\n")
        say(f"{args.task} seed {s} SFT teacher ({args.sft_steps} steps, lr {args.sft_lr:g}): kinds {record['teacher']['kinds']}, "
            f"step accuracy {record['teacher']['step_accuracy']:.3f}, answer right {record['teacher']['answer_right']:.3f}")


def _run(job) -> tuple:
    kind_, payload = job
    if kind_ == "teacher":
        teacher_job(*payload)
        return ("teacher", payload[0], None)
    return ("arm", (payload[0], payload[1]), arm_job(*payload))


def settings(args) -> dict:
    keys = ("task", "sft_questions", "sft_steps", "sft_lr", "teacher_base", "rl_questions", "rl_questions_per_step",
            "generations", "rl_steps", "rl_lr", "max_tokens", "distill_questions", "samples", "weaken_steps",
            "student_steps", "student_lr", "eval")
    return {k: getattr(args, k) for k in keys}


# -- statistics -----------------------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def paired_t(better: list[float], worse: list[float]) -> dict:
    """Two-sided paired t-test across seeds: mean difference, its sd, t, df and p."""
    d = np.asarray(better, dtype=float) - np.asarray(worse, dtype=float)
    n = len(d)
    out = {"n": n, "mean_diff": float(d.mean()) if n else float("nan")}
    if n < 2:
        return {**out, "sd_diff": None, "t": None, "p": None}
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return {**out, "sd_diff": 0.0, "t": None, "p": 1.0 if d.mean() == 0 else 0.0}
    t = float(d.mean() / (sd / math.sqrt(n)))
    df = n - 1
    return {**out, "sd_diff": sd, "t": t, "p": betainc(df / 2.0, 0.5, df / (df + t * t))}


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None)."""
    known = sorted((p, k) for k, p in enumerate(pvalues) if p is not None)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, k) in enumerate(known):
        running = max(running, min(1.0, (len(known) - rank) * p))
        out[k] = running
    return out


# -- report ---------------------------------------------------------------------------------------
def ms(values) -> str:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return "-"
    return f"{v.mean():.3f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def records_dir(out: Path, task: str) -> Path:
    return out / "teacher_rl_controls" / task


def load_records(out: Path, task: str) -> dict[tuple[int, str], dict]:
    found = {}
    for path in sorted(records_dir(out, task).glob("seed*-*.json")):
        r = json.loads(path.read_text())
        found[(r["seed"], r["arm"])] = r
    return found


def report(out: Path, task: str) -> dict:
    """The tables of a task from its records: teachers, students, and the paired tests."""
    recs = load_records(out, task)
    if not recs:
        raise SystemExit(f"no records for task {task} under {records_dir(out, task)}")
    seeds = sorted({s for s, _ in recs})
    arms_run = [a for a in ARMS if any((s, a) in recs for s in seeds)]
    complete = [s for s in seeds if all((s, a) in recs for a in arms_run)]
    wall = sum(r["wall_s"] for r in recs.values())
    lines = [
        f"### Task {task}: seeds {' '.join(map(str, complete))} (all arms)",
        "",
        f"Settings: {json.dumps(next(iter(recs.values()))['settings'])}. Compute: {wall / 60:.1f} CPU-thread-minutes for the "
        f"arms' jobs (SFT teachers and their samples not included).",
        "",
        "| teacher | RLT reward of its explanations | step accuracy | final answer right | skip the steps | other procedure | slipped | correct |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms_run:
        rows = [recs[(s, arm)]["teacher"] for s in complete]
        kinds = " | ".join(ms([r["kinds"][k] for r in rows]) for k in KINDS)
        lines.append(f"| {arm} | {ms([r['reward'] for r in rows])} | {ms([r['step_accuracy'] for r in rows])} | "
                     f"{ms([r['answer_right'] for r in rows])} | {kinds} |")
    lines += ["", "| weak student fine-tuned on | held-out accuracy | rows | its rows: step accuracy | final answer right | "
              "skip the steps | other procedure | slipped | correct |", "|---|---|---|---|---|---|---|---|---|"]
    acc: dict[str, list[float]] = {}
    for name, (arm, _) in STUDENT_ARMS.items():
        if arm not in arms_run:
            continue
        rows = [recs[(s, arm)]["students"][name] for s in complete]
        acc[name] = [r["accuracy"] for r in rows]
        kinds = " | ".join(ms([r["kinds"][k] for r in rows]) for k in KINDS)
        lines.append(f"| {LABELS[name]} | **{ms(acc[name])}** | {np.mean([r['rows'] for r in rows]):.1f} | "
                     f"{ms([r['step_accuracy'] for r in rows])} | {ms([r['answer_right'] for r in rows])} | {kinds} |")
    tests = []
    for name, better, worse in COMPARISONS:
        if better in acc and worse in acc:
            tests.append({"claim": name, "better": better, "worse": worse, **paired_t(acc[better], acc[worse])})
    adjusted = holm([t["p"] for t in tests[:PRIMARY]] if len(tests) >= PRIMARY else [])
    for t, p in zip(tests, adjusted):
        t["p_holm"] = p
    lines += ["", "| comparison (paired across seeds, two-sided t-test) | difference in accuracy | sd of difference | t | p | "
              "p, Holm (3 primary) | holds at 0.05 |", "|---|---|---|---|---|---|---|"]
    for k, t in enumerate(tests):
        p_used = t.get("p_holm") if k < PRIMARY else t["p"]
        holds = p_used is not None and p_used < 0.05 and t["mean_diff"] > 0
        fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
        lines.append(f"| {t['claim']}: {t['better']} vs {t['worse']} | {t['mean_diff']:+.3f} | {fmt(t['sd_diff'], '.3f')} | "
                     f"{fmt(t['t'], '.2f')} | {fmt(t['p'], '.3f')} | {fmt(t.get('p_holm'), '.3f') if k < PRIMARY else '(exploratory)'} | "
                     f"{'yes' if holds else 'no'} |")
    text = "\n".join(lines) + "\n"
    summary = {"task": task, "seeds": complete, "arms": arms_run, "accuracy": acc, "tests": tests,
               "arm_job_cpu_minutes": wall / 60, "records": {f"seed{s}-{a}": r for (s, a), r in recs.items()}}
    (out / f"teacher_rl_controls_{task}.md").write_text(text)
    (out / f"teacher_rl_controls_{task}.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(text)
    return summary


# -- main -----------------------------------------------------------------------------------------
def parse(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=tuple(TASKS), default="v3", help="the mixture of the teacher's SFT traces")
    parser.add_argument("--arm", nargs="+", choices=ARMS, default=list(ARMS), help="arms to run (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="one SFT teacher and every arm per seed")
    parser.add_argument("--workers", type=int, default=2, help="jobs at once, one process (one CPU thread) each")
    parser.add_argument("--sft-questions", type=int, default=256, help="questions of the teacher's SFT traces")
    parser.add_argument("--sft-steps", type=int, default=60, help="teacher SFT steps (batch 8)")
    parser.add_argument("--sft-lr", type=float, default=3e-4, help="toy world v3's (at 2e-3 SFT broke the teacher's copying)")
    parser.add_argument("--teacher-base", choices=("teacher", "student"), default="teacher",
                        help="SFT starts from the shipped toy teacher (default) or, as the tiny recipe, the shipped student")
    parser.add_argument("--rl-questions", type=int, default=32, help="questions the GRPO phase trains on")
    parser.add_argument("--rl-questions-per-step", type=int, default=2)
    parser.add_argument("--generations", type=int, default=8, help="GRPO completions per question")
    parser.add_argument("--rl-steps", type=int, default=16)
    parser.add_argument("--rl-lr", type=float, default=1e-4, help="the tiny GRPO recipe's; every RL arm (the random reward too)")
    parser.add_argument("--max-tokens", type=int, default=128, help="longest explanation (GRPO and sampling)")
    parser.add_argument("--distill-questions", type=int, default=48, help="held-out questions the teachers explain")
    parser.add_argument("--samples", type=int, default=4, help="n of best of n")
    parser.add_argument("--weaken-steps", type=int, default=30)
    parser.add_argument("--student-steps", type=int, default=40)
    parser.add_argument("--student-lr", type=float, default=1e-3)
    parser.add_argument("--eval", type=int, default=64, help="held-out questions for the student")
    parser.add_argument("--out", default=None, help="results folder (default: benchmarks/results; --smoke: a temporary one)")
    parser.add_argument("--work", default=None, help="keep models here between invocations (default: a temporary folder)")
    parser.add_argument("--report", action="store_true", help="only rebuild the task's tables from its records")
    parser.add_argument("--smoke", action="store_true", help="every arm at tiny size, one seed (a plumbing check, < 3 min)")
    parser.add_argument("--teacher-only", action="store_true",
                        help="train each seed's SFT teacher, sample it and report the kinds of its explanations; no arm, "
                             "no student (how v4b's and v4c's SFT settings are chosen)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.sft_questions, args.sft_steps = [0], 16, 2
        args.rl_questions, args.rl_questions_per_step, args.generations, args.rl_steps = 2, 1, 2, 1
        args.distill_questions, args.samples, args.weaken_steps, args.student_steps, args.eval = 4, 2, 1, 1, 4
    return args


def main(argv: list[str] | None = None) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    args = parse(argv)
    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="rlt-bench-")) if args.smoke
                                          else Path(__file__).resolve().parent / "results")
    if args.report:
        report(out, args.task)
        return
    from transformers import AutoTokenizer

    from rlt_data.config import preset_values
    from rlt_data.testing import toy_training

    quiet()
    records_dir(out, args.task).mkdir(parents=True, exist_ok=True)
    data = splits(args)
    keep = Path(args.work) / args.task if args.work else None
    root = keep or Path(tempfile.mkdtemp(prefix="rlt-bench-work-"))
    root.mkdir(parents=True, exist_ok=True)
    shipped = preset_values("toy")["student"]
    weak = root / "weak-student"
    if not (weak / "config.json").exists():
        shutil.rmtree(weak, ignore_errors=True)
        shutil.copytree(shipped, weak)
        tok = AutoTokenizer.from_pretrained(shipped)
        toy_training.train_causal_lm(weak, toy_training.student_pairs(tok, [slipped(r) for r in data["weaken"]]),
                                     steps=args.weaken_steps, lr=args.student_lr, seed=0)
        say(f"weak student: held-out accuracy {accuracy(str(weak), data['eval']):.3f} "
            f"(shipped student {accuracy(shipped, data['eval']):.3f}, {len(data['eval'])} questions)")
    write_questions(root / "rl.jsonl", data["rl"])
    if args.teacher_only:
        teachers_only(args, out, root, data)
        return
    todo = {s: [a for a in args.arm if not (records_dir(out, args.task) / f"seed{s}-{a}.json").exists()] for s in args.seeds}
    todo = {s: arms for s, arms in todo.items() if arms}
    pending = {}
    with ProcessPoolExecutor(max_workers=max(1, args.workers), mp_context=multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        for s in todo:
            pending[pool.submit(_run, ("teacher", (s, args, root, data)))] = s
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                pending.pop(fut)
                kind_, key, record = fut.result()
                if kind_ == "teacher":
                    for arm in todo[key]:
                        pending[pool.submit(_run, ("arm", (key, arm, args, root, data)))] = (key, arm)
                else:
                    path = records_dir(out, args.task) / f"seed{key[0]}-{key[1]}.json"
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(record, indent=1) + "\n")
                    os.replace(tmp, path)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    report(out, args.task)
    say(f"done ({(time.time() - T0) / 60:.1f} min)")


if __name__ == "__main__":
    main()
