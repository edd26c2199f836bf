"""Run integrity: nothing mixed, nothing lost. Chunk files are a cache checked when read (a short,
unreadable or foreign chunk is recomputed), a done marker is trusted only with its chunks, the run
identity is the rows' content, one writer per run folder and per shard, and temporary files of
killed writers are cleaned. Each case ends in the rows of an uninterrupted run or one `Error:` line.

The dummy backend (hash-derived text and log-probs, only tokenizers loaded) keeps each run to a
fraction of a second: what is tested here is the bookkeeping, not the models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import gen_args, invoke, read, write_toy_set


def _run(models, dataset, out, *extra):
    return invoke(*gen_args(models, dataset, out, "--backend", "dummy", *extra, samples=3, chunk_size=2))


@pytest.fixture(scope="module")
def reference(toy_models, tmp_path_factory):
    """An uninterrupted run: the rows every damaged run must end with."""
    root = tmp_path_factory.mktemp("integrity")
    dataset = write_toy_set(root / "set.jsonl", 8, 17)
    result = _run(toy_models, dataset, root / "ref")
    assert result.exit_code == 0, result.output
    return dataset, read(root / "ref" / "data"), read(root / "ref" / "candidates")


def _copy_run(models, dataset, out):
    result = _run(models, dataset, out)
    assert result.exit_code == 0, result.output
    return out / ".rlt"


def _same_rows(out: Path, reference) -> None:
    _, data, candidates = reference
    assert read(out / "data") == data and read(out / "candidates") == candidates


def test_short_chunk_is_recomputed(toy_models, reference, tmp_path, caplog):
    """A scored chunk that is valid Parquet but holds half its rows (done.json present): the rerun
    finds it, recomputes it, and the dataset is whole again (it had 56 of 64 questions before)."""
    dataset = reference[0]
    state = _copy_run(toy_models, dataset, tmp_path / "run")
    chunk = state / "scored" / "chunk-00001.parquet"
    table = pq.read_table(chunk)
    pq.write_table(table.slice(0, table.num_rows // 2).replace_schema_metadata(table.schema.metadata), chunk)
    result = _run(toy_models, dataset, tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "scored chunk 1 holds 3 rows, not 6: recomputing it" in caplog.text
    _same_rows(tmp_path / "run", reference)


@pytest.mark.parametrize("damage", ["missing", "truncated-bytes", "foreign"])
def test_damaged_chunk_after_done_resumes(toy_models, reference, tmp_path, damage):
    """A finished run whose scored chunk is missing, cut short on disk, or made by another run (seed 1):
    "rerun the command" resumes it (done.json is not trusted alone) and gives the uninterrupted rows."""
    dataset = reference[0]
    state = _copy_run(toy_models, dataset, tmp_path / "run")
    chunk = state / "scored" / "chunk-00002.parquet"
    if damage == "missing":
        chunk.unlink()
    elif damage == "truncated-bytes":
        chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    else:
        result = _run(toy_models, dataset, tmp_path / "seed1", "--seed", "1")
        assert result.exit_code == 0, result.output
        chunk.write_bytes((tmp_path / "seed1" / ".rlt" / "scored" / "chunk-00002.parquet").read_bytes())
    assert (state / "done.json").is_file()
    result = _run(toy_models, dataset, tmp_path / "run")
    assert result.exit_code == 0, result.output
    _same_rows(tmp_path / "run", reference)


def test_edited_input_between_shards_is_refused(toy_models, tmp_path):
    """A set with its own ids, edited between two shards of a run (same ids, another solution): the
    merge refuses with one line naming `rows` instead of mixing old and new solutions."""
    rows = [json.loads(line) for line in write_toy_set(tmp_path / "a.jsonl", 8, 5).read_text().splitlines()]
    for k, r in enumerate(rows):
        r["id"] = f"q{k}"
    dataset = tmp_path / "set.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    first = _run(toy_models, dataset, out, "--num-shards", "2", "--shard-index", "0")
    assert first.exit_code == 0, first.output
    rows[1]["solution"] = "999"  # edited after shard 0 ran
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    second = _run(toy_models, dataset, out, "--num-shards", "2", "--shard-index", "1")
    assert second.exit_code == 0, second.output
    merged = invoke("merge", out)
    assert merged.exit_code == 2
    errors = [line for line in merged.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "rows" in errors[0], merged.output
    assert not (out / "data").exists()


HOLD = """
import sys, time
from rlt_data.shards import RunStore
lock = RunStore(sys.argv[1]).lock().acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_second_writer_is_refused_while_a_run_holds_the_folder(toy_models, reference, tmp_path):
    """`generate --overwrite --seed 1` into a folder another rlt-data process is writing: one line
    naming the holder, exit 2, and the folder untouched; once the holder is gone (killed: its lock
    left behind), the same command runs, taking the stale lock over."""
    dataset = reference[0]
    out = tmp_path / "run"
    _copy_run(toy_models, dataset, out)
    before = read(out / "data")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = _run(toy_models, dataset, out, "--overwrite", "--seed", "1")
        assert result.exit_code == 2, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "is in use by" in errors[0] and f"pid {holder.pid}" in errors[0], result.output
        assert read(out / "data") == before
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".rlt" / "run.lock").is_file()  # a SIGKILLed holder leaves its lock
    result = _run(toy_models, dataset, out, "--overwrite", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert read(out / "data") != before and not (out / ".rlt" / "run.lock").exists()


def test_lock_of_another_host_waits_for_its_heartbeat(tmp_path, monkeypatch):
    """A lock held on another host cannot be checked by pid: fresh, it refuses (or is waited for);
    once its heartbeat is older than STALE_S, it is taken over."""
    from rlt_data import locks
    from rlt_data.errors import UserError

    path = tmp_path / "shard.lock"
    path.write_text(json.dumps({"pid": 1, "host": "another-node", "command": "rlt-data generate", "since": "then"}))
    with pytest.raises(UserError, match=r"in use by `rlt-data generate` \(pid 1 on another-node"):
        locks.Lock(path, "shard 0").acquire()
    monkeypatch.setattr(locks, "STALE_S", 0.5)
    start = time.monotonic()
    lock = locks.Lock(path, "shard 0").acquire(wait_s=30)  # waits until the holder's heartbeat is stale
    assert time.monotonic() - start < 30 and json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not path.exists()


def test_temp_files_of_killed_writers_are_cleaned(toy_models, reference, tmp_path):
    """A run killed while writing scored chunk 0 (its temporary file left, no done marker) and a
    finalize killed mid-write: the rerun, under the run's and the shard's locks, removes them."""
    dataset = reference[0]
    out = tmp_path / "run"
    state = _copy_run(toy_models, dataset, out)
    (state / "done.json").unlink()
    (state / "scored" / "chunk-00000.parquet").unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    leftovers = [state / "scored" / f".chunk-00000.parquet.tmp-{dead}", out / f".README.md.tmp-{dead}",
                 out / "data" / f".part-00000.parquet.tmp-{dead}", state / f".run.json.tmp-{dead}"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    result = _run(toy_models, dataset, out)
    assert result.exit_code == 0, result.output
    assert [p for p in leftovers if p.exists()] == []
    _same_rows(out, reference)


def test_resume_from_another_working_directory(toy_models, reference, tmp_path, monkeypatch):
    """--dataset given relative to another working directory is the same run (paths resolved)."""
    dataset = reference[0]
    out = tmp_path / "run"
    _copy_run(toy_models, dataset, out)
    monkeypatch.chdir(dataset.parent)
    result = _run(toy_models, Path(dataset.name), out)
    assert result.exit_code == 0, result.output
    _same_rows(out, reference)


def test_chunk_label_records_rows_and_run(toy_models, reference, tmp_path):
    state = _copy_run(toy_models, reference[0], tmp_path / "run")
    meta = pq.read_metadata(state / "generated" / "chunk-00000.parquet").metadata
    label = json.loads(meta[b"rlt_chunk"])
    assert label["rows"] == 6 and len(label["tag"]) == 16
    assert not (state / "input.parquet").exists()  # a local dataset is read where it is, never copied into the run


def test_interrupted_finalize_is_refused_by_push_and_repaired_by_select(toy_models, reference, tmp_path):
    """A finalize that dies after data/ was rewritten but before the card and run.json (here: the
    plots folder cannot be created) leaves a marker; push-to-hub refuses the mixed folder in one
    line; the next select finishes the job and push proceeds."""
    out = tmp_path / "run"
    _copy_run(toy_models, reference[0], out)
    import shutil

    shutil.rmtree(out / "plots")
    (out / "plots").write_text("a file where the plots folder goes")
    died = invoke("select", out, "--keep", "all")
    assert died.exit_code == 2 and "Error:" in died.output and "Traceback" not in died.output
    assert (out / ".rlt" / "finalizing").is_file()
    assert len(read(out / "data")) > len(reference[1])  # the new selection (all) is on disk, the card still describes best-of-n
    refused = invoke("push-to-hub", out, "user/set", "--dry-run")
    assert refused.exit_code == 2 and "was interrupted" in refused.output
    (out / "plots").unlink()
    repaired = invoke("select", out, "--keep", "all")
    assert repaired.exit_code == 0, repaired.output
    assert not (out / ".rlt" / "finalizing").exists()
    assert invoke("push-to-hub", out, "user/set", "--dry-run").exit_code == 0


@pytest.mark.parametrize("name", ["done.json", "shard.json", "run.json"])
def test_damaged_state_file_is_one_line(toy_models, reference, tmp_path, name):
    out = tmp_path / "run"
    state = _copy_run(toy_models, reference[0], out)
    (state / name).write_text('{"format": 3, "trunc')
    result = _run(toy_models, reference[0], out) if name != "run.json" else invoke("select", out)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"{name} is damaged" in errors[0] and "remove it and rerun" in errors[0]


def test_hub_split_is_normalized_once_for_every_shard(toy_models, tmp_path):
    """A Hub split is read and normalized by the command that drives the run and written to
    .rlt/input.parquet; every shard process reads that file (here: offline, so a second download
    could not happen) as long as the input options are the same."""
    from rlt_data import pipeline, sources
    from rlt_data.config import GenerateConfig
    from rlt_data.errors import UserError
    from rlt_data.shards import RunStore

    config = GenerateConfig.of(teacher=toy_models["teacher"], student=toy_models["student"], dataset="someone/hub-set",
                            output=str(tmp_path / "run"))
    loaded = sources.normalize([{"question": "What is 1 + 2?", "solution": "3"}, {"question": "Q2", "solution": "4"}])
    pipeline._cache_input(RunStore(config.folder), config, loaded, with_explanation=False)
    rows, generation = pipeline.prepare(config, "generate")
    assert rows.rows == loaded.rows and rows.num_input_rows == 2 and generation["rows"]
    config.input.split = "test"  # other input options: the file is not this input
    with pytest.raises(UserError, match="cannot load dataset 'someone/hub-set'"):
        pipeline.prepare(config, "generate")
