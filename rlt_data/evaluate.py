"""``rlt-data evaluate MODEL``: pass@1 of a student on AIME24, MATH500 and GPQA-Diamond (also AIME25 and the toy set).

Two presets (``PRESETS``), each setting the system prompt, the task prompts, the sampling, the
samples per question of each benchmark and the extraction rule; any option given overrides them:

- ``skythought`` (the default; the RLT paper's Bespoke/RLT rows, measured with SkyThought's
  ``skythought evaluate``): the student's training system prompt (``stratos``, the Sky-T1 prompt
  SkyThought's ``model_configs.yaml`` gives Sky-T1/Bespoke models), SkyThought's task prompts
  (``eval_sets.PROMPTS["skythought"]``), one greedy sample per question up to 32,768 new tokens
  (SkyThought's ``temperature=0,top_p=1,max_tokens=32768``; with ``--num-samples k > 1``
  temperature 0.6, top-p 0.95, SkyThought's ``--n 8`` example), and SkyThought's extraction.
- ``lighteval`` (open-r1's ``lighteval vllm ... "lighteval|aime24|0|0" --use-chat-template``): no
  system prompt, lighteval's prompts, temperature 0.6, top-p 0.95, 32,768 new tokens, and pass@1
  estimated from 64 samples per question on AIME24, 4 on MATH500 (and the toy set, asked like it),
  8 on GPQA-Diamond, 1 on AIME25 (lighteval's task metrics ``math_pass_at_1_{64,4}n``,
  ``gpqa_instruct_pass_at_1_8n``, ``math_pass_at_1_1n``), with lighteval's extraction.

Extraction modes (``check``; equivalence is always math-verify's, so ``\\frac{1}{2}`` equals ``0.5``):

- ``strict``: the last ``\\boxed{...}``; no box is wrong; GPQA: the letter in the last box.
- ``skythought``: SkyThought's ``extract_answer`` chain, reimplemented from its documented
  behaviour: Minerva's ``final answer is $X$. I hope``, else the last ``boxed`` (balanced braces,
  or up to the next ``$``), else what follows the last "he answer is", else the last "final answer
  is", else the last number; GPQA: the last standalone A-D in the upper-cased response
  (``get_multiple_choice_answer``), wherever it is.
- ``lighteval``: math-verify's ``parse`` with lighteval's prediction targets
  (``ExprExtractionConfig()`` + ``LatexExtractionConfig()``, ``fallback_mode="first_match"``,
  ``extraction_mode="any_match"``), compared at 6 digits; GPQA: lighteval's
  ``IndicesExtractionConfig(prefix_for_extraction="NativeLetters")`` patterns, reimplemented here
  (math-verify has no such config; its ``StringExtractionConfig`` misses ``(C)`` and the fallbacks).

Uncertainty (``summarize``): pass@1 is the mean over questions of the fraction of correct samples,
with its standard error over questions (sample standard deviation / sqrt(questions)) and, with
k > 1 samples, over the sample runs (the spread of the k per-run accuracies / sqrt(k)); pass@k is
the unbiased estimator 1 - C(n-c, k)/C(n, k) and maj@k the majority vote of the first k samples'
extracted answers, for each asked k <= n, each with its standard error over questions.

Output folder: ``<bench>/generations.jsonl`` (every response and its verdict) and
``<bench>/result.json`` per benchmark, written atomically when the benchmark is finished (a rerun
skips it); ``.partial/<bench>/`` holds one file per finished chunk of a benchmark in progress (a
rerun reads them and continues; nothing already written is written again); ``results.json`` and
``results.md`` gather every finished benchmark (``results.md`` adds published rows, quoted, for
comparison); ``contamination.json`` the ``--training-data`` cross-check.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import UserError
from .eval_sets import BENCHMARKS, LETTERS, Benchmark, Item, load_items, resolve
from .options import EvalOptions
from .sharding import changed_keys
from .shards import read_json, write_text

GREEDY = dict(temperature=0.0, top_p=1.0)
SAMPLED = dict(temperature=0.6, top_p=0.95)
EXTRACTIONS = ("strict", "skythought", "lighteval")


@dataclass(frozen=True)
class Preset:
    name: str
    system_prompt: str  # "stratos" or "none"
    prompts: str  # eval_sets.PROMPTS key
    extraction: str  # EXTRACTIONS
    max_new_tokens: int
    samples: dict  # benchmark -> samples per question (absent: 1)
    greedy_single: bool  # one sample: greedy; more: SAMPLED (SkyThought); else SAMPLED always (lighteval)
    source: str


PRESETS: dict[str, Preset] = {
    "skythought": Preset(
        "skythought", system_prompt="stratos", prompts="skythought", extraction="skythought", max_new_tokens=32768,
        samples={}, greedy_single=True,
        source="NovaSky-AI/SkyThought skythought/evals: cli.py (temperature=0,top_p=1,max_tokens=32768, n=1), "
               "tasks/*.yaml (templates), models/model_configs.yaml (Sky-T1 system prompt), "
               "util/math_parsing_util.py (extract_answer, get_multiple_choice_answer)",
    ),
    "lighteval": Preset(
        "lighteval", system_prompt="none", prompts="lighteval", extraction="lighteval", max_new_tokens=32768,
        samples={"aime24": 64, "math500": 4, "gpqa_diamond": 8, "aime25": 1, "toy": 4}, greedy_single=False,
        source="huggingface/open-r1 README (lighteval vllm, temperature 0.6, top_p 0.95, max_new_tokens 32768, "
               "--use-chat-template; 64/4/8 responses per query); huggingface/lighteval tasks (aime24, aime25, "
               "math_500, gpqa:diamond), default_prompts.py, metrics.py",
    ),
}


@dataclass
class EvalConfig(EvalOptions):
    """The options of ``rlt-data evaluate`` (``options.EvalOptions``, the flags' one declaration), with
    what needs the presets: the preset's values where no option was given, and the checks."""

    @property
    def preset_settings(self) -> Preset:
        return PRESETS[self.preset]

    def resolved(self) -> "EvalConfig":
        """The preset's values where no option was given; bad values and combinations are a UserError."""
        import importlib.util

        if importlib.util.find_spec("math_verify") is None:
            raise UserError("rlt-data evaluate checks answers with math-verify, which is not installed: pip install 'rlt-data[eval]'")
        if self.preset not in PRESETS:
            raise UserError(f"--preset: choose {' or '.join(PRESETS)}, not {self.preset!r}")
        preset = PRESETS[self.preset]
        extraction = self.extraction or preset.extraction
        if extraction not in EXTRACTIONS:
            raise UserError(f"--extraction: choose {', '.join(EXTRACTIONS)}, not {extraction!r}")
        if self.num_samples is not None and self.num_samples < 1:
            raise UserError("--num-samples must be at least 1")
        if self.k is not None and (not self.k or any(k < 1 for k in self.k)):
            raise UserError("--k: every k must be at least 1")
        max_new_tokens = preset.max_new_tokens if self.max_new_tokens is None else self.max_new_tokens
        if max_new_tokens < 1:
            raise UserError("--max-new-tokens must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")
        if self.batch_size < 1 or (self.chunk_size is not None and self.chunk_size < 1) or self.tensor_parallel_size < 1:
            raise UserError("--batch-size, --chunk-size and --tensor-parallel-size must be at least 1")
        if not 0 < self.gpu_memory_utilization <= 1:  # also refuses nan
            raise UserError("--gpu-memory-utilization must be in (0, 1]")
        if not self.benchmarks:
            raise UserError(f"--benchmarks: give at least one of {', '.join(BENCHMARKS)}")
        config = EvalConfig(**{**self.__dict__, "extraction": extraction, "max_new_tokens": max_new_tokens,
                               "system_prompt": self.system_prompt or preset.system_prompt})
        for name in config.benchmarks:
            config.sampling(name)  # refuses temperature 0 with several samples, nan, ...
        if self.push_to_hub:
            from .options import check_repo_id

            check_repo_id(self.push_to_hub, "--push-to-hub")
        config.output = self.output or str(Path("evals") / _model_slug(self.model))
        return config

    def sampling(self, benchmark: str) -> tuple[int, float, float]:
        """Samples per question, temperature and top-p for ``benchmark``: the options, else the preset's."""
        preset = PRESETS[self.preset]
        k = self.num_samples if self.num_samples is not None else preset.samples.get(benchmark, 1)
        base = GREEDY if (preset.greedy_single and k == 1) else SAMPLED
        temperature = base["temperature"] if self.temperature is None else self.temperature
        top_p = base["top_p"] if self.top_p is None else self.top_p
        if not 0 <= temperature < float("inf") or not 0 < top_p <= 1:  # comparisons with nan are false: refused too
            raise UserError("--temperature must be >= 0 and --top-p in (0, 1]")
        if temperature == 0 and k > 1:
            raise UserError(f"{benchmark}: {k} samples per question (--num-samples) with --temperature 0 repeat one "
                            "greedy answer; give a temperature > 0 or --num-samples 1")
        return k, temperature, top_p


def _model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/").replace("/", "__")) or "model"


def system_prompt_text(choice: str) -> str | None:
    from . import protocol

    if choice == "stratos":
        return protocol.student_system_prompt()
    if choice == "none":
        return None
    if choice.startswith("@"):
        path = Path(choice[1:]).expanduser()
        if not path.is_file():
            raise UserError(f"--system-prompt {choice}: file not found")
        return path.read_text("utf-8")
    raise UserError(f"--system-prompt: choose stratos, none or @FILE, not {choice!r}")


# ---------------------------------------------------------------------------------------------
# Checking answers


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced; None without one."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for start in reversed(starts):
        depth, k = 1, start
        while k < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            k += 1
        if depth == 0:
            return text[start : k - 1].strip()
    return None


@dataclass
class Verdict:
    correct: bool
    extracted: str | None  # the answer taken from the response, None when there is none
    reason: str  # "correct", "wrong", "no boxed answer" (strict), "no answer" (other modes), "empty box", "unparsable"


def _gold(reference: str) -> list:
    """The reference parsed by math-verify (LaTeX first, as ``$...$``; then an expression)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    gold = parse(f"${reference}$", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
    return gold or parse(reference)


def check_math(response: str, reference: str) -> Verdict:
    """strict: the last boxed answer against the reference, equivalence by math-verify."""
    from math_verify import LatexExtractionConfig, parse, verify

    boxed = last_boxed(response)
    if boxed is None:
        return Verdict(False, None, "no boxed answer")
    if not boxed:
        return Verdict(False, boxed, "empty box")
    gold = _gold(reference)
    pred = parse(f"\\boxed{{{boxed}}}", extraction_config=[LatexExtractionConfig(boxed_match_priority=0)])
    if not pred:
        if boxed.strip() == reference.strip():  # e.g. plain text answers math-verify cannot parse
            return Verdict(True, boxed, "correct")
        return Verdict(False, boxed, "unparsable")
    ok = bool(gold) and verify(gold, pred)
    return Verdict(ok, boxed, "correct" if ok else "wrong")


def _letter(boxed: str) -> str | None:
    """``C``, ``(C)``, ``\\text{C}``, ``\\textbf{(C)}``, ``C) 42`` -> ``C``."""
    plain = re.sub(r"\\(?:text|textbf|mathrm|mathbf|textit)\s*", "", boxed)
    plain = plain.replace("{", " ").replace("}", " ")
    found = re.search(r"(?<![A-Za-z])([A-Da-d])(?![A-Za-z])", plain)
    return found.group(1).upper() if found else None


def check_choice(response: str, reference: str) -> Verdict:
    """strict: the letter in the last boxed answer against the reference letter (math-verify string match)."""
    from math_verify import StringExtractionConfig, parse, verify

    boxed = last_boxed(response)
    if boxed is None:
        return Verdict(False, None, "no boxed answer")
    letter = _letter(boxed)
    if letter is None:
        return Verdict(False, boxed, "unparsable")
    config = [StringExtractionConfig(strings=LETTERS, lowercase=False)]
    ok = verify(parse(reference, extraction_config=config), parse(letter, extraction_config=config))
    return Verdict(ok, boxed, "correct" if ok else "wrong")


# --- skythought: SkyThought's extraction chain, reimplemented from what it does -------------------


def _balanced(text: str) -> str:
    """``text`` starts after an opening brace: everything up to its matching closing brace (or the end)."""
    depth = 1
    for k, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return text[:k]
    return text


def skythought_extract(response: str) -> str:
    """The answer SkyThought's ``extract_answer`` takes from a response ("" when none), in its order:

    1. Minerva's ``final answer is $X$. I hope`` -> X;
    2. else, if the text contains ``boxed``: what follows its last occurrence: the brace-balanced
       group when it opens with ``{``, else the text up to the next ``$``;
    3. else everything after the last "he answer is" ("The answer is", "the answer is");
    4. else everything after the last "final answer is";
    5. else the last number (``-?\\d*\\.?\\d+``, commas removed).

    Then line breaks (and the spaces after them) are removed, and a leading ``:`` and a trailing
    ``.`` or ``/`` dropped, and surrounding ``$`` removed. (SkyThought then normalizes the string with ``strip_answer_string`` and
    compares with its ``math_equal``; rlt-data compares with math-verify, as in every mode.)
    """
    text = response.replace("\u043a\u0438", "")
    minerva = re.search(r"final answer is \$(.*?)\$\. I hope", text, flags=re.S)
    if "final answer is $" in text and "$. I hope" in text and minerva:
        pred = minerva.group(1).strip()
    elif "boxed" in text:
        tail = text.rsplit("boxed", 1)[1]
        pred = _balanced(tail[1:]) if tail.startswith("{") else tail.split("$")[0].strip()
    elif "he answer is" in text:
        pred = text.rsplit("he answer is", 1)[1].strip()
    elif "final answer is" in text:
        pred = text.rsplit("final answer is", 1)[1].strip()
    else:
        numbers = re.findall(r"-?\d*\.?\d+", text.replace(",", ""))
        pred = numbers[-1] if numbers else ""
    pred = re.sub(r"\n\s*", "", pred)
    pred = pred[1:] if pred.startswith(":") else pred
    pred = pred[:-1] if pred.endswith(".") else pred
    pred = pred[:-1] if pred.endswith("/") else pred
    pred = pred.strip()
    return pred[1:-1].strip() if len(pred) > 1 and pred.startswith("$") and pred.endswith("$") else pred


def skythought_letter(response: str) -> str:
    """SkyThought's GPQA rule: the last standalone A, B, C or D of the upper-cased response; without
    one, the stripped response itself (which then never equals a letter)."""
    letters = re.findall(r"\b(A|B|C|D)\b", response.upper())
    pred = letters[-1] if letters else response.strip().strip(".")
    return pred.rstrip(".").rstrip("/")


def _same_math(extracted: str, reference: str) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    text = extracted.strip()
    if text.startswith("$") and text.endswith("$"):
        text = text.strip("$")
    pred = parse(f"${text}$", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
    if not pred:
        return text == reference.strip()
    gold = _gold(reference)
    return bool(gold) and verify(gold, pred)


def check_math_skythought(response: str, reference: str) -> Verdict:
    extracted = skythought_extract(response)
    if not extracted:
        return Verdict(False, None, "no answer")
    ok = _same_math(extracted, reference)
    return Verdict(ok, extracted, "correct" if ok else "wrong")


def check_choice_skythought(response: str, reference: str) -> Verdict:
    pred = skythought_letter(response)
    if pred not in LETTERS:
        return Verdict(False, None, "no answer")
    ok = pred == reference.strip()
    return Verdict(ok, pred, "correct" if ok else "wrong")


# --- lighteval: math-verify with lighteval's extraction targets ---------------------------------


def check_math_lighteval(response: str, reference: str) -> Verdict:
    """lighteval's ``math_pass_at_1_*n`` sample check: the response (stripped) parsed with the
    expression and LaTeX targets, ``first_match`` fallback, ``any_match`` extraction; 6 digits."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    pred = parse(response.strip(), extraction_config=[ExprExtractionConfig(), LatexExtractionConfig()],
                 fallback_mode="first_match", extraction_mode="any_match")
    if not pred:
        return Verdict(False, None, "no answer")
    gold = _gold(reference)
    ok = bool(gold) and verify(gold, pred, float_rounding=6)
    return Verdict(ok, str(pred[-1]), "correct" if ok else "wrong")


