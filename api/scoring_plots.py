"""Pictures of an evaluation: the most confident mistakes (images with their true and predicted
class) and the reliability diagram. Built without pyplot, on the Agg canvas, like api.plots."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from api.plots import _png

GRID_COLUMNS = 4


def mistakes_png(mistakes: list[dict[str, Any]]) -> bytes:
    """A grid of the mistakes that carry pixels: each titled ``true → predicted (confidence)``."""
    from matplotlib.figure import Figure
    from PIL import Image

    shown = [m for m in mistakes if m.get("png")]
    cols = max(1, min(GRID_COLUMNS, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig = Figure(figsize=(2.6 * cols, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if not shown:
        axes[0][0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    for ax, m in zip(axes.flat, shown, strict=False):
        img = Image.open(io.BytesIO(base64.b64decode(m["png"])))
        grey = img.mode == "L"
        ax.imshow(img, cmap="gray" if grey else None, vmin=0, vmax=255)
        ax.set_title(
            f"true: {m['true']}\npredicted: {m['predicted']} ({m['confidence']:.0%})", fontsize=8
        )
    return _png(fig)


def reliability_png(bins: list[dict[str, Any]], ece: float) -> bytes:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.subplots()
    used = [b for b in bins if b["count"]]
    centers = [(b["lower"] + b["upper"]) / 2 for b in used]
    width = (bins[0]["upper"] - bins[0]["lower"]) if bins else 0.1
    ax.bar(centers, [b["accuracy"] for b in used], width=width, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.plot(centers, [b["confidence"] for b in used], "o", color="tab:red", label="confidence")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
    ax.set_title(f"reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    return _png(fig)
