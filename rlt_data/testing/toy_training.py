"""Fine-tuning tiny models on the toy world (the shipped models were built with it; tests and benchmarks use it)."""

from __future__ import annotations

import random
from pathlib import Path

from .. import protocol


def teacher_pairs(tokenizer, rows: list[dict]) -> list[tuple[str, str]]:
    """(prompt, completion) in the teacher format: question and solution in, explanation out."""
    return [
        (protocol.render_teacher_prompt(tokenizer, r["question"], r["solution"]),
         f"{r['explanation']}\n\n{protocol.END_EXPLANATION}{tokenizer.eos_token}")
        for r in rows
    ]


def student_pairs(tokenizer, rows: list[dict]) -> list[tuple[str, str]]:
    """(prompt, completion) in the student format: the distillation training row."""
    out = []
    for r in rows:
        messages = protocol.training_messages(r["question"], r["explanation"], r["solution"])
        prompt = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
        out.append((prompt, messages[2]["content"] + tokenizer.eos_token))
    return out


def train_causal_lm(path: str | Path, pairs: list[tuple[str, str]], *, steps: int, lr: float = 3e-3,
                    batch_size: int = 8, seed: int = 0) -> list[float]:
    """Fine-tune the model saved at ``path`` in place, loss on the completions only. Returns losses."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.train()
    encoded = []
    for prompt, completion in pairs:
        p = tokenizer(prompt, add_special_tokens=False).input_ids
        c = tokenizer(completion, add_special_tokens=False).input_ids
        encoded.append((p + c, [-100] * len(p) + c))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * max(0.05, 1 - s / steps))
    rng = random.Random(seed)
    losses = []
    for _ in range(steps):
        batch = rng.sample(encoded, min(batch_size, len(encoded)))
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, (x, y) in enumerate(batch):
            ids[k, : len(x)], labels[k, : len(y)], mask[k, : len(x)] = torch.tensor(x), torch.tensor(y), 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    model.save_pretrained(path)
    return losses
