"""The data flow of a run: rows -> prompts -> generate -> score -> select -> shards -> card.

Each stage works chunk by chunk and writes one file per finished chunk (``shards.RunStore``);
a rerun skips what is done. Each model is loaded only while its stage has work, and freed before
the next one loads, so one GPU holds one model at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from . import __version__, protocol, scoring, selection, sources
from .backends import default_backend, derive_seed, load_backend
from .config import GenerateConfig, ScoreConfig, ScoringOptions, parse_size
from .errors import UserError
from .shards import CANDIDATES_SCHEMA, DATA_SCHEMA, SCORE_FIELDS, SHAREGPT_SCHEMA, SPLIT_FOLDERS, RunStore

log = logging.getLogger("rlt_data")

GENERATION_KEYS = (
    "teacher", "dataset", "split", "subset", "revision", "question_column", "solution_column", "limit",
    "num_samples", "temperature", "top_p", "max_new_tokens", "seed", "chunk_size",
)
SCORE_INPUT_KEYS = (
    "dataset", "split", "subset", "revision", "question_column", "solution_column", "explanation_column", "limit", "chunk_size",
)
SCORING_KEYS = ("student", "temperature_score", "lp_coefs", "kl_coefs", "format_penalty")


def _progress(total: int, desc: str, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5)


def _chunks(rows: list[dict], size: int) -> list[list[dict]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _rows_digest(rows: list[dict]) -> str:
    return hashlib.sha256("\n".join(r["id"] for r in rows).encode()).hexdigest()[:16]


def _backend_options(config: ScoringOptions):
    name = config.backend or default_backend()
    module = load_backend(name)
    return name, module, module.options_from(config)


# -- state: refuse a different run, rescore when only scoring changed -------------------------
def open_run(config: ScoringOptions, command: str, rows: sources.LoadedRows, generation: dict) -> RunStore:
    store = RunStore(config.output)
    scoring_params = {k: getattr(config, k) for k in SCORING_KEYS} | {
        "teacher": config.teacher, "teacher_temperature": config.reward().teacher_t,
    }
    state = store.read_state()
    if state is not None and config.overwrite:
        store.wipe()
        state = None
    if state is None and store.root.exists() and any(
        (store.root / name).exists() for name in (*SPLIT_FOLDERS.values(), "README.md")
    ):
        if not config.overwrite:
            raise UserError(f"{store.root} already holds a dataset that rlt-data did not write; pass --overwrite or pick another --output")
        store.wipe()
    if state is not None:
        if state["command"] != command or state["generation"] != generation:
            changed = sorted(k for k in set(generation) | set(state["generation"]) if generation.get(k) != state["generation"].get(k))
            raise UserError(
                f"{store.root} holds a run made with other parameters ({', '.join(changed) or 'command'}); "
                "pass --overwrite to replace it, or choose another --output"
            )
        if state["scoring"] != scoring_params:
            log.warning("scoring parameters changed: rescoring (generations are kept)")
            store.clear_stage("teacher")
            store.clear_stage("scored")
    state = {
        "format": 1,
        "command": command,
        "generation": generation,
        "scoring": scoring_params,
        "num_rows": len(rows.rows),
        "num_input_rows": rows.num_input_rows,
        "skipped_rows": dict(rows.skipped),
        "schema": rows.schema,
        "num_chunks": len(_chunks(rows.rows, config.chunk_size)),
        "complete": False,
        "selection": asdict(config.selection()),
        "max_shard_size": config.max_shard_size,
        "rlt_data_version": __version__,
    }
    store.write_state(state)
    return store


def _load_rows(config: ScoringOptions, with_explanation: bool = False) -> sources.LoadedRows:
    return sources.load_rows(
        config.dataset,
        split=config.split,
        subset=config.subset,
        revision=config.revision,
        question_column=config.question_column,
        solution_column=config.solution_column,
        limit=config.limit,
        strict=config.strict,
        with_explanation=with_explanation,
        explanation_column=getattr(config, "explanation_column", None),
    )


# -- stage 1: generation ------------------------------------------------------------------------
def dry_run(config: GenerateConfig, emit: Callable[[str], None]) -> None:
    from .models import load_tokenizer

    tokenizer = load_tokenizer(config.teacher)
    for row in _load_rows(config).rows:
        prompt = protocol.render_teacher_prompt(tokenizer, row["question"], row["solution"])
        emit(json.dumps({"id": row["id"], "teacher_prompt": prompt}, ensure_ascii=False))


def _candidates(chunk: list[dict], samples) -> list[dict]:
    out = []
    for row, row_samples in zip(chunk, samples):
        for k, sample in enumerate(row_samples):
            parsed = protocol.parse_completion(sample.text)
            out.append(
                {
                    "id": row["id"], "question": row["question"], "solution": row["solution"], "sample_index": k,
                    "completion": sample.text, "explanation": parsed.explanation, "has_end_tag": parsed.has_end_tag,
                    "truncated": sample.truncated, "num_completion_tokens": sample.num_tokens,
                }
            )
    return out


def generate_stage(store: RunStore, chunks: list[list[dict]], owned: list[int], config: GenerateConfig, backend, options) -> None:
    pending = [i for i in owned if not store.has_chunk("generated", i)]
    if not pending:
        return
    generator = backend.Generator(config.teacher, options)
    sampling = config.sampling()
    bar = _progress(sum(len(chunks[i]) for i in owned), "generate", "q")
    bar.update(sum(len(chunks[i]) for i in owned if i not in set(pending)))
    start, n_samples, n_tokens = time.perf_counter(), 0, 0
    try:
        for i in pending:
            prompts = [protocol.render_teacher_prompt(generator.tokenizer, r["question"], r["solution"]) for r in chunks[i]]
            samples = generator.generate(prompts, sampling, seed=derive_seed(config.seed, i))
            store.write_chunk("generated", i, _candidates(chunks[i], samples))
            n_samples += sum(map(len, samples))
            n_tokens += sum(s.num_tokens for group in samples for s in group)
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(samples_s=f"{n_samples / elapsed:.2f}", tok_s=f"{n_tokens / elapsed:.0f}")
            bar.update(len(chunks[i]))
    finally:
        bar.close()
        generator.close()


# -- stages 2 and 3: scoring ------------------------------------------------------------------
def _scorable(rows: list[dict]) -> list[int]:
    """Truncated samples are never training data: they are not scored."""
    return [k for k, r in enumerate(rows) if not r["truncated"]]


def teacher_stage(store: RunStore, owned: list[int], config: ScoringOptions, backend, options) -> None:
    reward = config.reward()
    pending = [i for i in owned if not store.has_chunk("teacher", i)]
    if not reward.needs_teacher or not pending:
        return
    scorer = backend.Scorer(config.teacher, options)
    try:
        for i in _progress_iter(pending, "score (teacher)"):
            rows = store.read_chunk("generated", i)
            keep = _scorable(rows)
            found = scoring.teacher_think_logprobs(scorer, [rows[k] for k in keep], reward)
            out = [{"teacher_think_ids": [], "teacher_think_lp": []} for _ in rows]
            for k, value in zip(keep, found):
                out[k] = value
            store.write_chunk("teacher", i, out)
    finally:
        scorer.close()


def student_stage(store: RunStore, owned: list[int], config: ScoringOptions, backend, options) -> None:
    reward = config.reward()
    pending = [i for i in owned if not store.has_chunk("scored", i)]
    if not pending:
        return
    scorer = backend.Scorer(config.student, options)
    try:
        if reward.needs_teacher:
            from .models import load_tokenizer

            scoring.check_tokenizers(load_tokenizer(config.teacher), scorer.tokenizer, reward)
        empty = {name: None for name, _ in SCORE_FIELDS} | {"think_mismatch": False}
        for i in _progress_iter(pending, "score (student)"):
            rows = store.read_chunk("generated", i)
            keep = _scorable(rows)
            teacher = None
            if reward.needs_teacher:
                teacher_rows = store.read_chunk("teacher", i)
                teacher = [teacher_rows[k] for k in keep]
            scores = scoring.student_scores(scorer, [rows[k] for k in keep], teacher, reward)
            out = [{**r, **empty} for r in rows]
            for k, value in zip(keep, scores):
                out[k].update(value)
            store.write_chunk("scored", i, out)
    finally:
        scorer.close()


def _progress_iter(items: list[int], desc: str):
    bar = _progress(len(items), desc, "chunk")
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()


# -- stage 4: selection, shards, card ----------------------------------------------------------
def _data_row(c: dict) -> dict:
    """A row of config ``default`` (``data/``): ``messages`` is the scored student context, system turn first."""
    return {
        "id": c["id"], "question": c["question"], "solution": c["solution"], "explanation": c["explanation"],
        "messages": protocol.training_messages(c["question"], c["explanation"], c["solution"]),
        "sample_index": c["sample_index"], "num_explanation_tokens": c["num_think_tokens"],
        **{name: c[name] for name, _ in SCORE_FIELDS},
    }


def _sharegpt_row(c: dict) -> dict:
    """The same row in config ``sharegpt`` (``sharegpt/``): Bespoke-Stratos ``system`` + ``conversations``."""
    return {
        "id": c["id"], "system": protocol.student_system_prompt(),
        "conversations": protocol.training_conversations(c["question"], c["explanation"], c["solution"]),
    }


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    q = np.quantile(np.asarray(values, dtype=np.float64), [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1])
    return {"mean": float(np.mean(values)), **dict(zip(("min", "p10", "p25", "median", "p75", "p90", "max"), map(float, q)))}


def finalize(store: RunStore, config: ScoringOptions, extra_card: dict[str, Any] | None = None, partial: bool = False) -> dict[str, Any]:
    """Select among all scored candidates and (re)write ``data/``, ``candidates/`` and the card.

    ``partial``: use the chunks scored so far; the run stays marked incomplete.
    """
    from . import card

    state = store.read_state()
    if state is None:
        raise UserError(f"{store.root} is not an rlt-data run (no .rlt/run.json)")
    done = [i for i in range(state["num_chunks"]) if store.has_chunk("scored", i)]
    if len(done) < state["num_chunks"] and not partial:
        raise UserError(f"{store.root}: {state['num_chunks'] - len(done)} of {state['num_chunks']} chunks are not scored yet; rerun the command")
    if not done:
        raise UserError(f"{store.root}: no chunk is scored yet; nothing to publish")
    sel = config.selection()
    max_bytes = parse_size(config.max_shard_size)
    schemas = {"default": DATA_SCHEMA, "sharegpt": SHAREGPT_SCHEMA, "candidates": CANDIDATES_SCHEMA}
    writers = {name: store.shard_writer(SPLIT_FOLDERS[name], schema, max_bytes) for name, schema in schemas.items()}
    # One chunk at a time: every sample of a question lives in its question's chunk, so selection
    # needs no other chunk, and peak memory is one chunk's rows, whatever the size of the run.
    statuses: Counter[str] = Counter()
    rewards_all, rewards_kept = [], []
    num_candidates = num_kept = completion_tokens = kept_tokens = 0
    try:
        for i in done:
            table = store.read_chunk_table("scored", i)
            candidates = table.to_pylist()
            chunk_statuses = selection.select(candidates, sel)
            kept = [c for c, s in zip(candidates, chunk_statuses) if s == "kept"]
            writers["candidates"].write(table.append_column("status", pa.array(chunk_statuses, pa.string())))
            writers["default"].write(pa.Table.from_pylist([_data_row(c) for c in kept], schema=DATA_SCHEMA))
            writers["sharegpt"].write(pa.Table.from_pylist([_sharegpt_row(c) for c in kept], schema=SHAREGPT_SCHEMA))
            statuses.update(chunk_statuses)
            rewards_all += [c["reward"] for c in candidates if c["reward"] is not None]
            rewards_kept += [c["reward"] for c in kept]
            num_candidates, num_kept = num_candidates + len(candidates), num_kept + len(kept)
            completion_tokens += sum(c["num_completion_tokens"] or 0 for c in candidates)
            kept_tokens += sum(c["student_context_tokens"] or 0 for c in kept)
            del table, candidates, kept
    except BaseException:  # an error or an interrupt: the published shards stay as they were
        for writer in writers.values():
            writer.abort()
        raise
    files = {name: writer.close() for name, writer in writers.items()}
    summary = {
        "num_questions": state["num_rows"],
        "num_candidates": num_candidates,
        "num_kept": num_kept,
        "status_counts": selection.count(statuses),
        "skipped_rows": state["skipped_rows"],
        "reward_all": _stats(rewards_all),
        "reward_kept": _stats(rewards_kept),
        "completion_tokens": int(completion_tokens),
        "kept_student_tokens": int(kept_tokens),
        "data_files": files["default"],
        "sharegpt_files": files["sharegpt"],
        "candidate_files": files["candidates"],
        "chunks_done": f"{len(done)}/{state['num_chunks']}",
    }
    state.update(
        selection=asdict(sel), summary=summary, complete=len(done) == state["num_chunks"],
        max_shard_size=config.max_shard_size, card_extra=extra_card or state.get("card_extra", {}),
    )
    card.write_card(store, state, schemas)
    store.write_state(state)
    return summary


# -- commands ---------------------------------------------------------------------------------
def _prepare(config: ScoringOptions, command: str) -> tuple[sources.LoadedRows, dict]:
    """The input rows, and the parameters that identify the run's generations."""
    rows = _load_rows(config, with_explanation=command == "score")
    if not rows.rows:
        raise UserError(f"no usable rows in {config.dataset} (skipped: {dict(rows.skipped)})")
    keys = GENERATION_KEYS if command == "generate" else SCORE_INPUT_KEYS
    generation = {k: getattr(config, k) for k in keys} | {"rows": _rows_digest(rows.rows)}
    return rows, generation


