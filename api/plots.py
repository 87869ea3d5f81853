"""The notebook's plots as PNG bytes: learning curves and a search's heatmap.

Figures are built without pyplot (no global state), on the Agg canvas, so renders in several
threads at once are safe.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from api.schemas import MetricRow, SearchRead, TrialRead

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
    rates = [r.lr for r in rows]
    if rows and all(lr is not None for lr in rates):
        # The schedule's learning rate (each epoch's last step), dashed on its own axis.
        lr_ax = acc_ax.twinx()
        lr_ax.plot(epochs, rates, "--", color="tab:gray", label="learning rate")
        lr_ax.set_ylabel("learning rate")
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


METRIC_LABELS = {"val_accuracy": "validation accuracy", "val_loss": "validation loss"}
# A sampled path with more distinct values than this is drawn as a scatter, not a grid.
MAX_HEATMAP_VALUES = 12


def _metric_label(search: SearchRead) -> str:
    metric = getattr(search, "metric", "val_accuracy")
    return METRIC_LABELS.get(metric, metric)


def _better(search: SearchRead, new: float, old: float) -> bool:
    """Whether ``new`` beats ``old`` (NaN: nothing yet) by the search's mode."""
    if math.isnan(old):
        return True
    return new < old if getattr(search, "mode", "max") == "min" else new > old


def _axis_values(search: SearchRead, path: str) -> list[Any]:
    """A grid path's values, or the distinct values a sampled search's trials drew, sorted."""
    if search.grid and path in search.grid:
        return list(search.grid[path])
    values: list[Any] = []
    for trial in search.trials:
        value = trial.params.get(path)
        if value not in values:
            values.append(value)
    try:
        return sorted(values)
    except TypeError:
        return values


def _paths(search: SearchRead) -> list[str]:
    return list(search.grid or getattr(search, "space", None) or {})


def heatmap_grid(search: SearchRead) -> tuple[list[str], list[Any], list[Any], list[list[float]]]:
    """Axis names, row and column values, and the matrix of the search's metric per trial.

    Rows are the first searched path, columns the second (a single column for one path); a
    sampled search's axes hold the values its trials drew. A cell that stands for several
    trials shows the best of them by the search's mode; a cell with no finished epoch is NaN.
    """
    axes = _paths(search)
    rows = _axis_values(search, axes[0])
    cols = _axis_values(search, axes[1]) if len(axes) > 1 else [None]
    cells = [[math.nan] * len(cols) for _ in rows]
    for trial in search.trials:
        r = rows.index(trial.params[axes[0]])
        c = cols.index(trial.params[axes[1]]) if len(axes) > 1 else 0
        value = trial.score
        if value is not None and _better(search, value, cells[r][c]):
            cells[r][c] = value
    return axes[:2], rows, cols, cells


def _is_best(search: SearchRead, trial: TrialRead) -> bool:
    return search.best_job_id is not None and trial.job_id == search.best_job_id


def heatmap_png(search: SearchRead) -> bytes:
    """The metric over the first two searched paths; a scatter of the trials instead when a
    sampled path took too many distinct values for a grid."""
    axes = _paths(search)
    if any(len(_axis_values(search, a)) > MAX_HEATMAP_VALUES for a in axes[:2]):
        return scatter_png(search)
    from matplotlib.figure import Figure

    axes, rows, cols, cells = heatmap_grid(search)
    fig = Figure(figsize=(1.6 * len(cols) + 3, 0.8 * len(rows) + 2), layout="constrained")
    ax = fig.subplots()
    cmap = "viridis_r" if getattr(search, "mode", "max") == "min" else "viridis"
    image = ax.imshow(cells, cmap=cmap, aspect="auto", vmin=None, vmax=None)
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
            best = any(
                _is_best(search, t)
                and t.params[axes[0]] == rows[r]
                and (len(axes) == 1 or t.params[axes[1]] == cols[c])
                for t in search.trials
            )
            rgba = image.cmap(float(image.norm(value))) if not math.isnan(value) else (0, 0, 0, 1)  # type: ignore[arg-type]
            # Dark text on bright cells, white on dark ones.
            luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
            colour = "black" if luminance > 0.5 else "white"
            ax.text(c, r, text + (" ★" if best else ""), ha="center", va="center", color=colour)
    label = _metric_label(search)
    fig.colorbar(image, ax=ax, label=label)
    ax.set_title(f"search {search.id[:8]}: {label} ({search.status})")
    return _png(fig)


def _log_scale(search: SearchRead, path: str) -> bool:
    dist = (getattr(search, "space", None) or {}).get(path) or {}
    return "loguniform" in dist or bool(dist.get("log"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def scatter_png(search: SearchRead) -> bytes:
    """Each trial as a point over the first searched path (x) and the second (y; the metric
    itself for a one-path search), coloured by the search's metric; the best one starred."""
    from matplotlib.figure import Figure

    axes = _paths(search)[:2]
    label = _metric_label(search)
    # (x, y, score, best) of every trial with a score and numeric params
    points: list[tuple[float, float, float, bool]] = []
    for t in search.trials:
        x = _number(t.params.get(axes[0]))
        y = _number(t.params.get(axes[1])) if len(axes) > 1 else t.score
        if t.score is not None and x is not None and y is not None:
            points.append((x, y, t.score, _is_best(search, t)))
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    cmap = "viridis_r" if getattr(search, "mode", "max") == "min" else "viridis"
    drawn = ax.scatter(
        [p[0] for p in points],
        [p[1] for p in points],
        c=[p[2] for p in points],
        cmap=cmap,
        s=60,
        edgecolors="black",
        linewidths=0.5,
    )
    for x, y, _, best in points:
        if best:
            ax.scatter([x], [y], marker="*", s=300, color="red", zorder=3)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1] if len(axes) > 1 else label)
    if _log_scale(search, axes[0]):
        ax.set_xscale("log")
    if len(axes) > 1 and _log_scale(search, axes[1]):
        ax.set_yscale("log")
    if points:
        fig.colorbar(drawn, ax=ax, label=label)
    else:
        ax.text(0.5, 0.5, "no finished epoch yet", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)
    ax.set_title(f"search {search.id[:8]}: {label} ({search.status})")
    return _png(fig)
