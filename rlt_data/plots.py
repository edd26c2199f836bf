"""The card's pictures: histograms drawn with Pillow, written beside the card (``plots/*.png``).

Two overlaid histograms per picture (every scored candidate, and the kept rows), on shared bins,
with axis ticks and a legend; no plotting library needed. They upload with the card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PLOTS = {
    "reward": ("plots/reward.png", "Reward", "reward"),
    "explanation_tokens": ("plots/explanation_tokens.png", "Explanation length", "explanation tokens (student)"),
}
_W, _H, _L, _R, _T, _B = 720, 380, 64, 16, 36, 48  # size and margins
_SERIES = (("all scored", (160, 160, 160)), ("kept", (31, 119, 180)))


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    return list(np.linspace(lo, hi, n))


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.2f}"


def histogram(path: Path, title: str, xlabel: str, everything: list[float], kept: list[float], bins: int = 30) -> None:
    """Write one PNG: ``everything`` in grey, ``kept`` in blue on top, the same bins."""
    from PIL import Image, ImageDraw

    values = np.asarray(everything, dtype=np.float64)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    counts = [np.histogram(np.asarray(v, dtype=np.float64), edges)[0] for v in (everything, kept)]
    top = max(1, int(max(c.max(initial=0) for c in counts)))
    image = Image.new("RGB", (_W, _H), "white")
    draw = ImageDraw.Draw(image)
    x0, x1, y0, y1 = _L, _W - _R, _H - _B, _T
    sx = lambda x: x0 + (x - lo) / (hi - lo) * (x1 - x0)  # noqa: E731
    sy = lambda c: y0 - c / top * (y0 - y1)  # noqa: E731
    for (_, color), count in zip(_SERIES, counts):
        for k, c in enumerate(count):
            if c:
                draw.rectangle([sx(edges[k]) + 1, sy(c), sx(edges[k + 1]) - 1, y0], fill=color)
    draw.line([x0, y0, x1, y0], fill="black")
    draw.line([x0, y0, x0, y1], fill="black")
    for x in _ticks(lo, hi):
        draw.line([sx(x), y0, sx(x), y0 + 4], fill="black")
        draw.text((sx(x) - 12, y0 + 6), _fmt(x), fill="black")
    for c in _ticks(0, top, 5):
        draw.line([x0 - 4, sy(c), x0, sy(c)], fill="black")
        draw.text((6, sy(c) - 6), _fmt(round(c)), fill="black")
    draw.text((x0, 10), f"{title} ({len(everything)} scored, {len(kept)} kept)", fill="black")
    draw.text(((x0 + x1) / 2 - 60, _H - 20), xlabel, fill="black")
    for k, (label, color) in enumerate(_SERIES):
        draw.rectangle([x1 - 120, y1 + 4 + 16 * k, x1 - 110, y1 + 14 + 16 * k], fill=color)
        draw.text((x1 - 104, y1 + 3 + 16 * k), label, fill="black")
    from .shards import atomic_write

    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))  # a per-process temporary name: two writers never share it


def write_plots(root: Path, data: dict[str, tuple[list[float], list[float]]]) -> list[str]:
    """``data``: plot name -> (every scored value, kept values). Returns the files written."""
    written = []
    for name, (everything, kept) in data.items():
        relative, title, xlabel = PLOTS[name]
        histogram(root / relative, title, xlabel, everything, kept)
        written.append(relative)
    return written
