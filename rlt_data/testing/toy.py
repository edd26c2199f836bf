"""A toy world: two-number addition with step-by-step explanations (the shipped toy models are trained on it;
``toy_training.py`` beside it trains them).

The task has known answers and explanations whose steps can be checked, so the effect of
selecting explanations by the student's log-prob is measurable on a CPU in minutes.
"""

from __future__ import annotations

import hashlib
import random



def explain(a: int, b: int, slip: tuple[int, int] | None = None) -> str:
    """Column addition, one step per paragraph.

    ``slip=(column, delta)`` makes an arithmetic slip in that column (its sum is off by ``delta``)
    and carries it through the later steps, as a careless solver would: the final line then
    states a wrong total.
    """
    steps, carry = [], 0
    da, db = str(a)[::-1], str(b)[::-1]
    places = ["units", "tens", "hundreds", "thousands", "ten-thousands"]
    digits = []
    for k in range(max(len(da), len(db))):
        x = int(da[k]) if k < len(da) else 0
        y = int(db[k]) if k < len(db) else 0
        total = x + y + carry
        if slip and slip[0] == k:
            total = max(0, total + slip[1])
        terms = f"{x} + {y}" + (f" + {carry}" if carry else "")
        steps.append(f"Add the {places[k]}: {terms} = {total}, write {total % 10}" + (", carry 1." if total >= 10 else "."))
        digits.append(total % 10)
        carry = total // 10
    if carry:
        steps.append(f"Write the final carry {carry}.")
        digits.append(carry)
    result = int("".join(map(str, reversed(digits))))
    steps.append(f"So {a} + {b} = {result}.")
    return "\n\n".join(steps)


def corrupted(a: int, b: int, rng: random.Random) -> str:
    """An explanation with one arithmetic slip, carried through to a wrong total."""
    columns = max(len(str(a)), len(str(b)))
    while True:
        text = explain(a, b, slip=(rng.randrange(columns), rng.choice([-3, -2, -1, 1, 2, 3])))
        if text != explain(a, b):
            return text


def step_accuracy(a: int, b: int, explanation: str) -> float:
    """Fraction of the reference steps that the explanation states exactly, in order."""
    reference = explain(a, b).split("\n\n")
    steps = explanation.strip().split("\n\n")
    hits = sum(1 for k, step in enumerate(reference) if k < len(steps) and steps[k].strip() == step)
    return hits / max(len(reference), len(steps))


def toy_rows(n: int, seed: int = 0, digits: int = 2) -> list[dict]:
    """``n`` addition questions (Bespoke-Stratos math style) with solution and explanations."""
    rng = random.Random(seed)
    rows, seen = [], set()
    low, high = 10 ** (digits - 1), 10**digits - 1
    while len(rows) < n:
        a, b = rng.randint(low, high), rng.randint(low, high)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        question = f"Return your final response within \\boxed{{}}. What is {a} + {b}?"
        rows.append(
            {
                "id": hashlib.sha256(f"{a}+{b}".encode()).hexdigest()[:12],
                "question": question,
                "solution": f"\\boxed{{{a + b}}}",
                "explanation": explain(a, b),
                "corrupted_explanation": corrupted(a, b, random.Random(f"{seed}-{a}-{b}")),
                "a": a,
                "b": b,
            }
        )
    return rows


BENCHMARK_SLICE = slice(1936, 2000)  # of toy_rows(2000, seed=0): seen by neither shipped model nor the other sets


def benchmark_rows() -> list[dict]:
    """The toy benchmark (``rlt-data evaluate --benchmarks toy``): 64 held-out questions, MATH500-style columns.

    ``problem`` is the bare question; the evaluation adds SkyThought's math prompt
    ("Return your final response within \\boxed{}. "), which is exactly how the toy student's
    training questions start. ``answer`` is the sum, checked against the student's boxed answer.
    """
    return [
        {"id": r["id"], "problem": f"What is {r['a']} + {r['b']}?", "answer": str(r["a"] + r["b"])}
        for r in toy_rows(2000, seed=0)[BENCHMARK_SLICE]
    ]
