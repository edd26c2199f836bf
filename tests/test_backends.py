"""The backend contract in code (``backends.Generator``/``Scorer``), the registry, and the `dummy` backend."""

from __future__ import annotations

import json

import numpy as np

from rlt_data import protocol
from rlt_data.testing import toy
from rlt_data.backends import BACKENDS, SamplingConfig, derive_seed, load_backend
from helpers import invoke, read, write_jsonl, write_toy_set


def test_every_registered_backend_has_the_contract():
    from importlib.util import find_spec

    for name in BACKENDS:
        if name == "vllm" and find_spec("vllm") is None:
            continue
        module = load_backend(name)
        for attr in ("Generator", "Scorer", "options_from"):
            assert callable(getattr(module, attr)), (name, attr)
        for cls, methods in ((module.Generator, ("generate", "close")), (module.Scorer, ("logprobs", "close"))):
            assert all(callable(getattr(cls, m, None)) for m in methods), (name, cls)


def test_dummy_is_deterministic_per_prompt_and_seed(toy_models):
    dummy = load_backend("dummy")
    gen = dummy.Generator(toy_models["teacher"], dummy.Options())
    rows = toy.toy_rows(6, seed=2)
    prompts = [protocol.render_teacher_prompt(gen.tokenizer, r["question"], r["solution"]) for r in rows]
    sampling = SamplingConfig(num_samples=3, max_new_tokens=40)
    seeds = [derive_seed(0, r["id"]) for r in rows]
    first = gen.generate(prompts, sampling, seeds)
    assert [[s.text for s in g] for g in gen.generate(prompts[3:], sampling, seeds[3:])] == [[s.text for s in g] for g in first[3:]]
    assert [[s.text for s in g] for g in gen.generate(prompts, sampling, [s + 1 for s in seeds])] != [[s.text for s in g] for g in first]
    assert len({s.text for g in first for s in g}) == 18
    scorer = dummy.Scorer(toy_models["student"], dummy.Options())
    ids = scorer.tokenizer("a b c d e", add_special_tokens=False).input_ids
    one, hot = scorer.logprobs([(ids, [1, 2, 3])], 1.0)[0], scorer.logprobs([(ids, [1, 2, 3])], 0.5)[0]
    assert one.dtype == np.float32 and np.all(one < 0) and np.allclose(hot, one * 2, rtol=1e-5)
    assert np.array_equal(scorer.logprobs([(ids, [2]), (ids, [1, 2, 3])], 1.0)[1], one)  # independent of batch-mates


def test_scoring_changes_rescore_and_selection_changes_reselect(toy_models, tmp_path):
    """The rule, on the dummy backend (milliseconds): other generation parameters are refused; other
    scoring parameters rescore the kept generations; other selection parameters only reselect."""
    dataset = write_toy_set(tmp_path / "set.jsonl", 5, 3)
    out = tmp_path / "run"
    base = ["generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"], "--dataset", dataset,
            "--output", out, "--backend", "dummy", "--num-samples", "4", "--chunk-size", "2", "--max-new-tokens", "40"]
    run = lambda *extra: invoke(*base, *extra)  # noqa: E731
    assert (first := run()).exit_code == 0, first.output
    stamps = lambda stage: {p.name: p.stat().st_mtime_ns for p in (out / ".rlt" / stage).glob("*.parquet")}  # noqa: E731
    generated, scored = stamps("generated"), stamps("scored")
    rewards = [c["reward"] for c in read(out / "candidates")]
    statuses = {c["status"] for c in read(out / "candidates")}
    assert "kept" in statuses and "not_best" in statuses

    assert run("--keep", "all").exit_code == 0  # selection only: nothing recomputed
    assert stamps("generated") == generated and stamps("scored") == scored
    assert len(read(out / "data")) > 5

    rescored = run("--temperature-score", "0.5")
    assert rescored.exit_code == 0, rescored.output
    assert stamps("generated") == generated  # generations kept
    assert all(stamps("scored")[k] != v for k, v in scored.items())  # every chunk rescored
    again = [c["reward"] for c in read(out / "candidates")]
    assert [a is None for a in again] == [r is None for r in rewards] and again != rewards
    state = json.loads((out / ".rlt" / "run.json").read_text())
    assert state["scoring"]["temperature_score"] == 0.5 and state["card_extra"]["backend"] == "dummy"

    card = (out / "README.md").read_text()
    for name in ("reward", "explanation_tokens"):  # the card shows: histograms beside it, referenced from it
        png = out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"](plots/{name}.png)" in card
    from PIL import Image

    assert Image.open(out / "plots" / "reward.png").size == (720, 380)

    refused = run("--temperature", "0.9")
    assert refused.exit_code == 2 and "temperature" in refused.output


def test_generation_and_scoring_backends_can_differ(toy_models, tmp_path):
    dataset = write_toy_set(tmp_path / "set.jsonl", 2, 4)
    out = tmp_path / "run"
    result = invoke(
        "generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"], "--dataset", dataset, "--output", out,
        "--generate-backend", "dummy", "--score-backend", "transformers", "--num-samples", "2", "--max-new-tokens", "40")
    assert result.exit_code == 0, result.output
    assert "| backend | `generate: dummy, score: transformers` |" in (out / "README.md").read_text()
    candidates = read(out / "candidates")
    assert all(c["completion"].startswith("Step 1:") for c in candidates)  # the dummy's text
    scored = [c for c in candidates if c["reward"] is not None]
    assert scored and all(np.isfinite(c["reward"]) for c in scored)  # scored by the real student


def test_a_changed_stage_is_recomputed_with_every_stage_after_it(toy_models, tmp_path):
    """The general rule of stages/, on `score`: the format penalty is the student stage's alone (the
    teacher's log-probs are kept); the scoring temperature is the teacher stage's too (both redone)."""
    rows = [{"question": r["question"], "solution": r["solution"], "explanation": r["explanation"]} for r in toy.toy_rows(4, seed=6)]
    dataset = write_jsonl(tmp_path / "set.jsonl", rows)
    out = tmp_path / "run"
    base = ["score", "--teacher", toy_models["teacher"], "--student", toy_models["student"], "--dataset", dataset, "--output", out,
            "--backend", "dummy", "--chunk-size", "2"]
    run = lambda *extra: invoke(*base, *extra)  # noqa: E731
    stamps = lambda stage: {p.name: p.stat().st_mtime_ns for p in (out / ".rlt" / stage).glob("*.parquet")}  # noqa: E731
    assert run().exit_code == 0
    before = {stage: stamps(stage) for stage in ("generated", "teacher", "scored")}
    assert all(len(v) == 2 for v in before.values())

    assert run("--format-penalty", "-2").exit_code == 0
    assert stamps("generated") == before["generated"] and stamps("teacher") == before["teacher"]
    assert all(stamps("scored")[k] != v for k, v in before["scored"].items())

    assert run("--format-penalty", "-2", "--temperature-score", "1.0").exit_code == 0
    assert stamps("generated") == before["generated"]
    assert all(stamps("teacher")[k] != v for k, v in before["teacher"].items())
    state = json.loads((out / ".rlt" / "shard.json").read_text())
    assert state["stages"]["teacher"]["teacher_temperature"] == 1.0 and state["stages"]["scored"]["format_penalty"] == -2.0
