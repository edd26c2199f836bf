"""Train a student on an rlt-data run with TRL's ``SFTTrainer`` (``rlt-data train`` / ``python -m rlt_data.train``).

    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml -m rlt_data.train \\
        --config recipes/Qwen2.5-7B-Instruct/sft/config_rlt.yaml --dataset runs/stratos-rlt

Options are TRL's own (``SFTConfig``, ``ModelConfig``, parsed by ``TrlParser``, YAML via
``--config``) plus :class:`DataArguments`. Rows use the ``messages`` column of the run's ``default``
config (student system prompt first: the context that was scored); each becomes a conversational
prompt/completion pair, so the loss is on the assistant turn only, with any chat template (no
``{% generation %}`` markers needed, unlike stock ``trl sft --assistant_only_loss``). Before training, rows longer than ``max_length`` are counted and
dropped with a warning (``--on_overlong error`` fails instead): nothing is truncated silently, and
a row left without trainable tokens never reaches the trainer.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError, first_line, os_error
from .models import check_model_path, check_weights, is_local, load_tokenizer

log = logging.getLogger("rlt_data.train")


@dataclass
class DataArguments:
    dataset: str = field(metadata={"help": "An rlt-data run folder, or a Hub dataset repo id."})
    dataset_config: str = field(default="default", metadata={"help": "Dataset config (default: the kept rows, `messages`)."})
    dataset_split: str = field(default="train", metadata={"help": "Split to train on."})
    on_overlong: str = field(default="drop", metadata={"help": "Rows longer than max_length: drop (with a warning) or error."})


def load_rows(args: DataArguments):
    import datasets

    path = Path(args.dataset).expanduser()
    if not path.exists() and is_local(args.dataset):
        raise UserError(f"dataset not found: {args.dataset}")
    try:
        if is_run_folder(path, args.dataset_config):
            ds = load_run_folder(path, args.dataset_config, args.dataset_split)
        else:
            ds = datasets.load_dataset(str(path) if path.exists() else args.dataset, args.dataset_config, split=args.dataset_split)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot load {args.dataset}: {first_line(exc)}")
    if "messages" not in ds.column_names:
        hint = "; its `default` config has them" if "conversations" in ds.column_names else "; is it an rlt-data run?"
        raise UserError(f"{args.dataset} (config {args.dataset_config!r}) has no 'messages' column (columns: {ds.column_names}){hint}")
    return ds


def is_run_folder(path: Path, config: str) -> bool:
    """A local rlt-data run (or a local copy of a pushed one): its card and the config's shards."""
    from .shards import SPLIT_FOLDERS

    return path.is_dir() and (path / "README.md").is_file() and config in SPLIT_FOLDERS and \
        any((path / SPLIT_FOLDERS[config]).glob("train-*.parquet"))


def load_run_folder(path: Path, config: str, split: str = "train"):
    """The rows of ``config`` exactly as they are on disk: its shards through ``data_files``.

    ``load_dataset(RUN)`` caches a local folder under its name and its card, not its files (see
    :mod:`rlt_data.card`); named files are cached under their paths and modification times. The row
    count is checked against the shards' own metadata, and a card that does not describe the files
    (made by an older rlt-data, or files changed by hand) is reported: other loads of the folder
    (``load_dataset(RUN)``, ``trl sft --dataset_name RUN``) may then read another run's rows.
    """
    import datasets
    import pyarrow.parquet as pq

    from .card import card_mismatches
    from .shards import SPLIT_FOLDERS

    if not re.fullmatch(r"train(\[.*\])?", split):
        raise UserError(f"{path} (config {config!r}) has one split, 'train' (slices such as train[:10%] work), not {split!r}")
    files = sorted((path / SPLIT_FOLDERS[config]).glob("train-*.parquet"))
    ds = datasets.load_dataset("parquet", data_files={"train": [str(f.resolve()) for f in files]}, split=split)
    expected = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if split == "train" and len(ds) != expected:
        raise UserError(f"{path}: loaded {len(ds)} rows of config {config!r} but its shards hold {expected}; "
                        "clear the datasets cache (HF_DATASETS_CACHE) and rerun")
    mismatches = card_mismatches(path, (config,))
    if mismatches:
        log.warning("%s: %s. load_dataset(%r) and `trl sft --dataset_name %s` may read stale rows from the datasets "
                    "cache (keyed by the folder's name and card, not its files); rlt-data train read the files. %s",
                    path, "; ".join(mismatches), str(path), path, refresh_hint(path))
    return ds


