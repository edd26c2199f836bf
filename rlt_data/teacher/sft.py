"""Teacher SFT: the warm-up on reasoning traces, as a TRL script (``make_parser()``, ``main(...)``).

    rlt-data train-teacher sft --config recipes/teacher/Qwen2.5-7B-Instruct/sft/config.yaml
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml -m rlt_data.train_teacher sft --config ...
    python -m rlt_data.teacher.sft --config ...   # the same script, without the dispatcher

Rows with a reasoning trace (Bespoke-Stratos / OpenThoughts ``conversations``: the thought becomes
the explanation; flat rows: an ``explanation`` column). Prompt = the teacher prompt exactly as
``generate`` renders it (:func:`rlt_data.protocol.render_teacher_prompt`, plain text: no chat template
closes the assistant turn); completion = ``{explanation}\\n\\n<|end_of_explanation|>`` + the template's
end-of-turn token; loss on the completion only. Options: TRL's ``SFTConfig`` and ``ModelConfig`` plus
:class:`TeacherDataArguments`. A rerun resumes from the last checkpoint in ``output_dir``;
``rlt_run.json`` records the run.
"""

from __future__ import annotations

import sys
from typing import Any

from .. import protocol
from ..errors import UserError
from .common import TeacherDataArguments, load_teacher_rows, policy, run_script, trainer_errors, trl_parser
from .common import cli as script_cli
from .common import parse as parse_with
from .common import train as train_and_record


def end_of_turn(tokenizer: Any) -> str:
    """What the chat template writes after an assistant message (``<|im_end|>`` for ChatML)."""
    sentinel = "\x00RLT\x00"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q"}, {"role": "assistant", "content": sentinel}], tokenize=False
    )
    tail = rendered[rendered.rfind(sentinel) + len(sentinel):].strip() if sentinel in rendered else ""
    return tail or tokenizer.eos_token or ""


def sft_example(tokenizer: Any, row: dict, eot: str) -> dict:
    """One teacher SFT pair: the exact generation prompt, and the explanation it should write."""
    return {
        "prompt": protocol.render_teacher_prompt(tokenizer, row["question"], row["solution"]),
        "completion": f"{row['explanation'].strip()}\n\n{protocol.END_EXPLANATION}{eot}",
    }


def build_trainer(data_args: TeacherDataArguments, training_args: Any, model_args: Any):
    """TRL's ``SFTTrainer`` over the teacher rows: prompt/completion pairs, loss on the completion."""
    from datasets import Dataset
    from trl import SFTTrainer

    tokenizer, peft = policy(training_args, model_args)
    eot = end_of_turn(tokenizer)
    rows = [sft_example(tokenizer, r, eot) for r in load_teacher_rows(data_args, with_explanation=True)]
    if training_args.completion_only_loss is False:
        raise UserError("the teacher learns the explanation only: leave completion_only_loss on")
    with trainer_errors():
        return SFTTrainer(
            model=model_args.model_name_or_path, args=training_args, train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer, peft_config=peft,
        )


# -- the script ------------------------------------------------------------------------------
def make_parser(prog: str | None = None):
    """TRL's parser of this script's options (``parse_args_and_config``; ``--config`` YAML)."""
    from trl import ModelConfig, SFTConfig

    return trl_parser((TeacherDataArguments, SFTConfig, ModelConfig), prog)


def parse(argv: list[str]) -> tuple:
    """``(data_args, training_args, model_args)`` from ``argv``."""
    return parse_with(make_parser(), argv)


def main(data_args: TeacherDataArguments, training_args: Any, model_args: Any) -> Any:
    """Train; the trainer."""
    trainer = build_trainer(data_args, training_args, model_args)
    return train_and_record("sft", trainer, data_args, model_args)


def run(argv: list[str]) -> Any:
    return run_script(parse, main, argv)


def cli(argv: list[str]) -> None:
    script_cli(run, argv)


if __name__ == "__main__":
    cli(sys.argv[1:])
