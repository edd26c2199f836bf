"""What the tests share (fixtures live in conftest.py): input files, running the CLI, reading shards."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "spec"

# (question, explanation, solution) rows for the reward tests: plain, multilingual and long, punctuation at the span's end
ROWS = [
    {"question": "What is 2 + 3?", "explanation": "Add them.", "solution": "\\boxed{5}", "has_end_tag": True},
    {
        "question": "Résumé: combien font 12 + 30 ? 你好",
        "explanation": "Add the units: 2 + 0 = 2.\n\nAdd the tens: 1 + 3 = 4.\n\n" * 12 + "Done — 42 ✓.",
        "solution": "The answer is \\boxed{42}.",
        "has_end_tag": False,
    },
    # ends with punctuation: with Qwen's pre-tokenizer "." and "\n\n" merge at the span's end
    {"question": "Q", "explanation": "x.", "solution": "S.", "has_end_tag": True},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def write_toy_set(path: Path, n: int, seed: int) -> Path:
    """``n`` toy questions (question, solution) as JSONL."""
    from rlt_data.testing import toy

    return write_jsonl(path, [{"question": r["question"], "solution": r["solution"]} for r in toy.toy_rows(n, seed=seed)])


def invoke(*args):
    """``rlt-data ARGS`` in this process (typer's CliRunner)."""
    from typer.testing import CliRunner

    from rlt_data.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def cli(*args) -> list[str]:
    """The argv of ``rlt-data ARGS`` in a fresh process."""
    return [sys.executable, "-m", "rlt_data.cli", *map(str, args)]


def gen_args(models, dataset, output, *extra, samples: int = 3, max_new_tokens: int = 100, chunk_size: int = 2) -> list:
    """``generate`` with the toy teacher and student."""
    return ["generate", "--teacher", models["teacher"], "--student", models["student"], "--dataset", dataset, "--output", output,
            "--num-samples", str(samples), "--max-new-tokens", str(max_new_tokens), "--chunk-size", str(chunk_size), *extra]


def read_jsonl(path: Path) -> list[dict]:
    """Every record of a JSONL file."""
    return [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]


def read(folder: Path) -> list[dict]:
    """Every row of a folder's Parquet shards, in order."""
    return pq.read_table(sorted(Path(folder).glob("*.parquet"))).to_pylist()
