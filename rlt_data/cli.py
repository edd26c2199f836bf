"""The ``rlt-data`` command line: typer commands over the commands of ``config`` and ``pipeline``.

Each option of ``generate``, ``score``, ``select``, ``merge``, ``push-to-hub`` and ``decontaminate``
is built from a dataclass field (its default and help text live in ``options.py``, its help panel
is its section); the command collects the flags, merges them with ``--config`` YAML, and calls the
library. ``evaluate``'s flags come from ``options.EvalOptions`` the same way, declared as typer
declares them by hand (``plain``: each flag carries its default). Input errors print one line and
exit with code 2.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
from importlib import import_module
from typing import Any, Callable, Optional

import typer
from typer.core import TyperGroup

from .config import DecontaminateOptions, GenerateConfig, MergeOptions, ScoreConfig, SelectOptions, build
from .options import EvalOptions, PushOptions, label, option_fields
from .errors import Stopped, UserError, os_error


class OneLineErrors(TyperGroup):
    """Usage errors of a command (a number that is not one, an unknown option, a missing argument)
    print one ``Error:`` line too, instead of click's usage box."""

    def invoke(self, ctx: Any) -> Any:
        try:
            from typer._click.exceptions import NoArgsIsHelpError, UsageError
        except ImportError:  # typer < 0.25 runs on click
            from click.exceptions import NoArgsIsHelpError, UsageError

        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            where = (exc.ctx or ctx).command_path
            fail(f"{' '.join(exc.format_message().split())} (see `{where} --help`)")


