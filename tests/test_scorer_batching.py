"""The transformers scorer packs rows without padding: a row's log-probs do not depend on its batch.

CPU, float32: the same rows scored in different batch compositions (other neighbours, other pass
sizes, alone) give the same log-probs to 1e-4, equal to a plain full-logits reference; chunk
sizes and the fused log-prob kernel do not change them either.
"""

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rlt_data.backends import logprobs as lpmod
from rlt_data.backends import transformers_backend as hf

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 1000


@pytest.fixture(scope="module")
def model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    # grouped-query attention (4 query heads, 2 key/value heads), like Qwen2.5
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    lm = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        lm.get_input_embeddings().weight.normal_(0, 0.5)  # peaked logits: differences would show
    return lm


@pytest.fixture(scope="module")
def requests():
    rng = np.random.default_rng(0)
    out = []
    for n in [5, 300, 17, 120, 64, 2, 250, 33, 1]:
        ids = rng.integers(0, VOCAB, n).tolist()
        positions = np.arange(1, n) if n % 2 else np.sort(rng.choice(np.arange(1, n), size=max(0, n // 3), replace=False))
        out.append((ids, positions))
    return out


def plain_reference(model, requests, temperature):
    """One row per pass, full logits, log_softmax in float32 (independent of the scorer)."""
    out = []
    for ids, pos in requests:
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float() / temperature, dim=-1)
        out.append(lp[torch.as_tensor(pos, dtype=torch.long) - 1, torch.tensor(ids)[pos]].numpy())
    return out


def scorer(model, **options):
    return hf.Scorer.from_model(copy.deepcopy(model), None, hf.Options(device="cpu", dtype="float32", **options))


def assert_same(a, b, tol=1e-4):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == np.float32 and x.shape == y.shape
        np.testing.assert_allclose(x, y, atol=tol, rtol=0)


@pytest.mark.parametrize("attention", ["auto", "segments", "padded"])
def test_logprobs_do_not_depend_on_batch_composition(model, requests, attention):
    ref = plain_reference(model, requests, 0.7)
    s = scorer(model, attention=attention, max_tokens_per_batch=400, logprob_budget_bytes=4096 * 7)
    assert s.attention == ("segments" if attention == "auto" else attention)  # CPU: no varlen kernel
    together = s.logprobs(requests, 0.7)
    assert_same(together, ref)
    alone = [s.logprobs([r], 0.7)[0] for r in requests]
    assert_same(together, alone)
    # other neighbours, other order, other pass sizes
    order = [3, 0, 8, 6, 1, 5, 2, 7, 4]
    shuffled = s.logprobs([requests[i] for i in order], 0.7)
    assert_same([shuffled[order.index(i)] for i in range(len(requests))], ref)
    wide = scorer(model, attention=attention, max_tokens_per_batch=100_000).logprobs(requests[::-1], 0.7)[::-1]
    assert_same(wide, ref)
    pairs = [s.logprobs([requests[i], requests[(i + 4) % len(requests)]], 0.7)[0] for i in range(len(requests))]
    assert_same(pairs, ref)


def test_rows_share_a_pass_and_long_rows_go_alone(model, requests):
    s = scorer(model, max_tokens_per_batch=400)
    passes = []
    hook = s.body.register_forward_hook(lambda mod, args, kwargs, out: passes.append(kwargs["input_ids"].shape), with_kwargs=True)
    try:
        s.logprobs(requests, 1.0)
        s.logprobs([(list(range(1, 600)), np.arange(1, 599))], 1.0)  # longer than a pass: alone
    finally:
        hook.remove()
    lengths = sorted((len(ids) for ids, _ in requests), reverse=True)
    assert all(shape[0] == 1 for shape in passes)  # packed: one sequence per pass, no padding
    assert sum(shape[1] for shape in passes[:-1]) == sum(lengths)
    assert len(passes) - 1 < len(requests) and max(shape[1] for shape in passes[:-1]) <= 400
    assert passes[-1] == (1, 599)


def test_temperature_and_empty_positions(model, requests):
    s = scorer(model)
    for t in (0.3, 1.0, 1.7):
        assert_same(s.logprobs(requests, t), plain_reference(model, requests, t))
    assert s.logprobs([], 0.7) == []
    (empty,) = s.logprobs([([1, 2, 3], np.array([], dtype=np.int64))], 0.7)
    assert empty.shape == (0,)


@pytest.mark.parametrize("kernel", ["chunked", "fused"])
def test_logprob_kernels_and_chunk_sizes_agree(kernel):
    if kernel == "fused" and not lpmod.fused_available():
        pytest.skip("TRL not installed")
    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(300, 64, generator=g), torch.randn(5000, 64, generator=g) * 0.3
    targets = torch.randint(0, 5000, (300,), generator=g)
    ref = torch.log_softmax(h @ w.t() / 0.7, dim=-1)[torch.arange(300), targets]
    for budget in (1, 4096 * 9, 2**30):  # one position per chunk, a few, all
        got = lpmod.gather_logprobs(h, w, None, targets, 0.7, budget, kernel)
        assert got.dtype == torch.float32 and torch.allclose(got, ref, atol=1e-4, rtol=0)
    # bfloat16 output layer (with a bias): the layer's own bfloat16 logits, then float32 / T
    wb, bias = w.bfloat16(), torch.randn(5000, generator=g).bfloat16()
    ref_b = torch.log_softmax(torch.nn.functional.linear(h.bfloat16(), wb, bias).float() / 0.7, dim=-1)[torch.arange(300), targets]
    assert torch.allclose(lpmod.gather_logprobs(h, wb, bias, targets, 0.7, 4096 * 9, kernel), ref_b, atol=1e-4, rtol=0)


def test_fused_kernel_through_the_scorer(model, requests):
    if not lpmod.fused_available():
        pytest.skip("TRL not installed")
    assert_same(scorer(model, logprob_kernel="fused").logprobs(requests, 0.7), plain_reference(model, requests, 0.7))


def _segment_attention(q, k, v, cu, scale, gqa):
    """Reference varlen attention in the kernels' [T, H, D] layout: causal sdpa per row."""
    assert q.dim() == 3 and all(x.is_contiguous() for x in (q, k, v)) and cu.dtype == torch.int32
    out = torch.empty_like(q)
    for s, e in zip(cu[:-1].tolist(), cu[1:].tolist()):
        o = torch.nn.functional.scaled_dot_product_attention(
            q[s:e].transpose(0, 1), k[s:e].transpose(0, 1), v[s:e].transpose(0, 1), scale=scale, is_causal=True, enable_gqa=gqa
        )
        out[s:e] = o.transpose(0, 1)
    return out


def fake_varlen_new(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None, scale=None,
                    window_size=(-1, -1), enable_gqa=False, seqused_k=None, block_table=None, num_splits=None):
    assert window_size == (-1, 0) and num_splits == 1 and max_q == int((cu_seq_q[1:] - cu_seq_q[:-1]).max())
    assert enable_gqa == (query.shape[1] != key.shape[1])  # torch 2.13's signature
    return _segment_attention(query, key, value, cu_seq_q, scale, enable_gqa)


def fake_varlen_old(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False, return_aux=None, scale=None):
    assert is_causal and query.shape[1] == key.shape[1]  # torch 2.9's: no GQA, key/value heads repeated
    return _segment_attention(query, key, value, cu_seq_q, scale, False)


def fake_flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                                softmax_scale=None, causal=False, **kwargs):
    assert causal and dropout_p == 0.0
    return _segment_attention(q, k, v, cu_seqlens_q, softmax_scale, q.shape[1] != k.shape[1])


@pytest.mark.parametrize("fake", [fake_varlen_new, fake_varlen_old, "flash-attn"])
def test_varlen_kernel_plumbing(model, requests, monkeypatch, fake):
    """The GPU kernels' calling code (layouts, offsets, GQA, signatures), with CPU stand-ins for the kernels."""
    import types

    import torch.nn.attention.varlen as varlen

    if fake == "flash-attn":
        monkeypatch.setitem(sys.modules, "flash_attn", types.SimpleNamespace(flash_attn_varlen_func=fake_flash_attn_varlen_func))
        attention = "flash-attn"
    else:
        monkeypatch.setattr(varlen, "varlen_attn", fake)
        attention = "torch-varlen"
    s = scorer(model, attention=attention, max_tokens_per_batch=400)
    assert s.attention == attention
    together = s.logprobs(requests, 0.7)
    assert_same(together, plain_reference(model, requests, 0.7))
    assert_same(together, [s.logprobs([r], 0.7)[0] for r in requests])


def test_budget_defaults_and_bad_options(model):
    assert lpmod.default_budget_bytes("cpu") == lpmod.DEFAULT_BUDGET_BYTES == 32 * 2**20
    assert scorer(model).budget_bytes == lpmod.DEFAULT_BUDGET_BYTES
    assert scorer(model, logprob_budget_bytes=123).budget_bytes == 123
    from rlt_data.errors import UserError

    with pytest.raises(UserError):
        scorer(model, attention="nope")
    with pytest.raises(UserError):  # no CUDA here: the varlen kernels do not run
        scorer(model, attention="torch-varlen")
    with pytest.raises(UserError):
        scorer(model, logprob_kernel="nope")
    with pytest.raises(ValueError):  # position 0 has no previous token
        scorer(model).logprobs([([1, 2, 3], np.array([0, 1]))], 0.7)


def test_the_scorers_model_still_scores_one_row_plainly(model, requests):
    """The scorer switches its model to rlt-data's attention; a plain call (no packing) is unchanged."""
    s = scorer(model)
    ids = torch.tensor([requests[1][0]])
    with torch.no_grad():
        assert torch.allclose(s.model(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)


def test_gpu_benchmark_smoke_runs_on_cpu():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu_scoring.py"), "--smoke"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bare forward" in out.stdout and "max |batched - one-row|" in out.stdout
