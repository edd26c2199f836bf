"""Exports of a run for other training stacks. ``llamafactory``: the ``dataset_info.json`` entry that
LLaMA-Factory (the reference's SFT stack) needs to read the run's ``sharegpt`` config (folder
``sharegpt/``, the Bespoke-Stratos columns): ShareGPT formatting, ``conversations`` of
``from``/``value`` with ``user``/``assistant`` roles, and the ``system`` column.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError
from .shards import SPLIT_FOLDERS, write_text

FORMATS = ("llamafactory",)
LLAMAFACTORY_CONFIG = "sharegpt"  # the card config (and folder) the entry reads


def llamafactory_entry(hub_repo: str | None = None) -> dict:
    """A local entry names the folder (``file_name``, relative to ``dataset_dir``); a Hub entry names the
    repo and its config (``subset``, LLaMA-Factory's ``load_dataset(name=...)``)."""
    if hub_repo:
        entry: dict = {"hf_hub_url": hub_repo, "subset": LLAMAFACTORY_CONFIG, "split": "train"}
    else:
        entry = {"file_name": SPLIT_FOLDERS[LLAMAFACTORY_CONFIG]}
    entry.update(
        {
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "user", "assistant_tag": "assistant"},
        }
    )
    return entry


def export(run_dir: str | Path, fmt: str, name: str = "rlt_data", hub_repo: str | None = None) -> Path:
    """Write (or update) ``RUN_DIR/dataset_info.json``; use ``dataset_dir: RUN_DIR``, ``dataset: NAME``."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if hub_repo is not None:
        from .hub import check_repo_id

        check_repo_id(hub_repo, "--hub-repo")
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"run folder not found: {root}")
    folder = SPLIT_FOLDERS[LLAMAFACTORY_CONFIG]
    if not list((root / folder).glob("*.parquet")):
        if list((root / "data").glob("*.parquet")):
            raise UserError(f"{root} has no {folder}/*.parquet shards (made by an older rlt-data); run `rlt-data select {root}` with the run's selection options first")
        raise UserError(f"{root} has no {folder}/*.parquet shards; run generate or score first")
    path = root / "dataset_info.json"
    try:
        info = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); fix or remove it")
    if not isinstance(info, dict):
        raise UserError(f"{path} is not a JSON object; fix or remove it")
    info[name] = llamafactory_entry(hub_repo)
    write_text(path, json.dumps(info, indent=2) + "\n")
    return path
