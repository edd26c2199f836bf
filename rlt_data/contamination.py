"""Benchmark contamination by word n-grams: the check ``evaluate --training-data`` runs, and the one a
decontamination stage can reuse. Pure functions, no I/O.

The convention is open-r1's ``scripts/decontaminate.py`` (after s1's ``decontaminate_util.py``):
lowercase, strip and collapse whitespace, split on whitespace, and call two texts overlapping when
they share one word 8-gram. A text of fewer than ``n`` words has no n-gram and never matches
(open-r1 behaves the same way).

    index = build_index({"aime24/0": problem, ...})          # benchmark problems
    hits = match(training_questions, index)                  # rows that share an 8-gram
    summary = overlap_counts(hits, keys_by_benchmark)        # per benchmark: problems and rows
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Mapping

NGRAM_SIZE = 8


def normalize(text: str) -> str:
    """Lowercased, whitespace stripped and collapsed to single spaces."""
    return " ".join(str(text).lower().split())


def ngrams(text: str, n: int = NGRAM_SIZE) -> set[str]:
    """The word n-grams of ``normalize(text)``, each as its words joined by one space."""
    if n < 1:
        raise ValueError("n must be at least 1")
    words = normalize(text).split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass
class NgramIndex:
    """n-gram -> the keys of the documents (benchmark problems) that contain it."""

    n: int = NGRAM_SIZE
    lookup: dict[str, set[Hashable]] = field(default_factory=lambda: defaultdict(set))
    num_documents: int = 0

    def add(self, key: Hashable, text: str) -> None:
        self.num_documents += 1
        for gram in ngrams(text, self.n):
            self.lookup[gram].add(key)

    def __len__(self) -> int:
        return len(self.lookup)


def build_index(documents: Mapping[Hashable, str] | Iterable[tuple[Hashable, str]], n: int = NGRAM_SIZE) -> NgramIndex:
    """An index of ``documents`` ({key: text} or (key, text) pairs), keys such as ``("aime24", "12")``."""
    index = NgramIndex(n=n)
    for key, text in documents.items() if isinstance(documents, Mapping) else documents:
        index.add(key, text)
    return index


@dataclass(frozen=True)
class Match:
    """Row ``row`` (its position in the texts given) shares n-grams with the documents ``keys``."""

    row: int
    keys: frozenset
    ngram: str  # one shared n-gram (the first in sorted order, so the report is stable)


def match(texts: Iterable[str], index: NgramIndex) -> list[Match]:
    """Every text that shares at least one n-gram with an indexed document, in input order."""
    found = []
    for row, text in enumerate(texts):
        shared = sorted(g for g in ngrams(text, index.n) if g in index.lookup)
        if shared:
            keys = frozenset().union(*(index.lookup[g] for g in shared))
            found.append(Match(row=row, keys=keys, ngram=shared[0]))
    return found


def overlap_counts(matches: Iterable[Match], group_of=lambda key: key[0]) -> dict[str, dict[str, int]]:
    """Per group (by default a key's first element, the benchmark): how many documents were hit and by how many rows."""
    problems: dict[str, set] = defaultdict(set)
    rows: dict[str, set] = defaultdict(set)
    for m in matches:
        for key in m.keys:
            problems[group_of(key)].add(key)
            rows[group_of(key)].add(m.row)
    return {g: {"problems": len(problems[g]), "rows": len(rows[g])} for g in sorted(problems)}
