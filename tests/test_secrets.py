"""No secret on disk: `--hub_token` given to `train` / `train-teacher` is in no file the run writes
(the Trainer pickles its arguments into training_args.bin and every checkpoint, the folder that
`--push_to_hub` uploads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_PLANTEDtokenNeverOnDisk0123456789"


def _files_with_token(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


@pytest.fixture
def restore_env():
    saved = os.environ.get("HF_TOKEN")
    yield
    if saved is None:
        os.environ.pop("HF_TOKEN", None)
    else:
        os.environ["HF_TOKEN"] = saved


def test_hub_token_never_written(tmp_path, toy_models, restore_env):
    """One step with a checkpoint saved, then every file under output_dir is searched for the token.
    `train`, `train-teacher sft` and `grpo` share the parser that keeps the token off disk
    (train.parse_options); the teacher SFT is the cheapest of them to run."""
    from rlt_data import train_teacher
    from rlt_data.testing import toy

    rows = [{"question": r["question"], "solution": r["solution"], "explanation": r["explanation"]} for r in toy.toy_rows(4, seed=3)]
    dataset = write_jsonl(tmp_path / "set.jsonl", rows)
    out = tmp_path / "out"
    common = ["--dataset", str(dataset), "--output_dir", str(out), "--use_cpu", "true", "--report_to", "none", "--max_steps", "1",
              "--save_strategy", "steps", "--save_steps", "1", "--hub_token", TOKEN, "--per_device_train_batch_size", "2"]
    train_teacher.cli(["sft", "--model_name_or_path", toy_models["teacher"], *common])
    assert (out / "training_args.bin").is_file() and list(out.glob("checkpoint-*/training_args.bin"))
    assert _files_with_token(out) == []
    assert os.environ.get("HF_TOKEN") == TOKEN  # where huggingface_hub finds it for --push_to_hub