def refresh_hint(path: Path) -> str:
    """How to give a run folder a card that describes its files: ``rlt-data select`` with the
    selection it has (``run.json``), or, for a folder without one, clearing its cache entry."""
    import shlex

    from .shards import RunStore

    state = RunStore(path).read_state()
    if state is None:
        import datasets
        from datasets.naming import camelcase_to_snakecase  # how datasets names a local folder's cache entry

        cache = Path(datasets.config.HF_DATASETS_CACHE) / camelcase_to_snakecase(path.resolve().name)
        return f"Before loading it by name, remove {cache} (the datasets cache of every folder named {path.resolve().name!r})"
    flags = []
    for key, value in state.selection.items():
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, bool):  # a switch: --ascending, or nothing
            flags += [flag] if value else []
        elif value is not None:
            flags.append(f"{flag} {shlex.quote(str(value))}")
    if state.max_shard_size:
        flags.append(f"--max-shard-size {state.max_shard_size}")
    return "Rewrite the card: " + " ".join(["rlt-data select", shlex.quote(str(path)), *flags])


def to_prompt_completion(example: dict) -> dict:
    messages = example["messages"]
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def guard_lengths(ds, tokenizer, max_length: int | None, on_overlong: str, num_proc: int | None = None):
    """Drop (or refuse) rows longer than ``max_length`` and rows without trainable tokens."""

    def measure(example: dict) -> dict:
        prompt = tokenizer.apply_chat_template(example["prompt"], tokenize=True, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True)
        prompt, full = _ids(prompt), _ids(full)
        return {"_length": len(full), "_trainable": len(full) - len(prompt)}

    ds = ds.map(measure, num_proc=num_proc, desc="measuring rows")
    overlong = sum(1 for n in ds["_length"] if max_length is not None and n > max_length)
    empty = sum(1 for n in ds["_trainable"] if n <= 0)
    if overlong and on_overlong == "error":
        raise UserError(f"{overlong} of {len(ds)} rows are longer than max_length={max_length}; raise max_length or use --on_overlong drop")
    if overlong or empty:
        log.warning("dropping %d of %d rows longer than max_length=%s and %d without trainable tokens", overlong, len(ds), max_length, empty)
        ds = ds.filter(lambda e: e["_trainable"] > 0 and (max_length is None or e["_length"] <= max_length), num_proc=num_proc)
    if len(ds) == 0:
        raise UserError("no row is left to train on")
    return ds.remove_columns(["_length", "_trainable"])


def _ids(value) -> list[int]:
    """``apply_chat_template(tokenize=True)`` returns ids, or a BatchEncoding in some versions."""
    return list(value["input_ids"]) if hasattr(value, "keys") else list(value)


def check_config_file(argv: list[str]) -> None:
    """``--config FILE`` / ``--config=FILE``: the file exists and holds a YAML mapping (TRL would raise a traceback)."""
    from .options import read_yaml_mapping

    for k, arg in enumerate(argv):
        if arg.startswith("--config="):
            read_yaml_mapping(arg.split("=", 1)[1])
        elif arg == "--config" and k + 1 < len(argv):
            read_yaml_mapping(argv[k + 1])


