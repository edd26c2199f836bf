"""The RLT reward against a naive, independent implementation (one sequence, full log-softmax)."""

import numpy as np
import pytest
import torch

from rlt_data import protocol, scoring
from rlt_data.testing import toy
from rlt_data.backends import transformers_backend as hf
from rlt_data.errors import UserError
from helpers import ROWS

def naive_token_logprobs(model, tokenizer, text, temperature):
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    lp = torch.log_softmax(logits / temperature, dim=-1)
    per_token = [float("nan")] + [float(lp[i - 1, ids[0, i]]) for i in range(1, ids.shape[1])]
    return np.array(per_token), enc.offset_mapping


def naive_span(offsets, text, span):
    """Tokens every character of which lies inside the span (written independently of scoring.py)."""
    covered = np.zeros(len(text) + 1, dtype=bool)
    covered[span[0] : span[1]] = True
    return [i for i, (s, e) in enumerate(offsets) if e > s and covered[s:e].all()]


def naive_reward(teacher, student, tokenizer, row, config):
    t_ctx = protocol.teacher_scoring_context(tokenizer, row["question"], row["explanation"], row["solution"])
    s_ctx = protocol.student_scoring_context(tokenizer, row["question"], row["explanation"], row["solution"])
    t_lp, t_off = naive_token_logprobs(teacher, tokenizer, t_ctx.text, config.temperature)
    s_lp, s_off = naive_token_logprobs(student, tokenizer, s_ctx.text, config.temperature)
    t_think, s_think = naive_span(t_off, t_ctx.text, t_ctx.think), naive_span(s_off, s_ctx.text, s_ctx.think)
    s_sol = naive_span(s_off, s_ctx.text, s_ctx.solution)
    lp_s = s_lp[s_sol]
    kl = t_lp[t_think] - s_lp[s_think]
    r_ss = config.lp_coefs[0] * lp_s.mean() + config.lp_coefs[1] * lp_s.min()
    r_kl = config.kl_coefs[0] * kl.mean() + config.kl_coefs[1] * kl.max()
    return r_ss - r_kl - (0 if row["has_end_tag"] else 1), len(s_sol), len(s_think)


@pytest.fixture(scope="module")
def scorers(random_models):
    # Small batches and a tiny log-softmax budget force padding, multi-row batches and chunking.
    opts = hf.Options(device="cpu", dtype="float32", max_tokens_per_batch=2500, logprob_budget_bytes=4096 * 8)
    teacher, student = hf.Scorer(random_models["teacher"], opts), hf.Scorer(random_models["student"], opts)
    yield teacher, student
    teacher.close(), student.close()


def test_batched_scorer_matches_naive_reference(scorers):
    teacher, student = scorers
    config = scoring.RewardConfig()
    got = scoring.student_scores(student, ROWS, scoring.teacher_think_logprobs(teacher, ROWS, config), config)
    lengths = [g["student_context_tokens"] for g in got]
    assert max(lengths) > 2 * min(lengths)  # very different lengths share batches
    for row, g in zip(ROWS, got):
        expected, n_sol, n_think = naive_reward(teacher.model, student.model, student.tokenizer, row, config)
        assert not g["think_mismatch"]
        assert g["num_solution_tokens"] == n_sol and g["num_think_tokens"] == n_think
        assert g["reward"] == pytest.approx(expected, abs=1e-4)
        assert g["reward"] == pytest.approx(g["r_ss"] - g["r_kl"] - (0 if row["has_end_tag"] else 1), abs=1e-9)


def test_temperature_and_coefficients_are_applied(scorers):
    teacher, student = scorers
    config = scoring.RewardConfig(temperature=1.3, lp_coefs=(5, 0.05), kl_coefs=(5, 0.05), format_penalty=-1)
    got = scoring.student_scores(student, ROWS[:1], scoring.teacher_think_logprobs(teacher, ROWS[:1], config), config)
    expected, *_ = naive_reward(teacher.model, student.model, student.tokenizer, ROWS[0], config)
    assert got[0]["reward"] == pytest.approx(expected, abs=1e-4)
    default = scoring.student_scores(student, ROWS[:1], None, scoring.RewardConfig(kl_coefs=(0, 0)))
    assert default[0]["reward"] != pytest.approx(got[0]["reward"], abs=1e-3)
    assert default[0]["kl_mean"] is None and default[0]["r_kl"] == 0
    assert tuple(scoring.reward_terms(np.array([-1.0]), None, True, config)) == scoring.REWARD_TERMS


