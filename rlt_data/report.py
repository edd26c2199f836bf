"""The end-of-run summary printed by the CLI: a ``state.RunSummary``, as the card renders it too."""

from __future__ import annotations

from .state import RunSummary


def summary_table(summary: RunSummary, output: str) -> str:
    lines = [
        f"Run written to {output}",
        f"  questions {summary.num_questions}, candidates {summary.num_candidates}, kept {summary.num_kept}",
        "  candidates by status:",
    ]
    width = max(map(len, summary.status_counts))
    lines += [f"    {status:<{width}}  {n}" for status, n in summary.status_counts.items()]
    if summary.skipped_rows:
        lines.append("  input rows skipped: " + ", ".join(f"{k} {v}" for k, v in summary.skipped_rows.items()))
    for label, stats in (("reward, all scored", summary.reward_all), ("reward, kept", summary.reward_kept)):
        if stats:
            lines.append(
                f"  {label:<19} mean {stats['mean']:.4f}  min {stats['min']:.4f}  p25 {stats['p25']:.4f}  "
                f"median {stats['median']:.4f}  p75 {stats['p75']:.4f}  max {stats['max']:.4f}"
            )
    lines.append(f"  tokens: generated {summary.completion_tokens}, kept training rows {summary.kept_student_tokens} (student)")
    return "\n".join(lines)
