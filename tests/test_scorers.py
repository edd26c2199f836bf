"""The student-aware columns beside the reward (rsr, rsr_turn, student_lp_explanation_mean) against a
naive full-logits computation written independently of scoring.py and backends/logprobs.py."""

import numpy as np
import pytest
import torch

from rlt_data import protocol, scoring
from rlt_data.backends import dummy_backend
from rlt_data.backends import transformers_backend as hf
from rlt_data.backends.logprobs import gather_logprobs
from helpers import ROWS


def naive_stats(logits, targets, temperature):
    """Full log_softmax at T and at 1, and RSR's clipped rank, position by position."""
    z = logits.double()
    lp = torch.log_softmax(z / temperature, dim=-1).gather(1, targets[:, None])[:, 0]
    lp1 = torch.log_softmax(z, dim=-1).gather(1, targets[:, None])[:, 0]
    picked = z.gather(1, targets[:, None])
    rank = torch.clamp(1 + (z > picked).sum(dim=1), max=100)
    return lp.numpy(), lp1.numpy(), rank.numpy()


@pytest.mark.parametrize("dtype,bias,temperature", [(torch.float32, False, 0.7), (torch.float32, True, 1.0), (torch.bfloat16, False, 1.3)])
def test_kernel_ranks_and_raw_logprobs_equal_full_softmax(dtype, bias, temperature):
    g = torch.Generator().manual_seed(0)
    n, d, vocab = 37, 16, 700  # ranks above the 100 cap occur; 4 KiB budget: many chunks
    hidden = torch.randn(n, d, generator=g)
    weight = (torch.randn(vocab, d, generator=g) * 2).to(dtype)
    b = torch.randn(vocab, generator=g).to(dtype) if bias else None
    targets = torch.randint(0, vocab, (n,), generator=g)
    lp, lp1, rank = gather_logprobs(hidden, weight, b, targets, temperature, budget_bytes=4096, ranks=True)
    logits = torch.nn.functional.linear(hidden.to(dtype), weight, b).float()
    e_lp, e_lp1, e_rank = naive_stats(logits, targets, temperature)
    assert np.allclose(lp.numpy(), e_lp, atol=1e-4) and np.allclose(lp1.numpy(), e_lp1, atol=1e-4)
    assert np.array_equal(rank.numpy(), e_rank.astype(np.float32))
    assert rank.max() == 100 and rank.min() >= 1
    plain = gather_logprobs(hidden, weight, b, targets, temperature, budget_bytes=4096)
    assert torch.equal(plain, lp)  # the reward's log-probs do not change when ranks are asked for


def naive_columns(model, tokenizer, row):
    """rsr, rsr_turn and the mean explanation log-prob from one full forward pass at T = 1."""
    ctx = protocol.student_scoring_context(tokenizer, row["question"], row["explanation"], row["solution"])
    enc = tokenizer(ctx.text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    content = protocol.training_messages(row["question"], row["explanation"], row["solution"])[-1]["content"]
    start = ctx.text.rindex(content)  # the assistant content, located independently of the scorer

    def inside(span):
        return [i for i, (s, e) in enumerate(enc.offset_mapping) if i > 0 and e > s and s >= span[0] and e <= span[1]]

    def stats(positions):
        pos = torch.tensor(positions)
        prev, tok = logits[pos - 1], ids[0, pos]
        nll = torch.logsumexp(prev, dim=-1) - prev.gather(1, tok[:, None])[:, 0]
        rank = torch.clamp(1 + (prev > prev.gather(1, tok[:, None])).sum(dim=1), max=100).double()
        return nll, rank

    nll, rank = stats(inside(ctx.think))
    nll_turn, rank_turn = stats(inside((start, start + len(content))))
    return {"rsr": float(rank.sum() / nll.sum()), "rsr_turn": float(rank_turn.sum() / nll_turn.sum()),
            "student_lp_explanation_mean": float(-nll.mean())}, len(nll_turn)


@pytest.fixture(scope="module")
def student(random_models):
    opts = hf.Options(device="cpu", dtype="float32", max_tokens_per_batch=2500, logprob_budget_bytes=4096 * 8)
    scorer = hf.Scorer(random_models["student"], opts)
    yield scorer
    scorer.close()


def test_columns_equal_naive_full_logits(student):
    config = scoring.RewardConfig()
    got = scoring.student_scores(student, ROWS, None, config)
    hot = scoring.student_scores(student, ROWS, None, scoring.RewardConfig(temperature=1.7, kl_coefs=(0, 0)))
    for row, g, h in zip(ROWS, got, hot):
        expected, n_turn = naive_columns(student.model, student.tokenizer, row)
        assert n_turn > g["num_think_tokens"] + g["num_solution_tokens"]  # the turn adds the tags
        for key, value in expected.items():
            assert g[key] == pytest.approx(value, abs=1e-4, rel=1e-5), key
            assert h[key] == pytest.approx(g[key], abs=1e-5), key  # temperature 1, whatever --temperature-score is
        assert g["rsr"] > 0 and g["student_lp_explanation_mean"] < 0


def test_columns_kept_when_the_kl_term_is_undefined(student):
    config = scoring.RewardConfig()
    teacher = [{"teacher_think_ids": np.array([1, 2, 3], dtype=np.int32), "teacher_think_lp": np.zeros(3, dtype=np.float32)}]
    (g,) = scoring.student_scores(student, ROWS[:1], teacher, config)
    assert g["think_mismatch"] and g["reward"] is None and g["rsr"] is not None
    assert set(scoring.STUDENT_TERMS) <= set(g)


def test_dummy_backend_writes_the_columns(random_models):
    scorer = dummy_backend.Scorer(random_models["student"], dummy_backend.Options())
    got = scoring.student_scores(scorer, ROWS, None, scoring.RewardConfig(kl_coefs=(0, 0)))
    again = scoring.student_scores(scorer, ROWS, None, scoring.RewardConfig(kl_coefs=(0, 0)))
    assert got == again
    for g in got:
        assert g["rsr"] > 0 and g["rsr_turn"] > 0 and g["student_lp_explanation_mean"] < 0
    assert len({g["rsr"] for g in got}) == len(got)
    assert scoring.rank_surprisal_ratio(np.zeros(0), np.zeros(0)) is None
    assert scoring.rank_surprisal_ratio(np.array([-0.5, -1.5]), np.array([1, 3])) == pytest.approx(2.0)
