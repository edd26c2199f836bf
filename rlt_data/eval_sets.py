"""The benchmark sets ``rlt-data evaluate`` knows: where they live, their columns, their prompts.

Sets and prompts follow SkyThought's evaluation tasks (``skythought/evals/tasks``), which
Bespoke-Stratos and the RLT paper's table (RLT_SPEC section 7) were measured with:

- ``aime24``: ``HuggingFaceH4/aime_2024`` (the 30 AIME 2024 problems; SkyThought filters the same
  30 out of ``AI-MO/aimo-validation-aime``), columns ``problem``/``answer``.
- ``math500``: ``HuggingFaceH4/MATH-500`` split ``test`` (the 500 problems of "Let's Verify Step by
  Step"; SkyThought uses the copy ``qq8933/MATH500``), columns ``problem``/``answer``.
- ``gpqa_diamond``: ``Idavidrein/gpqa`` config ``gpqa_diamond`` (gated: accept its terms on the Hub
  and log in), 198 questions with ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``; the
  four choices are shuffled (deterministically per question here; SkyThought uses an unseeded
  shuffle) and lettered A-D.
- ``aime25``: ``yentinglin/aime_2025`` (the 30 AIME 2025 problems, the copy lighteval and open-r1
  use), columns ``problem``/``answer``, asked with the math prompt.
- ``toy``: 64 held-out addition questions of the toy world (``resources/toy/benchmark.jsonl``),
  offline, asked exactly like MATH500.

Two prompt sets (``PROMPTS``), chosen by ``evaluate --preset``:

- ``skythought`` (SkyThought's task YAMLs ``aime24.yaml``/``math500.yaml``/``gpqa_diamond.yaml``):
  math ``Return your final response within \\boxed{}. {problem}``; GPQA ``Return your final response
  within \\boxed{} and only include the letter choice (A, B, C, or D) as your final response.
  {question}\\n{A) ..., B) ..., C) ..., D) ...}``.
- ``lighteval`` (lighteval's ``default_prompts.py``: ``aime_prompt_fn``/``math_500`` and
  ``gpqa_instruct``, from simple-evals): math ``Solve the following math problem efficiently and
  clearly. ... 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' ...``; GPQA
  ``Answer the following multiple choice question. The last line of your response should be of the
  following format: 'Answer: $LETTER' ...`` with the choices on their own lines.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import UserError

MATH_TEMPLATE = "Return your final response within \\boxed{{}}. {problem}"
CHOICE_TEMPLATE = (
    "Return your final response within \\boxed{{}} and only include the letter choice (A, B, C, or D) as your "
    "final response. {problem}"
)
# lighteval's (default_prompts.py, aime_prompt_fn and math_500; the two spaces after "clearly." are theirs)
LIGHTEVAL_MATH_TEMPLATE = (
    "Solve the following math problem efficiently and clearly.  The last line of your response should be of the "
    "following format: 'Therefore, the final answer is: $\\boxed{{ANSWER}}$. I hope it is correct' (without quotes) "
    "where ANSWER is just the final number or expression that solves the problem. Think step by step before "
    "answering.\n\n{problem}"
)
# lighteval's gpqa_instruct (from simple-evals): instruction, question, then one choice per line
LIGHTEVAL_CHOICE_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before "
    "answering.\n\n{problem}"
)
PROMPTS = {
    "skythought": {"math": MATH_TEMPLATE, "choice": CHOICE_TEMPLATE, "choice_join": ", ", "question_sep": "\n"},
    "lighteval": {"math": LIGHTEVAL_MATH_TEMPLATE, "choice": LIGHTEVAL_CHOICE_TEMPLATE, "choice_join": "\n",
                  "question_sep": "\n\n"},
}
LETTERS = ("A", "B", "C", "D")
GPQA_CHOICE_COLUMNS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str  # the dataset name in model cards
    dataset: str  # Hub id or local file/folder
    split: str
    kind: str  # "math" (boxed expression) or "choice" (boxed letter)
    subset: str | None = None
    question_column: str = "problem"
    answer_column: str = "answer"  # math sets only

    def required_columns(self) -> tuple[str, ...]:
        if self.kind == "choice":
            return (self.question_column, *GPQA_CHOICE_COLUMNS)
        return (self.question_column, self.answer_column)


def toy_benchmark_path() -> str:
    return str(resources.files("rlt_data").joinpath("resources/toy/benchmark.jsonl"))


BENCHMARKS: dict[str, Benchmark] = {
    "aime24": Benchmark("aime24", "AIME 2024", "HuggingFaceH4/aime_2024", "train", "math"),
    "math500": Benchmark("math500", "MATH-500", "HuggingFaceH4/MATH-500", "test", "math"),
    "gpqa_diamond": Benchmark(
        "gpqa_diamond", "GPQA Diamond", "Idavidrein/gpqa", "train", "choice", subset="gpqa_diamond", question_column="Question"
    ),
    "aime25": Benchmark("aime25", "AIME 2025", "yentinglin/aime_2025", "train", "math"),
    "toy": Benchmark("toy", "Toy addition (held out)", toy_benchmark_path(), "train", "math"),
}
DEFAULT_BENCHMARKS = ("aime24", "math500", "gpqa_diamond")


@dataclass(frozen=True)
class Item:
    """One benchmark question, ready to prompt and to check."""

    id: str
    prompt: str  # the user turn
    answer: str  # the reference: a LaTeX expression, or a letter for choice sets
    question: str = ""  # the problem as the set gives it (no template, no choices): the contamination check's text


def resolve(names: list[str], data_overrides: dict[str, str]) -> list[Benchmark]:
    """Registry entries for ``names``, with ``--data NAME=SOURCE`` replacing a set's location."""
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise UserError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    extra = [n for n in data_overrides if n not in names]
    if extra:
        raise UserError(f"--data {extra[0]}=...: {extra[0]!r} is not among the benchmarks evaluated ({', '.join(names)})")
    out = []
    for name in names:
        bench = BENCHMARKS[name]
        if name in data_overrides:
            source = data_overrides[name]
            local = Path(source).expanduser().exists()
            bench = Benchmark(**{**bench.__dict__, "dataset": source, "subset": None if local else bench.subset,
                                 "split": "train" if local else bench.split})
        out.append(bench)
    return out


