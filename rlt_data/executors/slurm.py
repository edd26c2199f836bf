"""Shards as a Slurm job array: ``--executor slurm --num-shards N`` writes the jobs, ``--submit`` submits them.

``DIR/slurm/`` gets ``config.yaml`` (this command's options), ``shards.sbatch`` (a job array: task
``i`` runs shard ``i`` with ``--shard-index $SLURM_ARRAY_TASK_ID``; a one-task resubmission,
``sbatch --array=I shards.sbatch``, runs shard I), ``merge.sbatch`` (the merge, and the push when
``--push-to-hub`` is given) and ``submit.sh`` (submits both, the merge depending on every shard:
``--dependency=afterok``, ``--kill-on-invalid-dep=yes`` so a failed shard cancels it instead of
leaving it pending forever). Shard jobs are ``--requeue``-able; ten minutes before the time limit
Slurm sends the batch shell SIGUSR1, which passes it on to rlt-data (it stops after the chunk in
flight), waits for it to exit, then requeues the task: a requeued or resubmitted shard resumes
from its finished chunks, and no shard process outlives its job. The jobs get an explicit
environment (``--export=NONE`` and the writer's PATH, Python and Hugging Face cache variables,
never a token). Every node must mount the output folder (shared storage).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..options import EngineOptions, ScaleOutOptions
from . import ShardJob, Worker


# Variables of the writer's environment the jobs get (and nothing else: no token travels). A push
# from the merge job reads the token stored by `hf auth login` under HF_HOME.
EXPORTED = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "HOME", "OMP_NUM_THREADS",
            "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
            "TRANSFORMERS_OFFLINE", "VLLM_CPU_KVCACHE_SPACE", "VLLM_ENABLE_V1_MULTIPROCESSING")


def job_name(command: str, output: Path) -> str:
    """The shard jobs' name: the command and the run folder's digest (squeue finds this run's jobs)."""
    import hashlib

    return f"rlt-data-{command}-{hashlib.sha256(str(output).encode()).hexdigest()[:8]}"


def _quoted(value: Any) -> str:
    """A value of an ``#SBATCH`` line: sbatch reads double quotes (paths with spaces)."""
    return '"' + str(value).replace('"', '\\"') + '"'


def _header(name: str, config: ScaleOutOptions, logs: Path, extra: list[str], partition: str | None) -> list[str]:
    # a login shell: with --export=NONE, `module load ...` in --slurm-setup needs the site's profile
    lines = ["#!/bin/bash -l", f"#SBATCH --job-name={name}", f"#SBATCH --chdir={_quoted(Path.cwd())}",
             f"#SBATCH --output={_quoted(f'{logs}/%x-%A_%a.out')}", "#SBATCH --open-mode=append", "#SBATCH --export=NONE"]
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    if config.slurm_account:
        lines.append(f"#SBATCH --account={config.slurm_account}")
    return lines + [f"#SBATCH {line}" for line in extra]


def _setup(config: ScaleOutOptions, environ: dict[str, str]) -> list[str]:
    exports = [f"export {k}={shlex.quote(environ[k])}" for k in EXPORTED if k in environ]
    return ["set -euo pipefail", *exports, *(config.slurm_setup.splitlines() if config.slurm_setup else [])]


def scripts(job: ShardJob, config: ScaleOutOptions, engine: EngineOptions, folder: Path,
            environ: dict[str, str] | None = None) -> dict[str, str]:
    """The files of the job, by name (pure: ``write_job`` writes them)."""
    import os

    environ = dict(os.environ) if environ is None else environ
    command, count, output = job.command, job.count, Path(job.output).resolve()
    python = shlex.quote(sys.executable)  # the environment that wrote the job: on shared storage, the nodes' too
    cli = f"{python} -m rlt_data.cli"
    logs = folder / "logs"
    gpus = engine.tensor_parallel_size if config.slurm_gpus_per_task is None else config.slurm_gpus_per_task
    throttle = f"%{config.slurm_max_parallel}" if config.slurm_max_parallel else ""
    shard_lines = _header(job_name(command, output), config, logs, [
        f"--array=0-{count - 1}{throttle}", "--ntasks=1", f"--cpus-per-task={config.slurm_cpus_per_task}",
        f"--mem={config.slurm_mem}", f"--time={config.slurm_time}", "--requeue", "--signal=B:USR1@600",
        *([f"--gres=gpu:{gpus}"] if gpus else []),
    ], config.slurm_partition) + _setup(config, environ) + [
        # the whole array (0..N-1), or a one-task resubmission of shard I (sbatch --array=I): the ids must be shards
        f'if [ "${{SLURM_ARRAY_TASK_ID:?not a job array task}}" -ge {count} ] || [ "${{SLURM_ARRAY_TASK_MAX:-0}}" -ge {count} ]; then',
        f'  echo "rlt-data: array task ${{SLURM_ARRAY_TASK_ID}} (max ${{SLURM_ARRAY_TASK_MAX:-?}}) is not a shard of this run (0..{count - 1})" >&2; exit 2',
        "fi",
        'echo "== rlt-data shard ${SLURM_ARRAY_TASK_ID} of ' + str(count) + ': attempt $((${SLURM_RESTART_COUNT:-0} + 1)) on $(hostname) at $(date -Is)"',
        "# ten minutes before the time limit Slurm sends USR1: rlt-data finishes the chunk in flight and exits,",
        "# this shell waits for it (no shard process outlives the job), then requeues the task; it resumes",
        "stop=0 child=",
        'on_usr1() { stop=1; echo "time limit near: stopping after the chunk in flight, then requeueing"; kill -USR1 "$child" 2>/dev/null || true; }',
        "trap on_usr1 USR1",
        f"{cli} {command} --config {shlex.quote(str(folder / 'config.yaml'))} --shard-index \"$SLURM_ARRAY_TASK_ID\" &",
        "child=$!",
        "status=0",
        'while :; do wait "$child" && status=0 || status=$?; kill -0 "$child" 2>/dev/null || break; done  # a trap ends wait early',
        'if [ "$stop" = 1 ] && [ "$status" = 75 ]; then  # stopped as asked (not failed, not finished): resume later',
        '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        "  exit 0",
        "fi",
        'exit "$status"',
    ]
    merge_lines = _header("rlt-data-merge", config, logs, [
        "--ntasks=1", f"--cpus-per-task={config.slurm_merge_cpus}", f"--mem={config.slurm_merge_mem}", f"--time={config.slurm_merge_time}",
    ], config.slurm_merge_partition or config.slurm_partition)
    merge_lines += _setup(config, environ) + [f"{cli} merge {shlex.quote(str(output))}"]
    options = job.spec["options"]
    if options.get("push_to_hub"):  # generate --push-to-hub: publish after the merge
        private = " --private" if options.get("private") else ""
        merge_lines.append(f"{cli} push-to-hub {shlex.quote(str(output))} {shlex.quote(options['push_to_hub'])}{private}")
    submit = [
        "#!/bin/bash", "# Submit the shard array, then the merge once every shard succeeded.", "set -euo pipefail",
        'cd "$(dirname "$0")"', "mkdir -p logs",
        "array=$(sbatch --parsable shards.sbatch)", 'array="${array%%;*}"',
        'merge=$(sbatch --parsable --dependency="afterok:${array}" --kill-on-invalid-dep=yes merge.sbatch)',
        'echo "submitted shards as job ${array} (array of ' + str(count) + '), merge as job ${merge}"',
    ]
    return {"shards.sbatch": "\n".join(shard_lines) + "\n", "merge.sbatch": "\n".join(merge_lines) + "\n", "submit.sh": "\n".join(submit) + "\n"}


def shard_options(job: ShardJob) -> dict[str, Any]:
    """What every shard job runs with: this command's options but the scheduling ones."""
    skip = set(job.spec["scheduling"])  # the fields declared with opt(..., scheduling=True)
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in job.spec["options"].items() if v is not None and k not in skip}
    values["output"] = str(Path(job.output).resolve())
    return values


