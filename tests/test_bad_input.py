"""Bad input, everywhere: each case ends with exit code 2 and one `Error:` line, never a traceback.

One table across every command (paths, files, YAML, numbers, repo ids, models, backends). All
commands run in-process (typer's CliRunner; ``train``/``train-teacher`` through their ``cli``), and
every case fails before a model is loaded, so the whole table takes seconds. Hub cases never reach
the network (HF_HUB_OFFLINE is set in conftest, and bad repo ids or endpoints fail before any call).
"""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from helpers import write_jsonl
from rlt_data.cli import app

runner = CliRunner()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()

# Placeholders in a case's argv: {T} teacher, {S} student, {D} a good dataset, {RUN} a finished
# run folder, {TMP} the case's tmp_path; files a case needs are written by `FILES` below.
FILES = {
    "bad.jsonl": "{not json\n",
    "empty.jsonl": "",
    "numbers.json": "[1, 2]\n",
    "cols.jsonl": '{"foo": 1, "bar": 2}\n',
    "types.jsonl": '{"question": 7, "solution": [1, 2]}\n',
    "dict_solution.jsonl": '{"question": "Q", "solution": {"a": 1}}\n',
    "list_content.jsonl": '{"messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}]}, {"role": "assistant", "content": "S"}]}\n',
    "bad.yaml": "num_samples: [1,\n",
    "list.yaml": "- 1\n- 2\n",
    "unknown.yaml": "nonsense_option: 1\n",
    "type.yaml": "num_samples: many\n",
    "float.yaml": "chunk_size: 2.5\n",
    "bool.yaml": "strict: maybe\n",
    "afile": "not a folder\n",
    "train_bad.yaml": "model_name_or_path: [\n",
    "train_list.yaml": "- a\n",
    "nan.yaml": "temperature_score: .nan\n",
}

GEN = ["generate", "--teacher", "{T}", "--student", "{S}", "--dataset", "{D}", "--output", "{TMP}/out"]
SCORE = ["score", "--student", "{S}", "--kl-coefs", "0,0", "--output", "{TMP}/out"]
PUSH = ["push-to-hub", "{RUN}"]
EVAL = ["evaluate", "{S}", "--benchmarks", "toy", "--output", "{TMP}/ev"]
# --use_cpu: only because transformers refuses bf16 (TRL's default) without a GPU when parsing
CPU = ["--use_cpu", "true", "--report_to", "none"]
TRAIN = ["train", "--model_name_or_path", "{S}", "--dataset", "{RUN}", "--output_dir", "{TMP}/st", *CPU]
SFT = ["train-teacher", "sft", "--model_name_or_path", "{T}", "--dataset", "{D}", "--output_dir", "{TMP}/tt", *CPU]
GRPO = ["train-teacher", "grpo", "--model_name_or_path", "{T}", "--student_model", "{S}", "--dataset", "{D}", "--output_dir", "{TMP}/tg", *CPU]

