"""`rlt-data evaluate` presets, extraction modes, uncertainty, AIME25 and the contamination cross-check (issue #23).

Each preset's settings are asserted against a table citing where they come from; the extraction
modes against a table of tricky responses; the standard errors against a direct computation. The
end-to-end runs use the shipped toy student offline (a few questions, few tokens).
"""

from __future__ import annotations

import json
import math
import statistics

import pytest
from typer.testing import CliRunner

from helpers import write_jsonl
from rlt_data.cli import app
from rlt_data.evaluate import PRESETS, EvalConfig, check, majority_correct, metrics, pass_at_k


def invoke(*args):
    return CliRunner().invoke(app, list(map(str, args)))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


# --- presets ----------------------------------------------------------------------------------

SKY = "NovaSky-AI/SkyThought skythought/evals"
LE = "huggingface/lighteval src/lighteval/tasks/default_tasks.py (commit 458a3e96)"
OR1 = "huggingface/open-r1 README.md, 'Evaluating models' and 'Reproducing Deepseek's evaluation results'"

# setting: (skythought value, its source), (lighteval value, its source)
PRESET_TABLE = {
    "system_prompt": (("stratos", f"{SKY}/models/model_configs.yaml: Sky-T1 models get the `skythought` system prompt "
                                  "(RLT_SPEC: the Bespoke-Stratos / Sky-T1 student prompt)"),
                      ("none", f"{OR1}: `lighteval vllm ... --use-chat-template`, no --system-prompt")),
    "prompts": (("skythought", f"{SKY}/tasks/aime/aime24.yaml, math/math500.yaml, gpqa_diamond/gpqa_diamond.yaml"),
                ("lighteval", "huggingface/lighteval src/lighteval/tasks/default_prompts.py: aime_prompt_fn, math_500, "
                              "gpqa_instruct")),
    "extraction": (("skythought", f"{SKY}/util/math_parsing_util.py: extract_answer, get_multiple_choice_answer"),
                   ("lighteval", "huggingface/lighteval src/lighteval/metrics/metrics.py: math_pass_at_1_*n "
                                 "(ExprExtractionConfig + LatexExtractionConfig), gpqa_instruct_pass_at_1_*n")),
    "max_new_tokens": ((32768, f"{SKY}/cli.py: SAMPLING_PARAMS_DEFAULT max_tokens=32768"),
                       (32768, f"{OR1}: generation_parameters={{max_new_tokens:32768,...}}")),
    "temperature, top_p (1 sample)": (((0.0, 1.0), f"{SKY}/cli.py: temperature=0,top_p=1"),
                                      ((0.6, 0.95), f"{OR1}: temperature:0.6,top_p:0.95")),
    "samples aime24": ((1, f"{SKY}/cli.py: --n unset (one sample)"), (64, f"{LE}: aime24 math_pass_at_1_64n; {OR1}: 64")),
    "samples math500": ((1, f"{SKY}/cli.py"), (4, f"{LE}: math_500 math_pass_at_1_4n; {OR1}: 4")),
    "samples gpqa_diamond": ((1, f"{SKY}/cli.py"), (8, f"{LE}: gpqa:diamond gpqa_instruct_pass_at_1_8n; {OR1}: 8")),
    "samples aime25": ((1, f"{SKY}/cli.py"), (1, f"{LE}: aime25 math_pass_at_1_1n (the larger n commented out)")),
    "samples toy": ((1, "asked like MATH500"), (4, "asked like MATH500")),
}


def _setting(config: EvalConfig, name: str):
    if name == "system_prompt":
        return config.system_prompt
    if name == "prompts":
        return PRESETS[config.preset].prompts
    if name == "extraction":
        return config.extraction
    if name == "max_new_tokens":
        return config.max_new_tokens
    if name.startswith("temperature"):
        _, temperature, top_p = EvalConfig(**{**config.__dict__, "num_samples": 1}).sampling("aime24")
        return (temperature, top_p)
    return config.sampling(name.split()[1])[0]


