"""Memory-bounded log-probs of realized tokens from final hidden states and the output layer.

``log_softmax(h @ W.T / T)`` over a 152k vocabulary costs 0.6 MB per position in float32; for a
16k-token sequence the plain way needs ~10 GB. Here positions go through the output layer in
chunks sized so that one chunk's float32 logits stay under ``budget_bytes``, in one buffer reused
for every chunk: peak extra memory does not grow with sequence length times vocabulary.
"""

from __future__ import annotations

DEFAULT_BUDGET_BYTES = 32 * 2**20


def gather_logprobs(hidden, weight, bias, targets, temperature: float, budget_bytes: int = DEFAULT_BUDGET_BYTES):
    """``log_softmax((hidden @ weight.T + bias) / T)[p, targets[p]]`` in float32, chunk by chunk.

    ``hidden[p]`` is the final hidden state at the position *before* the token ``targets[p]``
    (next-token alignment). The matmul runs in the weight's dtype like the model's own output
    layer; scaling and softmax in float32.
    """
    import torch
    import torch.nn.functional as F

    vocab = weight.shape[0]
    step = max(1, min(hidden.shape[0], budget_bytes // (vocab * 4)))
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    hidden = hidden.to(weight.dtype)
    exact_fp32 = weight.dtype == torch.float32 and bias is None
    buffer = torch.empty((step, vocab), dtype=torch.float32, device=hidden.device) if exact_fp32 else None
    for start in range(0, hidden.shape[0], step):
        h = hidden[start : start + step]
        if buffer is not None:  # float32: write into the reused buffer, no allocation per chunk
            logits = buffer[: h.shape[0]]
            torch.matmul(h, weight.t(), out=logits)
        else:
            logits = F.linear(h, weight, bias).float()
        logits.div_(temperature)
        picked = logits.gather(1, targets[start : start + step, None]).squeeze(1)
        out[start : start + step] = picked - torch.logsumexp(logits, dim=-1)
    return out
