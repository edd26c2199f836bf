"""What tests, benchmarks and the toy-world scripts build; no command of rlt-data imports it.

``tiny``: tiny Qwen2-architecture models and a small byte-level tokenizer with Qwen's special
tokens and chat template. ``toy``: the toy world (two-number addition with checkable step-by-step
explanations) that made the toy data. ``toy_training``: a plain fine-tuning loop for the tiny
models, and the toy world's (prompt, completion) pairs in the teacher and student formats. The toy
world's data and its trained models stay shipped (``rlt_data/resources/toy``, ``--preset toy``).
"""