def _lighteval_letter_patterns() -> list[tuple[int, re.Pattern]]:
    """lighteval's ``IndicesExtractionConfig(prefix_for_extraction="NativeLetters")`` for four
    English choices, as (priority, pattern): a letter is ``C`` or ``(C)``; lower priority wins."""
    letter = r"(?P<letter>A|B|C|D|\(A\)|\(B\)|\(C\)|\(D\))"
    suffix = r"(?:\*\*)?(?:[\.]|[\,]|\s?[\:]|[ ]|$)"
    anywhere = rf"(?:^|[ ])(?:\*\*)?{letter}{suffix}"
    return [(priority, re.compile(pattern)) for priority, pattern in (
        (0, rf"(?i:final answer is)\:?\s*{letter}\.?\s?I hope"),
        (50, rf"(?i:final answer.{{0,100}}?)\s+is\:?\s*{letter}"),
        (100, rf"(?i:answer)\s?[\:].{{0,50}}?{anywhere}"),
        (150, rf"(?i:answer).{{0,50}}?{anywhere}"),
        (200, rf"^(?:\*\*)?{letter}{suffix}"),
        (210, rf"\n(?:\*\*)?{letter}{suffix}"),
        (250, anywhere),
        (300, letter),
    )]


def lighteval_letter(response: str) -> str | None:
    """The letter lighteval's GPQA metric extracts: the best-priority pattern, and among its matches
    the one ending last (ties: starting first), as math-verify's ``extract_target_from_pred`` orders them."""
    for _, group in _by_priority(_lighteval_letter_patterns()):
        matches = [m for pattern in group for m in pattern.finditer(response)]
        if matches:
            best = max(matches, key=lambda m: (m.end(), -m.start()))
            return best.group("letter").strip("()")
    return None


