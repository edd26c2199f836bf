"""``rlt-data evaluate MODEL``: pass@1 of a student on AIME24, MATH500 and GPQA-Diamond (and the toy set).

What it follows (SkyThought's ``skythought evaluate``, which Bespoke-Stratos and the RLT paper's
table used):

- The student is asked with the system prompt it was trained with (the Bespoke-Stratos / Sky-T1
  student prompt, ``--system-prompt stratos``) and SkyThought's task prompts (``eval_sets.py``),
  rendered with the model's own chat template.
- Sampling: one greedy sample per question, up to 32,768 new tokens (SkyThought's default
  ``temperature=0,top_p=1,max_tokens=32768``). With ``--num-samples k > 1``: temperature 0.6,
  top-p 0.95 (SkyThought's ``--n 8`` example, DeepSeek-R1's and open-r1's AIME convention), and
  pass@1 is the fraction of correct samples averaged over questions.
- Checking: the last ``\\boxed{...}`` of the response (SkyThought's ``extract_answer``); no box is
  wrong. Math answers are compared with ``math-verify`` (LaTeX parsed to SymPy: ``\\frac{1}{2}``
  equals ``0.5``); GPQA's boxed letter with math-verify's string extraction.

Output folder: ``<bench>/generations.jsonl`` (every response and its verdict) and
``<bench>/result.json`` per benchmark, written atomically when the benchmark is finished (a rerun
skips it); ``.partial/<bench>.jsonl`` holds the finished chunks of a benchmark in progress;
``results.json`` and ``results.md`` gather every finished benchmark.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import UserError
from .eval_sets import DEFAULT_BENCHMARKS, LETTERS, Benchmark, Item, load_items, resolve
from .shards import write_text

GREEDY = dict(temperature=0.0, top_p=1.0)
SAMPLED = dict(temperature=0.6, top_p=0.95)


@dataclass
class EvalConfig:
    model: str
    benchmarks: list[str] = field(default_factory=lambda: list(DEFAULT_BENCHMARKS))
    output: str | None = None
    num_samples: int = 1
    temperature: float | None = None
    top_p: float | None = None
    max_new_tokens: int = 32768
    seed: int = 0
    limit: int | None = None
    system_prompt: str = "stratos"
    data: dict[str, str] = field(default_factory=dict)
    chunk_size: int | None = None
    overwrite: bool = False
    update_card: bool = False
    push_to_hub: str | None = None
    token: str | None = field(default=None, repr=False)  # never printed
    # engine (the backends' options_from reads these)
    backend: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 16
    max_tokens_per_batch: int = 16384
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    enforce_eager: bool = False
    vllm_args: str | None = None

    def resolved(self) -> "EvalConfig":
        """Defaults that depend on other options; bad combinations are a UserError."""
        if self.num_samples < 1:
            raise UserError("--num-samples must be at least 1")
        if self.max_new_tokens < 1:
            raise UserError("--max-new-tokens must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")
        if self.batch_size < 1 or (self.chunk_size is not None and self.chunk_size < 1) or self.tensor_parallel_size < 1:
            raise UserError("--batch-size, --chunk-size and --tensor-parallel-size must be at least 1")
        if not 0 < self.gpu_memory_utilization <= 1:  # also refuses nan
            raise UserError("--gpu-memory-utilization must be in (0, 1]")
        base = GREEDY if self.num_samples == 1 else SAMPLED
        temperature = base["temperature"] if self.temperature is None else self.temperature
        top_p = base["top_p"] if self.top_p is None else self.top_p
        if not 0 <= temperature < float("inf") or not 0 < top_p <= 1:  # comparisons with nan are false: refused too
            raise UserError("--temperature must be >= 0 and --top-p in (0, 1]")
        if temperature == 0 and self.num_samples > 1:
            raise UserError("--num-samples > 1 with --temperature 0 repeats one greedy answer; give a temperature > 0")
        if not self.benchmarks:
            raise UserError("--benchmarks: give at least one of aime24, math500, gpqa_diamond, toy")
        if self.push_to_hub:
            from .hub import check_repo_id

            check_repo_id(self.push_to_hub, "--push-to-hub")
        output = self.output or str(Path("evals") / _model_slug(self.model))
        return EvalConfig(**{**self.__dict__, "temperature": temperature, "top_p": top_p, "output": output})


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
    extracted: str | None  # the boxed content, None when there is no box
    reason: str  # "correct", "wrong", "no boxed answer", "empty box", "unparsable"


def check_math(response: str, reference: str) -> Verdict:
    """The last boxed answer against the reference, equivalence by math-verify."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    boxed = last_boxed(response)
    if boxed is None:
        return Verdict(False, None, "no boxed answer")
    if not boxed:
        return Verdict(False, boxed, "empty box")
    gold = parse(f"${reference}$", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
    if not gold:
        gold = parse(reference)
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
    """The letter in the last boxed answer against the reference letter (math-verify string match)."""
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


def check(kind: str, response: str, reference: str) -> Verdict:
    return check_choice(response, reference) if kind == "choice" else check_math(response, reference)


# ---------------------------------------------------------------------------------------------
# Files


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def parameters(config: EvalConfig, bench: Benchmark, system_prompt: str | None) -> dict[str, Any]:
    """What a benchmark's result depends on: a rerun with other values is refused (or --overwrite)."""
    return {
        "model": config.model,
        "dataset": bench.dataset,
        "source": "local" if Path(bench.dataset).expanduser().exists() else "hub",
        "subset": bench.subset,
        "split": bench.split,
        "num_samples": config.num_samples,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_new_tokens": config.max_new_tokens,
        "seed": config.seed,
        "limit": config.limit,
        "system_prompt_sha256": hashlib.sha256((system_prompt or "").encode()).hexdigest()[:16],
    }


# ---------------------------------------------------------------------------------------------
# Generation


def _open_generator(config: EvalConfig):
    from .backends import default_backend, load_backend

    name = config.backend or default_backend()  # evaluate() has resolved it already
    backend = load_backend(name)
    return backend.Generator(config.model, backend.options_from(config)), name


def render_prompts(tokenizer, items: list[Item], system_prompt: str | None) -> list[str]:
    prompts = []
    for item in items:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt is not None else []) + [
            {"role": "user", "content": item.prompt}
        ]
        prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return prompts


