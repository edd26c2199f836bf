"""Slurm's time and memory notations, checked before a job is written (``sbatch`` would refuse it
only at submission, or not at all: ``--time 10:00`` is ten minutes)."""

from __future__ import annotations

import re

from .errors import UserError

# Slurm's --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_MEMORY = re.compile(r"^\d+[KMGT]?$", re.I)


def seconds(value: str, flag: str) -> int:
    """A Slurm time limit in seconds (``UNLIMITED`` and ``INFINITE``: no limit)."""
    text = str(value).strip()
    if text.upper() in ("UNLIMITED", "INFINITE"):
        return 10**9
    match = _TIME.match(text)
    if not match:
        raise UserError(f"{flag}: {value!r} is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
    days, first, second, third = match.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        return int(days) * 86400 + int(first) * 3600 + int(second or 0) * 60 + int(third or 0)
    if third is not None:  # HH:MM:SS
        return int(first) * 3600 + int(second) * 60 + int(third)
    return int(first) * 60 + int(second or 0)  # MM or MM:SS


def check_time(value: str, flag: str) -> None:
    if seconds(value, flag) < 60:
        raise UserError(f"{flag}: {value!r} is under a minute")


def check_memory(value: str, flag: str) -> None:
    if not _MEMORY.match(str(value).strip()):
        raise UserError(f"{flag}: {value!r} is not a Slurm memory size (e.g. 64G, 500M)")
