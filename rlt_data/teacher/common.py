"""What the teacher's two TRL scripts (:mod:`.sft`, :mod:`.grpo`) share: the input rows and their
options, the parser, the policy's tokenizer and PEFT config, TRL's refusals as one line, and the run
(fit, resume, ``rlt_run.json``).

The input options are ``generate``'s (:class:`rlt_data.options.InputOptions`): their defaults, and
their help where it reads the same, come from that section (:func:`rlt_data.options.trl_field`).
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import sources
from ..errors import MissingColumn, UserError, first_line
from ..models import check_weights, load_tokenizer
from ..options import InputOptions, trl_field
from ..shards import write_text
from ..train import cli as run_cli
from ..train import fit, parse_options, set_model_init_kwargs

log = logging.getLogger(__name__)


@dataclass
class TeacherDataArguments:
    """Which rows the teacher trains on (any input set ``generate`` reads)."""

    dataset: str | None = trl_field(InputOptions, "dataset", help="Hub dataset id, or local .jsonl/.json/.parquet files or a folder.")
    dataset_split: str = trl_field(InputOptions, "split")
    dataset_subset: str | None = trl_field(InputOptions, "subset")
    dataset_revision: str | None = trl_field(InputOptions, "revision", help="Dataset revision (Hub datasets).")
    question_column: str | None = trl_field(InputOptions, "question_column")
    solution_column: str | None = trl_field(InputOptions, "solution_column")
    explanation_column: str | None = field(
        default=None, metadata={"help": "SFT: explanation column (default: explanation; Bespoke-Stratos rows use their thought)."}
    )
    limit: int | None = trl_field(InputOptions, "limit")


def load_teacher_rows(args: TeacherDataArguments, with_explanation: bool) -> list[dict]:
    if not args.dataset:
        raise UserError("--dataset is required")
    if args.limit is not None and args.limit < 1:  # a negative limit would drop rows from the end
        raise UserError("--limit must be at least 1")
    no_trace = (
        f"{args.dataset} carries no reasoning trace for the teacher to learn from (Bespoke-Stratos "
        "<|begin_of_thought|> sections, or an explanation column: --explanation_column)"
    )
    try:
        loaded = sources.load_rows(
            args.dataset, split=args.dataset_split, subset=args.dataset_subset, revision=args.dataset_revision,
            question_column=args.question_column, solution_column=args.solution_column, limit=args.limit,
            with_explanation=with_explanation, explanation_column=args.explanation_column,
        )
    except MissingColumn as exc:
        if exc.what == "explanation":
            raise UserError(f"{no_trace}: {exc}") from None
        raise
    if not loaded.rows:
        if with_explanation and loaded.skipped.get("no_explanation"):
            raise UserError(no_trace)
        raise UserError(f"no usable rows in {args.dataset} (skipped: {dict(loaded.skipped)})")
    if loaded.skipped:
        log.warning("skipped %d input rows: %s", sum(loaded.skipped.values()), dict(loaded.skipped))
    return loaded.rows


# -- parsing and building ----------------------------------------------------------------------
def trl_parser(dataclass_types: tuple, prog: str | None = None) -> Any:
    """TRL's parser of a script's option dataclasses (flags, and YAML through ``--config``)."""
    from trl import TrlParser

    return TrlParser(dataclass_types, prog=prog)


def parse(parser: Any, argv: list[str]) -> tuple:
    """``argv`` through a script's ``make_parser()``; bad input as a one-line ``UserError``."""
    return parse_options(parser, argv)


def policy(training_args: Any, model_args: Any) -> tuple[Any, Any]:
    """The policy's tokenizer and PEFT config, once its path and weights are checked; TRL then loads
    it by name with ``ModelConfig``'s dtype, revision and attention."""
    from trl import get_peft_config

    if not model_args.model_name_or_path:
        raise UserError("--model_name_or_path is required")
    tokenizer = load_tokenizer(model_args.model_name_or_path, revision=model_args.model_revision)
    check_weights(model_args.model_name_or_path)
    set_model_init_kwargs(training_args, model_args)
    return tokenizer, get_peft_config(model_args)


@contextmanager
def trainer_errors():
    """What TRL's trainers refuse while being built (a missing vLLM, several GPUs without a
    launcher, an unsupported option): one line, not a traceback."""
    try:
        yield
    except (ValueError, ImportError, NotImplementedError) as exc:
        raise UserError(first_line(exc)) from None


# -- running -----------------------------------------------------------------------------------
def train(phase: str, trainer: Any, data_args: Any, model_args: Any, reward_args: Any = None) -> Any:
    """Fit ``trainer`` (a rerun resumes from the last checkpoint in ``output_dir``), then write
    ``rlt_run.json`` beside the model from the main process."""
    fit(trainer)
    if trainer.accelerator.is_main_process:
        record = run_record(phase, trainer, data_args, model_args, reward_args)
        write_text(Path(trainer.args.output_dir) / "rlt_run.json", json.dumps(record, indent=2, default=str) + "\n")
    return trainer


def run_record(phase: str, trainer: Any, data_args: Any, model_args: Any, reward_args: Any = None) -> dict:
    """What ``rlt_run.json`` beside the model holds: options, versions, the reward/loss curve."""
    from dataclasses import asdict

    from ..card import LIBRARIES, library_versions

    args = _redact(trainer.args.to_dict())
    curve_keys = ("step", "loss", "reward", "reward_std", "rlt/r_ss", "rlt/r_kl", "rlt/end_tag_rate", "learning_rate")
    curve = [{k: e[k] for k in curve_keys if k in e} for e in trainer.state.log_history if "loss" in e or "reward" in e]
    return {
        "phase": phase,
        "data": asdict(data_args),
        "model": _redact(asdict(model_args)),
        **({"reward": asdict(reward_args)} if reward_args is not None else {}),
        "training": args,
        "versions": library_versions(LIBRARIES + ("trl", "accelerate")),
        "curve": curve,
    }


def _redact(value: Any) -> Any:
    """``value`` without its ``token`` / ``*_token`` keys (secrets), at any depth (``model_init_kwargs`` too)."""
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items() if not (str(k) == "token" or str(k).endswith("_token"))}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def run_script(parse_argv: Callable[[list[str]], tuple], main: Callable[..., Any], argv: list[str]) -> Any:
    """A script from its command line: log at INFO, parse ``argv``, ``main(*options)``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return main(*parse_argv(argv))


def cli(run: Callable[[list[str]], Any], argv: list[str]) -> None:
    """``run(argv)``; a ``UserError`` (or an ``OSError``) prints one line and exits with code 2."""
    run_cli(argv, run)