def test_chunked_logprobs_equal_full_softmax():
    from rlt_data.backends.logprobs import gather_logprobs

    torch.manual_seed(0)
    hidden, weight, targets = torch.randn(37, 16), torch.randn(1000, 16), torch.randint(0, 1000, (37,))
    full = torch.log_softmax((hidden @ weight.T) / 0.7, dim=-1)[torch.arange(37), targets]
    for budget in (1, 4000 * 3, 10**9):  # one position per chunk, three, all at once
        assert torch.allclose(gather_logprobs(hidden, weight, None, targets, 0.7, budget), full, atol=1e-5)


def test_span_tokens_equal_the_loop_on_random_spans():
    """The vectorized rule, against the loop it replaced: random token offsets (zero-width ones
    included, as special tokens have) and random spans, empty ones and ones past the text."""
    rng = np.random.default_rng(0)
    loop = lambda offsets, span: [i for i, (s, e) in enumerate(offsets) if s >= span[0] and e <= span[1]]  # noqa: E731
    for _ in range(300):
        n = int(rng.integers(0, 40))
        starts = np.cumsum(rng.integers(0, 4, n))
        offsets = [(int(s), int(s + w)) for s, w in zip(starts, rng.integers(0, 5, n))]
        a, b = sorted(int(x) for x in rng.integers(-2, (starts[-1] if n else 0) + 6, 2))
        for given in (offsets, np.array(offsets, dtype=np.int64).reshape(-1, 2)):
            got = scoring.span_tokens(given, (a, b))
            assert got.dtype == np.int64 and got.tolist() == loop(offsets, (a, b))


def test_span_rule_with_real_qwen_bpe(qwen_tokenizer):
    """Qwen's BPE merges the tag's '>' with the following '\\n\\n': that token straddles and is not scored."""
    tok = qwen_tokenizer
    for row in ROWS:
        s_ctx = protocol.student_scoring_context(tok, row["question"], row["explanation"], row["solution"])
        t_ctx = protocol.teacher_scoring_context(tok, row["question"], row["explanation"], row["solution"])
        s_tok, t_tok = scoring.tokenize_context(tok, s_ctx), scoring.tokenize_context(tok, t_ctx)
        s_think = [s_tok.ids[i] for i in s_tok.think]
        assert s_think == [t_tok.ids[i] for i in t_tok.think]  # identical in both contexts
        # the span's leading "\n\n" went into the "|>\n\n" token; the rest is scored
        assert tok.decode(s_think) == protocol.pad(row["explanation"])[2:]
        assert tok.decode([s_tok.ids[i] for i in s_tok.solution]) == protocol.pad(row["solution"])[2:]
        boundary = s_tok.think[0] - 1
        assert tok.convert_ids_to_tokens(s_tok.ids[boundary]).endswith(">ĊĊ")  # "<|begin_of_thought|>" + "\n\n"


def test_different_tokenizers_need_zero_kl(tokenizer, qwen_tokenizer):
    with pytest.raises(UserError, match="tokenizers differ"):
        scoring.check_tokenizers(tokenizer, qwen_tokenizer, scoring.RewardConfig())
    scoring.check_tokenizers(tokenizer, qwen_tokenizer, scoring.RewardConfig(kl_coefs=(0, 0)))
    scoring.check_tokenizers(tokenizer, tokenizer, scoring.RewardConfig())


@pytest.mark.slow
def test_reward_prefers_explanations_that_teach(toy_models):
    """A student trained on correct steps finds the solution likelier after them than after another
    question's steps, for at least 90% of questions (40 of 40 measured with the shipped toy student)."""
    student = hf.Scorer(toy_models["student"], hf.Options(device="cpu", dtype="float32"))
    rows = toy.toy_rows(40, seed=7)
    config = scoring.RewardConfig(kl_coefs=(0, 0))
    unrelated = [toy.explain(r["b"] * 3 % 89 + 10, r["a"] * 7 % 89 + 10) for r in rows]
    good = scoring.student_scores(student, [{**r, "has_end_tag": True} for r in rows], None, config)
    bad = scoring.student_scores(
        student, [{**r, "explanation": u, "has_end_tag": True} for r, u in zip(rows, unrelated)], None, config
    )
    wins = sum(g["reward"] > b["reward"] for g, b in zip(good, bad))
    assert wins >= 36, [(g["reward"], b["reward"]) for g, b in zip(good, bad)]
    student.close()
