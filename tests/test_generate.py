"""`rlt-data generate`, `score` and `select` end to end, on tiny models built by the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import yaml

from rlt_data import protocol
from helpers import cli, gen_args, invoke, read, write_jsonl, write_toy_set



@pytest.fixture(scope="module")
def toy_run(toy_models, tmp_path_factory):

    root = tmp_path_factory.mktemp("toy_run")
    dataset = write_toy_set(root / "set.jsonl", 6, 123)
    result = invoke(*gen_args(toy_models, dataset, root / "out"))
    assert result.exit_code == 0, result.output
    return root / "out", dataset, result.output



def test_layout_rows_and_summary(toy_run):
    out, _, output = toy_run
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    assert sorted(p.name for p in (out / "candidates").iterdir()) == ["train-00000-of-00001.parquet"]
    assert sorted(p.name for p in (out / "sharegpt").iterdir()) == ["train-00000-of-00001.parquet"]
    candidates, data, sharegpt = read(out / "candidates"), read(out / "data"), read(out / "sharegpt")
    assert len(candidates) == 18 and {c["status"] for c in candidates} <= {"kept", "not_best", "format_error", "truncated"}
    kept = [c for c in candidates if c["status"] == "kept"]
    assert len(kept) == len(data) >= 3 and len({r["id"] for r in data}) == len(data)
    assert [r["id"] for r in sharegpt] == [r["id"] for r in data]
    for row, bespoke in zip(data, sharegpt):
        # default: `messages` is the scored student context; no `conversations` (TRL would rebuild messages from it)
        assert "conversations" not in row and "system" not in row
        turn = protocol.student_assistant_turn(row["explanation"], row["solution"])
        assert row["messages"] == protocol.training_messages(row["question"], row["explanation"], row["solution"])
        assert row["messages"][0] == {"role": "system", "content": protocol.student_system_prompt()}
        assert row["messages"][2]["content"] == turn
        # sharegpt: the same row in the Bespoke-Stratos schema
        assert set(bespoke) == {"id", "system", "conversations"} and bespoke["system"] == protocol.student_system_prompt()
        assert bespoke["conversations"] == [{"from": "user", "value": row["question"]}, {"from": "assistant", "value": turn}]
        best = max((c for c in candidates if c["id"] == row["id"] and c["status"] in ("kept", "not_best")), key=lambda c: c["reward"])
        assert row["sample_index"] == best["sample_index"] and row["reward"] == best["reward"]
        for column in ("r_ss", "r_kl", "lp_solution_mean", "lp_solution_min", "kl_mean", "kl_max", "num_solution_tokens",
                       "num_think_tokens", "student_context_tokens", "num_explanation_tokens"):
            assert row[column] is not None
    assert "kept" in output and "reward, kept" in output


def test_card_yaml_and_datasets_loading(toy_run):
    import datasets

    out, dataset, _ = toy_run
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["default", "sharegpt", "candidates"]
    assert meta["license"] == "apache-2.0" and "rlt" in meta["tags"] and meta["size_categories"]
    assert "temperature_score" in text and "transformers" in text
    # local inputs by name and content fingerprint, never by path (the card is published); run.json keeps the path
    from rlt_data.card import content_fingerprint

    assert str(dataset) not in text and str(dataset.parent) not in text
    assert f"`{dataset.name} (local, sha256:{content_fingerprint(dataset)})`" in text
    assert json.loads((out / ".rlt" / "run.json").read_text())["generation"]["dataset"] == str(dataset)
    by_files = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    by_dir = datasets.load_dataset(str(out), split="train")
    assert by_files.to_list() == by_dir.to_list() == read(out / "data")
    info = {i["config_name"]: i for i in meta["dataset_info"]}
    assert [f["name"] for f in info["default"]["features"]] == by_dir.column_names
    cands = datasets.load_dataset(str(out), "candidates", split="train")
    assert cands.num_rows == 18 and "status" in cands.column_names
    for config in meta["configs"]:  # every config: its files exist, and its features are what loads
        name = config["config_name"]
        folder = config["data_files"][0]["path"].split("/")[0]
        loaded = datasets.load_dataset(str(out), name, split="train")
        assert loaded.to_list() == read(out / folder)
        assert [f["name"] for f in info[name]["features"]] == loaded.column_names
    sharegpt = datasets.load_dataset(str(out), "sharegpt", split="train")
    assert sharegpt.column_names == ["id", "system", "conversations"] and sharegpt.num_rows == by_dir.num_rows
    # what is on disk, in the card: rows, sizes and a fingerprint per config (they key the datasets cache)
    descriptions = {c["config_name"]: c["description"] for c in meta["configs"]}
    for config in meta["configs"]:
        name, folder = config["config_name"], config["data_files"][0]["path"].split("/")[0]
        files = sorted((out / folder).glob("*.parquet"))
        assert info[name]["splits"] == [{"name": "train", "num_bytes": info[name]["dataset_size"], "num_examples": len(read(out / folder))}]
        assert info[name]["download_size"] == sum(f.stat().st_size for f in files)
        assert descriptions[name].startswith(f"{len(read(out / folder))} rows in {folder}/ (1 file, sha256:")
    longest = max(r["student_context_tokens"] for r in read(out / "data"))
    assert f"| longest kept row | {longest:,} student tokens |" in text and "--max_length 16384" in text


def test_select_reproduces_and_reselects(toy_run, tmp_path):
    import shutil

    out, _, _ = toy_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = read(copy / "data")
    assert invoke("select", copy).exit_code == 0
    assert read(copy / "data") == before
    rewards = sorted(r["reward"] for r in before)
    result = invoke("select", copy, "--min-reward", rewards[len(rewards) // 2])
    assert result.exit_code == 0, result.output
    after = read(copy / "data")
    assert 0 < len(after) < len(before) and all(r["reward"] >= rewards[len(rewards) // 2] for r in after)
    assert "below_threshold" in {c["status"] for c in read(copy / "candidates")}
    assert invoke("select", copy, "--keep", "all").exit_code == 0  # options not given take defaults
    assert len(read(copy / "data")) > len(before)


def test_rerun_same_params_is_noop_and_other_params_refused(toy_run, toy_models):
    out, dataset, _ = toy_run
    before = read(out / "data")
    mtime = (out / ".rlt" / "generated" / "chunk-00000.parquet").stat().st_mtime
    assert invoke(*gen_args(toy_models, dataset, out)).exit_code == 0
    assert read(out / "data") == before
    assert (out / ".rlt" / "generated" / "chunk-00000.parquet").stat().st_mtime == mtime
    refused = invoke(*gen_args(toy_models, dataset, out, "--temperature", "0.9"))
    assert refused.exit_code == 2 and "temperature" in refused.output and "--overwrite" in refused.output


def test_overwrite_and_shard_size(toy_models, toy_set, tmp_path):
    out = tmp_path / "out"
    assert invoke(*gen_args(toy_models, toy_set, out, "--limit", "2")).exit_code == 0
    result = invoke(*gen_args(toy_models, toy_set, out, "--temperature", "0.9", "--overwrite", "--max-shard-size", "2KB"))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "candidates").iterdir())
    assert len(names) > 1 and names[0] == f"train-00000-of-{len(names):05d}.parquet"
    assert len(read(out / "candidates")) == 18
    assert not list(out.rglob(".*.tmp-*"))


def test_dry_run_prints_prompts(random_models, toy_set):
    result = invoke("generate", "--teacher", random_models["teacher"], "--dataset", toy_set, "--limit", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    rows = [json.loads(line) for line in toy_set.read_text().splitlines()][:2]
    assert len(lines) == 2 and set(lines[0]) == {"id", "teacher_prompt"}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(random_models["teacher"])
    assert [line["teacher_prompt"] for line in lines] == [
        protocol.render_teacher_prompt(tok, r["question"], r["solution"]) for r in rows
    ]


def test_yaml_config_and_flag_override(random_models, toy_set, tmp_path):
    config = tmp_path / "gen.yaml"
    config.write_text(yaml.safe_dump({
        "teacher": random_models["teacher"], "student": random_models["student"], "dataset": str(toy_set),
        "output": str(tmp_path / "out"), "max-new-tokens": 8, "num_samples": 2, "limit": 3, "kl_coefs": [0, 0],
    }))
    assert invoke("generate", "--config", config, "--limit", "2").exit_code == 0
    state = json.loads((tmp_path / "out" / ".rlt" / "run.json").read_text())
    assert state["generation"]["limit"] == 2 and state["generation"]["max_new_tokens"] == 8
    assert state["scoring"]["kl_coefs"] == [0.0, 0.0] and len(read(tmp_path / "out" / "candidates")) == 4


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing_dataset", "dataset not found"),
        ("missing_model", "model not found"),
        ("bad_file", "cannot parse"),
        ("bad_columns", "saw columns ['answer', 'text']"),
        ("bad_yaml", "unknown option(s) nonsense"),
        ("missing_option", "--student is required"),
        ("bad_coefs", "--kl-coefs takes two numbers"),
    ],
)
def test_bad_input_is_one_line_exit_2(case, message, random_models, toy_set, tmp_path):
    args = gen_args(random_models, toy_set, tmp_path / "out")
    if case == "missing_dataset":
        args[args.index("--dataset") + 1] = str(tmp_path / "nope.jsonl")
    elif case == "missing_model":
        args[args.index("--teacher") + 1] = str(tmp_path / "no-model")
    elif case == "bad_file":
        (tmp_path / "bad.jsonl").write_text('{"question": "q", "solution"\n')
        args[args.index("--dataset") + 1] = str(tmp_path / "bad.jsonl")
    elif case == "bad_columns":
        args[args.index("--dataset") + 1] = str(write_jsonl(tmp_path / "c.jsonl", [{"text": "q", "answer": "a"}]))
    elif case == "bad_yaml":
        (tmp_path / "c.yaml").write_text("nonsense: 1\n")
        args += ["--config", str(tmp_path / "c.yaml")]
    elif case == "missing_option":
        i = args.index("--student")
        del args[i : i + 2]
    elif case == "bad_coefs":
        args += ["--kl-coefs", "3"]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_score_command_on_bespoke_rows(toy_models, tmp_path):
    """R1-style traces (the thought of Bespoke-Stratos rows) ranked under the same reward."""
    from rlt_data.testing import toy

    rows = []
    for r in toy.toy_rows(4, seed=5):
        for explanation in (r["explanation"], r["corrupted_explanation"]):
            answer = f"{protocol.BEGIN_THOUGHT}\n\n{explanation}\n\n{protocol.END_THOUGHT}\n\n{protocol.solution_block(r['solution'])}"
            rows.append({"id": f"{r['id']}-{len(rows)}", "system": "s",
                         "conversations": [{"from": "user", "value": r["question"]}, {"from": "assistant", "value": answer}]})
    dataset = write_jsonl(tmp_path / "bespoke.jsonl", rows)
    refused = invoke("score", "--student", toy_models["student"], "--dataset", dataset, "--output", tmp_path / "a")
    assert refused.exit_code == 2 and "--kl-coefs 0,0" in refused.output
    result = invoke("score", "--student", toy_models["student"], "--teacher", toy_models["teacher"],
                    "--dataset", dataset, "--output", tmp_path / "b")
    assert result.exit_code == 0, result.output
    data = read(tmp_path / "b" / "data")
    assert len(data) == 8 and all(r["kl_mean"] is not None for r in data)
    assert data[0]["explanation"] == toy.toy_rows(4, seed=5)[0]["explanation"]


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_same_rows(toy_models, tmp_path):

    dataset = write_toy_set(tmp_path / "set.jsonl", 10, 9)
    args = ["generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"], "--dataset", dataset,
            "--num-samples", "2", "--max-new-tokens", "80", "--chunk-size", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(cli(*args, "--output", tmp_path / "whole"), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    for stage, chunk in (("generated", 3), ("scored", 1)):  # kill once while generating, once while scoring
        proc = subprocess.Popen(cli(*args, "--output", killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = killed / ".rlt" / stage / f"chunk-{chunk:05d}.parquet"
        deadline = time.time() + 120
        while not target.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "data").exists()
    done = subprocess.run(cli(*args, "--output", killed), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    for folder in ("data", "sharegpt", "candidates"):
        assert read(killed / folder) == read(tmp_path / "whole" / folder)
    assert len(read(killed / "candidates")) == 20