def _by_priority(patterns: list[tuple[int, re.Pattern]]):
    from itertools import groupby

    for priority, items in groupby(sorted(patterns, key=lambda x: x[0]), key=lambda x: x[0]):
        yield priority, [pattern for _, pattern in items]


def check_choice_lighteval(response: str, reference: str) -> Verdict:
    letter = lighteval_letter(response.strip())
    if letter is None:
        return Verdict(False, None, "no answer")
    ok = letter == reference.strip()
    return Verdict(ok, letter, "correct" if ok else "wrong")


CHECKS = {
    ("strict", "math"): check_math, ("strict", "choice"): check_choice,
    ("skythought", "math"): check_math_skythought, ("skythought", "choice"): check_choice_skythought,
    ("lighteval", "math"): check_math_lighteval, ("lighteval", "choice"): check_choice_lighteval,
}


def check(kind: str, response: str, reference: str, mode: str = "strict") -> Verdict:
    """The verdict on one response under extraction ``mode`` (strict, skythought, lighteval)."""
    if mode not in EXTRACTIONS:
        raise UserError(f"--extraction: choose {', '.join(EXTRACTIONS)}, not {mode!r}")
    return CHECKS[(mode, "choice" if kind == "choice" else "math")](response, reference)


# ---------------------------------------------------------------------------------------------
# Uncertainty


