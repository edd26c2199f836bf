"""What a load of a run folder returns is what is on disk (issue 25).

`datasets` caches a local folder whose card declares `configs` under the folder's name, the config
and a hash of the card, not under its files: without what the card now records (rows, sizes and a
content fingerprint per config), a second folder named `run`, or the same folder rewritten, loaded
the first one's rows from the cache. The real `datasets` client, in this process, with the test
session's own cache (HF_DATASETS_CACHE, set in conftest.py); runs from the dummy backend (no weights).
"""

from __future__ import annotations

import logging
import shutil

import pyarrow.parquet as pq
import pytest

from helpers import invoke, read

CONFIGS = {"default": "data", "sharegpt": "sharegpt", "candidates": "candidates"}


def generate(output, limit: int, *extra) -> None:
    result = invoke("generate", "--preset", "toy", "--backend", "dummy", "--limit", limit, "--output", output, *extra)
    assert result.exit_code == 0, result.output


def check_loads(run) -> dict[str, int]:
    """Every documented load of ``run`` (a bare `load_dataset`, each config, streaming, `rlt-data train`'s
    loader) returns the rows of its shards; returns the row count of each config."""
    import datasets

    from rlt_data.train import DataArguments, load_rows

    on_disk = {config: read(run / folder) for config, folder in CONFIGS.items()}
    assert datasets.load_dataset(str(run), split="train").to_list() == on_disk["default"]
    for config, rows in on_disk.items():
        assert datasets.load_dataset(str(run), config, split="train").to_list() == rows, config
        assert list(datasets.load_dataset(str(run), config, split="train", streaming=True)) == rows, config
    assert load_rows(DataArguments(dataset=str(run))).to_list() == on_disk["default"]
    return {config: len(rows) for config, rows in on_disk.items()}


def test_two_runs_of_the_same_name_load_their_own_rows(tmp_path):
    a, b = tmp_path / "a" / "run", tmp_path / "b" / "run"
    generate(a, 6)
    generate(b, 3)
    first = check_loads(a)
    second = check_loads(b)  # loaded after a: the cache held a's rows under the same name and config
    assert first == check_loads(a) and first != second
    assert second["default"] == 3 and second["candidates"] == 12


def test_a_rewritten_run_loads_its_new_rows(tmp_path):
    run = tmp_path / "run"
    generate(run, 6)
    assert check_loads(run)["default"] == 6
    generate(run, 2, "--overwrite")  # fewer rows in the same folder
    assert check_loads(run) == {"default": 2, "sharegpt": 2, "candidates": 8}
    before = read(run / "data")
    generate(run, 2, "--overwrite", "--seed", "7")  # as many rows, other contents
    assert read(run / "data") != before and check_loads(run)["default"] == 2
    assert invoke("select", run, "--keep", "all").exit_code == 0  # more rows, same candidates
    assert check_loads(run)["default"] > 2


def test_a_card_that_does_not_describe_its_files_is_reported(tmp_path, caplog):
    """A card written by an older rlt-data (no fingerprints), or files changed by hand: `rlt-data train`
    still reads the files, says that other loads of the folder may be stale and how to rewrite the
    card; `push-to-hub` refuses a card whose rows contradict the files (every Hub load would fail)."""
    from rlt_data.card import card_mismatches
    from rlt_data.errors import UserError
    from rlt_data.hub import check_schemas
    from rlt_data.train import DataArguments, load_rows

    run = tmp_path / "run"
    generate(run, 4)
    old = tmp_path / "old"
    shutil.copytree(run, old)
    card = (old / "README.md").read_text()
    (old / "README.md").write_text("\n".join(line for line in card.split("\n") if not line.startswith("  description: ")))
    with caplog.at_level(logging.WARNING, logger="rlt_data.train"):
        assert load_rows(DataArguments(dataset=str(old))).to_list() == read(old / "data")
    assert "no content fingerprint" in caplog.text and f"Rewrite the card: rlt-data select {old} --keep best" in caplog.text
    assert "--top-k 1" in caplog.text and "--ascending" not in caplog.text  # the run's own selection; a switch only when on
    check_schemas(old)  # an older card is no reason to refuse a push
    hint = caplog.text.split("Rewrite the card: ")[1].split("\n")[0].split()
    assert invoke(*hint[1:]).exit_code == 0 and not card_mismatches(old)  # the command it gives rewrites the card
    check_loads(old)

    caplog.clear()
    pulled = tmp_path / "pulled"  # a folder without .rlt/ (a local copy of a pushed repo): nothing to rewrite it with
    shutil.copytree(run, pulled, ignore=shutil.ignore_patterns(".rlt"))
    (pulled / "README.md").write_text((old / "README.md").read_text().replace("  description: ", "  x-description: "))
    with caplog.at_level(logging.WARNING, logger="rlt_data.train"):
        assert load_rows(DataArguments(dataset=str(pulled))).to_list() == read(pulled / "data")
    assert "Before loading it by name, remove " in caplog.text and "'pulled'" in caplog.text

    caplog.clear()
    shard = next((run / "data").glob("*.parquet"))
    pq.write_table(pq.read_table(shard).slice(0, 1), shard)  # by hand: one row left
    with caplog.at_level(logging.WARNING, logger="rlt_data.train"):
        assert load_rows(DataArguments(dataset=str(run))).to_list() == read(run / "data")
    assert "the card says '4 rows in data/" in caplog.text and "the files are '1 rows in data/" in caplog.text
    with pytest.raises(UserError, match="does not describe its files"):
        check_schemas(run)
