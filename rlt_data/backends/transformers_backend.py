"""The Hugging Face transformers backend: runs anywhere, CPU included; what the tests use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..models import eos_token_ids, load_causal_lm, load_tokenizer
from ..options import KERNEL_CHOICES, EngineOptions, default_of, logprob_budget_bytes
from . import Sample, SamplingConfig
from .attention import ATTENTION, resolve_attention
from .logprobs import gather_logprobs


@dataclass
class Options:
    """Built by ``options_from``; defaults (for code that builds one itself) are the engine section's."""

    device: str = default_of(EngineOptions, "device")
    dtype: str = default_of(EngineOptions, "dtype")
    batch_size: int = default_of(EngineOptions, "batch_size")  # prompts per generate() call
    # tokens per scoring forward pass (packed rows; a longer row goes alone)
    max_tokens_per_batch: int = default_of(EngineOptions, "max_tokens_per_batch")
    logprob_budget_bytes: int | None = None  # None: 32 MiB on CPU, free GPU memory / 32 within [32 MiB, 1 GiB] on CUDA
    # chunked (rlt-data's), fused (TRL's ChunkedLogProbFunction); auto: chunked
    logprob_kernel: str = default_of(EngineOptions, "logprob_kernel")
    attention: str = default_of(EngineOptions, "scoring_attention")  # auto, torch-varlen, flash-attn, segments, padded


class Generator:
    def __init__(self, model: str, options: Options):
        self.options = options
        self.tokenizer = load_tokenizer(model)
        self.model = load_causal_lm(model, options.device, options.dtype)
        self.eos_ids = eos_token_ids(model, self.tokenizer)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]

    def generate(self, prompts: list[str], sampling: SamplingConfig, seeds: list[int]) -> list[list[Sample]]:
        import torch
        from transformers import GenerationConfig

        # A fresh config: the checkpoint's own defaults (top_k=20, repetition_penalty=1.05 for
        # Qwen2.5-Instruct) must not leak into the reference sampling. Temperature 0: greedy.
        greedy = sampling.temperature == 0
        config = GenerationConfig(
            do_sample=not greedy,
            **({} if greedy else {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0, "min_p": None}),
            repetition_penalty=1.0,
            max_new_tokens=sampling.max_new_tokens,
            num_return_sequences=sampling.num_samples,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        # Sampling draws from one global generator for the whole batch, so a prompt's samples would
        # depend on its batch-mates: each prompt gets a call of its own (its n samples batched),
        # seeded with its seed. Greedy decoding has no randomness: --batch-size prompts per call.
        step = self.options.batch_size if greedy else 1
        results: list[list[Sample]] = []
        for start in range(0, len(prompts), step):
            if not greedy:
                torch.manual_seed(seeds[start])
            batch = [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts[start : start + step]]
            width = max(map(len, batch))
            ids = torch.tensor([[self.pad_id] * (width - len(b)) + b for b in batch])  # left padding
            mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch])
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device), generation_config=config
                )
            new = out[:, width:].tolist()
            for i in range(len(batch)):
                results.append([self._sample(new[i * sampling.num_samples + j]) for j in range(sampling.num_samples)])
        return results

    def _sample(self, tokens: list[int]) -> Sample:
        eos_at = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
        kept = tokens if eos_at is None else tokens[:eos_at]
        text = self.tokenizer.decode(kept, skip_special_tokens=False)
        return Sample(text=text, truncated=eos_at is None, num_tokens=len(kept) + (eos_at is not None))

    def close(self) -> None:
        del self.model
        _free_memory()