def mean_se(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (sample standard deviation / sqrt(n); 0 for one value)."""
    mean = sum(values) / len(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, se


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one question with ``c`` correct of ``n`` samples (Chen et al. 2021)."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n = {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_correct(extracted: list[str | None], correct: list[bool], k: int) -> bool:
    """maj@k of one question: the most frequent extracted answer of the first ``k`` samples (ties:
    the one seen first; samples without an answer do not vote) is right."""
    votes: dict[str, int] = {}
    first: dict[str, int] = {}
    for j in range(k):
        answer = extracted[j]
        if answer is None or not str(answer).strip():
            continue
        key = " ".join(str(answer).split())
        votes[key] = votes.get(key, 0) + 1
        first.setdefault(key, j)
    if not votes:
        return False
    winner = max(votes, key=lambda a: (votes[a], -first[a]))
    return bool(correct[first[winner]])


def metrics(rows: list[dict], ks: list[int] | None = None) -> dict[str, Any]:
    """pass@1 (+- se over questions, and over sample runs when n > 1), pass@k and maj@k for each k <= n."""
    n = len(rows[0]["correct"])
    per_question = [sum(r["correct"]) / n for r in rows]
    value, se = mean_se(per_question)
    per_sample = [sum(r["correct"][j] for r in rows) / len(rows) for j in range(n)]
    out: dict[str, Any] = {"pass@1": {"value": value, "se": se, "se_runs": mean_se(per_sample)[1] if n > 1 else None}}
    wanted = sorted(set(ks)) if ks else sorted({1, n})
    for k in wanted:
        if k > n:
            out.setdefault("skipped_k", []).append(k)
            continue
        if k > 1:
            v, s = mean_se([pass_at_k(n, sum(r["correct"]), k) for r in rows])
            out[f"pass@{k}"] = {"value": v, "se": s}
            v, s = mean_se([float(majority_correct(r["extracted"], r["correct"], k)) for r in rows])
            out[f"maj@{k}"] = {"value": v, "se": s}
    return out


# ---------------------------------------------------------------------------------------------
# Files


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _read_jsonl(path: Path) -> list[dict]:
    # "\n" only: U+2028/U+2029/U+0085 written raw by ensure_ascii=False are text inside a response
    return [json.loads(line) for line in path.read_text("utf-8").split("\n") if line.strip()]


def parameters(config: EvalConfig, bench: Benchmark, system_prompt: str | None) -> dict[str, Any]:
    """What a benchmark's result depends on: a rerun with other values is refused (or --overwrite)."""
    k, temperature, top_p = config.sampling(bench.name)
    return {
        "model": config.model,
        "dataset": bench.dataset,
        "source": "local" if Path(bench.dataset).expanduser().exists() else "hub",
        "subset": bench.subset,
        "split": bench.split,
        "preset": config.preset,
        "prompts": PRESETS[config.preset].prompts,
        "extraction": config.extraction,
        "num_samples": k,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": config.max_new_tokens,
        "seed": config.seed,
        "limit": config.limit,
        "system_prompt_sha256": hashlib.sha256((system_prompt or "").encode()).hexdigest()[:16],
    }


# ---------------------------------------------------------------------------------------------
# Generation


def _open_generator(config: EvalConfig):
    from .backends import default_backend, load_backend

    backend = load_backend(config.backend or default_backend())  # evaluate() has resolved it already
    return backend.Generator(config.model, backend.options_from(config.engine()))


def render_prompts(tokenizer, items: list[Item], system_prompt: str | None) -> list[str]:
    prompts = []
    for item in items:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt is not None else []) + [
            {"role": "user", "content": item.prompt}
        ]
        prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return prompts


