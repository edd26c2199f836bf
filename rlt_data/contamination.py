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

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable, Mapping

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
    """n-gram -> the keys of the documents (benchmark problems) that contain it.

    ``whole_short``: a document of fewer than ``n`` words (but at least one) is indexed whole, so a
    text that contains all of it, word for word, matches (open-r1 never matches such a document;
    ``rlt-data decontaminate`` does: a short benchmark problem copied verbatim is still a copy).
    """

    n: int = NGRAM_SIZE
    lookup: dict[str, set[Hashable]] = field(default_factory=lambda: defaultdict(set))
    num_documents: int = 0
    whole_short: bool = False
    short_lengths: set[int] = field(default_factory=set)  # word counts of the documents indexed whole
    vocabulary: set[str] = field(default_factory=set)  # every word of an indexed gram: a gram with another word cannot match

    def add(self, key: Hashable, text: str) -> None:
        self.num_documents += 1
        grams = ngrams(text, self.n)
        words = normalize(text).split()
        if not grams and self.whole_short and words:
            grams = {" ".join(words)}
            self.short_lengths.add(len(words))
        if grams:
            self.vocabulary.update(words)
        for gram in grams:
            self.lookup[gram].add(key)

    def shared(self, text: str) -> list[str]:
        """The indexed grams that ``text`` contains, sorted. Only windows whose every word is in the
        index's vocabulary are joined and looked up (most windows of unrelated text are not)."""
        words = normalize(text).split()
        known = [w in self.vocabulary for w in words]
        found = set()
        for size in (self.n, *sorted(self.short_lengths)):
            run = 0  # in-vocabulary words ending at position i
            for i, ok in enumerate(known):
                run = run + 1 if ok else 0
                if run >= size:
                    gram = " ".join(words[i - size + 1 : i + 1])
                    if gram in self.lookup:
                        found.add(gram)
        return sorted(found)

    def __len__(self) -> int:
        return len(self.lookup)


def build_index(documents: Mapping[Hashable, str] | Iterable[tuple[Hashable, str]], n: int = NGRAM_SIZE,
                whole_short: bool = False) -> NgramIndex:
    """An index of ``documents`` ({key: text} or (key, text) pairs), keys such as ``("aime24", "12")``."""
    if n < 1:
        raise ValueError("n must be at least 1")
    index = NgramIndex(n=n, whole_short=whole_short)
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
        shared = index.shared(text)
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


# -- fuzzy: OpenThoughts' check (rapidfuzz ``fuzz.ratio >= 95`` between questions) --------------------
FUZZY_THRESHOLD = 95.0


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (bit-parallel, Hyyrö 2004: one
    big-integer step per character of ``b``)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, ch in enumerate(a):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    v = (1 << len(a)) - 1
    for ch in b:
        u = v & masks.get(ch, 0)
        v = (v + u) | (v - u)
    return len(a) - (v & ((1 << len(a)) - 1)).bit_count()


def ratio(a: str, b: str) -> float:
    """rapidfuzz's ``fuzz.ratio`` (normalized Indel similarity, 0-100): ``200 * LCS / (len(a) + len(b))``."""
    if not a and not b:
        return 100.0
    return 200.0 * lcs_length(a, b) / (len(a) + len(b))


ALPHABET = 128  # character counts kept per code point below this; every other character shares one bucket


def _char_counts(text: str):
    import numpy as np

    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) if text else np.zeros(0, dtype=np.uint32)
    return np.bincount(np.minimum(codes, ALPHABET), minlength=ALPHABET + 1).astype(np.int32)


@dataclass
class FuzzyIndex:
    """Documents by length, for ``ratio(text, document) >= threshold`` on ``normalize``d text. A
    document whose length or character counts cannot reach the threshold is never compared (the
    ratio is at most ``200 * min(len) / (len(a) + len(b))``, and at most ``200 * (characters in
    common, as multisets) / (len(a) + len(b))``; both bounds are checked for all candidates at once)."""

    threshold: float = FUZZY_THRESHOLD
    keys: list = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    _lengths: Any = None
    _counts: Any = None

    def freeze(self, documents) -> "FuzzyIndex":
        import numpy as np

        docs = sorted(((normalize(t), k) for k, t in documents), key=lambda d: len(d[0]))
        self.texts, self.keys = [d[0] for d in docs], [d[1] for d in docs]
        self._lengths = np.array([len(t) for t in self.texts], dtype=np.int64)
        self._counts = np.stack([_char_counts(t) for t in self.texts]) if docs else np.zeros((0, ALPHABET + 1), np.int32)
        return self

    def best(self, text: str) -> tuple[float, Hashable, str] | None:
        """The closest document at or above the threshold: (ratio, key, its normalized text), or None."""
        import numpy as np

        norm = normalize(text)
        n, t = len(norm), self.threshold
        if t <= 0:
            lo, hi = 0, len(self.texts)
        else:
            lo = int(np.searchsorted(self._lengths, math.ceil(t * n / (200 - t) - 1e-9), "left"))
            hi = int(np.searchsorted(self._lengths, math.floor(n * (200 - t) / t + 1e-9), "right"))
        if lo >= hi:
            return None
        common = np.minimum(self._counts[lo:hi], _char_counts(norm)).sum(axis=1)
        bound = 200.0 * common / np.maximum(self._lengths[lo:hi] + n, 1)
        found = None
        for k in np.nonzero(bound >= t - 1e-9)[0]:
            doc = self.texts[lo + k]
            score = 100.0 if doc == norm else ratio(doc, norm)
            if score >= t and (found is None or score > found[0]):
                found = (score, self.keys[lo + k], doc)
        return found


def build_fuzzy_index(documents: Mapping[Hashable, str] | Iterable[tuple[Hashable, str]], threshold: float = FUZZY_THRESHOLD) -> FuzzyIndex:
    if not 0 <= threshold <= 100:
        raise ValueError("threshold must be in 0..100")
    return FuzzyIndex(threshold=threshold).freeze(list(documents.items() if isinstance(documents, Mapping) else documents))
