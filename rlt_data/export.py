"""Exports of a run for other training stacks. ``llamafactory``: the ``dataset_info.json`` entry that
LLaMA-Factory (the reference's SFT stack) needs to read the run's ``sharegpt`` config (folder
``sharegpt/``, the Bespoke-Stratos columns): ShareGPT formatting, ``conversations`` of
``from``/``value`` with ``user``/``assistant`` roles, and the ``system`` column; and
``llamafactory-NAME.yaml``, the data settings of a LLaMA-Factory training YAML with a ``cutoff_len``
that cuts no row (LLaMA-Factory's default, 2,048, cuts reasoning rows silently).
"""

from __future__ import annotations

import json
import re
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


def snippet_path(run_dir: str | Path, name: str = "rlt_data") -> Path:
    return Path(run_dir) / f"llamafactory-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.yaml"


def llamafactory_snippet(root: Path, name: str, hub_repo: str | None = None) -> str:
    """The data keys of a LLaMA-Factory SFT YAML for this run: ``dataset_dir``, ``dataset`` and
    ``cutoff_len`` (:func:`rlt_data.card.recommended_max_length` of the longest row)."""
    from .card import longest_row, recommended_max_length

    longest = longest_row(root)
    measured = f"the longest row is {longest:,} tokens of the student's tokenizer" if longest is not None else "no row was kept"
    source = f"Hub repo {hub_repo}, config {LLAMAFACTORY_CONFIG}" if hub_repo else f"{SPLIT_FOLDERS[LLAMAFACTORY_CONFIG]}/"
    return "\n".join([
        f"# LLaMA-Factory data settings for this rlt-data run ({source}): merge them into your SFT YAML.",
        f"# cutoff_len: {measured}; LLaMA-Factory's default (2048) would cut longer rows silently.",
        f"dataset_dir: {json.dumps(str(root.resolve()))}",
        f"dataset: {name}",
        f"cutoff_len: {recommended_max_length(longest)}",
        "# template: qwen   # the student's chat template in LLaMA-Factory (qwen for Qwen2.5)",
        "",
    ])


def export(run_dir: str | Path, fmt: str, name: str = "rlt_data", hub_repo: str | None = None) -> Path:
    """Write (or update) ``RUN_DIR/dataset_info.json``, and ``RUN_DIR/llamafactory-NAME.yaml`` (the
    YAML snippet: ``dataset_dir: RUN_DIR``, ``dataset: NAME``, ``cutoff_len``); returns the first."""
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
    write_text(snippet_path(root, name), llamafactory_snippet(root, name, hub_repo))
    return path