# ---------------------------------------------------------------------------------------------
# Contamination cross-check (--training-data)


def training_questions(source: str) -> list[str]:
    """The questions of a run folder (its ``data/`` shards) or of any dataset ``generate`` reads."""
    from .models import is_local
    from .sources import FILE_SUFFIXES, load_rows

    path = Path(source).expanduser()
    shards = sorted((path / "data").glob("train-*.parquet")) if path.is_dir() else []
    if shards:
        import pyarrow.parquet as pq

        return [str(q) for f in shards for q in pq.read_table(f, columns=["question"]).column("question").to_pylist()]
    if not path.exists() and (path.suffix in FILE_SUFFIXES or is_local(source)):
        raise UserError(f"--training-data {source}: not found")
    try:
        return [row["question"] for row in load_rows(source).rows]
    except UserError as exc:
        raise UserError(f"--training-data {source}: {exc}")


def contamination_report(source: str, questions: list[str], benches: list[tuple[Benchmark, list[Item]]]) -> dict[str, Any]:
    """Which benchmark problems share a word 8-gram with a training question (rlt_data.contamination)."""
    from . import contamination

    index = contamination.build_index(((bench.name, item.id), item.question) for bench, items in benches for item in items)
    matches = contamination.match(questions, index)
    counts = contamination.overlap_counts(matches)
    report: dict[str, Any] = {"training_data": source, "ngram": index.n, "training_rows": len(questions), "benchmarks": {}}
    for bench, items in benches:
        hits = [m for m in matches if any(key[0] == bench.name for key in m.keys)]
        report["benchmarks"][bench.name] = {
            "problems": len(items),
            "overlapping_problems": counts.get(bench.name, {}).get("problems", 0),
            "overlapping_rows": counts.get(bench.name, {}).get("rows", 0),
            "examples": [{"training_row": m.row, "problem_ids": sorted(key[1] for key in m.keys if key[0] == bench.name),
                          "ngram": m.ngram} for m in hits[:5]],
        }
    return report


