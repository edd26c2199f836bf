"""The scoring attention kernels of the transformers backend: variable-length attention over packed
rows, registered with transformers' ``AttentionInterface``, and the choice among them
(``--scoring-attention``; ``resolve_attention`` probes what runs here)."""

from __future__ import annotations

from ..errors import UserError
from ..options import ATTENTION_CHOICES

# Variable-length attention over packed rows. ``cu_seq_lens_q`` (int32, the rows' start offsets
# and the total) comes in through the model's keyword arguments, as for transformers' own
# flash-attention path; these functions are registered with transformers under the names below.
#   torch-varlen: torch.nn.attention.varlen.varlen_attn (flash attention in torch itself; CUDA,
#                 bfloat16/float16)
#   flash-attn:   flash_attn.flash_attn_varlen_func (the flash-attn package)
#   segments:     one scaled_dot_product_attention call per row (any device and dtype): each row
#                 gets the kernel it would get alone; the linear layers still run packed
#   padded:       no packing: right-padded batches with the model's own attention (the former way)
ATTENTION = {"torch-varlen": "rlt_torch_varlen", "flash-attn": "rlt_fa2_varlen", "segments": "rlt_segments"}


def _rows(kwargs, length: int) -> list[int]:
    cu = kwargs.get("cu_seq_lens_q")
    return [0, length] if cu is None else [int(x) for x in cu.tolist()]


def _segments_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, sliding_window=None, **kwargs):
    """query [1, H, T, D], key/value [1, H_kv, T, D] -> [1, T, H, D]: causal attention within each row."""
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if kwargs.get("cu_seq_lens_q") is None:  # not a packed call: the model's usual sdpa attention
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    _check_plain(query, sliding_window)
    gqa = query.shape[1] != key.shape[1]
    out = query.new_empty((1, query.shape[2], query.shape[1], query.shape[3]))
    bounds = _rows(kwargs, query.shape[2])
    for start, end in zip(bounds[:-1], bounds[1:]):
        o = F.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], scale=scaling, is_causal=True, enable_gqa=gqa
        )
        out[:, start:end] = o.transpose(1, 2)
    return out, None


def _torch_varlen_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, sliding_window=None, **kwargs):
    from torch.nn.attention.varlen import varlen_attn

    if kwargs.get("cu_seq_lens_q") is None:
        return _segments_attention(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    _check_plain(query, sliding_window)
    cu, longest = kwargs["cu_seq_lens_q"], kwargs["max_length_q"]
    q, k, v = (x[0].transpose(0, 1).contiguous() for x in (query, key, value))  # [T, H, D]
    params = _VARLEN_PARAMS
    extra = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}  # torch 2.9-2.11 / later
    if q.shape[1] != k.shape[1]:
        if "enable_gqa" in params:
            extra["enable_gqa"] = True
        else:
            k, v = (x.repeat_interleave(q.shape[1] // k.shape[1], dim=1) for x in (k, v))
    if "num_splits" in params:
        extra["num_splits"] = 1  # no split-KV: results independent of the other rows
    out = varlen_attn(q, k, v, cu, cu, longest, longest, scale=scaling, **extra)
    return out.unsqueeze(0), None


def _flash_attn_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, sliding_window=None, **kwargs):
    from flash_attn import flash_attn_varlen_func

    if kwargs.get("cu_seq_lens_q") is None:
        return _segments_attention(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    _check_plain(query, sliding_window)
    cu, longest = kwargs["cu_seq_lens_q"], kwargs["max_length_q"]
    q, k, v = (x[0].transpose(0, 1).contiguous() for x in (query, key, value))
    out = flash_attn_varlen_func(q, k, v, cu, cu, longest, longest, dropout_p=0.0, softmax_scale=scaling, causal=True)
    return out.unsqueeze(0), None


def _check_plain(query, sliding_window) -> None:
    if query.shape[0] != 1:
        raise ValueError("packed rows come as one sequence (batch size 1)")
    if sliding_window is not None:
        raise ValueError("sliding-window attention layers: use the padded scorer (attention='padded')")


_VARLEN_PARAMS: frozenset = frozenset()


def _register() -> None:
    import inspect

    from transformers import AttentionInterface

    global _VARLEN_PARAMS
    AttentionInterface.register(ATTENTION["segments"], _segments_attention)
    AttentionInterface.register(ATTENTION["torch-varlen"], _torch_varlen_attention)
    AttentionInterface.register(ATTENTION["flash-attn"], _flash_attn_attention)
    try:
        from torch.nn.attention.varlen import varlen_attn

        _VARLEN_PARAMS = frozenset(inspect.signature(varlen_attn).parameters)
    except Exception:
        pass


def _probe(name: str, device, dtype) -> bool:
    """Whether a varlen kernel runs here: two packed rows against two separate calls."""
    import torch

    try:
        g = torch.Generator(device="cpu").manual_seed(0)
        q, k, v = (torch.randn(1, h, 24, 64, generator=g).to(device=device, dtype=dtype) for h in (4, 2, 2))
        cu = torch.tensor([0, 10, 24], dtype=torch.int32, device=device)
        module = torch.nn.Module()
        fn = {"torch-varlen": _torch_varlen_attention, "flash-attn": _flash_attn_attention}[name]
        out, _ = fn(module, q, k, v, None, scaling=0.125, cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=14, max_length_k=14)
        ref, _ = _segments_attention(module, q, k, v, None, scaling=0.125, cu_seq_lens_q=cu)
        return bool(torch.allclose(out.float(), ref.float(), atol=2e-2))
    except Exception:
        return False


def resolve_attention(attention: str, device, dtype) -> str:
    """``auto``: on CUDA the first of torch-varlen, flash-attn that runs; otherwise (and on CPU) segments."""
    import torch

    _register()
    if attention not in ATTENTION_CHOICES:
        raise UserError(f"unknown scoring attention {attention!r}; choose one of {', '.join(ATTENTION_CHOICES)}")
    if attention in ("segments", "padded"):
        return attention
    if attention != "auto":
        if not _probe(attention, device, dtype):
            raise UserError(f"scoring attention {attention!r} does not run on {device} in {dtype}")
        return attention
    if torch.device(device).type == "cuda":
        for name in ("torch-varlen", "flash-attn"):
            if _probe(name, device, dtype):
                return name
    return "segments"
