"""The RLT text protocol: system prompts, tags, teacher prompts, parsing and training rows.

Pure text (no torch). Every string here follows ``RLT_SPEC.md`` byte for byte: users bring
teachers trained on exactly this format.

Span convention (RLT_SPEC section 8): the explanation and the solution are stripped of
surrounding whitespace and every context pads them the same way, ``\\n\\n{text}\\n\\n``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

BEGIN_SOLUTION = "<|begin_of_solution|>"
END_SOLUTION = "<|end_of_solution|>"
BEGIN_EXPLANATION = "<|begin_of_explanation|>"
END_EXPLANATION = "<|end_of_explanation|>"
BEGIN_THOUGHT = "<|begin_of_thought|>"
END_THOUGHT = "<|end_of_thought|>"


@lru_cache(maxsize=1)
def _prompts() -> dict[str, str]:
    text = resources.files("rlt_data").joinpath("resources/rlt_system_prompts.json").read_text("utf-8")
    return json.loads(text)


def teacher_system_prompt() -> str:
    """The RLT teacher system prompt (1,284 characters, byte-exact with the reference)."""
    return _prompts()["teacher_system_prompt"]


def student_system_prompt() -> str:
    """The Bespoke-Stratos / Sky-T1 student system prompt (1,312 characters)."""
    return _prompts()["student_system_prompt"]


def pad(text: str) -> str:
    """The span padding every context uses: ``\\n\\n{stripped text}\\n\\n``."""
    return f"\n\n{text.strip()}\n\n"


def solution_block(solution: str) -> str:
    return f"{BEGIN_SOLUTION}{pad(solution)}{END_SOLUTION}"


def teacher_prefill(solution: str) -> str:
    """The pre-filled, open assistant turn of the teacher prompt (RLT_SPEC section 2)."""
    return f"{solution_block(solution)}\n\n{BEGIN_EXPLANATION}\n\n"


def student_assistant_turn(explanation: str, solution: str) -> str:
    """The training row's assistant turn: Bespoke-Stratos format with the explanation as thought."""
    return f"{BEGIN_THOUGHT}{pad(explanation)}{END_THOUGHT}\n\n{solution_block(solution)}"


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False)


def _locate(rendered: str, content: str) -> int:
    """Character offset of an assistant message's content inside a rendered chat."""
    at = rendered.rfind(content)
    if at < 0:
        raise ValueError(
            "the chat template changed the assistant message while rendering it; "
            "rlt-data needs a template that writes message contents verbatim"
        )
    return at


def render_teacher_prompt(tokenizer: Any, question: str, solution: str) -> str:
    """The exact text the teacher is given: its chat template, cut right after the prefill.

    The assistant turn is left open (no end-of-turn token), so the teacher continues the
    explanation. For a ChatML template this is byte-exact with RLT_SPEC section 2.
    """
    prefill = teacher_prefill(solution)
    messages = [
        {"role": "system", "content": teacher_system_prompt()},
        {"role": "user", "content": question},
        {"role": "assistant", "content": prefill},
    ]
    rendered = _render(tokenizer, messages)
    # Templates may strip message contents: locate the prefill without its trailing padding,
    # cut there and put the exact prefill back.
    at = _locate(rendered, prefill.rstrip())
    return rendered[:at] + prefill


@dataclass(frozen=True)
class Completion:
    """What a teacher completion means for the protocol."""

    explanation: str  # stripped text between the explanation tags (or all text if unclosed)
    has_end_tag: bool  # the teacher wrote <|end_of_explanation|>


def parse_completion(text: str) -> Completion:
    """Extract the explanation from the text generated after the teacher prompt."""
    end = text.find(END_EXPLANATION)
    if end < 0:
        return Completion(explanation=text.strip(), has_end_tag=False)
    return Completion(explanation=text[:end].strip(), has_end_tag=True)


def extract_tagged(text: str, begin: str, end: str) -> str | None:
    """The text between the first ``begin`` tag and the following ``end`` tag, stripped."""
    start = text.find(begin)
    if start < 0:
        return None
    start += len(begin)
    stop = text.find(end, start)
    if stop < 0:
        return None
    return text[start:stop].strip()


def training_messages(question: str, explanation: str, solution: str) -> list[dict[str, str]]:
    """The distillation row as chat messages (student system prompt first), for TRL."""
    return [
        {"role": "system", "content": student_system_prompt()},
        {"role": "user", "content": question},
        {"role": "assistant", "content": student_assistant_turn(explanation, solution)},
    ]


def training_conversations(question: str, explanation: str, solution: str) -> list[dict[str, str]]:
    """The distillation row in the Bespoke-Stratos ``conversations`` schema (from/value)."""
    return [
        {"from": "user", "value": question},
        {"from": "assistant", "value": student_assistant_turn(explanation, solution)},
    ]


@dataclass(frozen=True)
class ScoringContext:
    """A whole rendered context and the character spans that are scored in it."""

    text: str
    think: tuple[int, int]  # the padded explanation: "\n\n{explanation}\n\n"
    solution: tuple[int, int] | None  # the padded solution (student context only)


def teacher_scoring_context(tokenizer: Any, question: str, explanation: str, solution: str) -> ScoringContext:
    """Teacher context for the KL term (RLT_SPEC section 8): the teacher saw the solution."""
    head = f"{solution_block(solution)}\n\n{BEGIN_EXPLANATION}"
    content = f"{head}{pad(explanation)}{END_EXPLANATION}"
    rendered = _render(
        tokenizer,
        [
            {"role": "system", "content": teacher_system_prompt()},
            {"role": "user", "content": question},
            {"role": "assistant", "content": content},
        ],
    )
    start = _locate(rendered, content) + len(head)
    return ScoringContext(rendered, (start, start + len(pad(explanation))), None)


def student_scoring_context(tokenizer: Any, question: str, explanation: str, solution: str) -> ScoringContext:
    """Student context (RLT_SPEC sections 3 and 8): exactly the distillation training row."""
    messages = training_messages(question, explanation, solution)
    content = messages[-1]["content"]
    rendered = _render(tokenizer, messages)
    at = _locate(rendered, content)
    think_start = at + len(BEGIN_THOUGHT)
    think_end = think_start + len(pad(explanation))
    sol_start = think_end + len(f"{END_THOUGHT}\n\n{BEGIN_SOLUTION}")
    return ScoringContext(rendered, (think_start, think_end), (sol_start, sol_start + len(pad(solution))))