def run_stages(config: ScoringOptions, command: str, rank: int = 0, world: int = 1, rows: sources.LoadedRows | None = None) -> None:
    """Every stage for the chunks this replica owns (``i % world == rank``): resumable, idempotent."""
    rows = rows or _prepare(config, command)[0]
    chunks = _chunks(rows.rows, config.chunk_size)
    owned = [i for i in range(len(chunks)) if i % world == rank]
    _, backend, options = _backend_options(config)
    store = RunStore(config.output)
    if command == "generate":
        generate_stage(store, chunks, owned, config, backend, options)
    else:  # score: the given explanations stand in for generations
        for i in owned:
            if not store.has_chunk("generated", i):
                store.write_chunk("generated", i, [
                    {**r, "sample_index": 0, "completion": r["explanation"], "has_end_tag": True, "truncated": False,
                     "num_completion_tokens": None}
                    for r in chunks[i]
                ])
    teacher_stage(store, owned, config, backend, options)
    student_stage(store, owned, config, backend, options)


def _run(config: ScoringOptions, command: str) -> dict[str, Any]:
    rows, generation = _prepare(config, command)
    name = config.backend or default_backend()
    load_backend(name)  # fail early, with one line, if the backend cannot load
    store = open_run(config, command, rows, generation)
    if config.data_parallel_size > 1:
        from .replicas import run_replicas

        run_replicas(config, command)
    else:
        run_stages(config, command, rows=rows)
    return finalize(store, config, {"backend": name})