class Scorer:
    """Log-probs of requested positions under a causal LM, in float32.

    Rows are packed without padding: the rows of a pass are concatenated into one sequence with
    per-row position ids, and attention runs per row (variable-length attention; see
    ``ATTENTION``), so a row's log-probs do not depend on which rows share its pass. Rows are
    sorted by length and packed up to ``max_tokens_per_batch`` tokens per pass; a longer row has a
    pass of its own. The output layer runs only at the requested positions, in chunks of
    ``logprob_budget_bytes`` (``backends/logprobs.py``).

    The scorer's model is switched to rlt-data's attention function: call it without a padding
    mask (one row, or packed rows with ``cu_seq_lens_q``).
    """

    def __init__(self, model: str, options: Options):
        self._setup(load_causal_lm(model, options.device, options.dtype), load_tokenizer(model), options)

    @classmethod
    def from_model(cls, model, tokenizer=None, options: Options | None = None) -> "Scorer":
        """A scorer over a model already in memory (benchmarks: random weights built on the GPU)."""
        scorer = cls.__new__(cls)
        scorer._setup(model.eval(), tokenizer, options or Options())
        return scorer

    def _setup(self, model, tokenizer, options: Options) -> None:
        from .logprobs import default_budget_bytes, fused_available

        self.options = options
        self.tokenizer = tokenizer
        self.model = model
        self.body = getattr(self.model, self.model.base_model_prefix)
        head = self.model.get_output_embeddings()
        self.weight, self.bias = head.weight, getattr(head, "bias", None)
        self.budget_bytes = options.logprob_budget_bytes or default_budget_bytes(self.weight.device)
        kernel = options.logprob_kernel
        if kernel == "auto":
            kernel = "chunked"  # until a GPU measurement says otherwise (benchmarks/bench_gpu_scoring.py)
        if kernel not in KERNEL_CHOICES:
            raise UserError(f"unknown log-prob kernel {kernel!r}; choose {', '.join(KERNEL_CHOICES)}")
        if kernel == "fused" and not fused_available():
            raise UserError("logprob_kernel='fused' needs TRL (pip install trl)")
        if kernel == "fused" and self.bias is not None:
            raise UserError("logprob_kernel='fused' does not support an output layer with a bias; use chunked")
        self.kernel = kernel
        self.attention = resolve_attention(options.attention, self.weight.device, self.weight.dtype)
        if self.attention != "padded":
            self.model.set_attn_implementation(ATTENTION[self.attention])
        elif self.model.config._attn_implementation in ATTENTION.values():  # padding needs a mask-aware one
            self.model.set_attn_implementation("sdpa")

    def logprobs(self, requests: list[tuple[list[int], np.ndarray]], temperature: float, ranks: bool = False) -> list[np.ndarray]:
        """Log-probs at the requested positions (``positions >= 1``), one float32 array per request;
        ``ranks=True``: one ``[3, n]`` array per request (``backends.Scorer``)."""
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i][0]))
        results: list[np.ndarray | None] = [None] * len(requests)
        limit = self.options.max_tokens_per_batch
        run = self._padded if self.attention == "padded" else self._packed
        batch: list[int] = []
        tokens = 0
        for i in order:
            n = len(requests[i][0])
            cost = len(requests[batch[0]][0]) * (len(batch) + 1) if self.attention == "padded" and batch else tokens + n
            if batch and cost > limit:
                run(requests, batch, temperature, results, ranks)
                batch, tokens = [], 0
            batch.append(i)
            tokens += n
        if batch:
            run(requests, batch, temperature, results, ranks)
        return results  # type: ignore[return-value]

    def _packed(self, requests, batch: list[int], temperature: float, results: list, ranks: bool = False) -> None:
        """One pass over the rows of ``batch`` concatenated, each attending only to itself."""
        import torch

        device = self.weight.device
        lengths = [len(requests[i][0]) for i in batch]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        ids = torch.tensor(np.concatenate([np.asarray(requests[i][0], dtype=np.int64) for i in batch]), device=device)
        position_ids = torch.tensor(np.concatenate([np.arange(n) for n in lengths]), device=device)
        # segments slices on the host: its offsets stay there (no device sync in every layer)
        cu = torch.tensor(offsets, dtype=torch.int32, device="cpu" if self.attention == "segments" else device)
        positions = [np.asarray(requests[i][1], dtype=np.int64) for i in batch]
        for p, n in zip(positions, lengths):
            if len(p) and (p.min() < 1 or p.max() >= n):
                raise ValueError(f"scored positions must lie in [1, {n}) for a {n}-token row")
        index = torch.tensor(np.concatenate([p + o for p, o in zip(positions, offsets[:-1])]), device=device)
        with torch.inference_mode():
            hidden = self.body(
                input_ids=ids[None], position_ids=position_ids[None], use_cache=False,
                cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=max(lengths), max_length_k=max(lengths),
            ).last_hidden_state[0]
            lp = gather_logprobs(hidden[index - 1], self.weight, self.bias, ids[index], temperature, self.budget_bytes, self.kernel,
                                 ranks=ranks)
            lp = np.stack([t.cpu().numpy() for t in lp]) if ranks else lp.cpu().numpy()
        for i, piece in zip(batch, np.split(lp, np.cumsum([len(p) for p in positions])[:-1], axis=-1)):
            results[i] = piece

    def _padded(self, requests, batch: list[int], temperature: float, results: list, ranks: bool = False) -> None:
        """The former way, kept for benchmarks: right-padded rows with the model's own attention."""
        import torch

        width = len(requests[batch[0]][0])
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            seq = requests[i][0]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        device = self.weight.device
        with torch.inference_mode():
            hidden = self.body(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).last_hidden_state
            for row, i in enumerate(batch):
                pos = torch.as_tensor(requests[i][1], dtype=torch.long, device=device)
                lp = gather_logprobs(hidden[row, pos - 1], self.weight, self.bias, ids[row].to(device)[pos], temperature,
                                     self.budget_bytes, self.kernel, ranks=ranks)
                results[i] = np.stack([t.cpu().numpy() for t in lp]) if ranks else lp.cpu().numpy()

    def close(self) -> None:
        del self.model, self.body, self.weight, self.bias
        _free_memory()


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def options_from(config: EngineOptions) -> Options:
    """The backend's options from the engine section (``options.EngineOptions``)."""
    return Options(
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        max_tokens_per_batch=config.max_tokens_per_batch,
        logprob_budget_bytes=logprob_budget_bytes(config),
        logprob_kernel=config.logprob_kernel,
        attention=config.scoring_attention,
    )
