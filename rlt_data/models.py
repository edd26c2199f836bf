"""Loading tokenizers and models from Hub ids or local folders, with one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UserError, first_line


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")


def is_local(ref: str) -> bool:
    """Whether a model or data set reference names a local path rather than a Hub id (``ORG/NAME``
    or ``NAME``): it exists here, or it is spelled as no Hub id is: it starts with ``.``, ``/``,
    ``~``, ``\\`` or a drive (``C:\\``), or has more than one slash. A local path that does not
    exist is then "not found", not a Hub error. Callers add what their kind of reference allows:
    a data file's suffix (``sources``, ``card``), a folder here (``_local_model``)."""
    return ref.startswith((".", "/", "~", "\\")) or bool(_DRIVE.match(ref)) or ref.count("/") > 1 or Path(ref).expanduser().exists()


def _local_model(model: str) -> bool:
    """``is_local``, or ``ORG/NAME`` whose first part is a folder here: a model folder a later step
    writes (``outputs/my-teacher`` before training wrote it)."""
    parts = Path(model).expanduser().parts
    return is_local(model) or (len(parts) > 1 and Path(parts[0]).is_dir())


def check_model_path(model: str) -> None:
    path = Path(model).expanduser()
    if _local_model(model) and not path.exists():
        raise UserError(f"model not found: {model} (no such folder here; a Hub id has the form ORG/NAME)")
    if path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{model} has no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}): save the tokenizer beside the "
                        "weights (tokenizer.save_pretrained) or copy it from the base model")


def check_weights(model: str) -> None:
    """A local model's safetensors files open (their headers read): a truncated download or copy is
    one line before a trainer is built, not a traceback from inside it."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return
    from safetensors import safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
        except Exception as exc:
            raise UserError(f"{file} is damaged ({first_line(exc)}): copy or download the model again") from None


def load_tokenizer(model: str, revision: str | None = None):
    from transformers import AutoTokenizer

    check_model_path(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(Path(model).expanduser()) if _local_model(model) else model, revision=revision)
    except Exception as exc:
        first = first_line(exc)
        raise UserError(f"cannot load the tokenizer of {model}: {first}")
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"{model} has no chat template; rlt-data renders prompts with the model's chat template")
    return tokenizer


def same_tokenizer(a, b) -> bool:
    """Whether two tokenizers split text identically (same vocabulary, same special tokens)."""
    if a is b:
        return True
    probe = "Hello world\n\n<|begin_of_thought|>\n\n12+34 \\boxed{x} é 你好<|im_end|>"
    return a.get_vocab() == b.get_vocab() and a(probe, add_special_tokens=False).input_ids == b(
        probe, add_special_tokens=False
    ).input_ids


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise UserError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16")


def load_causal_lm(model: str, device: str = "auto", dtype: str = "auto"):
    from transformers import AutoModelForCausalLM

    check_model_path(model)
    device = resolve_device(device)
    try:
        lm = AutoModelForCausalLM.from_pretrained(
            str(Path(model).expanduser()) if _local_model(model) else model, dtype=resolve_dtype(dtype, device)
        )
    except UserError:
        raise
    except Exception as exc:
        first = first_line(exc)
        raise UserError(f"cannot load model {model}: {first}")
    return lm.to(device).eval()


def eos_token_ids(model: str, tokenizer) -> list[int]:
    """End-of-sequence ids: the checkpoint's generation config, plus the tokenizer's."""
    from transformers import GenerationConfig

    try:
        ids = GenerationConfig.from_pretrained(str(Path(model).expanduser()) if _local_model(model) else model).eos_token_id
    except Exception:  # no generation_config.json
        ids = None
    ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
