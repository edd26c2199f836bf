"""Shards as a Slurm job array: ``--executor slurm --num-shards N`` writes the jobs, ``--submit`` submits them.

``DIR/slurm/`` gets ``config.yaml`` (this command's options), ``shards.sbatch`` (a job array: task
``i`` runs shard ``i`` with ``--shard-index $SLURM_ARRAY_TASK_ID``), ``merge.sbatch`` (the merge,
and the push when ``--push-to-hub`` is given) and ``submit.sh`` (submits both, the merge depending
on every shard: ``--dependency=afterok``). Shard jobs are ``--requeue``-able; ten minutes before
the time limit a job requeues itself, and a requeued or resubmitted shard resumes from its
finished chunks. Every node must mount the output folder (shared storage).
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError

# options that describe how this command schedules, not what a shard computes
SCHEDULING = {"executor", "submit", "overwrite", "dry_run", "push_to_hub", "private", "preset", "shard_index", "data_parallel_size"}


def _header(name: str, config: Any, logs: Path, extra: list[str]) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --chdir={Path.cwd()}",
             f"#SBATCH --output={logs}/%x-%A_%a.out", "#SBATCH --open-mode=append"]
    if config.slurm_partition:
        lines.append(f"#SBATCH --partition={config.slurm_partition}")
    if config.slurm_account:
        lines.append(f"#SBATCH --account={config.slurm_account}")
    return lines + [f"#SBATCH {line}" for line in extra]


def _setup(config: Any) -> list[str]:
    return ["set -euo pipefail", *(config.slurm_setup.splitlines() if config.slurm_setup else [])]


def scripts(config: Any, command: str, folder: Path) -> dict[str, str]:
    """The files of the job, by name (pure: ``write_job`` writes them)."""
    count, output = config.num_shards, Path(config.output).resolve()
    python = shlex.quote(sys.executable)  # the environment that wrote the job: on shared storage, the nodes' too
    cli = f"{python} -m rlt_data.cli"
    logs = folder / "logs"
    gpus = config.tensor_parallel_size if config.slurm_gpus_per_task is None else config.slurm_gpus_per_task
    throttle = f"%{config.slurm_max_parallel}" if config.slurm_max_parallel else ""
    shard_lines = _header(f"rlt-data-{command}", config, logs, [
        f"--array=0-{count - 1}{throttle}", "--ntasks=1", f"--cpus-per-task={config.slurm_cpus_per_task}",
        f"--mem={config.slurm_mem}", f"--time={config.slurm_time}", "--requeue", "--signal=B:USR1@600",
        *([f"--gres=gpu:{gpus}"] if gpus else []),
    ]) + _setup(config) + [
        f'if [ "${{SLURM_ARRAY_TASK_COUNT:-{count}}}" != "{count}" ]; then',
        f'  echo "rlt-data: this job array has ${{SLURM_ARRAY_TASK_COUNT}} tasks, the run {count} shards" >&2; exit 2',
        "fi",
        "# ten minutes before the time limit: requeue this task; it resumes from its finished chunks",
        'trap \'echo "time limit near: requeueing"; scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"\' USR1',
        f"{cli} {command} --config {shlex.quote(str(folder / 'config.yaml'))} --shard-index \"$SLURM_ARRAY_TASK_ID\" &",
        "wait $!",
    ]
    merge_lines = _header("rlt-data-merge", config, logs, ["--ntasks=1", "--cpus-per-task=2", "--mem=16G", "--time=04:00:00"])
    merge_lines += _setup(config) + [f"{cli} merge {shlex.quote(str(output))}"]
    if getattr(config, "push_to_hub", None):
        private = " --private" if getattr(config, "private", False) else ""
        merge_lines.append(f"{cli} push-to-hub {shlex.quote(str(output))} {shlex.quote(config.push_to_hub)}{private}")
    submit = [
        "#!/bin/bash", "# Submit the shard array, then the merge once every shard succeeded.", "set -euo pipefail",
        'cd "$(dirname "$0")"', "mkdir -p logs",
        "array=$(sbatch --parsable shards.sbatch)", 'array="${array%%;*}"',
        'merge=$(sbatch --parsable --dependency="afterok:${array}" merge.sbatch)',
        'echo "submitted shards as job ${array} (array of ' + str(count) + '), merge as job ${merge}"',
    ]
    return {"shards.sbatch": "\n".join(shard_lines) + "\n", "merge.sbatch": "\n".join(merge_lines) + "\n", "submit.sh": "\n".join(submit) + "\n"}


def shard_options(config: Any) -> dict[str, Any]:
    """What every shard job runs with: this command's options but the scheduling ones."""
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
              if v is not None and k not in SCHEDULING and not k.startswith("slurm_")}
    values["output"] = str(Path(config.output).resolve())
    return values


def write_job(config: Any, command: str) -> Path:
    import yaml

    from ..shards import write_text

    folder = Path(config.output).resolve() / "slurm"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    write_text(folder / "config.yaml", yaml.safe_dump(shard_options(config), sort_keys=True))
    for name, text in scripts(config, command, folder).items():
        write_text(folder / name, text)
        (folder / name).chmod(0o755)
    submit = folder / "submit.sh"
    if not config.submit:
        print(f"wrote {folder}/{{config.yaml,shards.sbatch,merge.sbatch,submit.sh}}: submit with\n  bash {shlex.quote(str(submit))}")
        return folder
    if shutil.which("sbatch") is None:
        raise UserError(f"--submit needs sbatch on PATH (the jobs are written: {submit})")
    done = subprocess.run(["bash", str(submit)], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"sbatch failed: {(done.stderr or done.stdout).strip().splitlines()[-1] if (done.stderr or done.stdout).strip() else done.returncode}")
    print(done.stdout.strip())
    return folder
