"""Tiny Qwen2-architecture models with a byte-level BPE ChatML tokenizer, built offline.

Used by the tests, the benchmarks and the embedded demo: they behave like Qwen2.5 checkpoints
(same architecture, same special tokens, same chat template shape) at a few hundred thousand
parameters. Head size is 32 so vLLM's CPU backend accepts them too.
"""

from __future__ import annotations

from pathlib import Path

from .. import protocol

# ChatML. Each assistant turn's content and its closing <|im_end|> sit inside {% generation %}
# markers, so stock TRL's `assistant_only_loss` (return_assistant_tokens_mask) works; the markers
# render nothing: the text is byte for byte the plain ChatML template's.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2's pre-tokenizer pattern: punctuation absorbs following newlines, so "|>" and "\n\n"
# merge across a tag boundary exactly as with the real Qwen2.5 tokenizer.
QWEN_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _corpus() -> list[str]:
    tags = [
        protocol.BEGIN_SOLUTION, protocol.END_SOLUTION, protocol.BEGIN_EXPLANATION,
        protocol.END_EXPLANATION, protocol.BEGIN_THOUGHT, protocol.END_THOUGHT,
    ]
    lines = [protocol.teacher_system_prompt(), protocol.student_system_prompt()]
    lines += [f"{tag}\n\n" for tag in tags] + [f"\n\n{tag}\n\n" for tag in tags]
    lines += [f"What is {a} + {b}? The answer is {a + b}.\n\n" for a in range(20) for b in range(0, 20, 3)]
    lines += ["Return your final response within \\boxed{}. Compute the sum. First add the units, then carry."]
    return lines


def build_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer (trained on a small fixed corpus) with ChatML special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML_TEMPLATE,
        model_max_length=32768,
    )


def build_model(
    path: str | Path,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    tokenizer=None,
    tie_word_embeddings: bool = True,
    max_position_embeddings: int = 4096,
    embedding_std: float | None = 0.5,
) -> Path:
    """Save a randomly initialized tiny Qwen2 causal LM and its tokenizer to ``path``."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    tokenizer = tokenizer or build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    if embedding_std is not None:  # larger logits than the default init: untrained samples are not uniform noise
        with torch.no_grad():
            model.get_input_embeddings().weight.normal_(0, embedding_std)
    model.generation_config = GenerationConfig(
        eos_token_id=[config.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
