"""Scoring throughput and peak memory: rlt-data's scorer against the plain reference approach.

Reference: one sequence per forward pass, ``model(ids).logits`` over the whole vocabulary,
``log_softmax(logits / T)``, gather. rlt-data: length-sorted batches, hidden states only, the output
layer applied only at scored positions in chunks (``backends/logprobs.py``).

Both run on the same inputs, in this one run, each in its own subprocess so that peak RSS is its
own. The model is a tiny Qwen2 (hidden 64) with Qwen2.5's vocabulary size (151,646), float32, CPU.

    python benchmarks/bench_scoring.py            # throughput on 48 rows + memory on one 4k-token row
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VOCAB = 151_646


def build(root: Path) -> str:
    from rlt_data.testing import tiny

    tok = tiny.build_tokenizer()
    path = root / "model"
    tiny.build_model(path, tokenizer=tok, seed=0, max_position_embeddings=8192)
    # Qwen2.5-sized vocabulary: widen the (tied) embedding; ids beyond the tokenizer are never used.
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    model.resize_token_embeddings(VOCAB, mean_resizing=False)
    model.save_pretrained(path)
    return str(path)


def rows(n: int, long_tokens: int | None = None) -> list[dict]:
    from rlt_data.testing import toy

    out = []
    for k, r in enumerate(toy.toy_rows(n, seed=11)):
        repeat = (long_tokens // 100) if long_tokens else 1 + (k * 7) % 20  # mixed lengths, ~500 to ~1,900 tokens
        out.append({"question": r["question"], "solution": r["solution"], "explanation": "\n\n".join([r["explanation"]] * repeat), "has_end_tag": True})
    return out


def reference(model_path: str, data: list[dict], temperature: float) -> list[float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlt_data import protocol, scoring

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    out = []
    for r in data:
        ctx = protocol.student_scoring_context(tok, r["question"], r["explanation"], r["solution"])
        t = scoring.tokenize_context(tok, ctx)
        out.append(float(plain_logprobs(model, t.ids, t.solution, temperature).mean()))
    return out


def plain_logprobs(model, ids, positions, temperature: float):
    """The plain way, for one row: ``model(ids).logits``, ``log_softmax(logits.float() / T)``, gather."""
    import torch

    ids = torch.tensor([list(ids)], device=model.device)
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids).logits[0].float() / temperature, dim=-1)
    pos = torch.as_tensor(positions, dtype=torch.long, device=model.device)
    return lp[pos - 1, ids[0, pos]].cpu().numpy()


def ours(model_path: str, data: list[dict], temperature: float) -> list[float]:
    """The student pass of a KL-scored run: log-probs of every think and solution token."""
    import numpy as np

    from rlt_data import protocol, scoring
    from rlt_data.backends import transformers_backend as hf

    scorer = hf.Scorer(model_path, hf.Options(device="cpu", dtype="float32"))
    tok = scorer.tokenizer
    ts = [scoring.tokenize_context(tok, protocol.student_scoring_context(tok, r["question"], r["explanation"], r["solution"])) for r in data]
    lps = scorer.logprobs([(t.ids, np.concatenate([t.think, t.solution])) for t in ts], temperature)
    return [float(lp[len(t.think):].mean()) for t, lp in zip(ts, lps)]


def worker(args) -> None:
    """Run one method in this process; print seconds, tokens, peak extra RSS and the scores."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    data = rows(args.rows, args.long_tokens)
    fn = {"reference": reference, "ours": ours}[args.worker]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after imports, before the model loads
    fn(args.model, rows(1), 0.7)  # warm-up (not timed): model load, allocator, kernels
    start = time.perf_counter()
    scores = fn(args.model, data, 0.7)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from transformers import AutoTokenizer

    from rlt_data import protocol

    tok = AutoTokenizer.from_pretrained(args.model)
    tokens = sum(len(tok(protocol.student_scoring_context(tok, r["question"], r["explanation"], r["solution"]).text).input_ids) for r in data)
    # extra_rss_mb: peak RSS above the process after imports (the same ~40 MB model is loaded on both sides)
    print(json.dumps({"seconds": seconds, "tokens": tokens, "extra_rss_mb": (peak - base) / 1024, "scores": scores}))


def run(method: str, model: str, n: int, long_tokens: int | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--model", model, "--rows", str(n)]
    if long_tokens:
        cmd += ["--long-tokens", str(long_tokens)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=["reference", "ours"])
    parser.add_argument("--model")
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--long-tokens", type=int)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory() as tmp:
        model = build(Path(tmp))
        print(f"model: tiny Qwen2, hidden 64, vocabulary {VOCAB:,}, float32, CPU, {os.environ.get('BENCH_THREADS', '2')} threads")
        ref, us = run("reference", model, args.rows, None), run("ours", model, args.rows, None)
        err = max(abs(a - b) for a, b in zip(ref["scores"], us["scores"]))
        print(f"throughput, {args.rows} rows of mixed length ({ref['tokens']:,} tokens):")
        print(f"  reference {ref['tokens'] / ref['seconds']:,.0f} tok/s   rlt-data {us['tokens'] / us['seconds']:,.0f} tok/s   "
              f"ratio {ref['seconds'] / us['seconds']:.2f}x   (max |diff| of mean solution log-prob {err:.1e})")
        ref_m, us_m = run("reference", model, 1, 4096), run("ours", model, 1, 4096)
        print(f"peak extra memory, one {us_m['tokens']:,}-token row:")
        print(f"  reference {ref_m['extra_rss_mb']:,.0f} MB   rlt-data {us_m['extra_rss_mb']:,.0f} MB   "
              f"ratio {us_m['extra_rss_mb'] / max(ref_m['extra_rss_mb'], 1e-9):.3f}")


if __name__ == "__main__":
    main()
