"""Write rlt_data/resources/toy/teacher_sft.jsonl: the tiny teacher recipe's SFT set.

Bespoke-Stratos rows (``conversations`` with a thought and a solution section) for toy addition
questions disjoint from the shipped set.jsonl and from the toy models' training questions. Like
R1 traces, the thoughts are imperfect: a fixed share carries one arithmetic slip, so the SFT-only
teacher makes mistakes that the RLT reward can teach it to avoid. Deterministic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from rlt_data import protocol
from rlt_data.testing import toy

OUT = Path(__file__).resolve().parents[1] / "rlt_data" / "resources" / "toy" / "teacher_sft.jsonl"
SLIP_SHARE = 0.4


def main() -> None:
    rows = toy.toy_rows(2000, seed=0)[1664:1792]
    rng = random.Random(0)
    lines = []
    for r in rows:
        thought = r["corrupted_explanation"] if rng.random() < SLIP_SHARE else r["explanation"]
        answer = protocol.student_assistant_turn(thought, r["solution"])
        lines.append({
            "system": protocol.student_system_prompt(),
            "conversations": [{"from": "user", "value": r["question"]}, {"from": "assistant", "value": answer}],
        })
    OUT.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), "utf-8")
    print(f"wrote {len(lines)} rows to {OUT}")


if __name__ == "__main__":
    main()