def parse_options(dataclass_types: Any, argv: list[str]) -> tuple:
    """TRL's parser (flags and ``--config`` YAML) with bad input as a ``UserError``: a missing or
    unreadable config file, a value of the wrong type or an unknown option (argparse would print
    its usage and exit), and the option checks of TRL's and transformers' config classes.
    ``dataclass_types``: the option dataclasses, or a ``TrlParser`` of them (a script's ``make_parser()``)."""
    from trl import TrlParser

    def error(message: str) -> None:
        raise UserError(f"{message} (see --help)")

    check_config_file(argv)
    parser = TrlParser(dataclass_types) if isinstance(dataclass_types, (tuple, list)) else dataclass_types
    parser.error = error  # type: ignore[method-assign]
    try:
        parsed = parser.parse_args_and_config(args=argv)
    except ValueError as exc:  # raised by the config classes' __post_init__ checks, and for unused arguments
        raise UserError(first_line(exc)) from None
    for options in parsed:  # TRL and transformers accept these and fail later with a traceback
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps"):
            if getattr(options, name, 1) < 1:
                raise UserError(f"--{name} must be at least 1")
    return tuple(keep_token_off_disk(options) for options in parsed)


def keep_token_off_disk(options: Any) -> Any:
    """``--hub_token`` never reaches disk: the Trainer pickles its arguments into every checkpoint and
    ``output_dir/training_args.bin`` (the folder ``--push_to_hub`` uploads). The token moves to
    ``HF_TOKEN`` of this process, where huggingface_hub finds it when the Trainer pushes."""
    import os

    token = getattr(options, "hub_token", None)
    if token:
        os.environ["HF_TOKEN"] = token
        options.hub_token = None
    return options


def main(argv: list[str] | None = None) -> None:
    from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config

    data_args, training_args, model_args = parse_options((DataArguments, SFTConfig, ModelConfig), sys.argv[1:] if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if data_args.on_overlong not in ("drop", "error"):
        raise UserError("--on_overlong must be drop or error")
    if not model_args.model_name_or_path:
        raise UserError("--model_name_or_path is required")
    check_model_path(model_args.model_name_or_path)
    check_weights(model_args.model_name_or_path)
    ds = load_rows(data_args).map(to_prompt_completion, remove_columns=None)
    tokenizer = load_tokenizer(model_args.model_name_or_path, revision=model_args.model_revision)
    ds = ds.select_columns(["prompt", "completion"])
    ds = guard_lengths(ds, tokenizer, training_args.max_length, data_args.on_overlong, training_args.dataset_num_proc)
    log.info("training on %d rows", len(ds))

    set_model_init_kwargs(training_args, model_args)
    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=ds,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    fit(trainer)


def set_model_init_kwargs(training_args, model_args) -> None:
    """How TRL loads the model from its name: ``ModelConfig``'s dtype, revision and attention."""
    training_args.model_init_kwargs = {
        **(training_args.model_init_kwargs or {}),
        "dtype": model_args.dtype or "auto",
        "revision": model_args.model_revision,
        **({"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}),
    }


def fit(trainer) -> None:
    """Train (resuming from the last checkpoint in ``output_dir`` on a rerun), then save model and tokenizer."""
    from transformers.trainer_utils import get_last_checkpoint

    output_dir = trainer.args.output_dir
    resume = trainer.args.resume_from_checkpoint
    if resume is None and Path(output_dir).is_dir():
        resume = get_last_checkpoint(output_dir)  # rerunning the command resumes
    if resume:
        log.info("resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    trainer.save_model(output_dir)
    trainer.processing_class.save_pretrained(output_dir)


def cli(argv: list[str], main=main) -> None:
    """Run ``main(argv)``; a ``UserError`` prints one line and exits with code 2."""
    try:
        main(argv)
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2)
    except OSError as exc:  # an unwritable output_dir, a full disk
        print(f"Error: {os_error(exc)}", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    cli(sys.argv[1:])
