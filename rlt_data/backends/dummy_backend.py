"""The ``dummy`` backend: deterministic text and log-probs from a hash, no model weights.

For tests and dry rehearsals of the plumbing (resume, sharding, selection, the Hub layout) in
milliseconds: ``--backend dummy`` loads only the model's tokenizer (prompts and scoring contexts
are rendered exactly as with a real model) and then

- writes, per prompt and sample, a few "steps" of words chosen by ``sha256(seed, sample, prompt)``,
  usually ending with ``<|end_of_explanation|>`` (sometimes not: a format error; sometimes longer
  than ``max_new_tokens``: truncated), so every selection status can occur;
- gives each scored token a log-prob that depends only on the model, the previous token, the
  token itself and the temperature, in ``[-6, -0.01] / T`` (and, for the RSR columns, the same
  at T = 1 and a rank in [1, 100] from the same hash).

Nothing it writes means anything; it implements the backend contract (``backends.Generator``,
``backends.Scorer``) and nothing else, which is what it is for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import protocol
from ..models import load_tokenizer
from . import Sample, SamplingConfig

WORDS = ("add", "carry", "the", "ones", "tens", "digit", "so", "we", "get", "write", "next", "sum", "then", "is")


@dataclass
class Options:
    pass


def options_from(config: Any) -> Options:
    return Options()


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()


class Generator:
    def __init__(self, model: str, options: Options):
        self.tokenizer = load_tokenizer(model)

    def generate(self, prompts: list[str], sampling: SamplingConfig, seeds: list[int]) -> list[list[Sample]]:
        return [[self._sample(prompt, seed, k, sampling) for k in range(sampling.num_samples)] for prompt, seed in zip(prompts, seeds)]

    def _sample(self, prompt: str, seed: int, k: int, sampling: SamplingConfig) -> Sample:
        h = _digest(seed, k, prompt)
        steps = [f"Step {i + 1}: " + " ".join(WORDS[b % len(WORDS)] for b in _digest(h, i)[: 3 + h[i] % 5]) for i in range(1 + h[0] % 4)]
        text = "\n".join(steps) + ("" if h[31] % 8 == 0 else f"\n\n{protocol.END_EXPLANATION}")
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) > sampling.max_new_tokens:
            return Sample(text=self.tokenizer.decode(ids[: sampling.max_new_tokens]), truncated=True, num_tokens=sampling.max_new_tokens)
        return Sample(text=text, truncated=False, num_tokens=len(ids) + 1)  # + the end-of-sequence token

    def close(self) -> None:
        pass


class Scorer:
    def __init__(self, model: str, options: Options):
        self.model = model
        self.tokenizer = load_tokenizer(model)

    def logprobs(self, requests: list[tuple[list[int], list[int]]], temperature: float, ranks: bool = False) -> list[np.ndarray]:
        out = []
        for ids, positions in requests:
            digests = [_digest(self.model, ids[i - 1], ids[i]) for i in positions]
            raw = -0.01 - 5.99 * np.asarray([int.from_bytes(d[:2], "little") / 65535 for d in digests], dtype=np.float64)
            if not ranks:
                out.append(raw / temperature)
                continue
            # a rank that grows with the surprisal, clipped like RSR's: 1 for the likeliest tokens
            rank = np.minimum(1 + np.floor(-raw * 20 * np.asarray([d[2] / 255 for d in digests])), 100)
            out.append(np.stack([raw / temperature, raw, rank]) if len(digests) else np.zeros((3, 0)))
        return [v.astype(np.float32) for v in out]

    def close(self) -> None:
        pass