@pytest.mark.parametrize("column, preset", [(0, "skythought"), (1, "lighteval")])
def test_preset_settings_match_their_cited_sources(column, preset):
    config = EvalConfig(model="m", preset=preset, benchmarks=["aime24", "aime25", "math500", "gpqa_diamond", "toy"]).resolved()
    for name, sources in PRESET_TABLE.items():
        expected, source = sources[column]
        assert source  # every value names where it comes from
        assert _setting(config, name) == expected, f"{preset} {name}: expected {expected!r} ({source})"


def test_preset_prompts_are_the_cited_templates(tmp_path):
    from rlt_data.eval_sets import BENCHMARKS, load_items, resolve

    math_rows = write_jsonl(tmp_path / "m.jsonl", [{"problem": "Find x.", "answer": "3"}])
    [bench] = resolve(["math500"], {"math500": str(math_rows)})
    sky, le = load_items(bench, prompts="skythought")[0], load_items(bench, prompts="lighteval")[0]
    assert sky.prompt == "Return your final response within \\boxed{}. Find x."  # SkyThought math500.yaml
    assert le.prompt == (  # lighteval default_prompts.py math_500 / aime_prompt_fn
        "Solve the following math problem efficiently and clearly.  The last line of your response should be of the "
        "following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' (without quotes) "
        "where ANSWER is just the final number or expression that solves the problem. Think step by step before "
        "answering.\n\nFind x.")
    gpqa = write_jsonl(tmp_path / "g.jsonl", [{"Question": " Which? ", "Correct Answer": " r ", "Incorrect Answer 1": "w1",
                                               "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"}])
    [bench] = resolve(["gpqa_diamond"], {"gpqa_diamond": str(gpqa)})
    item = load_items(bench, prompts="lighteval")[0]  # lighteval gpqa_instruct: instruction, question, one choice a line
    assert item.prompt.startswith("Answer the following multiple choice question. The last line of your response should "
                                  "be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of "
                                  "ABCD. Think step by step before answering.\n\nWhich?\n\nA) ")
    assert f"{item.answer}) r\n" in item.prompt or item.prompt.endswith(f"{item.answer}) r")  # choices stripped, one a line
    sky = load_items(bench, prompts="skythought")[0]
    assert sky.prompt.startswith("Return your final response within \\boxed{} and only include the letter choice")
    assert BENCHMARKS["aime25"].dataset == "yentinglin/aime_2025" and BENCHMARKS["aime25"].kind == "math"


def test_options_given_override_the_preset():
    config = EvalConfig(model="m", preset="lighteval", num_samples=2, temperature=0.3, max_new_tokens=64,
                        system_prompt="stratos", extraction="strict").resolved()
    assert config.sampling("aime24") == (2, 0.3, 0.95)
    assert (config.max_new_tokens, config.system_prompt, config.extraction) == (64, "stratos", "strict")
    assert EvalConfig(model="m", num_samples=4).resolved().sampling("math500") == (4, 0.6, 0.95)  # skythought, k > 1


# --- extraction: the tricky-response table ----------------------------------------------------