def run_shards(job: ShardJob, worker: Worker, scale_out: ScaleOutOptions, engine: EngineOptions) -> bool:
    """Write (and with ``--submit`` submit) the jobs. The array covers every shard (a finished
    shard's task finds its chunks and ends), and a task starts its shard with the command a user
    reruns by hand, ``rlt-data <command> --config config.yaml --shard-index I``, rather than
    ``worker``: it reads the prepared input the same way. The merge job merges: False, the driver does not."""
    write_job(job, scale_out, engine)
    return False


def write_job(job: ShardJob, config: ScaleOutOptions, engine: EngineOptions) -> Path:
    import yaml

    from ..shards import write_text

    folder = Path(job.output).resolve() / "slurm"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    write_text(folder / "config.yaml", yaml.safe_dump(shard_options(job), sort_keys=True))
    for name, text in scripts(job, config, engine, folder).items():
        write_text(folder / name, text)
        (folder / name).chmod(0o755)
    submit = folder / "submit.sh"
    if not config.submit:
        print(f"wrote {folder}/{{config.yaml,shards.sbatch,merge.sbatch,submit.sh}}: submit with\n  bash {shlex.quote(str(submit))}")
        return folder
    if shutil.which("sbatch") is None:
        raise UserError(f"--submit needs sbatch on PATH (the jobs are written: {submit})")
    refuse_queued(job.output, job.command)
    done = subprocess.run(["bash", str(submit)], capture_output=True, text=True)
    if done.returncode != 0:
        text = (done.stderr or done.stdout).strip()
        last = text.splitlines()[-1] if text else str(done.returncode)
        if "generic resource" in text.lower() or "gres" in text.lower():
            raise UserError(f"sbatch failed: {last} (no GPUs on this partition? --slurm-gpus-per-task 0 asks for none)")
        raise UserError(f"sbatch failed: {last}")
    print(done.stdout.strip())
    return folder


def refuse_queued(output: str, command: str) -> None:
    """One line when the shard jobs of the run in ``output`` are queued or running: submitting again would run every shard twice."""
    running = queued_jobs(job_name(command, Path(output).resolve()))
    if running:
        raise UserError(f"jobs of this run are queued or running ({', '.join(running)}): submitting again would run every shard "
                        "twice; wait for them, or scancel them first")


def queued_jobs(name: str) -> list[str]:
    """Job ids of this run's shard jobs that Slurm has queued or running (squeue; [] without it)."""
    if shutil.which("squeue") is None:
        return []
    done = subprocess.run(["squeue", "--noheader", "--name", name, "--format", "%i"], capture_output=True, text=True)
    return sorted({line.strip() for line in done.stdout.splitlines() if line.strip()}) if done.returncode == 0 else []
