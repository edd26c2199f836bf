"""rlt-data: distillation data from Reinforcement Learning Teachers (RLT)."""

__version__ = "0.1.0"