# (kind, response, reference, strict, skythought, lighteval): the verdict (correct?) under each mode
TRICKY = [
    # no box: strict refuses it; SkyThought and lighteval fall back to the last number
    ("math", "So 92 + 25 = 117.", "117", False, True, True),
    ("math", "We get 117 apples and then 3 pears.", "117", False, False, False),
    # two boxes: strict and SkyThought take the last; math-verify (lighteval) reads both as one answer {7, 117}
    ("math", "first \\boxed{7}, finally \\boxed{117}", "117", True, True, False),
    ("math", "first \\boxed{117}, finally \\boxed{7}", "117", False, False, False),
    # \boxed{\frac12} vs 0.5, both ways: equivalence is math-verify's in every mode
    ("math", "\\boxed{\\frac12}", "0.5", True, True, True),
    ("math", "\\boxed{0.5}", "\\frac{1}{2}", True, True, True),
    ("math", "The answer is 0.5", "\\frac{1}{2}", False, True, True),
    ("math", "The answer is $\\frac{1}{2}$.", "0.5", False, True, True),
    ("math", "the final answer is 117", "117", False, True, True),
    ("math", "Therefore, the final answer is: $\\boxed{117}$. I hope it is correct", "117", True, True, True),
    ("math", "no numbers here", "117", False, False, False),
    ("math", "\\boxed{}", "117", False, False, False),
    # GPQA letters
    ("choice", "\\boxed{C}", "C", True, True, True),
    ("choice", "The answer is (C)", "C", False, True, True),
    ("choice", "Answer: B", "B", False, True, True),
    ("choice", "I think it's c", "C", False, True, False),  # SkyThought upper-cases the response first
    # a letter inside the explanation: SkyThought takes the last standalone letter anywhere;
    # lighteval a letter after a space before a bare one; strict only the box
    ("choice", "\\boxed{C}. A is wrong because ...", "C", True, False, False),
    ("choice", "Option B looks tempting, but the answer is \\boxed{D}", "D", True, True, False),
    ("choice", "Answer: C\nA note: B is also discussed.", "C", False, False, False),
]


@pytest.mark.parametrize("kind, response, reference, strict, skythought, lighteval", TRICKY)
def test_tricky_responses_under_each_mode(kind, response, reference, strict, skythought, lighteval):
    for mode, expected in (("strict", strict), ("skythought", skythought), ("lighteval", lighteval)):
        verdict = check(kind, response, reference, mode)
        assert verdict.correct is expected, f"{mode}: {verdict}"


def test_what_each_mode_extracts():
    assert check("math", "So 92 + 25 = 117.", "117", "strict").reason == "no boxed answer"
    assert check("math", "So 92 + 25 = 117.", "117", "skythought").extracted == "117"
    assert check("math", "The answer is 117 apples", "117", "skythought").extracted == "117 apples"
    assert check("choice", "\\boxed{C}. A is wrong", "C", "skythought").extracted == "A"
    assert check("choice", "\\boxed{C}. A is wrong", "C", "lighteval").extracted == "A"
    assert check("choice", "The answer is (C)", "C", "lighteval").extracted == "C"
    assert check("math", "no numbers here", "1", "lighteval").reason == "no answer"


# --- uncertainty ------------------------------------------------------------------------------

# 5 questions x 4 samples: correct?, and the extracted answers (for maj@k)
VERDICTS = [
    [1, 1, 1, 1],
    [1, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 1, 1, 0],
    [1, 1, 0, 1],
]
EXTRACTED = [
    ["5", "5", "5", "5"],
    ["2", "3", "3", "4"],
    ["1", "1", None, "2"],
    ["6", "7", "7", "6"],
    ["9", "9", "8", "9"],
]


def _rows():
    return [{"correct": [bool(c) for c in v], "extracted": e} for v, e in zip(VERDICTS, EXTRACTED)]


