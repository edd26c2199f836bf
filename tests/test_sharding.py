"""Sharded runs: the shard contract, `rlt-data merge`, and the Slurm job, against a serial run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rlt_data import sharding
from rlt_data.testing import toy
from helpers import gen_args, invoke, read, write_toy_set

FOLDERS = ("data", "sharegpt", "candidates")


def args(models, dataset, output, *extra):
    return gen_args(models, dataset, output, *extra, samples=2, max_new_tokens=60, chunk_size=1)


@pytest.fixture(scope="module")
def serial(toy_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("sharding")
    dataset = write_toy_set(root / "set.jsonl", 7, 41)
    result = invoke(*args(toy_models, dataset, root / "serial"))
    assert result.exit_code == 0, result.output
    return root, dataset


def same_as_serial(serial_root: Path, out: Path) -> None:
    for folder in FOLDERS:
        assert read(out / folder) == read(serial_root / "serial" / folder), folder
    card = (out / "README.md").read_text()
    assert "| questions | 7 |" in card and "| candidates | 14 |" in card


def test_split_is_by_id_alone():
    ids = [f"q{i}" for i in range(500)]
    owners = [sharding.shard_of(i, 7) for i in ids]
    assert set(owners) == set(range(7))  # every shard gets work
    assert [sharding.shard_of(i, 7) for i in reversed(ids)] == owners[::-1]  # order does not matter
    rows = [{"id": i} for i in ids]
    parts = [sharding.own_rows(rows, k, 7) for k in range(7)]
    assert sorted(r["id"] for p in parts for r in p) == sorted(ids)  # a partition: nothing lost or twice
    assert all(p == sorted(p, key=lambda r: r["row_index"]) for p in parts)  # input order within a shard


def test_a_prompt_samples_the_same_alone_or_batched(toy_models):
    from rlt_data import protocol
    from rlt_data.backends import SamplingConfig, derive_seed
    from rlt_data.backends import transformers_backend as hf

    gen = hf.Generator(toy_models["teacher"], hf.Options(device="cpu", dtype="float32", batch_size=8))
    rows = toy.toy_rows(3, seed=8)
    prompts = [protocol.render_teacher_prompt(gen.tokenizer, r["question"], r["solution"]) for r in rows]
    sampling = SamplingConfig(num_samples=2, temperature=1.5, max_new_tokens=40)
    seeds = [derive_seed(0, r["id"]) for r in rows]
    together = gen.generate(prompts, sampling, seeds)
    alone = gen.generate(prompts[2:], sampling, seeds[2:])
    other = gen.generate(prompts[2:], sampling, [derive_seed(1, rows[2]["id"])])
    gen.close()
    texts = lambda groups: [[s.text for s in g] for g in groups]  # noqa: E731
    assert texts(alone) == texts(together)[2:]
    assert texts(other) != texts(alone)


@pytest.mark.slow
def test_shards_in_any_order_then_merge_equal_a_serial_run(serial, toy_models):
    root, dataset = serial
    out = root / "sharded"
    for index in (2, 0, 1, 2):  # any order, one shard twice
        result = invoke(*args(toy_models, dataset, out, "--num-shards", "3", "--shard-index", index))
        assert result.exit_code == 0, result.output
    assert not (out / "data").exists()  # a shard writes only its own files
    assert sorted(p.name for p in (out / ".rlt" / "shards").iterdir()) == [f"0000{i}-of-00003" for i in range(3)]
    assert all((out / ".rlt" / "shards" / f"0000{i}-of-00003" / "done.json").is_file() for i in range(3))
    merged = invoke("merge", out)
    assert merged.exit_code == 0, merged.output
    same_as_serial(root, out)
    state = json.loads((out / ".rlt" / "run.json").read_text())
    assert state["num_shards"] == 3 and state["complete"] and state["summary"]["shards_done"] == "3/3"
    assert invoke("select", out).exit_code == 0  # select works on a merged run
    same_as_serial(root, out)

    # merge from several folders: shards copied apart, merged into a third folder
    a, b = root / "node-a", root / "node-b"
    for dest, shards in ((a, (0, 2)), (b, (1,))):
        for i in shards:
            shutil.copytree(out / ".rlt" / "shards" / f"0000{i}-of-00003", dest / ".rlt" / "shards" / f"0000{i}-of-00003")
    assert invoke("merge", a, b, "--output", root / "together").exit_code == 0
    same_as_serial(root, root / "together")


@pytest.mark.slow
def test_merge_refuses_missing_markers_and_other_parameters(serial, toy_models):
    root, dataset = serial
    out = root / "refusals"
    for index in (0, 1):
        assert invoke(*args(toy_models, dataset, out, "--num-shards", "3", "--shard-index", index)).exit_code == 0
    missing = invoke("merge", out)
    assert missing.exit_code == 2 and "1 missing (2)" in missing.output and "--allow-partial" in missing.output

    other = invoke(*args(toy_models, dataset, out, "--num-shards", "3", "--shard-index", 2, "--temperature", "0.9"))
    assert other.exit_code == 0, other.output  # a shard alone cannot know what its siblings used
    refused = invoke("merge", out)
    assert refused.exit_code == 2 and "other parameters" in refused.output and "temperature" in refused.output
    assert len(refused.output.strip().splitlines()) == 1

    redo = invoke(*args(toy_models, dataset, out, "--num-shards", "3", "--shard-index", 2, "--overwrite"))
    assert redo.exit_code == 0, redo.output
    (out / ".rlt" / "shards" / "00001-of-00003" / "done.json").unlink()
    unfinished = invoke("merge", out)
    assert unfinished.exit_code == 2 and "1 unfinished" in unfinished.output
    partial = invoke("merge", out, "--allow-partial")
    assert partial.exit_code == 0, partial.output
    assert "(partial run)" in (out / "README.md").read_text()
    assert invoke("merge", root / "nowhere").exit_code == 2


@pytest.mark.slow
def test_slurm_job_array_then_merge_equals_a_serial_run(serial, toy_models):
    root, dataset = serial
    out = root / "slurm-run"
    written = invoke(*args(toy_models, dataset, out, "--num-shards", "2", "--executor", "slurm", "--slurm-partition", "gpu",
                           "--slurm-setup", "export RLT_TEST_SETUP=1"))
    assert written.exit_code == 0, written.output
    jobs = out / "slurm"
    assert "bash " in written.output and str(jobs / "submit.sh") in written.output
    for name in ("shards.sbatch", "merge.sbatch", "submit.sh"):
        assert subprocess.run(["bash", "-n", jobs / name]).returncode == 0, name
    script = (jobs / "shards.sbatch").read_text()
    assert "#SBATCH --array=0-1" in script and "#SBATCH --requeue" in script and "#SBATCH --partition=gpu" in script
    assert "#SBATCH --gres=gpu:1" in script  # GPUs per shard: --tensor-parallel-size
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    for task in range(2):  # what Slurm does: each array task with its id, one after another here
        done = subprocess.run(["bash", jobs / "shards.sbatch"], env={**env, "SLURM_ARRAY_TASK_ID": str(task),
                              "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_JOB_ID": "7"}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert not (out / "data").exists()
    merged = subprocess.run(["bash", jobs / "merge.sbatch"], env=env, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stderr[-2000:]
    same_as_serial(root, out)
    # an array of 3 tasks for a run of 2 shards is refused; the merge job waits with --kill-on-invalid-dep
    wrong = subprocess.run(["bash", jobs / "shards.sbatch"], env={**env, "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "3",
                           "SLURM_ARRAY_TASK_MAX": "2"}, capture_output=True, text=True)
    assert wrong.returncode == 2 and "is not a shard of this run (0..1)" in wrong.stderr
    assert "--kill-on-invalid-dep=yes" in (jobs / "submit.sh").read_text()
    assert "#SBATCH --export=NONE" in script and "HF_TOKEN" not in script


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(c) for c in text.split()]


@pytest.mark.slow
def test_slurm_time_limit_signal_then_readme_recovery(serial, toy_models, tmp_path, monkeypatch):
    """Ten minutes before the limit Slurm sends the batch shell USR1: rlt-data stops after the chunk
    in flight, the shell waits for it (no orphan), then requeues. Then the README's recovery for a
    failed shard, as written: `sbatch --array=I slurm/shards.sbatch` (a one-task array: Slurm sets
    SLURM_ARRAY_TASK_COUNT=1, MIN=MAX=I), then `sbatch slurm/merge.sbatch`: rows equal a serial run.
    `scontrol` is a stand-in script on PATH that records its arguments (there is no Slurm here)."""
    root, dataset = serial
    out = tmp_path / "run with space"
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "scontrol").write_text(f"#!/bin/bash\necho \"$@\" >> {tmp_path}/scontrol.log\n")
    (stub / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub}:{os.environ['PATH']}")  # the jobs get the writer's PATH
    written = invoke(*args(toy_models, dataset, out, "--num-shards", "2", "--executor", "slurm", "--slurm-gpus-per-task", "0"))
    assert written.exit_code == 0, written.output
    jobs = out / "slurm"
    assert "--gres" not in (jobs / "shards.sbatch").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    task0 = {**env, "SLURM_ARRAY_JOB_ID": "9", "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MAX": "1"}
    shell = subprocess.Popen(["bash", jobs / "shards.sbatch"], env=task0, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = out / ".rlt" / "shards" / "00000-of-00002" / "generated" / "chunk-00000.parquet"
    deadline = time.monotonic() + 300
    while not first.exists() and shell.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert shell.poll() is None, "the shard finished before the signal"
    (child,) = _children(shell.pid)
    shell.send_signal(signal.SIGUSR1)
    stdout, stderr = shell.communicate(timeout=300)
    assert shell.returncode == 0, stderr[-2000:]
    assert not Path(f"/proc/{child}").exists()  # the shard process ended with its job: no orphan
    assert "stopped on request (SIGUSR1)" in stderr and "attempt 1" in stdout
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "9_0"]
    assert not (out / ".rlt" / "shards" / "00000-of-00002" / "done.json").exists()
    # the README's recovery: shard 0 resubmitted alone, shard 1 as its array task, then the merge
    again = subprocess.run(["bash", jobs / "shards.sbatch"], capture_output=True, text=True, env={
        **env, "SLURM_ARRAY_JOB_ID": "10", "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "1",
        "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "0"})
    assert again.returncode == 0, again.stderr[-2000:]
    other = subprocess.run(["bash", jobs / "shards.sbatch"], capture_output=True, text=True, env={**task0, "SLURM_ARRAY_TASK_ID": "1"})
    assert other.returncode == 0, other.stderr[-2000:]
    merged = subprocess.run(["bash", jobs / "merge.sbatch"], env=env, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stderr[-2000:]
    same_as_serial(root, out)
    recorded = json.loads((out / ".rlt" / "run.json").read_text())["options"]["Scale-out"]
    assert recorded["executor"] == "slurm" and recorded["num_shards"] == 2 and "shard_index" not in recorded


def _shard_workers() -> list[int]:
    """PIDs of Ray workers running a shard now (Ray titles a worker by its task: ray::_run_shard)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::_run_shard"):
                pids.append(int(entry))
    return pids


