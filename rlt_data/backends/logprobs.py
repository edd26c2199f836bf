"""Memory-bounded log-probs of realized tokens from final hidden states and the output layer.

``log_softmax(h @ W.T / T)`` over a 152k vocabulary costs 0.6 MB per position in float32; for a
16k-token sequence the plain way needs ~10 GB. Here positions go through the output layer in
chunks sized so that one chunk's logits (the float32 copy, plus the matmul's own output when the
weight is not float32) stay under ``budget_bytes``, in buffers reused for every chunk: peak extra
memory does not grow with sequence length times vocabulary.

The budget: 32 MiB on CPU (more does not help there); on a GPU 32 MiB is only ~55 positions at a
152k vocabulary, too few to keep it busy, so the default there is a fraction of the free memory,
bounded (``default_budget_bytes``).

``kernel="fused"`` uses TRL's ``ChunkedLogProbFunction`` (tiles of the output layer folded into an
online log-sum-exp by a Triton kernel on CUDA, torch ops elsewhere) when TRL is installed: the
logits of a tile are never rewritten in float32.
"""

from __future__ import annotations

DEFAULT_BUDGET_BYTES = 32 * 2**20  # CPU, and the floor everywhere
MAX_BUDGET_BYTES = 2**30  # the ceiling of the automatic GPU budget
GPU_FREE_FRACTION = 1 / 32  # of the free GPU memory when the scorer starts


def default_budget_bytes(device) -> int:
    """32 MiB on CPU; on CUDA ``free memory / 32`` bounded to [32 MiB, 1 GiB]."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return DEFAULT_BUDGET_BYTES
    free, _total = torch.cuda.mem_get_info(device)
    return int(min(MAX_BUDGET_BYTES, max(DEFAULT_BUDGET_BYTES, free * GPU_FREE_FRACTION)))


def fused_available() -> bool:
    try:
        from trl.kernels import ChunkedLogProbFunction  # noqa: F401
    except Exception:
        return False
    return True


RANK_CAP = 100  # RSR's rank clip (arXiv 2601.14249): rank_t = min(1 + #{v : z[v] > z[y]}, 100)


def gather_logprobs(hidden, weight, bias, targets, temperature: float, budget_bytes: int = DEFAULT_BUDGET_BYTES,
                    kernel: str = "chunked", ranks: bool = False):
    """``log_softmax((hidden @ weight.T + bias) / T)[p, targets[p]]`` in float32, chunk by chunk.

    ``hidden[p]`` is the final hidden state at the position *before* the token ``targets[p]``
    (next-token alignment). The matmul runs in the weight's dtype like the model's own output
    layer; scaling and softmax in float32. Each position's value depends on that position alone,
    not on which other positions share its chunk (up to the matmul's own rounding).

    ``ranks=True`` returns ``(lp, lp_raw, rank)`` from the same logits: ``lp`` as above,
    ``lp_raw`` the log-prob at temperature 1 (``z[y] - logsumexp(z)`` of the raw logits) and
    ``rank`` = ``min(1 + #{v : z[v] > z[y]}, RANK_CAP)`` (float32), for the RSR and likelihood
    columns (``scoring.py``). It costs one comparison and one power pass over each chunk (no
    second matmul); the comparison's boolean buffer is reused and counted in the budget. The
    fused kernel does not give ranks: ``ranks=True`` always runs the chunked one.
    """
    if kernel == "fused" and bias is None and not ranks:  # TRL adds a bias after rounding the tile: not F.linear's logits
        return _fused(hidden, weight, bias, targets, temperature, budget_bytes)
    if kernel not in ("chunked", "fused"):
        raise ValueError(f"unknown log-prob kernel {kernel!r}; choose chunked or fused")
    import torch

    n, vocab = hidden.shape[0], weight.shape[0]
    out = torch.empty(n, dtype=torch.float32, device=hidden.device)
    out_raw = torch.empty(n, dtype=torch.float32, device=hidden.device) if ranks else None
    out_rank = torch.empty(n, dtype=torch.float32, device=hidden.device) if ranks else None
    if n == 0:
        return (out, out_raw, out_rank) if ranks else out
    low = weight.dtype != torch.float32
    per_position = vocab * (4 + (weight.element_size() if low else 0) + (1 if ranks else 0))
    step = max(1, min(n, budget_bytes // per_position))
    hidden = hidden.to(weight.dtype)
    wt = weight.t()
    buffer = torch.empty((step, vocab), dtype=torch.float32, device=hidden.device)
    raw = torch.empty((step, vocab), dtype=weight.dtype, device=hidden.device) if low else None
    above = torch.empty((step, vocab), dtype=torch.bool, device=hidden.device) if ranks else None
    for start in range(0, n, step):
        h = hidden[start : start + step]
        logits = buffer[: h.shape[0]]
        target = raw[: h.shape[0]] if low else logits
        if bias is None:
            torch.matmul(h, wt, out=target)
        else:  # the bias added inside the matmul, in the weight's dtype, like F.linear
            torch.addmm(bias, h, wt, out=target)
        if low:  # the output layer's logits in its dtype, then float32 (torch.div(..., out=float32)
            logits.copy_(target)  # would divide in the input's dtype)
        if ranks:  # on the raw float32 logits, before any scaling: ties and order as the model gives them
            picked_raw = logits.gather(1, targets[start : start + step, None])
            mask = above[: h.shape[0]]
            torch.gt(logits, picked_raw, out=mask)
            out_rank[start : start + step] = mask.sum(dim=1).add_(1).clamp_(max=RANK_CAP).float()
        logits.div_(temperature)
        picked = logits.gather(1, targets[start : start + step, None]).squeeze(1)
        # log-sum-exp in place: no temporary the size of the chunk
        top = logits.amax(dim=1, keepdim=True)
        logits.sub_(top).exp_()
        out[start : start + step] = picked - top.squeeze(1) - logits.sum(dim=1).log_()
        if ranks:
            if temperature == 1:
                out_raw[start : start + step] = out[start : start + step]
            else:  # exp((z/T - m)) ** T = exp(z - T m): the raw log-sum-exp from the same buffer, in place
                logits.pow_(temperature)
                shift = top.squeeze(1) * temperature
                out_raw[start : start + step] = picked_raw.squeeze(1) - shift - logits.sum(dim=1).log_()
    return (out, out_raw, out_rank) if ranks else out


def _fused(hidden, weight, bias, targets, temperature, budget_bytes):
    import torch
    from trl.kernels import ChunkedLogProbFunction
    from trl.kernels.chunked_logprob import TOKEN_CHUNK_SIZE

    n = hidden.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.float32, device=hidden.device)
    # TRL's tile is [min(n, 4096) positions, chunk_size vocabulary entries] in the weight's dtype
    # (plus float32 temporaries of the same size where Triton is missing).
    rows = min(n, TOKEN_CHUNK_SIZE)
    chunk = max(1024, min(weight.shape[0], budget_bytes // (rows * (weight.element_size() + 4))))
    logprobs, *_ = ChunkedLogProbFunction.apply(
        hidden.to(weight.dtype), weight, bias, targets, temperature, chunk, None, 1.0, ()
    )
    return logprobs.float()
