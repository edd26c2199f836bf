"""`rlt-data push-to-hub` against a local Hub server (tests/hub_server.py), with the real clients."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hub_server import TOKEN, HubServer
from helpers import gen_args, invoke, read, write_toy_set

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def run_dir(toy_models, tmp_path_factory):

    root = tmp_path_factory.mktemp("hub_run")
    dataset = write_toy_set(root / "set.jsonl", 6, 77)
    result = invoke(*gen_args(toy_models, dataset, root / "run", "--max-shard-size", "6KB"))
    assert result.exit_code == 0, result.output
    assert len(list((root / "run" / "candidates").glob("*.parquet"))) > 1
    return root / "run"


def env_for(hub: HubServer) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    return {**env, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": env.get("RLT_TEST_HF_HOME", "/tmp/rlt-test-hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1"}


def push(hub, run_dir, repo, *extra, token=TOKEN):
    args = [sys.executable, "-m", "rlt_data.cli", "push-to-hub", str(run_dir), repo, *map(str, extra)]
    if token:
        args += ["--token", token]
    return subprocess.run(args, env=env_for(hub), capture_output=True, text=True, timeout=300)


def local_tree(run_dir) -> dict[str, bytes]:
    files = {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and ".rlt" not in p.parts}
    return files


def test_round_trip_loads_the_same_rows(hub, run_dir, tmp_path, toy_models):
    done = push(hub, run_dir, "tester/rlt-set")
    assert done.returncode == 0, done.stderr
    remote = {p: d for p, d in hub.files("tester/rlt-set").items() if p != ".gitattributes"}
    assert remote == local_tree(run_dir)  # the card lands byte for byte: configs and dataset_info intact
    assert TOKEN not in done.stdout + done.stderr
    script = (
        "import datasets, json, sys;"
        "d = datasets.load_dataset('tester/rlt-set', split='train');"
        "c = datasets.load_dataset('tester/rlt-set', 'candidates', split='train');"
        "s = datasets.load_dataset('tester/rlt-set', 'sharegpt', split='train');"
        "print(json.dumps({'data': d.to_list(), 'n': c.num_rows, 'sharegpt': s.to_list()}))"
    )
    env = {**env_for(hub), "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf")}
    loaded = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    out = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert out["data"] == read(run_dir / "data") and out["n"] == len(read(run_dir / "candidates"))
    assert out["sharegpt"] == read(run_dir / "sharegpt") and len(out["sharegpt"]) == len(out["data"])
    assert any(p.startswith("sharegpt/") for p in remote)
    # no absolute path of the machine that made the run is published (the card names local models and
    # data sets by name and content fingerprint; run.json, which keeps the paths, is not uploaded)
    local = {str(run_dir.parent), str(run_dir.resolve().parent), str(ROOT), str(ROOT.resolve()), sys.prefix, str(Path.home())}
    local |= {str(Path(p).resolve()) for p in toy_models.values()}
    assert str(ROOT) in (run_dir / ".rlt" / "run.json").read_text()  # the models' local paths, kept locally
    for path, data in remote.items():
        for where in local:
            if len(where) > 5:
                assert where.encode() not in data, (path, where)
    card = remote["README.md"].decode()
    assert re.search(r"\| teacher \| `teacher \(local, sha256:[0-9a-f]{12}\)` \|", card) and "`set.jsonl (local, sha256:" in card
    again = push(hub, run_dir, "tester/rlt-set")  # nothing changed: nothing is sent again
    assert again.returncode == 0 and "0 file(s) uploaded" in again.stdout


def test_interrupted_upload_resumes_without_resending(hub, run_dir):
    shards = len(list(run_dir.glob("*/*.parquet")))
    # the first commit lands; the second one's connection is dropped after its LFS blobs went up
    hub.state.faults.append(("POST", r"/api/datasets/tester/resume/commit/", "drop", 1))
    broken = push(hub, run_dir, "tester/resume", "--files-per-commit", "2", "--max-retries", "0")
    assert broken.returncode == 2 and "rerun the same command" in broken.stderr, (broken.stdout, broken.stderr[-1500:])
    assert broken.stderr.strip().splitlines()[-1].startswith("Error: commit 2/") and "Traceback" not in broken.stderr
    assert len(hub.files("tester/resume")) == 1 + 2  # .gitattributes + the first commit's two shards
    sent_before = hub.requests("PUT", r"/lfs-upload/")
    assert len(sent_before) == 4  # blobs of both batches reached the server
    resumed = push(hub, run_dir, "tester/resume", "--files-per-commit", "2", "--max-retries", "0")
    assert resumed.returncode == 0, resumed.stderr
    assert "2 already there" in resumed.stdout
    puts = hub.requests("PUT", r"/lfs-upload/")
    assert len(puts) == len(set(puts)) == shards  # every shard blob sent exactly once
    remote = {p: d for p, d in hub.files("tester/resume").items() if p != ".gitattributes"}
    assert remote == local_tree(run_dir)


def test_429_is_retried(hub, run_dir):
    hub.state.faults.append(("POST", r"/api/datasets/tester/busy/commit/", 429))
    done = push(hub, run_dir, "tester/busy", "--max-retries", "2", "--files-per-commit", "100")
    assert done.returncode == 0, done.stderr
    assert len(hub.requests("POST", r"/api/datasets/tester/busy/commit/")) == 3  # shards, retried shards, card
    assert "429" in done.stdout + done.stderr


@pytest.mark.parametrize(
    "repo,token,message",
    [
        ("tester/x", "hf_wrong", "authentication failed (401)"),
        ("someone-else/x", TOKEN, "permission denied for someone-else/x (403)"),
        ("tester/x", None, "authentication failed (401)"),
    ],
)
def test_auth_errors_are_one_line(hub, run_dir, repo, token, message):
    done = push(hub, run_dir, repo, token=token)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and (token or "hf_") not in done.stderr.replace("HF_TOKEN", "")


def test_missing_revision_repo_and_dry_run(hub, run_dir):
    dry = push(hub, run_dir, "tester/dry", "--dry-run")
    assert dry.returncode == 0 and "[dry-run] upload data/" in dry.stdout
    assert not hub.requests("POST", r".") and not hub.requests("PUT", r".")
    branch = push(hub, run_dir, "tester/branchy", "--revision", "v1")
    assert branch.returncode == 0, branch.stderr
    assert "README.md" in hub.files("tester/branchy", "v1") and "README.md" not in hub.files("tester/branchy", "main")
    pr = push(hub, run_dir, "tester/branchy", "--create-pr")
    assert pr.returncode == 0 and "/discussions/1" in pr.stdout


def test_incomplete_run_and_schema_mismatch_are_refused(hub, run_dir, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial)
    state = json.loads((partial / ".rlt" / "run.json").read_text())
    state["complete"] = False
    (partial / ".rlt" / "run.json").write_text(json.dumps(state))
    (partial / ".rlt" / "scored" / "chunk-00001.parquet").unlink()
    refused = push(hub, partial, "tester/partial")
    assert refused.returncode == 2 and "incomplete (2 of 3 chunks scored)" in refused.stderr
    allowed = push(hub, partial, "tester/partial", "--allow-partial")
    assert allowed.returncode == 0, allowed.stderr
    assert "partial run" in hub.files("tester/partial")["README.md"].decode()

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    shard = sorted((bad / "data").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    pq.write_table(table.drop_columns(["reward"]).append_column("reward", pa.array([str(x) for x in table["reward"].to_pylist()])), shard)
    mismatch = push(hub, bad, "tester/bad")
    assert mismatch.returncode == 2 and "does not match the card's dataset_info" in mismatch.stderr
    assert "tester/bad" not in hub.state.repos


def test_public_names_of_local_models_and_data(tmp_path):
    """How the card names what a run read: a Hub id as it is; a Hub cache snapshot as its repo and revision;
    another local file or folder by its name and content fingerprint (the same for a copy elsewhere)."""
    from rlt_data.card import content_fingerprint, public_source, scrub_paths

    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert public_source(str(snapshot)) == f"Qwen/Qwen2.5-7B-Instruct (revision {'a' * 12})"
    model = tmp_path / "x" / "my-student"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / ".cache").mkdir()
    (model / ".cache" / "lock").write_text("local state")  # hidden: left out
    copy = tmp_path / "y" / "my-student"
    shutil.copytree(model, copy, ignore=shutil.ignore_patterns(".cache"))
    assert public_source(str(model)) == public_source(str(copy)) == f"my-student (local, sha256:{content_fingerprint(model)})"
    (copy / "config.json").write_text('{"hidden_size": 16}')
    assert public_source(str(copy)) != public_source(str(model))
    assert public_source("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert public_source(str(tmp_path / "gone" / "set.jsonl")) == "set.jsonl (local; not found where the card was written)"
    assert str(tmp_path) not in scrub_paths(f"source {tmp_path}/venv/bin/activate && cd ~/work")
    assert scrub_paths("https://huggingface.co/x a/b") == "https://huggingface.co/x a/b"
    # a matched question's LaTeX is text, not a path (a decontamination example in the card)
    assert scrub_paths(r"within \boxed{}. What is \frac{1}{2} + 1/2?") == r"within \boxed{}. What is \frac{1}{2} + 1/2?"
    assert scrub_paths(r"C:\Users\me\venv and \\server\share\x and ~/w") == ".../venv and .../x and .../w"


def test_plan_commits_is_pure():
    """Which file goes up in which commit, from the local files, the remote listing and the options: no server."""
    from rlt_data.options import PushOptions
    from rlt_data.hub import LocalFile, plan_commits

    def local(path: str) -> LocalFile:
        return LocalFile(path, Path("/nowhere") / path, 10, f"sha256-{path}", f"sha1-{path}")

    files = [local(p) for p in ("data/train-0.parquet", "data/train-1.parquet", "data/train-2.parquet", "candidates/c-0.parquet", "README.md")]
    remote = {
        "data/train-0.parquet": ("sha256-data/train-0.parquet", "x"),  # same LFS content: skipped
        "candidates/c-0.parquet": (None, "sha1-candidates/c-0.parquet"),  # same git blob: skipped
        "README.md": (None, "an older card"),
        "sharegpt/old.parquet": ("y", "y"), "data/old.parquet": ("z", "z"),  # shards this run does not have: deleted
        "other/x.parquet": ("w", "w"), "data/notes.txt": (None, "v"), ".gitattributes": (None, "u"),  # not shards: kept
    }
    paths = lambda fs: [f.path_in_repo for f in fs]  # noqa: E731
    plan = plan_commits(files, remote, PushOptions(repo_id="u/x", files_per_commit=1))
    assert paths(plan.upload) == ["data/train-1.parquet", "data/train-2.parquet", "README.md"]
    assert paths(plan.skip) == ["data/train-0.parquet", "candidates/c-0.parquet"]
    assert plan.delete == ["data/old.parquet", "sharegpt/old.parquet"]
    assert [(paths(c.add), c.delete) for c in plan.commits] == [
        (["data/train-1.parquet"], []), (["data/train-2.parquet"], []), (["README.md"], ["data/old.parquet", "sharegpt/old.parquet"])]

    many = plan_commits(files, remote, PushOptions(repo_id="u/x", files_per_commit=50))
    assert [(paths(c.add), c.delete) for c in many.commits] == [
        (["data/train-1.parquet", "data/train-2.parquet"], []), (["README.md"], ["data/old.parquet", "sharegpt/old.parquet"])]
    pr = plan_commits(files, remote, PushOptions(repo_id="u/x", files_per_commit=1, create_pr=True))  # a pull request is one commit
    assert [(paths(c.add), c.delete) for c in pr.commits] == [
        (["data/train-1.parquet", "data/train-2.parquet", "README.md"], ["data/old.parquet", "sharegpt/old.parquet"])]

    same = {f.path_in_repo: (f.sha256, f.git_sha1) for f in files}
    only_deletes = plan_commits(files, {**same, "data/old.parquet": ("z", "z")}, PushOptions(repo_id="u/x"))
    assert [(c.add, c.delete) for c in only_deletes.commits] == [([], ["data/old.parquet"])] and not only_deletes.upload
    assert plan_commits(files, same, PushOptions(repo_id="u/x")).commits == []  # nothing changed: no commit