@pytest.mark.slow
def test_ray_two_nodes_a_killed_worker_resumes_and_rows_equal_a_serial_run(serial, toy_models, monkeypatch):
    import signal
    import threading
    import time

    import ray
    from ray.cluster_utils import Cluster

    root, dataset = serial
    out = root / "ray-run"
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    node = {"num_cpus": 1, "num_gpus": 0, "object_store_memory": 80 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    killed: dict = {}

    def kill_one_worker_mid_shard() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            finished = sorted((out / ".rlt" / "shards").glob("*/generated/chunk-*.parquet"))
            workers = _shard_workers()
            if finished and workers:
                killed["chunks"] = {p: p.stat().st_mtime_ns for p in finished}
                os.kill(workers[0], signal.SIGKILL)
                killed["pid"] = workers[0]
                return
            time.sleep(0.05)

    try:
        assert len(cluster.list_all_nodes()) == 2
        killer = threading.Thread(target=kill_one_worker_mid_shard, daemon=True)
        killer.start()
        # rlt-data connects (and disconnects) itself, as from a login node: --ray-address
        result = invoke(*args(toy_models, dataset, out, "--num-shards", "2", "--executor", "ray", "--max-retries", "2",
                              "--ray-address", cluster.address))
        killer.join()
        assert not ray.is_initialized()
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert result.exit_code == 0, result.output
    assert "pid" in killed, "no worker was killed: the shards finished first"
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in killed["chunks"].items())  # resumed, not redone
    same_as_serial(root, out)
    assert all((out / ".rlt" / "shards" / f"0000{i}-of-00002" / "done.json").is_file() for i in range(2))


@pytest.mark.parametrize("text, expected", [("10", 600), ("10:30", 630), ("1:00:00", 3600), ("2-00", 172800),
                                            ("1-02:03", 93780), ("1-02:03:04", 93784), ("UNLIMITED", 10**9)])
def test_slurm_time_notation(text, expected):
    from rlt_data.slurm_time import seconds

    assert seconds(text, "--slurm-time") == expected