# ---------------------------------------------------------------------------------------------
# The command


def summarize(bench: Benchmark, rows: list[dict], params: dict) -> dict[str, Any]:
    k = params["num_samples"]
    per_question = [sum(r["correct"]) / len(r["correct"]) for r in rows]
    per_sample = [sum(r["correct"][j] for r in rows) / len(rows) for j in range(k)]
    reasons: dict[str, int] = {}
    for r in rows:
        for reason in r["reasons"]:
            reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "benchmark": bench.name,
        "title": bench.title,
        "pass@1": sum(per_question) / len(per_question),
        "num_questions": len(rows),
        "num_samples": k,
        "num_correct": sum(sum(r["correct"]) for r in rows),
        "pass@1_per_sample": per_sample,
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
        self.backend = None

    def get(self):
        if self.generator is None:
            self.generator, self.backend = _open_generator(self.config)
        return self.generator

    def close(self) -> None:
        if self.generator is not None:
            self.generator.close()
            self.generator = None


def evaluate(config: EvalConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate ``config.model``; returns the gathered results (also in ``output/results.json``)."""
    from .backends import SamplingConfig, derive_seed
    from .models import check_model_path, load_tokenizer

    config = config.resolved()
    benches = resolve(config.benchmarks, config.data)
    system_prompt = system_prompt_text(config.system_prompt)
    check_model_path(config.model)
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {out} is a file, not a folder")
    if config.push_to_hub and not config.update_card:
        config.update_card = True
    if config.backend is None:
        from .backends import default_backend

        config.backend = default_backend()

    # Everything the run needs, checked before the model loads.
    plan: list[tuple[Benchmark, list[Item], dict]] = []
    for bench in benches:
        items = load_items(bench, config.limit)
        params = parameters(config, bench, system_prompt)
        done = out / bench.name / "result.json"
        if done.exists():
            previous = json.loads(done.read_text("utf-8"))
            if previous.get("parameters") == params:
                echo(f"{bench.name}: already evaluated in {done.parent} (pass@1 {previous['pass@1']:.4f}); skipped")
                continue
            if not config.overwrite:
                changed = [k for k in params if previous.get("parameters", {}).get(k) != params[k]]
                raise UserError(
                    f"{done} was made with other parameters ({', '.join(changed)}); use --overwrite or another --output"
                )
        plan.append((bench, items, params))

    tokenizer = load_tokenizer(config.model) if plan else None
    session = _Session(config)
    try:
        for bench, items, params in plan:
            _run_benchmark(bench, items, params, config, tokenizer, system_prompt, session, out, echo, SamplingConfig, derive_seed)
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


def _run_benchmark(bench, items, params, config, tokenizer, system_prompt, session, out, echo, SamplingConfig, derive_seed):
    from tqdm import tqdm

    k = config.num_samples
    # vLLM batches a whole chunk continuously; transformers one --batch-size at a time.
    chunk = config.chunk_size or (256 if config.backend == "vllm" else config.batch_size)
    partial = out / ".partial" / f"{bench.name}.jsonl"
    rows: list[dict] = []
    meta_path = out / ".partial" / f"{bench.name}.json"
    if partial.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text("utf-8"))
        if meta.get("parameters") == params and meta.get("chunk_size") == chunk:
            rows = _read_jsonl(partial)
            echo(f"{bench.name}: resuming after {len(rows)} of {len(items)} questions")
    if not rows:
        write_text(meta_path, json.dumps({"parameters": params, "chunk_size": chunk}) + "\n")
        write_text(partial, "")
    prompts = render_prompts(tokenizer, items, system_prompt)
    sampling = SamplingConfig(num_samples=k, temperature=config.temperature, top_p=config.top_p, max_new_tokens=config.max_new_tokens)
    bar = tqdm(total=len(items) * k, initial=len(rows) * k, desc=bench.name, unit="sample", file=sys.stderr, dynamic_ncols=True)
    try:
        for start in range(len(rows), len(items), chunk):
            generator = session.get()
            batch = items[start : start + chunk]
            batch_prompts = prompts[start : start + chunk]
            seeds = [derive_seed(config.seed, bench.name, item.id) for item in batch]
            samples = generator.generate(batch_prompts, _fit_context(generator, tokenizer, batch_prompts, sampling), seeds)
            for item, group in zip(batch, samples):
                verdicts = [check(bench.kind, s.text, item.answer) for s in group]
                rows.append({
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
            write_text(partial, _jsonl(rows))
            bar.update(len(batch) * k)
            bar.set_postfix(pass1=f"{sum(sum(r['correct']) for r in rows) / (len(rows) * k):.3f}")
    finally:
        bar.close()
    summary = summarize(bench, rows, params)
    write_text(out / bench.name / "generations.jsonl", _jsonl(rows))
    write_text(out / bench.name / "result.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    partial.unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    if not any(partial.parent.iterdir()):
        partial.parent.rmdir()
    echo(f"{bench.name}: pass@1 {summary['pass@1']:.4f} ({summary['num_correct']} of {len(rows) * k} samples correct)")


def _fit_context(generator, tokenizer, prompts: list[str], sampling):
    """transformers: no generation past the model's context (vLLM stops there by itself)."""
    import dataclasses

    context = getattr(getattr(getattr(generator, "model", None), "config", None), "max_position_embeddings", None)
    if not context:
        return sampling
    longest = max(len(tokenizer(p, add_special_tokens=False).input_ids) for p in prompts)
    return dataclasses.replace(sampling, max_new_tokens=max(1, min(sampling.max_new_tokens, context - longest)))


def gather(out: Path) -> dict[str, Any]:
    """Every finished benchmark in the output folder."""
    found = {}
    for path in sorted(out.glob("*/result.json")):
        result = json.loads(path.read_text("utf-8"))
        found[result["benchmark"]] = result
    order = {name: k for k, name in enumerate(("aime24", "math500", "gpqa_diamond", "toy"))}
    return {"results": dict(sorted(found.items(), key=lambda kv: order.get(kv[0], 99)))}


def results_table(results: dict[str, Any]) -> str:
    lines = [
        "| benchmark | questions | samples/question | pass@1 (%) | no boxed answer | truncated |",
        "|---|---|---|---|---|---|",
    ]
    values = []
    for r in results["results"].values():
        values.append(100 * r["pass@1"])
        lines.append(
            f"| {r['benchmark']} | {r['num_questions']} | {r['num_samples']} | {100 * r['pass@1']:.1f} | "
            f"{r['verdicts'].get('no boxed answer', 0)} | {r['truncated']} |"
        )
    if len(values) > 1:
        lines.append(f"| mean | | | {sum(values) / len(values):.2f} | | |")
    return "\n".join(lines)