def _shuffled_choices(question: str, record: dict) -> tuple[list[str], str]:
    """The four choices in a fixed per-question order (seeded by the question text), and the right letter."""
    choices = [str(record[c]).strip() for c in GPQA_CHOICE_COLUMNS]
    seed = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "little")
    order = list(range(4))
    random.Random(seed).shuffle(order)
    return [choices[i] for i in order], LETTERS[order.index(0)]


def load_items(bench: Benchmark, limit: int | None = None, prompts: str = "skythought") -> list[Item]:
    """The questions of ``bench``, asked with the prompt set ``prompts`` (``PROMPTS``)."""
    from .sources import read_records

    if prompts not in PROMPTS:
        raise UserError(f"unknown prompt set {prompts!r}; choose from {', '.join(PROMPTS)}")
    templates = PROMPTS[prompts]
    try:
        records = read_records(bench.dataset, split=bench.split, subset=bench.subset)
    except UserError as exc:
        hint = " (gated: accept its terms on the Hub, then `hf auth login` or set HF_TOKEN)" if bench.dataset == "Idavidrein/gpqa" else ""
        raise UserError(f"benchmark {bench.name}: {exc}{hint}")
    if not records:
        raise UserError(f"benchmark {bench.name}: {bench.dataset} has no rows")
    columns = set(records[0])
    missing = [c for c in bench.required_columns() if c not in columns]
    if missing:
        raise UserError(
            f"benchmark {bench.name}: {bench.dataset} has no column {missing[0]!r} "
            f"(expected {', '.join(bench.required_columns())}; found {', '.join(sorted(columns))})"
        )
    items = []
    for k, record in enumerate(records[:limit] if limit else records):
        question = str(record[bench.question_column]).strip()
        if bench.kind == "choice":
            choices, answer = _shuffled_choices(question, record)
            listed = templates["choice_join"].join(f"{letter}) {text}" for letter, text in zip(LETTERS, choices))
            prompt = templates["choice"].format(problem=f"{question}{templates['question_sep']}{listed}")
        else:
            answer = str(record[bench.answer_column]).strip()
            prompt = templates["math"].format(problem=question)
        item_id = str(record.get("id") or record.get("unique_id") or record.get("Record ID") or k)
        items.append(Item(id=item_id, prompt=prompt, answer=answer, question=question))
    return items