def _echo_contamination(report: dict[str, Any], echo: Callable[[str], None]) -> None:
    found = False
    for name, entry in report["benchmarks"].items():
        if entry["overlapping_problems"]:
            found = True
            example = entry["examples"][0]
            echo(f"warning: {name}: {entry['overlapping_problems']} of {entry['problems']} problems share a word "
                 f"{report['ngram']}-gram with {entry['overlapping_rows']} of {report['training_rows']} training rows of "
                 f"{report['training_data']} (e.g. training row {example['training_row']}, problem "
                 f"{example['problem_ids'][0]}: {example['ngram']!r})")
    if not found:
        echo(f"contamination check: no word {report['ngram']}-gram of the {report['training_rows']} training rows of "
             f"{report['training_data']} is in the benchmarks' problems")


# ---------------------------------------------------------------------------------------------
# The command


def summarize(bench: Benchmark, rows: list[dict], params: dict, ks: list[int] | None = None) -> dict[str, Any]:
    k = params["num_samples"]
    found = metrics(rows, ks)
    reasons: dict[str, int] = {}
    for r in rows:
        for reason in r["reasons"]:
            reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "benchmark": bench.name,
        "title": bench.title,
        "pass@1": found["pass@1"]["value"],
        "pass@1_se": found["pass@1"]["se"],
        "metrics": found,
        "num_questions": len(rows),
        "num_samples": k,
        "num_correct": sum(sum(r["correct"]) for r in rows),
        "pass@1_per_sample": [sum(r["correct"][j] for r in rows) / len(rows) for j in range(k)],
        "verdicts": dict(sorted(reasons.items())),
        "truncated": sum(sum(r["truncated"]) for r in rows),
        "mean_response_tokens": sum(sum(r["num_tokens"]) for r in rows) / (len(rows) * k),
        "parameters": params,
    }


class _Session:
    """The model, loaded on first use and shared by every benchmark of the run."""

    def __init__(self, config: EvalConfig):
        self.config = config
        self.generator = None

    def get(self):
        if self.generator is None:
            self.generator = _open_generator(self.config)
        return self.generator

    def close(self) -> None:
        if self.generator is not None:
            self.generator.close()
            self.generator = None


