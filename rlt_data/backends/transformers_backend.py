"""The Hugging Face transformers backend: runs anywhere, CPU included; what the tests use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import eos_token_ids, load_causal_lm, load_tokenizer
from . import Sample, SamplingConfig
from .logprobs import DEFAULT_BUDGET_BYTES, gather_logprobs


@dataclass
class Options:
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 8  # prompts per generate() call
    max_tokens_per_batch: int = 16384  # padded tokens per scoring forward pass
    logprob_budget_bytes: int = DEFAULT_BUDGET_BYTES


class Generator:
    def __init__(self, model: str, options: Options):
        self.options = options
        self.tokenizer = load_tokenizer(model)
        self.model = load_causal_lm(model, options.device, options.dtype)
        self.eos_ids = eos_token_ids(model, self.tokenizer)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]

    def generate(self, prompts: list[str], sampling: SamplingConfig, seed: int) -> list[list[Sample]]:
        import torch
        from transformers import GenerationConfig

        # A fresh config: the checkpoint's own defaults (top_k=20, repetition_penalty=1.05 for
        # Qwen2.5-Instruct) must not leak into the reference sampling.
        config = GenerationConfig(
            do_sample=True,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=0,
            min_p=None,
            repetition_penalty=1.0,
            max_new_tokens=sampling.max_new_tokens,
            num_return_sequences=sampling.num_samples,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        torch.manual_seed(seed)
        results: list[list[Sample]] = []
        for start in range(0, len(prompts), self.options.batch_size):
            batch = [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts[start : start + self.options.batch_size]]
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
    def __init__(self, model: str, options: Options):
        self.options = options
        self.tokenizer = load_tokenizer(model)
        self.model = load_causal_lm(model, options.device, options.dtype)
        self.body = getattr(self.model, self.model.base_model_prefix)
        head = self.model.get_output_embeddings()
        self.weight, self.bias = head.weight, getattr(head, "bias", None)

    def logprobs(self, requests: list[tuple[list[int], np.ndarray]], temperature: float) -> list[np.ndarray]:
        """Log-probs at the requested positions; batched by length, right-padded."""
        import torch

        order = sorted(range(len(requests)), key=lambda i: -len(requests[i][0]))
        results: list[np.ndarray | None] = [None] * len(requests)
        batch: list[int] = []

        def flush():
            width = len(requests[batch[0]][0])
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                seq = requests[i][0]
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            device = self.weight.device
            with torch.inference_mode():
                hidden = self.body(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
                for row, i in enumerate(batch):
                    pos = torch.as_tensor(requests[i][1], dtype=torch.long, device=device)
                    lp = gather_logprobs(
                        hidden[row, pos - 1], self.weight, self.bias, ids[row].to(device)[pos], temperature,
                        self.options.logprob_budget_bytes,
                    )
                    results[i] = lp.cpu().numpy()
            batch.clear()

        for i in order:
            width = len(requests[batch[0]][0]) if batch else len(requests[i][0])
            if batch and width * (len(batch) + 1) > self.options.max_tokens_per_batch:
                flush()
            batch.append(i)
        if batch:
            flush()
        return results  # type: ignore[return-value]

    def close(self) -> None:
        del self.model, self.body, self.weight, self.bias
        _free_memory()


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def options_from(config) -> Options:
    return Options(
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        max_tokens_per_batch=config.max_tokens_per_batch,
    )
