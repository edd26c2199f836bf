"""rlt-data's overhead over a bare vLLM engine, for generation and for scoring, in one run.

Generation: ``vllm.LLM(...)`` + one ``LLM.generate`` call on the teacher prompts of a fixed set,
against rlt-data's generate stage on the same prompts and sampling parameters (engine start,
prompt rendering, the same call, parsing, Parquet chunk writes). Scoring: ``LLM.encode`` of the
same student contexts (hidden states only), against rlt-data's scorer (tokenization with offsets,
the same call, log-probs at temperature T through the output layer, reward terms).
Both sides include their engine's start and release; each side's best of two alternated runs.

    VLLM_CPU_KVCACHE_SPACE=1 VLLM_ENABLE_V1_MULTIPROCESSING=0 python benchmarks/bench_vllm.py
    python benchmarks/bench_vllm.py --teacher T --student S --gpu     # on a GPU machine
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher")
    parser.add_argument("--student")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--gpu", action="store_true", help="bfloat16, CUDA graphs (default: CPU settings)")
    args = parser.parse_args()

    from vllm import LLM, SamplingParams
    from vllm.config import PoolerConfig

    from rlt_data import protocol, scoring
    from rlt_data.testing import toy
    from rlt_data.stages import StageWork
    from rlt_data.stages.generate import Generate
    from rlt_data.backends import derive_seed
    from rlt_data.backends import vllm_backend as vb
    from rlt_data.config import GenerateConfig, preset_values
    from rlt_data.shards import RunStore

    toy_models = preset_values("toy")
    teacher, student = args.teacher or toy_models["teacher"], args.student or toy_models["student"]
    engine = {} if args.gpu else dict(dtype="float32", max_model_len=2048, enforce_eager=True)
    rows = [{"id": r["id"], "question": r["question"], "solution": r["solution"], "row_index": k}
            for k, r in enumerate(toy.toy_rows(2000, seed=0)[1664 : 1664 + args.questions])]

    # -- generation ----------------------------------------------------------------------------
    from rlt_data.models import load_tokenizer

    tok = load_tokenizer(teacher)
    prompts = [protocol.render_teacher_prompt(tok, r["question"], r["solution"]) for r in rows]  # the fixed prompt texts
    # what the generate stage uses with --seed 0 (a seed per question): the same samples
    params = [SamplingParams(n=args.samples, temperature=0.7, top_p=1.0, top_k=0, max_tokens=args.max_new_tokens,
                             seed=derive_seed(0, r["id"]), skip_special_tokens=False) for r in rows]
    cpu_engine = {} if args.gpu else {"enable_chunked_prefill": False}  # what rlt-data sets on CPU (vllm_backend._engine)

    def bare() -> float:
        t0 = time.perf_counter()
        llm = LLM(model=teacher, enable_prefix_caching=True, **engine, **cpu_engine)
        outs = llm.generate(prompts, params, use_tqdm=False)  # text prompts: the engine tokenizes
        bare.tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
        del outs
        vb._shutdown(llm)  # both sides release the engine (rlt-data must, before the student loads)
        return time.perf_counter() - t0

    def ours() -> tuple[float, list[dict]]:
        with tempfile.TemporaryDirectory() as tmp:
            config = GenerateConfig.of(teacher=teacher, student=student, dataset="-", output=str(Path(tmp) / "run"), num_samples=args.samples,
                                    max_new_tokens=args.max_new_tokens, chunk_size=len(rows), backend="vllm",
                                    dtype=engine.get("dtype", "auto"), max_model_len=engine.get("max_model_len"),
                                    enforce_eager=engine.get("enforce_eager", False))
            store = RunStore(config.folder).shard(0, 1)
            stage, opened = Generate(), []

            def open_model():  # as the driver opens it (pipeline._Models): on first use, closed after the stage
                opened.append(vb.Generator(teacher, vb.options_from(config.engine)))
                return opened[-1]

            t0 = time.perf_counter()
            stage.run(StageWork(stage.name, store, [rows], config, {}, stage.schema, (), open_model))
            for generator in opened:
                generator.close()
            seconds = time.perf_counter() - t0
            return seconds, store.read_chunk("generated", 0, stage.schema)

    # alternate and keep each side's best of two: the first engine of a process pays one-time costs
    bare_runs, our_runs = [], []
    for _ in range(2):
        bare_runs.append(bare())
        seconds, candidates = ours()
        our_runs.append(seconds)
    bare_gen, ours_gen, gen_tokens = min(bare_runs), min(our_runs), bare.tokens

    # -- scoring (student pass, the same contexts) ----------------------------------------------
    texts = [{**c, "explanation": c["explanation"] or "x"} for c in candidates if not c["truncated"]]
    stok = load_tokenizer(student)
    contexts = [scoring.tokenize_context(stok, protocol.student_scoring_context(stok, c["question"], c["explanation"], c["solution"])) for c in texts]
    config = GenerateConfig.of(teacher=teacher, student=student, dtype=engine.get("dtype", "auto"), max_model_len=engine.get("max_model_len"),
                            enforce_eager=engine.get("enforce_eager", False))
    t0 = time.perf_counter()
    pooled = LLM(model=student, runner="pooling", pooler_config=PoolerConfig(task="token_embed", tok_pooling_type="ALL", use_activation=False), **engine)
    pooled.encode([{"prompt_token_ids": t.ids} for t in contexts], pooling_task="token_embed", use_tqdm=False)
    bare_score = time.perf_counter() - t0
    vb._shutdown(pooled)
    del pooled
    gc.collect()
    t0 = time.perf_counter()
    scorer = vb.Scorer(student, vb.options_from(config.engine))
    scoring.student_scores(scorer, texts, None, scoring.RewardConfig(kl_coefs=(0, 0)))
    ours_score = time.perf_counter() - t0
    scorer.close()

    print(f"vLLM {__import__('vllm').__version__}, {'GPU' if args.gpu else 'CPU'}; {len(rows)} questions x {args.samples} samples, "
          f"{gen_tokens:,} generated tokens; {len(texts)} contexts scored")
    print(f"generate: bare LLM.generate {bare_gen:.2f}s   rlt-data {ours_gen:.2f}s   overhead {100 * (ours_gen / bare_gen - 1):+.1f}%")
    print(f"score:    bare LLM.encode   {bare_score:.2f}s   rlt-data {ours_score:.2f}s   overhead {100 * (ours_score / bare_score - 1):+.1f}%")


if __name__ == "__main__":
    main()