def test_standard_errors_equal_a_direct_computation():
    found = metrics(_rows(), ks=[1, 2, 4])
    per_question = [sum(v) / 4 for v in VERDICTS]  # 1, .25, 0, .5, .75
    mean = sum(per_question) / 5
    se = math.sqrt(sum((p - mean) ** 2 for p in per_question) / 4) / math.sqrt(5)  # sample sd / sqrt(questions)
    runs = [sum(v[j] for v in VERDICTS) / 5 for j in range(4)]  # .6, .6, .4, .4
    se_runs = math.sqrt(sum((r - sum(runs) / 4) ** 2 for r in runs) / 3) / math.sqrt(4)
    assert found["pass@1"]["value"] == pytest.approx(0.5)
    assert found["pass@1"]["se"] == pytest.approx(se) and se == pytest.approx(0.1767767, rel=1e-6)
    assert found["pass@1"]["se_runs"] == pytest.approx(se_runs) and se_runs == pytest.approx(0.0577350, rel=1e-6)
    # unbiased pass@2 per question: 1 - C(n-c, 2)/C(4, 2)
    direct = [1 - math.comb(4 - sum(v), 2) / 6 if 4 - sum(v) >= 2 else 1.0 for v in VERDICTS]
    assert found["pass@2"]["value"] == pytest.approx(sum(direct) / 5)
    assert found["pass@2"]["se"] == pytest.approx(statistics.stdev(direct) / math.sqrt(5))
    assert found["pass@4"]["value"] == pytest.approx(4 / 5)  # any correct of all 4
    # maj@4: 5 (right) | 3 (wrong) | 1 (wrong) | tie 6/7, 6 seen first (wrong) | 9 (right)
    assert found["maj@4"]["value"] == pytest.approx(2 / 5)
    assert found["maj@2"]["value"] == pytest.approx(3 / 5)  # 5 (right) | tie 2/3 -> 2 (right) | 1 | tie 6/7 -> 6 | 9
    assert "maj@1" not in found and metrics(_rows(), ks=[8])["skipped_k"] == [8]


def test_one_sample_has_no_run_spread_and_pass_at_k_edges():
    found = metrics([{"correct": [c], "extracted": ["x"]} for c in (True, False, True, True)])
    assert found["pass@1"]["value"] == 0.75 and found["pass@1"]["se_runs"] is None
    assert found["pass@1"]["se"] == pytest.approx(statistics.stdev([1, 0, 1, 1]) / 2)
    assert pass_at_k(4, 0, 2) == 0.0 and pass_at_k(4, 3, 2) == 1.0 and pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert not majority_correct([None, None], [True, True], 2)


# --- contamination ----------------------------------------------------------------------------


def test_ngrams_follow_open_r1s_convention():
    from rlt_data import contamination as c

    assert c.normalize("  Find   the\tValue\nof X ") == "find the value of x"
    assert c.ngrams("one two three four five six seven eight nine") == {
        "one two three four five six seven eight", "two three four five six seven eight nine"}
    assert c.ngrams("only seven words in this short text") == set()  # fewer than 8 words: no n-gram
    index = c.build_index({("aime25", "1"): "Let x be the LARGEST   real number such that x^2 = 4.",
                           ("math500", "7"): "Compute the sum of all positive divisors of 36 please."})
    texts = ["Problem: let x be the largest real number such that x^2 = 4. Answer?", "What is 2 + 2?"]
    [hit] = c.match(texts, index)
    assert hit.row == 0 and hit.keys == {("aime25", "1")} and len(hit.ngram.split()) == 8
    assert c.overlap_counts([hit]) == {"aime25": {"problems": 1, "rows": 1}}


AIME25 = [
    {"id": "2025-I-1", "problem": "Find the sum of all integer bases b > 9 for which 17_b is a divisor of 97_b.",
     "answer": "70"},
    {"id": "2025-I-2", "problem": "On triangle ABC points A, D, E, and B lie in that order on side AB with AD = 4.",
     "answer": "588"},
    {"id": "2025-I-3", "problem": "The 9 members of a baseball team went to an ice cream parlor after their game.",
     "answer": "16"},
]


