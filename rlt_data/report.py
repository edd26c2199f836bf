"""The end-of-run summary printed by the CLI."""

from __future__ import annotations

from typing import Any


def summary_table(summary: dict[str, Any], output: str) -> str:
    lines = [
        f"Run written to {output}",
        f"  questions {summary['num_questions']}, candidates {summary['num_candidates']}, kept {summary['num_kept']}",
        "  candidates by status:",
    ]
    width = max(map(len, summary["status_counts"]))
    lines += [f"    {status:<{width}}  {n}" for status, n in summary["status_counts"].items()]
    if summary["skipped_rows"]:
        lines.append("  input rows skipped: " + ", ".join(f"{k} {v}" for k, v in summary["skipped_rows"].items()))
    for label, key in (("reward, all scored", "reward_all"), ("reward, kept", "reward_kept")):
        stats = summary.get(key)
        if stats:
            lines.append(
                f"  {label:<19} mean {stats['mean']:.4f}  min {stats['min']:.4f}  p25 {stats['p25']:.4f}  "
                f"median {stats['median']:.4f}  p75 {stats['p75']:.4f}  max {stats['max']:.4f}"
            )
    lines.append(f"  tokens: generated {summary['completion_tokens']}, kept training rows {summary['kept_student_tokens']} (student)")
    return "\n".join(lines)