app = typer.Typer(
    name="rlt-data",
    cls=OneLineErrors,
    help="Distillation data from Reinforcement Learning Teachers: generate, score, select, push.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=2)


def user_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(str(exc))
        except Stopped as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(code=Stopped.exit_code)
        except OSError as exc:  # an unwritable folder, a full disk: the file and the system's reason, not a traceback
            fail(os_error(exc))
        except KeyboardInterrupt:
            typer.echo("Interrupted; rerun the same command to resume.", err=True)
            raise typer.Exit(code=130)

    return wrapper


_TYPES = {"bool": bool, "int": int, "int | None": int, "float": float, "float | None": float}


def _field_option(section: type, f: dataclasses.Field, plain: bool = False) -> inspect.Parameter:
    """A flag for an options field: its help and default from the field, its --help panel from its section.
    ``plain``: as typer declares a flag by hand: its default is the field's (shown by typer), no panel,
    a bool is one flag (``--overwrite``), a ``list[str]`` field a repeatable one."""
    kind = _TYPES.get(str(f.type), list[str] if str(f.type).startswith("list[str]") else str)
    annotation = Optional[kind]
    flag = "--" + f.name.replace("_", "-")
    if plain:
        option = typer.Option(f.default, flag, help=f.metadata["help"])
        return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
    decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
    default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
    shown = "" if default in (None, "") else f" (default: {default})"
    option = typer.Option(None, *decls, help=f"{f.metadata['help']}{shown}", rich_help_panel=label(section, f.name), show_default=False)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def options_command(name: str, help: str, cls: type, run: Callable[..., None],
                    arguments: tuple[tuple[str, Any, str], ...] = (), config_file: bool = False, plain: bool = False) -> None:
    """Register ``name``: positional ``arguments`` ((name, type, help)), then one flag per field of
    ``cls`` (a field named like an argument is the argument). ``run(*arguments, **flags)`` gets the
    flags given (None: not given), and ``config`` (a YAML file) with ``config_file``. ``plain``: the
    flags carry their defaults (``run`` gets every value), in the fields' order (``_field_option``)."""
    taken = {a for a, _, _ in arguments}

    def command(**kwargs: Any) -> None:
        positional = [kwargs.pop(a) for a, _, _ in arguments]
        run(*positional, **kwargs)

    params = [inspect.Parameter(a, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=typer.Argument(..., help=text))
              for a, kind, text in arguments]
    if config_file:
        params.append(inspect.Parameter(
            "config", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
            default=typer.Option(None, "--config", help="YAML file with any of these options (flags override it)."),
        ))
    fields = [(section, f) for section, f in option_fields(cls) if f.name not in taken]
    if not plain:
        fields.sort(key=lambda sf: (label(sf[0], sf[1].name), sf[1].name))
    params += [_field_option(section, f, plain) for section, f in fields]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = help
    app.command(name, help=help)(user_errors(command))


def dataclass_command(cls: type, run: Callable[[Any], None], name: str, help: str) -> None:
    """Register ``name`` with one option per field of ``cls`` plus ``--config``; ``run`` gets the built options."""
    options_command(name, help, cls, lambda config, **flags: run(build(cls, config, flags)), config_file=True)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def print_summary(summary: Any, output: str) -> None:
    """``summary``: the merge's ``state.RunSummary``."""
    from .report import summary_table

    typer.echo(summary_table(summary, output))


def _generate(config: GenerateConfig) -> None:
    from . import pipeline

    if config.start.dry_run:
        pipeline.dry_run(config, typer.echo)
        return
    _setup_logging()
    summary = pipeline.generate(config)
    if summary is not None:  # None: one shard (--shard-index) or a Slurm job written
        print_summary(summary, config.folder)
        _after_run(config)


def _after_run(config: GenerateConfig) -> None:
    """``generate --push-to-hub REPO``: publish the finished run."""
    if config.publish.push_to_hub:
        from .hub import push

        push(config.folder, PushOptions(repo_id=config.publish.push_to_hub, private=config.publish.private), echo=typer.echo)


def _score(config: ScoreConfig) -> None:
    from . import pipeline

    _setup_logging()
    summary = pipeline.score(config)
    if summary is not None:
        print_summary(summary, config.folder)


dataclass_command(
    GenerateConfig, _generate, "generate",
    "Sample explanations with an RLT teacher, score them with a student, keep the best, write Parquet shards.",
)
dataclass_command(
    ScoreConfig, _score, "score",
    "Score existing explanations (question/solution/explanation rows, or Bespoke-Stratos rows) and select.",
)


def _select(output: str, **flags: Any) -> None:
    from .merge import reselect

    print_summary(reselect(output, flags), output)


options_command(
    "select", "Re-apply selection options to an existing run's candidates (rewrites data/, sharegpt/, candidates/, plots/ "
    "and the card); nothing is recomputed. Selection options not given take their defaults, as in generate; "
    "--max-shard-size, when not given, is the run's.", SelectOptions, _select,
    arguments=(("output", str, "A run folder written by generate or score."),),
)


def _decontaminate(dataset: str, **flags: Any) -> None:
    import json

    from .decontaminate import standalone

    _setup_logging()
    config = build(DecontaminateOptions, None, {**flags, "dataset": dataset})
    report = standalone(dataset, config)
    for bench in report["params"]["benchmarks"]:
        typer.echo(f"{bench}: {report['flagged'][bench]} of {report['rows_checked']} rows flagged, {report['removed'][bench]} removed")
        for e in report["examples"].get(bench, []):
            typer.echo(f"  row {e['row_index']} ({e['field']}) ~ problem {e['problem_id']}: {e['match']}")
    out = config.report.output
    if out:
        typer.echo(f"wrote {report['rows_written']} rows to {out}/train.parquet and the report to {out}/report.json")
    else:
        typer.echo(json.dumps({k: report[k] for k in ("rows_checked", "rows_flagged", "rows_removed", "flagged", "removed")}))


options_command(
    "decontaminate", "Check a data set (or a run folder's kept rows) against benchmark problems, as generate "
    "--decontaminate does before generation: prints counts and examples; with --output writes report.json (every flagged "
    "row and its matches) and train.parquet (the rows without the flagged ones, or all of them flagged with "
    "--keep-contaminated). Default benchmarks: aime24, aime25, math500, gpqa_diamond.",
    DecontaminateOptions, _decontaminate,
    arguments=(("dataset", str, "A run folder (its data/ rows), or a dataset generate reads (Hub id, local file or folder)."),),
)


def _merge(folders: list[str], **flags: Any) -> None:
    from .merge import merge_folders

    _setup_logging()
    print_summary(merge_folders(folders, flags), flags.get("output") or folders[0])


options_command(
    "merge", "Merge the shards of a run (--shard-index jobs, Slurm arrays, several folders) into one dataset: checks "
    "every done marker, the parameters and the schemas, selects, writes data/, sharegpt/, candidates/ and one card. "
    "Selection options not given: as the shards were started with.", MergeOptions, _merge,
    arguments=(("folders", list[str], "Run folder(s) holding the shards (.rlt/shards/...)."),),
)


def _push(output: str, repo_id: str, **flags: Any) -> None:
    from .hub import push
    from .merge import prepare_push

    opts = PushOptions(repo_id=repo_id, **{k: v for k, v in flags.items() if v is not None})
    opts.validate()  # a bad repo id or endpoint before --allow-partial rewrites anything
    scored = prepare_push(output, opts.allow_partial)  # --allow-partial: select over the chunks scored so far
    push(output, opts, echo=typer.echo, scored=scored)


options_command(
    "push-to-hub", "Publish a run folder as a Hugging Face dataset repository (resumable).", PushOptions, _push,
    arguments=(("output", str, "A run folder written by generate or score."), ("repo_id", str, "Dataset repo id, e.g. user/stratos-rlt.")),
)


def trl_command(name: str, module: str, help: str) -> None:
    """Register ``name``: every argument goes to ``rlt_data.<module>.cli`` (TRL's parser, its own --help)."""

    def command(ctx: typer.Context) -> None:
        import_module(f"{__package__}.{module}").cli(list(ctx.args))

    context = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
    app.command(name, help=help, context_settings=context, add_help_option=False)(command)


trl_command(
    "train", "train",
    "Train a student with TRL's SFTTrainer on a run folder or Hub repo: `rlt-data train --config RECIPE.yaml "
    "--dataset DIR_OR_REPO [TRL options]` (same as `python -m rlt_data.train`; use `accelerate launch -m rlt_data.train` "
    "for several GPUs).",
)
trl_command(
    "train-teacher", "train_teacher",
    "Train an RLT teacher with TRL: `rlt-data train-teacher sft --config RECIPE.yaml` (SFT warm-up on reasoning "
    "traces), then `rlt-data train-teacher grpo --config RECIPE.yaml` (GRPO with the RLT reward); TRL options as "
    "flags; `... train-teacher sft --help` lists them (same as `python -m rlt_data.train_teacher`; use `accelerate "
    "launch -m rlt_data.train_teacher` for several GPUs).",
)


@app.command("export", help="Write what another training stack needs to read a run (LLaMA-Factory's dataset_info.json; "
             "TRL's SDFTTrainer/DistillationTrainer rows: sdft/train.parquet).")
@user_errors
def export_command(
    output: str = typer.Argument(..., help="A run folder."),
    format: str = typer.Option("llamafactory", "--format", help="llamafactory (dataset_info.json and a YAML snippet) or sdft "
                               "(sdft/train.parquet: prompt = system + question, privileged_context = the solution)."),
    name: str = typer.Option("rlt_data", help="Dataset name in dataset_info.json (LLaMA-Factory's `dataset:`)."),
    hub_repo: Optional[str] = typer.Option(None, help="Point the entry at this Hub repo instead of the local shards."),
    with_explanation: bool = typer.Option(False, "--with-explanation", help="sdft: privileged_context is the kept assistant "
                                          "turn (explanation and solution), not the solution alone."),
) -> None:
    from .export import export, snippet_path

    path = export(output, format, name, hub_repo, with_explanation)
    if format == "sdft":
        typer.echo(f"wrote {path}: train with TRL's SDFTTrainer (columns prompt, privileged_context; "
                   "remove_unused_columns=False) or DistillationTrainer (prompt)")
        return
    typer.echo(f"wrote {path} and {snippet_path(output, name)}: train with LLaMA-Factory using `dataset_dir: {output}`, "
               f"`dataset: {name}` and the snippet's `cutoff_len`")


def _evaluate(model: str, **flags: Any) -> None:
    from .evaluate import EvalConfig, evaluate

    config = EvalConfig(model=model, **flags)  # --data, --k and --benchmarks read (one-line errors) as it is made
    _setup_logging()
    evaluate(config, echo=typer.echo)


options_command(
    "evaluate", "pass@1 (+- its standard error) of a student on AIME24, MATH500 and GPQA-Diamond (also AIME25, or the "
    "offline toy set), with SkyThought's or lighteval's settings (--preset); results as JSON and a table, optionally in "
    "the model card; an optional contamination cross-check against the training data. Resumable per chunk.",
    EvalOptions, _evaluate, arguments=(("model", str, "The student: Hub id or local folder."),), plain=True,
)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