def test_aime25_from_a_local_copy_and_the_contamination_warning(toy_models, tmp_path):
    """AIME25 read with --data aime25=FILE (offline); training rows that copy one problem are counted."""
    from rlt_data.eval_sets import load_items, resolve

    local = write_jsonl(tmp_path / "aime25.jsonl", AIME25)
    [bench] = resolve(["aime25"], {"aime25": str(local)})
    items = load_items(bench)
    assert [i.id for i in items] == ["2025-I-1", "2025-I-2", "2025-I-3"] and items[0].answer == "70"
    assert items[0].prompt == "Return your final response within \\boxed{}. " + AIME25[0]["problem"]
    training = write_jsonl(tmp_path / "train.jsonl", [
        {"question": "Return your final response within \\boxed{}. " + AIME25[0]["problem"].upper(), "solution": "70"},
        {"question": "What is 2 + 2?", "solution": "4"},
        {"question": "find the sum of all integer bases b > 9 for which 17_b divides 97_b", "solution": "70"},
    ])
    out = tmp_path / "out"
    result = invoke("evaluate", toy_models["student"], "--benchmarks", "aime25", "--data", f"aime25={local}",
                    "--training-data", training, "--limit", "2", "--max-new-tokens", "4", "--backend", "transformers",
                    "--output", out)
    assert result.exit_code == 0, result.output
    assert "warning: aime25: 1 of 2 problems share a word 8-gram with 2 of 3 training rows" in result.output
    report = json.loads((out / "contamination.json").read_text())
    assert report["benchmarks"]["aime25"]["overlapping_problems"] == 1
    assert report["benchmarks"]["aime25"]["examples"][0]["problem_ids"] == ["2025-I-1"]
    assert json.loads((out / "results.json").read_text())["contamination"]["training_rows"] == 3
    assert json.loads((out / "aime25" / "result.json").read_text())["num_questions"] == 2


# --- the lighteval preset on the toy student, offline ---------------------------------------------


def test_lighteval_preset_on_the_toy_student(toy_models, tmp_path):
    """--preset lighteval --limit 8: no system prompt, lighteval's prompt, T 0.6 / top-p 0.95, 4 samples
    (toy is asked like MATH500), lighteval's extraction; pass@k and maj@k in results.md as value +- se."""
    out = tmp_path / "le"
    args = ("evaluate", toy_models["student"], "--preset", "lighteval", "--benchmarks", "toy", "--limit", "8",
            "--max-new-tokens", "24", "--batch-size", "8", "--backend", "transformers", "--output", out)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "toy" / "result.json").read_text())
    p = summary["parameters"]
    assert (p["preset"], p["prompts"], p["extraction"], p["num_samples"], p["temperature"], p["top_p"]) == (
        "lighteval", "lighteval", "lighteval", 4, 0.6, 0.95)
    assert p["system_prompt_sha256"] == "e3b0c44298fc1c14"  # sha256 of "": no system prompt
    rows = read_jsonl(out / "toy" / "generations.jsonl")
    assert len(rows) == 8 and all(len(r["responses"]) == 4 for r in rows)
    assert rows[0]["prompt"].startswith("Solve the following math problem efficiently and clearly.")
    assert {"pass@1", "pass@4", "maj@4"} <= set(summary["metrics"])
    assert summary["pass@1"] == pytest.approx(sum(sum(r["correct"]) / 4 for r in rows) / 8)
    table = (out / "results.md").read_text()
    assert "| toy | lighteval | lighteval | 8 | 4 | " in table and "+-" in table
    again = invoke(*args, "--k", "1,2")  # finished: skipped, its metrics recomputed for the new k
    assert again.exit_code == 0, again.output
    assert "already evaluated" in again.output
    assert "pass@2" in json.loads((out / "toy" / "result.json").read_text())["metrics"]


def test_anchor_rows_are_quoted():
    from rlt_data.evaluate import results_table

    result = {"benchmark": "aime24", "pass@1": 0.2, "num_questions": 30, "num_samples": 1, "truncated": 0,
              "verdicts": {}, "parameters": {"preset": "skythought", "extraction": "skythought"},
              "metrics": {"pass@1": {"value": 0.2, "se": 0.0743, "se_runs": None}}}
    table = results_table({"results": {"aime24": result}})
    assert "| aime24 | skythought | skythought | 30 | 1 | 20.0 +- 7.4 |" in table
    assert "quoted, not measured" in table
    assert "| Bespoke-Stratos-7B (quoted) | RLT paper (SkyThought's evaluator, inferred; greedy) | 20.0 | 82.0 | 37.8 |" in table
    assert "| RLT-7B (quoted) |" in table and "| Qwen2.5-7B-Instruct (quoted) |" in table