def generate(config: GenerateConfig) -> dict[str, Any]:
    return _run(config, "generate")


def score(config: ScoreConfig) -> dict[str, Any]:
    return _run(config, "score")


def _config_from_state(store: RunStore, overrides: dict[str, Any]) -> ScoringOptions:
    """The options a run was made with (selection at defaults), with ``overrides`` on top."""
    state = store.read_state()
    if state is None:
        raise UserError(f"{store.root} is not an rlt-data run (no .rlt/run.json)")
    cls = GenerateConfig if state["command"] == "generate" else ScoreConfig
    values = {**state["generation"], **state["scoring"], "output": str(store.root)}
    values = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
    if "max_shard_size" in state:
        values["max_shard_size"] = state["max_shard_size"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = cls(**values)
    config.selection()
    return config


def reselect(output: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """``rlt-data select``: re-apply selection to an existing run; nothing is recomputed.

    Selection options not given take their defaults, as in ``generate``: the result depends only
    on the run's candidates and this call's options.
    """
    store = RunStore(output)
    return finalize(store, _config_from_state(store, overrides))


def finalize_partial(output: str | Path) -> dict[str, Any]:
    """Select over the chunks scored so far (for ``push-to-hub --allow-partial``)."""
    store = RunStore(output)
    state = store.read_state() or {}
    return finalize(store, _config_from_state(store, state.get("selection", {})), partial=True)
