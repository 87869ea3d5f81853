"""The notebook's plots as PNG bytes: learning curves and a search's heatmap.

Figures are built without pyplot (no global state), on the Agg canvas, so renders in several
threads at once are safe.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from api.schemas import MetricRow, SearchRead

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def curves_png(rows: list[MetricRow]) -> bytes:
    """Train and validation loss (left) and validation accuracy (right) per epoch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = [r.epoch for r in rows]
    loss_ax.plot(epochs, [r.train_loss for r in rows], "o-", label="train loss")
    loss_ax.plot(epochs, [r.val_loss for r in rows], "o-", label="validation loss")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.plot(epochs, [r.val_accuracy for r in rows], "o-", color="tab:green")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if epochs:
            ax.set_xticks(epochs if len(epochs) <= 20 else epochs[:: math.ceil(len(epochs) / 20)])
        else:
            ax.text(
                0.5, 0.5, "no finished epoch yet", ha="center", va="center", transform=ax.transAxes
            )
    if epochs:
        loss_ax.legend()
    return _png(fig)


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def heatmap_grid(search: SearchRead) -> tuple[list[str], list[Any], list[Any], list[list[float]]]:
    """Axis names, row and column values, and the matrix of validation accuracies.

    Rows are the grid's first path, columns its second (a single column for a one-path grid).
    A cell that stands for several trials (grids of three or more paths) shows the best of them;
    a cell with no finished epoch yet is NaN.
    """
    axes = list(search.grid)
    rows = list(search.grid[axes[0]])
    cols = list(search.grid[axes[1]]) if len(axes) > 1 else [None]
    cells = [[math.nan] * len(cols) for _ in rows]
    for trial in search.trials:
        r = rows.index(trial.params[axes[0]])
        c = cols.index(trial.params[axes[1]]) if len(axes) > 1 else 0
        value = trial.val_accuracy
        if value is not None and not (cells[r][c] >= value):
            cells[r][c] = value
    return axes[:2], rows, cols, cells


def heatmap_png(search: SearchRead) -> bytes:
    from matplotlib.figure import Figure

    axes, rows, cols, cells = heatmap_grid(search)
    fig = Figure(figsize=(1.6 * len(cols) + 3, 0.8 * len(rows) + 2), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(cells, cmap="viridis", aspect="auto", vmin=None, vmax=None)
    ax.set_yticks(range(len(rows)), [_label(v) for v in rows])
    ax.set_ylabel(axes[0])
    if len(axes) > 1:
        ax.set_xticks(range(len(cols)), [_label(v) for v in cols])
        ax.set_xlabel(axes[1])
    else:
        ax.set_xticks([])
    for r, row in enumerate(cells):
        for c, value in enumerate(row):
            text = "–" if math.isnan(value) else f"{value:.3f}"
            best = search.best_job_id is not None and any(
                t.job_id == search.best_job_id
                and t.params[axes[0]] == rows[r]
                and (len(axes) == 1 or t.params[axes[1]] == cols[c])
                for t in search.trials
            )
            rgba = image.cmap(float(image.norm(value))) if not math.isnan(value) else (0, 0, 0, 1)  # type: ignore[arg-type]
            # Dark text on bright cells, white on dark ones.
            luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
            colour = "black" if luminance > 0.5 else "white"
            ax.text(c, r, text + (" ★" if best else ""), ha="center", va="center", color=colour)
    fig.colorbar(image, ax=ax, label="validation accuracy")
    ax.set_title(f"search {search.id[:8]}: validation accuracy ({search.status})")
    return _png(fig)
