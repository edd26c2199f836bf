"""Exports of a run for other training stacks. ``llamafactory``: the ``dataset_info.json`` entry that
LLaMA-Factory (the reference's SFT stack) needs to read the Bespoke-Stratos columns: ShareGPT
formatting, ``conversations`` of ``from``/``value`` with ``user``/``assistant`` roles, and the
``system`` column.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError
from .shards import write_text

FORMATS = ("llamafactory",)


def llamafactory_entry(hub_repo: str | None = None) -> dict:
    entry: dict = {"hf_hub_url": hub_repo} if hub_repo else {"file_name": "data"}
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
    root = Path(run_dir)
    if not list((root / "data").glob("*.parquet")):
        raise UserError(f"{root} has no data/*.parquet shards; run generate or score first")
    path = root / "dataset_info.json"
    info = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    info[name] = llamafactory_entry(hub_repo)
    write_text(path, json.dumps(info, indent=2) + "\n")
    return path