def evaluate(config: EvalConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate ``config.model``; returns the gathered results (also in ``output/results.json``)."""
    from .models import check_model_path, load_tokenizer

    config = config.resolved()
    benches = resolve(config.benchmarks, config.data)
    system_prompt = system_prompt_text(config.system_prompt)
    check_model_path(config.model)
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {out} is a file, not a folder")
    questions = training_questions(config.training_data) if config.training_data else None
    if config.push_to_hub and not config.update_card:
        config.update_card = True
    if config.backend is None:
        from .backends import default_backend

        config.backend = default_backend()

    # Everything the run needs, checked before the model loads.
    # vLLM batches a whole chunk continuously; transformers one --batch-size at a time.
    chunk = config.chunk_size or (256 if config.backend == "vllm" else config.batch_size)
    plan: list[BenchmarkRun] = []
    loaded: list[tuple[Benchmark, list[Item]]] = []
    for bench in benches:
        items = load_items(bench, config.limit, PRESETS[config.preset].prompts)
        loaded.append((bench, items))
        run = BenchmarkRun(bench, items, parameters(config, bench, system_prompt), system_prompt, out, chunk, config.k)
        previous = read_json(run.result_path)
        if previous is not None:
            if previous.get("parameters") == run.params:
                _refresh_metrics(run.result_path, previous, bench, config.k)
                echo(f"{bench.name}: already evaluated in {run.result_path.parent} (pass@1 {previous['pass@1']:.4f}); skipped")
                continue
            if not config.overwrite:
                changed = changed_keys(run.params, previous.get("parameters") or {})
                raise UserError(
                    f"{run.result_path} was made with other parameters ({', '.join(changed)}); use --overwrite or another --output"
                )
        plan.append(run)

    if questions is not None:
        report = contamination_report(config.training_data, questions, loaded)
        write_text(out / "contamination.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        _echo_contamination(report, echo)

    tokenizer = load_tokenizer(config.model) if plan else None
    session = _Session(config)
    try:
        for run in plan:
            _run_benchmark(run, tokenizer, session, echo)
    finally:
        session.close()

    results = gather(out)
    write_text(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    table = results_table(results)
    write_text(out / "results.md", table + "\n")
    echo(table)
    echo(f"results: {out / 'results.json'}")
    if config.update_card:
        from .eval_card import update_card

        update_card(config, results, out, echo)
    return results


def _refresh_metrics(done: Path, previous: dict, bench: Benchmark, ks: list[int] | None) -> None:
    """A finished benchmark asked for other k: its metrics again from its generations (no generation)."""
    wanted = sorted(set(ks)) if ks else sorted({1, previous["num_samples"]})
    have = {int(name.split("@")[1]) for name in previous.get("metrics", {}) if "@" in name} | set(
        previous.get("metrics", {}).get("skipped_k", []))
    generations = done.parent / "generations.jsonl"
    if set(wanted) <= have or not generations.exists():
        return
    summary = summarize(bench, _read_jsonl(generations), previous["parameters"], ks)
    write_text(done, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    previous.update(summary)


def _chunk_file(folder: Path, start: int) -> Path:
    return folder / f"{start:08d}.jsonl"


def _write_chunk(path: Path, rows: list[dict]) -> None:
    write_text(path, _jsonl(rows))


@dataclass(frozen=True)
class BenchmarkRun:
    """One benchmark of an evaluation: its questions, the parameters its result is made with (and a
    rerun is checked against), and where it goes. ``output/<bench>/result.json`` when finished;
    ``output/.partial/<bench>/`` meanwhile: ``meta.json`` (parameters, chunk size) and one file per
    finished chunk, named by its first question."""

    bench: Benchmark
    items: list[Item]
    params: dict[str, Any]  # parameters(): model, data set, preset, sampling, seed, limit, ...
    system_prompt: str | None  # the text (None: no system turn)
    output: Path
    chunk_size: int  # questions per generate call, the unit of resume
    ks: list[int] | None = None  # pass@k / maj@k asked (None: 1 and the samples per question)

    @property
    def result_path(self) -> Path:
        return self.output / self.bench.name / "result.json"

    @property
    def partial(self) -> Path:
        return self.output / ".partial" / self.bench.name

    @property
    def starts(self) -> range:
        """The first question of each chunk."""
        return range(0, len(self.items), self.chunk_size)

    def chunk_path(self, start: int) -> Path:
        return _chunk_file(self.partial, start)

    def finished_chunks(self) -> dict[int, list[dict]]:
        """The rows of every chunk a previous run finished with these parameters and chunk size;
        the partial folder of other ones is cleared (and this run's ``meta.json`` written)."""
        meta_path = self.partial / "meta.json"
        meta = {"parameters": self.params, "chunk_size": self.chunk_size}
        if read_json(meta_path) == meta:
            return {start: _read_jsonl(self.chunk_path(start)) for start in self.starts if self.chunk_path(start).exists()}
        if self.partial.exists():
            shutil.rmtree(self.partial)  # made with other parameters or another chunk size
        write_text(meta_path, json.dumps(meta) + "\n")
        return {}


def _run_benchmark(run: BenchmarkRun, tokenizer, session: "_Session", echo: Callable[[str], None]) -> None:
    """Generate and check the chunks of ``run`` no previous run finished (each written once), then its result."""
    from tqdm import tqdm

    from .backends import SamplingConfig, derive_seed

    bench, items, params = run.bench, run.items, run.params
    k = params["num_samples"]
    chunks = run.finished_chunks()
    done = sum(len(rows) for rows in chunks.values())
    if done:
        echo(f"{bench.name}: resuming after {done} of {len(items)} questions")
    prompts = render_prompts(tokenizer, items, run.system_prompt)
    sampling = SamplingConfig(num_samples=k, temperature=params["temperature"], top_p=params["top_p"],
                              max_new_tokens=params["max_new_tokens"])
    bar = tqdm(total=len(items) * k, initial=done * k, desc=bench.name, unit="sample", file=sys.stderr, dynamic_ncols=True)
    correct = sum(sum(r["correct"]) for rows in chunks.values() for r in rows)
    try:
        for start in run.starts:
            if start in chunks:
                continue
            generator = session.get()
            batch = items[start : start + run.chunk_size]
            batch_prompts = prompts[start : start + run.chunk_size]
            seeds = [derive_seed(params["seed"], bench.name, item.id) for item in batch]
            samples = generator.generate(batch_prompts, _fit_context(generator, tokenizer, batch_prompts, sampling), seeds)
            new = []
            for item, group in zip(batch, samples):
                verdicts = [check(bench.kind, s.text, item.answer, params["extraction"]) for s in group]
                new.append({
                    "id": item.id,
                    "prompt": item.prompt,
                    "answer": item.answer,
                    "responses": [s.text for s in group],
                    "extracted": [v.extracted for v in verdicts],
                    "correct": [v.correct for v in verdicts],
                    "reasons": [v.reason for v in verdicts],
                    "truncated": [s.truncated for s in group],
                    "num_tokens": [s.num_tokens for s in group],
                })
            _write_chunk(run.chunk_path(start), new)
            chunks[start] = new
            done += len(batch)
            correct += sum(sum(r["correct"]) for r in new)
            bar.update(len(batch) * k)
            bar.set_postfix(pass1=f"{correct / (done * k):.3f}")
    finally:
        bar.close()
    rows = [row for start in run.starts for row in chunks[start]]
    summary = summarize(bench, rows, params, run.ks)
    write_text(run.output / bench.name / "generations.jsonl", _jsonl(rows))
    write_text(run.result_path, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(run.partial, ignore_errors=True)
    if run.partial.parent.exists() and not any(run.partial.parent.iterdir()):
        run.partial.parent.rmdir()
    echo(f"{bench.name}: pass@1 {summary['pass@1']:.4f} +- {summary['pass@1_se']:.4f} "
         f"({summary['num_correct']} of {len(rows) * k} samples correct)")


def _fit_context(generator, tokenizer, prompts: list[str], sampling):
    """transformers: no generation past the model's context (vLLM stops there by itself)."""
    import dataclasses

    context = getattr(getattr(getattr(generator, "model", None), "config", None), "max_position_embeddings", None)
    if not context:
        return sampling
    longest = max(len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts)
    return dataclasses.replace(sampling, max_new_tokens=max(1, min(sampling.max_new_tokens, context - longest)))


ORDER = ("aime24", "aime25", "math500", "gpqa_diamond", "toy")


def gather(out: Path) -> dict[str, Any]:
    """Every finished benchmark in the output folder (and the contamination check, when one was run)."""
    found = {}
    for path in sorted(out.glob("*/result.json")):
        result = read_json(path)
        found[result["benchmark"]] = result
    order = {name: k for k, name in enumerate(ORDER)}
    gathered: dict[str, Any] = {"results": dict(sorted(found.items(), key=lambda kv: order.get(kv[0], 99)))}
    if (out / "contamination.json").exists():
        gathered["contamination"] = json.loads((out / "contamination.json").read_text("utf-8"))
    return gathered


# Published figures for the same benchmarks, quoted (not measured by rlt-data), the evaluator named per row.
ANCHORS = (
    # model, evaluator, {benchmark: pass@1 %}, source
    ("Qwen2.5-7B-Instruct", "RLT paper (SkyThought's evaluator, inferred; greedy)",
     {"aime24": 10.0, "math500": 74.2, "gpqa_diamond": 33.3}, "arXiv 2506.08388, Table 1"),
    ("Bespoke-Stratos-7B", "RLT paper (SkyThought's evaluator, inferred; greedy)",
     {"aime24": 20.0, "math500": 82.0, "gpqa_diamond": 37.8}, "arXiv 2506.08388, Table 1"),
    ("RLT-7B", "RLT paper (SkyThought's evaluator, inferred; greedy)",
     {"aime24": 23.3, "math500": 82.8, "gpqa_diamond": 42.4}, "arXiv 2506.08388, Table 1"),
    ("DeepSeek-R1-Distill-Qwen-7B", "lighteval (open-r1; 64/4/8 samples)",
     {"aime24": 50.8, "math500": 94.5, "gpqa_diamond": 50.5}, "huggingface/open-r1 README"),
    ("DeepSeek-R1-Distill-Qwen-7B", "DeepSeek (reported)",
     {"aime24": 55.5, "math500": 92.8, "gpqa_diamond": 49.1}, "huggingface/open-r1 README, quoting DeepSeek"),
)
ANCHOR_BENCHMARKS = ("aime24", "math500", "gpqa_diamond")


def _pm(entry: dict | None) -> str:
    if not entry:
        return ""
    return f"{100 * entry['value']:.1f} +- {100 * entry['se']:.1f}"


def results_table(results: dict[str, Any]) -> str:
    lines = [
        "| benchmark | preset | extraction | questions | samples/question | pass@1 (%) | +- over runs | pass@k, maj@k (%) "
        "| no answer | truncated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    values, errors = [], []
    for r in results["results"].values():
        p = r["parameters"]
        found = r.get("metrics") or {"pass@1": {"value": r["pass@1"], "se": r.get("pass@1_se", 0.0), "se_runs": None}}
        values.append(100 * r["pass@1"])
        errors.append(100 * found["pass@1"]["se"])
        runs = found["pass@1"].get("se_runs")
        more = "; ".join(f"{name} {_pm(found[name])}" for name in found if name not in ("pass@1", "skipped_k"))
        no_answer = r["verdicts"].get("no boxed answer", 0) + r["verdicts"].get("no answer", 0)
        lines.append(
            f"| {r['benchmark']} | {p.get('preset', 'skythought')} | {p.get('extraction', 'strict')} | {r['num_questions']} "
            f"| {r['num_samples']} | {_pm(found['pass@1'])} | {'' if runs is None else f'{100 * runs:.1f}'} | {more} "
            f"| {no_answer} | {r['truncated']} |"
        )
    if len(values) > 1:
        mean_se_ = math.sqrt(sum(e * e for e in errors)) / len(errors)
        lines.append(f"| mean | | | | | {sum(values) / len(values):.2f} +- {mean_se_:.2f} | | | | |")
    if any(name in ANCHOR_BENCHMARKS for name in results["results"]):
        lines += ["", "Published figures for comparison: quoted, not measured here (pass@1, %).", "",
                  "| model | evaluator | " + " | ".join(ANCHOR_BENCHMARKS) + " | source |",
                  "|---|---|" + "---|" * len(ANCHOR_BENCHMARKS) + "---|"]
        for model, evaluator, figures, source in ANCHORS:
            cells = " | ".join(f"{figures[b]:.1f}" if b in figures else "-" for b in ANCHOR_BENCHMARKS)
            lines.append(f"| {model} (quoted) | {evaluator} | {cells} | {source} |")
    return "\n".join(lines)
