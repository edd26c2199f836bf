"""What a teacher GRPO run needs per GPU, from the model configs and the recipe alone (no weights).

    rlt-data train-teacher grpo --config recipes/teacher/Qwen2.5-7B-Instruct/grpo/config.yaml --plan

A run's GPU memory has four phases that follow each other within one optimizer step: vLLM
generation (colocated), the reward (the frozen student scores, the policy gives the teacher
term under no-grad), and training (forward and backward of each micro-batch). What stays between
them is ``resident``; the peak of the run is resident plus the largest phase. Every figure is an
estimate from the shapes, in bytes:

- policy weights, gradients and Adam under ZeRO-3: 2 + 2 + 12 bytes per parameter, split over the
  GPUs (the mixed-precision Adam count of the ZeRO paper: bf16 weights and gradients, fp32 master
  weights and two moments); ZeRO-3's gathered working set (``stage3_max_live_parameters``, 1e9 by
  default) while a pass runs; without DeepSpeed (``zero_stage`` 0) torch's AdamW keeps its two
  moments in the weights' dtype, 4 bytes per parameter, and no master copy;
- the reference model (``beta > 0``): bf16 weights split over the GPUs;
- the frozen student: whole on every GPU in bf16 (neither DeepSpeed nor FSDP shards it), unless
  ``student_offload`` keeps it in CPU memory between reward calls;
- vLLM colocated: ``vllm_gpu_memory_utilization`` of the GPU, its weights (the policy in bf16 over
  ``vllm_tensor_parallel_size`` GPUs), its profiling activations, and the KV cache in what is left;
  with ``vllm_enable_sleep_mode`` it gives its memory back during training;
- training activations of one micro-batch with gradient checkpointing: each layer's input kept
  (layers x tokens x hidden, bf16), one layer recomputed with its gradients, and TRL's fused LM
  head (log-probs in vocabulary tiles, no logits; the fp32 gradients of the hidden states and of
  the output layer);
- the reward: the student's packed scoring pass (``reward_max_tokens_per_batch`` tokens, one layer's
  activations and the log-prob chunk budget) and the policy's no-grad pass for the teacher term
  (``reward_rows_per_pass`` rows, one layer's activations; TRL's fused LM head: no logits);
- a fixed allowance for the CUDA context, NCCL buffers and allocator fragmentation.

Not counted: memory fragmentation beyond that allowance, DeepSpeed's communication buckets beyond
the gathered working set, CPU memory (offloaded optimizer, an offloaded student), and anything a
custom model adds. The plan is a reading aid, checked against parameter counts in the tests and
against ``torch.cuda`` peaks by ``benchmarks/gpu_smoke.py``; it is not a guarantee.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

GiB = 2**30
BF16 = 2
FP32 = 4
ADAM_BYTES = 12  # fp32 master weights + two fp32 moments, per parameter
OVERHEAD = 2 * GiB  # CUDA context, NCCL buffers, allocator fragmentation (rule of thumb)
ZERO3_LIVE_PARAMETERS = 10**9  # DeepSpeed's stage3_max_live_parameters default
VLLM_PROFILE_TOKENS = 8192  # tokens of vLLM's profiling forward pass (max_num_batched_tokens)
VLLM_MAX_SEQS = 256  # sequences sampled at once (max_num_seqs): their last positions' logits
PHASES = ("generation", "reward", "training")


@dataclass(frozen=True)
class Shape:
    """The numbers of a decoder-only transformer's config that its memory depends on."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = False
    attention_bias: bool = True  # Qwen2: biases on q, k and v

    def num_parameters(self) -> int:
        h, q, kv = self.hidden_size, self.num_attention_heads * self.head_dim, self.num_key_value_heads * self.head_dim
        attention = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if self.attention_bias else 0)
        mlp = 3 * h * self.intermediate_size
        layer = attention + mlp + 2 * h  # two RMSNorm weights
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_hidden_layers * layer + embeddings + h  # final norm

    def kv_bytes_per_token(self, dtype_bytes: int = BF16) -> int:
        return 2 * self.num_hidden_layers * self.num_key_value_heads * self.head_dim * dtype_bytes

    def layer_activation_bytes(self, tokens: int) -> int:
        """One layer's forward intermediates over ``tokens`` tokens in bf16 (q, k, v, attention
        output, residual and norms, gate, up and their product)."""
        q, kv = self.num_attention_heads * self.head_dim, self.num_key_value_heads * self.head_dim
        return tokens * (q + 2 * kv + 4 * self.hidden_size + 3 * self.intermediate_size) * BF16

    def to_hf_config(self):
        from transformers import Qwen2Config

        return Qwen2Config(
            hidden_size=self.hidden_size, intermediate_size=self.intermediate_size, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads, head_dim=self.head_dim,
            vocab_size=self.vocab_size, tie_word_embeddings=self.tie_word_embeddings, max_position_embeddings=32768,
        )

    @classmethod
    def from_config(cls, name: str, config: dict) -> Shape:
        try:
            heads = int(config["num_attention_heads"])
            return cls(
                name=name, hidden_size=int(config["hidden_size"]), intermediate_size=int(config["intermediate_size"]),
                num_hidden_layers=int(config["num_hidden_layers"]), num_attention_heads=heads,
                num_key_value_heads=int(config.get("num_key_value_heads") or heads),
                head_dim=int(config.get("head_dim") or int(config["hidden_size"]) // heads),
                vocab_size=int(config["vocab_size"]), tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
                attention_bias=bool(config.get("attention_bias", config.get("model_type") == "qwen2")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{name}: config.json lacks what the plan needs ({exc})") from None


# The published configs of the models the recipes name (huggingface.co/Qwen/*/config.json).
KNOWN_SHAPES = {
    "qwen2.5-1.5b": Shape("qwen2.5-1.5b", 1536, 8960, 28, 12, 2, 128, 151936, tie_word_embeddings=True),
    "qwen2.5-7b": Shape("qwen2.5-7b", 3584, 18944, 28, 28, 4, 128, 152064),
    "qwen2.5-32b": Shape("qwen2.5-32b", 5120, 27648, 64, 40, 8, 128, 152064),
}
# Names that are those shapes: Qwen2.5 instructs, their fine-tunes in the recipes (Bespoke-Stratos,
# the RLT teacher outputs), by size.
_NAME_PATTERNS = [(re.compile(r"1\.5b", re.I), "qwen2.5-1.5b"), (re.compile(r"(?<![\d.])7b", re.I), "qwen2.5-7b"),
                  (re.compile(r"32b", re.I), "qwen2.5-32b")]


def shape_of(model: str) -> Shape:
    """A model's shape: its local ``config.json``, the Hub cache's, else a known shape by name."""
    if model.lower() in KNOWN_SHAPES:
        return KNOWN_SHAPES[model.lower()]
    local = Path(model) / "config.json"
    if local.is_file():
        return Shape.from_config(model, json.loads(local.read_text()))
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
        if isinstance(cached, str):
            return Shape.from_config(model, json.loads(Path(cached).read_text()))
    except Exception:  # not a repo id: fall through to the names
        pass
    if re.search(r"qwen|stratos|rlt", model, re.I):  # the recipes' Qwen2.5 family, and fine-tunes named after it
        for pattern, known in _NAME_PATTERNS:
            if pattern.search(model):
                return KNOWN_SHAPES[known]
    raise UserError(
        f"no config.json for {model} (not a local folder, not in the Hub cache, not a known shape): "
        f"download its config or name a shape with --plan_teacher_shape / --plan_student_shape ({', '.join(KNOWN_SHAPES)})"
    )


@dataclass(frozen=True)
class Layout:
    """Where the run trains: GPUs per node (the ZeRO-3 world), their memory, the ZeRO setup."""

    num_gpus: int
    gpu_memory_bytes: int
    zero_stage: int = 3
    offload_optimizer: bool = False
    offload_params: bool = False


@dataclass(frozen=True)
class Component:
    name: str
    bytes: int
    phases: tuple[str, ...]  # "resident", or the phases it is held in
    note: str = ""


@dataclass
class Plan:
    layout: Layout
    components: list[Component]
    kv_cache_bytes: int = 0
    kv_bytes_per_token: int = 0
    sequence_tokens: int = 0
    warnings: list[str] = field(default_factory=list)

    def resident_bytes(self) -> int:
        return sum(c.bytes for c in self.components if "resident" in c.phases)

    def peak_bytes(self, phase: str) -> int:
        """Memory held while ``phase`` runs (resident included); ``resident`` alone for that."""
        return self.resident_bytes() + sum(c.bytes for c in self.components if phase in c.phases and phase != "resident")

    def peak(self) -> tuple[str, int]:
        return max(((p, self.peak_bytes(p)) for p in PHASES), key=lambda x: x[1])

    @property
    def kv_tokens(self) -> int:
        return self.kv_cache_bytes // self.kv_bytes_per_token if self.kv_bytes_per_token else 0

    def fits(self) -> bool:
        return self.peak()[1] <= self.layout.gpu_memory_bytes and (self.kv_tokens >= self.sequence_tokens or not self.kv_bytes_per_token)

    def overflow(self) -> str | None:
        """What does not fit, in one line (None when everything does)."""
        phase, peak = self.peak()
        if peak > self.layout.gpu_memory_bytes:
            held = [c for c in self.components if "resident" in c.phases or phase in c.phases]
            biggest = max(held, key=lambda c: c.bytes)
            return (f"{phase} needs {_gb(peak)} of {_gb(self.layout.gpu_memory_bytes)} per GPU; the largest part is "
                    f"{biggest.name} ({_gb(biggest.bytes)})")
        if self.kv_bytes_per_token and self.kv_tokens < self.sequence_tokens:
            return (f"vLLM's KV cache holds {self.kv_tokens:,} tokens, less than one sequence ({self.sequence_tokens:,}): "
                    "raise vllm_gpu_memory_utilization or vllm_tensor_parallel_size")
        return None

    def render(self) -> str:
        lay = self.layout
        lines = [f"Memory plan per GPU ({lay.num_gpus} GPUs of {_gb(lay.gpu_memory_bytes)}, ZeRO-{lay.zero_stage}"
                 f"{', optimizer offloaded' if lay.offload_optimizer else ''}{', parameters offloaded' if lay.offload_params else ''}):",
                 f"  {'component':<44} {'GiB':>7}  held  note"]
        for c in self.components:
            lines.append(f"  {c.name:<44} {c.bytes / GiB:>7.1f}  {'/'.join(c.phases):<5} {c.note}".rstrip())
        lines.append(f"  {'resident':<44} {self.resident_bytes() / GiB:>7.1f}")
        for p in PHASES:
            lines.append(f"  {'peak in ' + p:<44} {self.peak_bytes(p) / GiB:>7.1f}")
        phase, peak = self.peak()
        lines.append(f"  {'peak of the run (' + phase + ')':<44} {peak / GiB:>7.1f}  of {lay.gpu_memory_bytes / GiB:.1f}, "
                     f"{(lay.gpu_memory_bytes - peak) / GiB:.1f} GiB margin")
        if self.kv_bytes_per_token:
            lines.append(f"  vLLM KV cache: {self.kv_cache_bytes / GiB:.1f} GiB = {self.kv_tokens:,} tokens "
                         f"({self.kv_bytes_per_token:,} bytes each): {self.kv_tokens // max(self.sequence_tokens, 1)} sequences "
                         f"of {self.sequence_tokens:,} tokens at once")
        problem = self.overflow()
        lines.append(f"  does not fit: {problem}" if problem else "  fits")
        lines += [f"  note: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        phase, peak = self.peak()
        return {
            "layout": asdict(self.layout),
            "components": [asdict(c) for c in self.components],
            "resident_bytes": self.resident_bytes(),
            "peak_bytes": {p: self.peak_bytes(p) for p in PHASES},
            "peak_phase": phase,
            "kv_cache_bytes": self.kv_cache_bytes,
            "kv_tokens": self.kv_tokens,
            "sequence_tokens": self.sequence_tokens,
            "fits": self.fits(),
            "overflow": self.overflow(),
            "warnings": list(self.warnings),
        }


def _gb(b: int) -> str:
    return f"{b / GiB:.1f} GiB"


def grpo_plan(teacher: Shape, student: Shape, training_args: Any, reward_args: Any, layout: Layout, prompt_tokens: int) -> Plan:
    """The per-GPU memory of a GRPO run of ``training_args`` (TRL's ``GRPOConfig``) with the RLT reward
    (``reward_args``: :class:`rlt_data.teacher.reward.RewardArguments`) on ``layout``."""
    n = layout.num_gpus if layout.zero_stage >= 3 else 1
    p = teacher.num_parameters()
    mb = int(training_args.per_device_train_batch_size)
    completion = int(training_args.max_completion_length)
    seq = prompt_tokens + completion
    comps: list[Component] = []
    # -- the policy under ZeRO (stage 3: everything split; stage 0-2: weights whole)
    weight_split = n if layout.zero_stage >= 3 else 1
    grad_split = layout.num_gpus if layout.zero_stage >= 2 else 1
    optim_split = layout.num_gpus if layout.zero_stage >= 1 else 1
    if not layout.offload_params:
        comps.append(Component("policy weights (bf16)", p * BF16 // weight_split, ("resident",), f"{p / 1e9:.2f}B parameters / {weight_split}"))
    comps.append(Component("policy gradients (bf16)", p * BF16 // grad_split, ("resident",), f"/ {grad_split}"))
    if not layout.offload_optimizer and layout.zero_stage >= 1:  # DeepSpeed's mixed precision: fp32 master + moments
        comps.append(Component("Adam states + fp32 master weights", p * ADAM_BYTES // optim_split, ("resident",), f"12 bytes per parameter / {optim_split}"))
    elif not layout.offload_optimizer:  # no DeepSpeed: torch's AdamW keeps its moments in the weights' dtype
        comps.append(Component("Adam states (bf16 moments)", p * 2 * BF16, ("resident",), "4 bytes per parameter, no master copy"))
    if layout.zero_stage >= 3:
        live = min(p, ZERO3_LIVE_PARAMETERS) * BF16
        comps.append(Component("ZeRO-3 gathered parameters", live, ("reward", "training"), "stage3_max_live_parameters"))
    if float(getattr(training_args, "beta", 0.0) or 0.0) > 0:
        comps.append(Component("reference model (bf16)", p * BF16 // weight_split, ("resident",), "beta > 0"))
    # -- the frozen student, whole on every GPU
    offload = bool(getattr(reward_args, "student_offload", False))
    comps.append(Component("student (bf16, whole)", student.num_parameters() * BF16, ("reward",) if offload else ("resident",),
                           "in CPU memory between reward calls" if offload else f"{student.num_parameters() / 1e9:.2f}B parameters"))
    # -- vLLM colocated
    plan_kv, kv_per_token, warnings = 0, 0, []
    if getattr(training_args, "use_vllm", False) and getattr(training_args, "vllm_mode", "colocate") == "colocate":
        util = float(training_args.vllm_gpu_memory_utilization)
        tp = int(getattr(training_args, "vllm_tensor_parallel_size", 1) or 1)
        reserved = int(util * layout.gpu_memory_bytes)
        vllm_weights = p * BF16 // tp
        profile = teacher.layer_activation_bytes(VLLM_PROFILE_TOKENS) + VLLM_MAX_SEQS * teacher.vocab_size * FP32
        plan_kv = max(reserved - vllm_weights - profile, 0)
        kv_per_token = teacher.kv_bytes_per_token() // tp
        sleep = bool(getattr(training_args, "vllm_enable_sleep_mode", False))
        held = ("generation",) if sleep else ("resident",)
        comps.append(Component("vLLM weights (bf16)", vllm_weights, held, f"/ tensor parallel {tp}"))
        comps.append(Component("vLLM KV cache + profiling activations", max(reserved - vllm_weights, 0), held,
                               f"vllm_gpu_memory_utilization {util} of the GPU"))
        if reserved <= vllm_weights + profile:
            warnings.append(f"vllm_gpu_memory_utilization {util} leaves no KV cache after vLLM's weights ({_gb(vllm_weights)})")
    elif getattr(training_args, "use_vllm", False):
        warnings.append("vLLM in server mode: its GPUs are not counted here")
    else:
        # transformers generation: one generate() call per generation batch of this process
        # (TRL: per_device_train_batch_size x steps_per_generation), its whole KV cache held
        gen_batch = mb * int(getattr(training_args, "steps_per_generation", None) or getattr(training_args, "gradient_accumulation_steps", 1))
        comps.append(Component("generation KV cache (transformers)", gen_batch * seq * teacher.kv_bytes_per_token(), ("generation",),
                               f"{gen_batch} sequences of {seq:,} tokens"))
    # -- the reward
    budget = getattr(reward_args, "reward_max_tokens_per_batch", 16384)
    comps.append(Component("student scoring pass", student.layer_activation_bytes(int(budget)) + GiB, ("reward",),
                           f"{budget:,} tokens per pass + 1 GiB log-prob chunks"))
    rows = int(getattr(reward_args, "reward_rows_per_pass", 8))
    comps.append(Component("teacher term (policy, no grad)", teacher.layer_activation_bytes(rows * seq), ("reward",),
                           f"{rows} rows per pass, fused LM head"))
    # -- training one micro-batch
    tokens = mb * seq
    if getattr(training_args, "gradient_checkpointing", False):
        kept = teacher.num_hidden_layers * tokens * teacher.hidden_size * BF16
        comps.append(Component("activations: checkpointed layer inputs", kept, ("training",), f"{mb} x {seq:,} tokens x {teacher.num_hidden_layers} layers"))
        comps.append(Component("activations: one layer recomputed + grads", 2 * teacher.layer_activation_bytes(tokens), ("training",)))
    else:
        comps.append(Component("activations: every layer", 2 * teacher.num_hidden_layers * teacher.layer_activation_bytes(tokens), ("training",),
                               "no gradient checkpointing"))
    # TRL's fused LM head: log-probs in vocabulary tiles, no logits; the hidden states' gradient in
    # fp32 and the output layer's whole gradient before ZeRO reduce-scatters it
    head = mb * completion * teacher.hidden_size * FP32 + teacher.vocab_size * teacher.hidden_size * FP32
    comps.append(Component("fused LM head (no logits)", head, ("training",), "hidden-state and output-layer gradients"))
    comps.append(Component("CUDA context, NCCL, fragmentation", OVERHEAD, ("resident",), "rule of thumb"))
    return Plan(layout, comps, kv_cache_bytes=plan_kv, kv_bytes_per_token=kv_per_token, sequence_tokens=seq, warnings=warnings)
