import hashlib
import json

import pytest

from rlt_data import protocol
from helpers import SPEC_DIR

TEACHER_SHA = "2a6900e8cd23891f5b34a68c8b386045cd42c6c17ce0caa13f65005da0a49484"
STUDENT_SHA = "6490a490932e93a0712ec83d53b79036a10059ccdbf786e088ac9c247aa19141"


def test_system_prompts_are_byte_exact():
    teacher, student = protocol.teacher_system_prompt(), protocol.student_system_prompt()
    assert hashlib.sha256(teacher.encode()).hexdigest() == TEACHER_SHA
    assert hashlib.sha256(student.encode()).hexdigest() == STUDENT_SHA
    assert len(teacher) == 1284 and teacher.endswith(" ") and len(student) == 1312
    assert "'\\n\\n'" in teacher and "\n" not in teacher and "analisying" in student


@pytest.mark.skipif(not (SPEC_DIR / "rlt_system_prompts.json").exists(), reason="spec folder not beside the checkout")
def test_shipped_prompts_match_the_spec_file():
    spec = json.loads((SPEC_DIR / "rlt_system_prompts.json").read_text("utf-8"))
    assert spec["teacher_system_prompt"] == protocol.teacher_system_prompt()
    assert spec["student_system_prompt"] == protocol.student_system_prompt()


def test_teacher_prompt_is_byte_exact_chatml(tokenizer):
    q, s = "Return your final response within \\boxed{}. What is 2+3?", "  \\boxed{5}\n"
    expected = (
        f"<|im_start|>system\n{protocol.teacher_system_prompt()}<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n"
        "<|im_start|>assistant\n<|begin_of_solution|>\n\n\\boxed{5}\n\n<|end_of_solution|>\n\n<|begin_of_explanation|>\n\n"
    )
    assert protocol.render_teacher_prompt(tokenizer, q, s) == expected


def test_teacher_prompt_with_a_template_that_strips_contents(tokenizer):
    class Stripping:
        def apply_chat_template(self, messages, tokenize=False):
            return "".join(f"[{m['role']}]{m['content'].strip()}[/]" for m in messages)

    prompt = protocol.render_teacher_prompt(Stripping(), "Q?", "S")
    assert prompt.endswith("[assistant]<|begin_of_solution|>\n\nS\n\n<|end_of_solution|>\n\n<|begin_of_explanation|>\n\n")
    assert "[/]" not in prompt.split("[assistant]")[1]


@pytest.mark.parametrize(
    "text,explanation,closed",
    [
        ("Step one.\n\nStep two.\n\n<|end_of_explanation|>", "Step one.\n\nStep two.", True),
        ("  Step.  <|end_of_explanation|> trailing junk", "Step.", True),
        ("Cut off mid sent", "Cut off mid sent", False),
        ("<|end_of_explanation|>", "", True),
    ],
)
def test_parse_completion(text, explanation, closed):
    parsed = protocol.parse_completion(text)
    assert parsed.explanation == explanation and parsed.has_end_tag is closed


def test_training_row_format():
    turn = protocol.student_assistant_turn(" Because.\n", "\n\n42 ")
    assert turn == (
        "<|begin_of_thought|>\n\nBecause.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n42\n\n<|end_of_solution|>"
    )
    messages = protocol.training_messages("Q", "Because.", "42")
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == protocol.student_system_prompt() and messages[2]["content"] == turn
    assert protocol.training_conversations("Q", "Because.", "42") == [
        {"from": "user", "value": "Q"}, {"from": "assistant", "value": turn}
    ]


def test_scoring_context_spans(tokenizer):
    student = protocol.student_scoring_context(tokenizer, "Q é?", "Think 你好.", "Answer")
    assert student.text[slice(*student.think)] == "\n\nThink 你好.\n\n"
    assert student.text[slice(*student.solution)] == "\n\nAnswer\n\n"
    assert student.text == tokenizer.apply_chat_template(protocol.training_messages("Q é?", "Think 你好.", "Answer"), tokenize=False)
    teacher = protocol.teacher_scoring_context(tokenizer, "Q é?", "Think 你好.", "Answer")
    assert teacher.text[slice(*teacher.think)] == "\n\nThink 你好.\n\n"
    assert teacher.text[: teacher.think[0]].endswith("<|end_of_solution|>\n\n<|begin_of_explanation|>")
    assert teacher.text[teacher.think[1] :].startswith("<|end_of_explanation|>")
