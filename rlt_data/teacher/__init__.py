"""Train an RLT teacher with TRL: two scripts in TRL's shape (``make_parser()``, ``main(...)``).

- :mod:`rlt_data.teacher.sft`: the SFT warm-up on reasoning traces (``python -m rlt_data.teacher.sft``).
- :mod:`rlt_data.teacher.grpo`: GRPO with the RLT reward (``python -m rlt_data.teacher.grpo``).
- :mod:`rlt_data.teacher.reward`: the RLT reward as a TRL reward function, and its options.
- :mod:`rlt_data.teacher.common`: what both share: the input rows and their options, the parser,
  TRL's refusals as one line, the run and its ``rlt_run.json``.

``rlt-data train-teacher sft|grpo`` and ``python -m rlt_data.train_teacher sft|grpo`` dispatch to
them (:mod:`rlt_data.train_teacher`).
"""
