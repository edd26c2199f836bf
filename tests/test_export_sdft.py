"""``rlt-data export --format sdft``: rows TRL's SDFTTrainer (and DistillationTrainer) read, checked with TRL's own
trainer for one step on the toy student (no mocks)."""

from __future__ import annotations

import pytest

from helpers import invoke, read, write_toy_set


@pytest.fixture(scope="module")
def dummy_run(toy_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("sdft_run")
    result = invoke("generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"],
                    "--dataset", write_toy_set(root / "set.jsonl", 4, 9), "--output", root / "run", "--backend", "dummy",
                    "--num-samples", "2", "--max-new-tokens", "200")
    assert result.exit_code == 0, result.output
    return root / "run"


def test_rows_follow_the_training_rows(dummy_run):
    from rlt_data import protocol

    result = invoke("export", dummy_run, "--format", "sdft")
    assert result.exit_code == 0, result.output
    data, rows = read(dummy_run / "data"), read(dummy_run / "sdft")
    assert len(rows) == len(data) >= 2
    for d, r in zip(data, rows):
        assert r["prompt"] == d["messages"][:2] and [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert r["prompt"][0]["content"] == protocol.student_system_prompt() and r["prompt"][1]["content"] == d["question"]
        assert r["privileged_context"] == d["solution"].strip() and (r["id"], r["sample_index"]) == (d["id"], d["sample_index"])
    assert invoke("export", dummy_run, "--format", "sdft", "--with-explanation").exit_code == 0
    for d, r in zip(data, read(dummy_run / "sdft")):
        assert r["privileged_context"] == d["messages"][2]["content"] and d["explanation"].strip() in r["privileged_context"]
    bad = invoke("export", dummy_run, "--format", "llamafactory", "--with-explanation")
    assert bad.exit_code == 2 and "sdft only" in bad.output


def test_trl_sdft_trainer_takes_one_step(dummy_run, toy_models, tmp_path):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sdft = pytest.importorskip("trl.experimental.sdft")
    assert invoke("export", dummy_run, "--format", "sdft").exit_code == 0
    dataset = datasets.load_dataset("parquet", data_files=str(dummy_run / "sdft" / "train.parquet"), split="train")
    tokenizer = AutoTokenizer.from_pretrained(toy_models["student"])
    model = AutoModelForCausalLM.from_pretrained(toy_models["student"], dtype=torch.float32)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = sdft.SDFTConfig(
        output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2, num_generations=1,
        max_completion_length=8, learning_rate=1e-3, report_to="none", use_cpu=True, logging_steps=1, save_strategy="no",
    )
    trainer = sdft.SDFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 1
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())  # the step changed the student