CASES = {
    # generate: paths and files
    "generate-dataset-missing": (GEN[:-4] + ["--dataset", "{TMP}/missing.jsonl", "--output", "{TMP}/out"], "dataset not found"),
    "generate-dataset-empty-folder": (GEN[:-4] + ["--dataset", "{TMP}/emptydir", "--output", "{TMP}/out"], "no .jsonl"),
    "generate-dataset-unparsable": (GEN[:-4] + ["--dataset", "{TMP}/bad.jsonl", "--output", "{TMP}/out"], "cannot parse"),
    "generate-dataset-no-rows": (GEN[:-4] + ["--dataset", "{TMP}/empty.jsonl", "--output", "{TMP}/out"], "no rows"),
    "generate-dataset-not-objects": (GEN[:-4] + ["--dataset", "{TMP}/numbers.json", "--output", "{TMP}/out"], "JSON object"),
    "generate-dataset-no-columns": (GEN[:-4] + ["--dataset", "{TMP}/cols.jsonl", "--output", "{TMP}/out"], "no recognizable"),
    "generate-question-column-missing": (GEN + ["--question-column", "nope"], "column 'nope' not found"),
    "generate-scoring-attention": (GEN + ["--scoring-attention", "nope"], "--scoring-attention must be one of"),
    "generate-logprob-budget": (GEN + ["--logprob-budget", "abc"], "--logprob-budget: cannot read"),
    "generate-logprob-kernel": (GEN + ["--logprob-kernel", "triton"], "--logprob-kernel must be one of"),
    "generate-wrong-types": (GEN[:-4] + ["--dataset", "{TMP}/types.jsonl", "--output", "{TMP}/out"], "bad_type"),
    "generate-dict-solution-strict": (GEN[:-4] + ["--dataset", "{TMP}/dict_solution.jsonl", "--output", "{TMP}/out", "--strict"], "bad_type"),
    "generate-list-content": (GEN[:-4] + ["--dataset", "{TMP}/list_content.jsonl", "--output", "{TMP}/out"], "bad_type"),
    "generate-output-is-a-file": (GEN[:-2] + ["--output", "{TMP}/afile"], "not a folder"),
    "generate-output-under-a-file": (GEN[:-2] + ["--output", "{TMP}/afile/run"], "Not a directory"),
    "select-max-shard-size-overflow": (["select", "{RUN}", "--max-shard-size", "1e400"], "--max-shard-size: cannot read"),
    "generate-dataset-hub-bad-id": (GEN[:-4] + ["--dataset", "a/b/c", "--output", "{TMP}/out"], "dataset not found"),
    # decontamination (generate/score --decontaminate, rlt-data decontaminate)
    "generate-decontaminate-unknown-benchmark": (GEN + ["--decontaminate", "aime24,mmlu"], "unknown benchmark 'mmlu'"),
    "generate-decontaminate-method-unknown": (GEN + ["--decontaminate", "toy", "--decontaminate-method", "minhash"], "--decontaminate-method"),
    "generate-ngram-size-zero": (GEN + ["--decontaminate", "toy", "--ngram-size", "0"], "--ngram-size"),
    "generate-fuzzy-threshold-over-100": (GEN + ["--decontaminate", "toy", "--fuzzy-threshold", "101"], "--fuzzy-threshold"),
    "generate-fuzzy-threshold-negative": (GEN + ["--decontaminate", "toy", "--fuzzy-threshold", "-1"], "--fuzzy-threshold"),
    "generate-decontaminate-fields": (GEN + ["--decontaminate", "toy", "--decontaminate-fields", "answer"], "--decontaminate-fields"),
    "generate-decontaminate-data-malformed": (GEN + ["--decontaminate", "toy", "--decontaminate-data", "toy"], "NAME=SOURCE"),
    "generate-decontaminate-data-other": (GEN + ["--decontaminate", "toy", "--decontaminate-data", "math500=x.jsonl"], "not among"),
    "score-decontaminate-unknown-benchmark": (SCORE + ["--dataset", "{D}", "--decontaminate", "mmlu"], "unknown benchmark"),
    "decontaminate-unknown-benchmark": (["decontaminate", "{D}", "--decontaminate", "mmlu"], "unknown benchmark"),
    "decontaminate-method-unknown": (["decontaminate", "{D}", "--decontaminate", "toy", "--decontaminate-method", "exact"], "--decontaminate-method"),
    "decontaminate-ngram-size-zero": (["decontaminate", "{D}", "--decontaminate", "toy", "--ngram-size", "0"], "--ngram-size"),
    "decontaminate-threshold-over-100": (["decontaminate", "{D}", "--decontaminate", "toy", "--fuzzy-threshold", "100.5"], "--fuzzy-threshold"),
    "decontaminate-dataset-missing": (["decontaminate", "{TMP}/missing.jsonl", "--decontaminate", "toy"], "not found"),
    # generate: YAML
    "generate-config-missing": (GEN + ["--config", "{TMP}/missing.yaml"], "config file not found"),
    "generate-config-unparsable": (GEN + ["--config", "{TMP}/bad.yaml"], "cannot parse"),
    "generate-config-not-mapping": (GEN + ["--config", "{TMP}/list.yaml"], "mapping"),
    "generate-config-unknown-key": (GEN + ["--config", "{TMP}/unknown.yaml"], "unknown option"),
    "generate-config-wrong-type": (GEN + ["--config", "{TMP}/type.yaml"], "--num-samples takes an integer"),
    "generate-config-float-for-int": (GEN + ["--config", "{TMP}/float.yaml"], "--chunk-size takes an integer"),
    "generate-config-bad-bool": (GEN + ["--config", "{TMP}/bool.yaml"], "--strict takes true or false"),
    # generate: numbers and choices
    "generate-num-samples-zero": (GEN + ["--num-samples", "0"], "--num-samples"),
    "generate-num-samples-text": (GEN + ["--num-samples", "abc"], "--num-samples"),
    "generate-temperature-zero": (GEN + ["--temperature", "0"], "--temperature"),
    "generate-top-p-above-one": (GEN + ["--top-p", "1.5"], "--top-p"),
    "generate-max-new-tokens-negative": (GEN + ["--max-new-tokens", "-1"], "--max-new-tokens"),
    "generate-temperature-score-zero": (GEN + ["--temperature-score", "0"], "--temperature-score"),
    "generate-lp-coefs-one-number": (GEN + ["--lp-coefs", "1"], "--lp-coefs"),
    "generate-kl-coefs-text": (GEN + ["--kl-coefs", "a,b"], "--kl-coefs"),
    "generate-max-shard-size": (GEN + ["--max-shard-size", "5XB"], "--max-shard-size"),
    "generate-keep-unknown": (GEN + ["--keep", "worst"], "keep"),
    "generate-top-k-zero": (GEN + ["--keep", "top-k", "--top-k", "0"], "top-k"),
    "generate-limit-zero": (GEN + ["--limit", "0"], "--limit"),
    "generate-chunk-size-zero": (GEN + ["--chunk-size", "0"], "--chunk-size"),
    "generate-temperature-inf": (GEN + ["--temperature", "inf"], "--temperature must be a finite number"),
    "generate-temperature-nan": (GEN + ["--temperature", "nan"], "--temperature must be a finite number"),
    "generate-min-reward-nan": (GEN + ["--min-reward", "nan"], "--min-reward must be a finite number"),
    "generate-max-student-tokens-negative": (GEN + ["--max-student-tokens", "-5"], "--max-student-tokens must be at least 1"),
    "generate-max-shard-size-inf": (GEN + ["--max-shard-size", "inf"], "--max-shard-size: cannot read"),
    "generate-logprob-budget-overflow": (GEN + ["--logprob-budget", "1e400"], "--logprob-budget: cannot read"),
    "generate-kl-coefs-inf": (GEN + ["--kl-coefs", "inf,0"], "--kl-coefs"),
    "generate-config-temperature-nan": (GEN + ["--config", "{TMP}/nan.yaml"], "--temperature-score must be a finite number"),
    "generate-unknown-flag": (GEN + ["--nonsense"], "nonsense"),
    "generate-preset-unknown": (["generate", "--preset", "big", "--output", "{TMP}/out"], "preset"),
    # generate: models, backends, hub
    "generate-teacher-missing-option": (["generate", "--student", "{S}", "--dataset", "{D}", "--output", "{TMP}/out"], "--teacher is required"),
    "generate-teacher-missing-folder": (["generate", "--teacher", "{TMP}/no-teacher", "--student", "{S}", "--dataset", "{D}", "--output", "{TMP}/out"], "model not found"),
    "generate-student-missing-folder": (["generate", "--teacher", "{T}", "--student", "./no-student", "--dataset", "{D}", "--output", "{TMP}/out"], "model not found"),
    "generate-backend-unknown": (GEN + ["--backend", "tpu"], "backend"),
    "generate-dtype-unknown": (GEN + ["--dtype", "float8"], "dtype"),
    "generate-gpu-memory-utilization": (GEN + ["--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization"),
    "generate-tensor-parallel-zero": (GEN + ["--tensor-parallel-size", "0"], "--tensor-parallel-size"),
    "generate-vllm-args-not-json": (GEN + ["--vllm-args", "not json"], "--vllm-args"),
    "generate-push-to-hub-bad-repo": (GEN + ["--push-to-hub", "a/b/c"], "repo id"),
    # generate: shards and executors
    "generate-num-shards-zero": (GEN + ["--num-shards", "0"], "--num-shards"),
    "generate-shard-index-out-of-range": (GEN + ["--num-shards", "2", "--shard-index", "2"], "--shard-index must be in 0..1"),
    "generate-executor-unknown": (GEN + ["--executor", "kubernetes"], "--executor"),
    "generate-executor-ray-one-shard": (GEN + ["--executor", "ray"], "--num-shards"),
    "generate-shard-index-with-replicas": (GEN + ["--num-shards", "2", "--shard-index", "0", "--data-parallel-size", "2"], "--shard-index"),
    "generate-slurm-cpus-zero": (GEN + ["--num-shards", "2", "--executor", "slurm", "--slurm-cpus-per-task", "0"], "--slurm-cpus-per-task"),
    "generate-slurm-time-no-work": (GEN + ["--num-shards", "2", "--executor", "slurm", "--slurm-time", "10:00"], "leaves no time to work"),
    "generate-slurm-time-garbage": (GEN + ["--num-shards", "2", "--executor", "slurm", "--slurm-time", "soon"], "is not a Slurm time"),
    "generate-slurm-mem-garbage": (GEN + ["--num-shards", "2", "--executor", "slurm", "--slurm-mem", "lots"], "--slurm-mem"),
    "generate-slurm-merge-cpus-zero": (GEN + ["--num-shards", "2", "--executor", "slurm", "--slurm-merge-cpus", "0"], "--slurm-merge-cpus"),
    # merge
    "merge-missing-folder": (["merge", "{TMP}/missing"], "not a folder"),
    "merge-no-shards": (["merge", "{TMP}"], "no rlt-data shards"),
    "merge-keep-unknown": (["merge", "{RUN}", "--keep", "worst"], "keep"),
    "merge-output-is-a-file": (["merge", "{RUN}", "--output", "{TMP}/afile"], "not a folder"),
    "merge-num-shards-absent": (["merge", "{RUN}", "--num-shards", "4"], "of 4 shards"),
    # score
    "score-student-missing": (["score", "--dataset", "{D}", "--kl-coefs", "0,0", "--output", "{TMP}/out"], "--student is required"),
    "score-needs-teacher": (["score", "--student", "{S}", "--dataset", "{D}", "--output", "{TMP}/out"], "--teacher"),
    "score-no-explanation-column": (SCORE + ["--dataset", "{D}"], "explanation"),
    "score-output-is-a-file": (["score", "--student", "{S}", "--kl-coefs", "0,0", "--dataset", "{D}", "--output", "{TMP}/afile"], "not a folder"),
    # select
    "select-not-a-run": (["select", "{TMP}"], "not an rlt-data run"),
    "select-missing-folder": (["select", "{TMP}/missing"], "not an rlt-data run"),
    "select-keep-unknown": (["select", "{RUN}", "--keep", "worst"], "keep"),
    "select-keep-by-missing": (["select", "{RUN}", "--keep-by", "nope", "--ascending"], "--keep-by nope: no such column"),
    "select-keep-by-not-numeric": (["select", "{RUN}", "--keep-by", "question"], "--keep-by question: not a numeric column"),
    "select-keep-by-bool": (["select", "{RUN}", "--keep-by", "has_end_tag"], "not a numeric column"),
    "generate-keep-by-missing": (GEN + ["--keep-by", "rsr_mean"], "--keep-by rsr_mean: no such column"),
    "merge-keep-by-not-numeric": (["merge", "{RUN}", "--keep-by", "status"], "not a numeric column"),
    "select-top-k-zero": (["select", "{RUN}", "--keep", "top-k", "--top-k", "0"], "top-k"),
    "select-max-shard-size": (["select", "{RUN}", "--max-shard-size", "lots"], "--max-shard-size"),
    # push-to-hub
    "push-not-a-run": (["push-to-hub", "{TMP}", "user/set"], "not an rlt-data run"),
    "push-repo-id-three-parts": (PUSH + ["a/b/c"], "repo id"),
    "push-repo-id-characters": (PUSH + ["user/bad name!"], "repo id"),
    "push-endpoint-garbage": (PUSH + ["user/set", "--endpoint", "not a url"], "--endpoint"),
    "push-files-per-commit-zero": (PUSH + ["user/set", "--files-per-commit", "0"], "--files-per-commit"),
    "push-max-retries-negative": (PUSH + ["user/set", "--max-retries", "-1"], "--max-retries"),
    # export
    "export-format-unknown": (["export", "{RUN}", "--format", "axolotl"], "format"),
    "export-missing-folder": (["export", "{TMP}/missing"], "not found"),
    "export-hub-repo-bad": (["export", "{RUN}", "--hub-repo", "a/b/c"], "repo id"),
    # evaluate
    "evaluate-benchmark-unknown": (["evaluate", "{S}", "--benchmarks", "mmlu", "--output", "{TMP}/ev"], "mmlu"),
    "evaluate-model-missing": (["evaluate", "{TMP}/no-model", "--benchmarks", "toy", "--output", "{TMP}/ev"], "model not found"),
    "evaluate-num-samples-zero": (EVAL + ["--num-samples", "0"], "--num-samples"),
    "evaluate-batch-size-zero": (EVAL + ["--batch-size", "0"], "--batch-size"),
    "evaluate-chunk-size-negative": (EVAL + ["--chunk-size", "-1"], "--chunk-size"),
    "evaluate-temperature-nan": (EVAL + ["--temperature", "nan"], "--temperature"),
    "evaluate-data-malformed": (EVAL + ["--data", "toy"], "--data"),
    "evaluate-system-prompt-file": (EVAL + ["--system-prompt", "@{TMP}/missing.txt"], "--system-prompt"),
    "evaluate-dtype-unknown": (EVAL + ["--dtype", "float8"], "dtype"),
    "evaluate-backend-unknown": (EVAL + ["--backend", "tpu"], "backend"),
    "evaluate-output-is-a-file": (["evaluate", "{S}", "--benchmarks", "toy", "--output", "{TMP}/afile"], "not a folder"),
    "evaluate-push-to-hub-bad-repo": (EVAL + ["--push-to-hub", "a/b/c"], "repo id"),
    "evaluate-preset-unknown": (EVAL + ["--preset", "evalchemy"], "--preset"),
    "evaluate-extraction-unknown": (EVAL + ["--extraction", "loose"], "--extraction"),
    "evaluate-k-zero": (EVAL + ["--k", "1,0"], "--k"),
    "evaluate-k-not-a-number": (EVAL + ["--k", "all"], "--k"),
    "evaluate-training-data-missing": (EVAL + ["--training-data", "{TMP}/missing.jsonl"], "--training-data"),
    # train (student SFT)
    "train-config-missing": (["train", "--config", "{TMP}/missing.yaml"], "config file not found"),
    "train-config-unparsable": (["train", "--config", "{TMP}/train_bad.yaml"], "cannot parse"),
    "train-config-not-mapping": (["train", "--config", "{TMP}/train_list.yaml"], "mapping"),
    "train-dataset-missing": (["train", "--model_name_or_path", "{S}", "--dataset", "{TMP}/missing", "--output_dir", "{TMP}/st", *CPU], "dataset not found"),
    "train-no-model": (["train", "--dataset", "{RUN}", "--output_dir", "{TMP}/st", *CPU], "model_name_or_path"),
    "train-model-missing": (["train", "--model_name_or_path", "{TMP}/no-model", "--dataset", "{RUN}", "--output_dir", "{TMP}/st", *CPU], "model not found"),
    "train-bf16-on-cpu": (["train", "--model_name_or_path", "{S}", "--dataset", "{RUN}", "--output_dir", "{TMP}/st", "--bf16", "true"] if not _cuda() else ["train", "--config", "{TMP}/afile"], None),
    "train-on-overlong": (TRAIN + ["--on_overlong", "truncate"], "--on_overlong"),
    "train-number-text": (TRAIN + ["--num_train_epochs", "many"], "num_train_epochs"),
    "train-unknown-flag": (TRAIN + ["--nonsense", "1"], "nonsense"),
    "train-batch-size-zero": (TRAIN + ["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1"),
    "train-truncated-weights": (["train", "--model_name_or_path", "{TMP}/truncated", "--dataset", "{RUN}", "--output_dir", "{TMP}/st", *CPU], "is damaged"),
    "train-teacher-no-tokenizer": (SFT[:2] + ["--model_name_or_path", "{TMP}/no-tokenizer"] + SFT[4:], "has no tokenizer files"),
    "generate-teacher-not-yet-trained": (["generate", "--teacher", "{TMP}/outputs/my-teacher", "--student", "{S}", "--dataset", "{D}", "--output", "{TMP}/out"], "model not found"),
    "export-name-empty": (["export", "{RUN}", "--name", ""], "--name must not be empty"),
    "export-not-a-run": (["export", "{TMP}/fake-run"], "not an rlt-data run"),
    "push-broken-card": (["push-to-hub", "{TMP}/broken-card", "user/set", "--dry-run"], "is missing or damaged"),
    # train-teacher
    "train-teacher-no-phase": (["train-teacher"], "choose a phase"),
    "train-teacher-bad-phase": (["train-teacher", "ppo"], "choose a phase"),
    "train-teacher-config-missing": (["train-teacher", "sft", "--config", "{TMP}/missing.yaml"], "config file not found"),
    "train-teacher-config-unparsable": (["train-teacher", "grpo", "--config", "{TMP}/train_bad.yaml"], "cannot parse"),
    "train-teacher-sft-dataset-missing": (SFT[:4] + ["--dataset", "{TMP}/missing.jsonl"] + SFT[6:], "dataset not found"),
    "train-teacher-sft-wrong-types": (SFT[:4] + ["--dataset", "{TMP}/types.jsonl", "--explanation_column", "solution"] + SFT[6:], "bad_type"),
    "train-teacher-grpo-no-student": (GRPO[:4] + GRPO[6:], "student_model"),
    "train-teacher-grpo-student-missing": (GRPO[:4] + ["--student_model", "{TMP}/no-student"] + GRPO[6:], "model not found"),
    "train-teacher-grpo-lp-coefs": (GRPO + ["--lp_coefs", "1"], "lp_coefs"),
    "train-teacher-grpo-temperature-score-nan": (GRPO + ["--temperature_score", "nan"], "--temperature_score must be a positive finite number"),
    "train-teacher-grpo-kl-coefs-inf": (GRPO + ["--kl_coefs", "inf", "0"], "must be finite numbers"),
    "train-teacher-sft-limit-negative": (SFT + ["--limit", "-1"], "--limit must be at least 1"),
    "train-teacher-number-text": (SFT + ["--learning_rate", "fast"], "learning_rate"),
}


@pytest.fixture(scope="module")
def toy_run(toy_models, tmp_path_factory):
    """One finished two-row run: a valid folder for the select/push/export/train cases."""
    from rlt_data.testing import toy

    root = tmp_path_factory.mktemp("bad_input_run")
    rows = [{"question": r["question"], "solution": r["solution"]} for r in toy.toy_rows(2, seed=7)]
    dataset = write_jsonl(root / "set.jsonl", rows)
    result = runner.invoke(app, [
        "generate", "--teacher", toy_models["teacher"], "--student", toy_models["student"], "--dataset", str(dataset),
        "--output", str(root / "run"), "--num-samples", "1", "--max-new-tokens", "160", "--backend", "transformers",
        "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    return root / "run"


def _run(argv: list[str], capsys) -> tuple[int, str]:
    if argv[0] in ("train", "train-teacher"):
        from rlt_data import train, train_teacher

        cli = train.cli if argv[0] == "train" else train_teacher.cli
        with pytest.raises(SystemExit) as exc:
            cli(argv[1:])
        captured = capsys.readouterr()
        return exc.value.code, captured.err
    result = runner.invoke(app, argv)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        return 1, "".join(traceback.format_exception(result.exception))
    return result.exit_code, result.stderr


def _damaged_folders(name: str, tmp_path, toy_models, toy_run) -> None:
    """What a few cases need on disk: a model folder with a truncated weights file or without its
    tokenizer, a folder with a sharegpt/ that no run wrote, a run whose card is damaged."""
    if name == "train-truncated-weights":
        model = shutil.copytree(toy_models["student"], tmp_path / "truncated")
        weights = model / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    elif name == "train-teacher-no-tokenizer":
        model = shutil.copytree(toy_models["teacher"], tmp_path / "no-tokenizer")
        for file in model.iterdir():
            if file.name.startswith(("tokenizer", "vocab", "merges", "special_tokens", "chat_template")):
                file.unlink()
    elif name == "generate-teacher-not-yet-trained":
        (tmp_path / "outputs").mkdir()
    elif name == "export-not-a-run":
        (tmp_path / "fake-run" / "sharegpt").mkdir(parents=True)
        (tmp_path / "fake-run" / "sharegpt" / "train-00000-of-00001.parquet").write_bytes(b"")
    elif name == "push-broken-card":
        run = shutil.copytree(toy_run, tmp_path / "broken-card")
        (run / "README.md").write_text("---\nconfigs: [\n---\n")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, toy_models, toy_set, toy_run, tmp_path, capsys):
    argv, expected = CASES[name]
    for file, text in FILES.items():
        (tmp_path / file).write_text(text, "utf-8")
    (tmp_path / "emptydir").mkdir()
    _damaged_folders(name, tmp_path, toy_models, toy_run)
    values = {"T": toy_models["teacher"], "S": toy_models["student"], "D": str(toy_set), "RUN": str(toy_run), "TMP": str(tmp_path)}
    if argv[0] == "evaluate":  # should a case ever get through, its model card must not land in the shipped toy student
        values["S"] = str(shutil.copytree(toy_models["student"], tmp_path / "student"))
    argv = [a.format(**values) for a in argv]
    code, err = _run(argv, capsys)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in err, err
    assert code == 2, err
    assert len(errors) == 1, err
    if expected:
        assert expected in errors[0], errors[0]


def test_table_covers_every_command():
    commands = {argv[0] for argv, _ in CASES.values()}
    assert commands == {"generate", "score", "select", "merge", "push-to-hub", "export", "evaluate", "train", "train-teacher", "decontaminate"}
    assert len(CASES) >= 40


def test_rows_of_the_wrong_type_are_counted_or_refused(tmp_path):
    """A question, solution or turn that is not text is a `bad_type` row: skipped and counted, or refused with --strict."""
    from rlt_data import sources
    from rlt_data.errors import UserError

    rows = [
        {"question": "Q1", "solution": "S1"},
        {"question": 7, "solution": "S"},
        {"question": "Q", "solution": [1, 2]},
        {"question": "Q", "solution": {"a": 1}},
        {"question": True, "solution": "S"},
        {"question": "Q", "solution": 42},
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    loaded = sources.load_rows(str(path))
    # a numeric solution is the text of the number; every other non-text value is a bad_type row
    assert [(r["question"], r["solution"]) for r in loaded.rows] == [("Q1", "S1"), ("Q", "42")]
    assert dict(loaded.skipped) == {"bad_type": 4}
    with pytest.raises(UserError, match="row 1 cannot be used: bad_type"):
        sources.load_rows(str(path), strict=True)
    chat = [{"messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}]}, {"role": "assistant", "content": "S"}]},
            {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": 5}]},
            {"messages": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "S2"}]}]
    loaded = sources.load_rows(str(write_jsonl(tmp_path / "chat.jsonl", chat)))
    assert [r["question"] for r in loaded.rows] == ["Q2"] and dict(loaded.skipped) == {"bad_type": 2}


def test_yaml_values_take_their_option_types(tmp_path):
    """Numbers in YAML become the option's type; text for a number is refused (it used to reach a comparison)."""
    from rlt_data.config import GenerateConfig, build

    (tmp_path / "c.yaml").write_text("num_samples: 2\ntemperature: 1\nrevision: 2024\nvllm_args: {kv_cache_dtype: fp8}\n")
    config = build(GenerateConfig, str(tmp_path / "c.yaml"), {"teacher": "t", "student": "s", "dataset": "d", "output": str(tmp_path / "o")})
    assert (config.sampling.num_samples, config.sampling.temperature, config.input.revision) == (2, 1.0, "2024")
    assert json.loads(config.engine.vllm_args) == {"kv_cache_dtype": "fp8"}


def test_evaluate_without_the_eval_extra(monkeypatch, toy_models, tmp_path):
    """math-verify missing (the `eval` extra not installed): one line naming the extra, before any model loads."""
    import sys

    monkeypatch.setitem(sys.modules, "math_verify", None)  # what `import math_verify` sees when it is not installed
    student = shutil.copytree(toy_models["student"], tmp_path / "student")
    result = runner.invoke(app, ["evaluate", str(student), "--benchmarks", "toy", "--output", str(tmp_path / "ev")])
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "pip install 'rlt-data[eval]'" in errors[0], result.output
