"""Classification metrics as plain functions of labels, predictions and probabilities (numpy).

Per-class precision, recall and F1 from a confusion matrix; expected calibration error and the
reliability bins it is made of; the most confident mistakes; and McNemar's test of two models
scored on the same images. Nothing here knows about models, datasets or the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

ALPHA = 0.05
# Below this many discordant pairs McNemar's chi-square approximation is poor: the exact binomial
# test is used instead (the usual rule of thumb is b + c < 25).
EXACT_BELOW = 25
DEFAULT_BINS = 15


def confusion(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs: K×K int64, rows the true class."""
    k = num_classes
    flat = np.asarray(true, dtype=np.int64) * k + np.asarray(pred, dtype=np.int64)
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def per_class(matrix: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class, by name. A class never predicted has
    precision 0 (one with no examples recall 0), as scikit-learn's ``zero_division=0``."""
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    predicted = m.sum(axis=0)
    support = m.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }


def accuracy(matrix: np.ndarray) -> float:
    total = int(np.asarray(matrix).sum())
    return float(np.trace(matrix)) / total if total else 0.0


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float  # mean top probability in the bin (0 when empty)
    accuracy: float  # share of the bin's predictions that were right (0 when empty)


def reliability(
    confidence: np.ndarray, correct: np.ndarray, bins: int = DEFAULT_BINS
) -> list[ReliabilityBin]:
    """Predictions grouped by their top probability into ``bins`` equal-width bins over [0, 1]."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # A confidence of exactly 1.0 belongs to the last bin, not one past it.
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        out.append(
            ReliabilityBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=n,
                confidence=float(conf[mask].mean()) if n else 0.0,
                accuracy=float(hit[mask].mean()) if n else 0.0,
            )
        )
    return out


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float:
    """Σ (bin size / n) × |accuracy − confidence|: how far stated confidence is from the truth."""
    total = sum(b.count for b in bins)
    if not total:
        return 0.0
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins))


@dataclass(frozen=True)
class Mistake:
    index: int  # position in the evaluated set
    true: int
    predicted: int
    confidence: float  # the probability given to the wrong class


def confident_mistakes(
    true: np.ndarray, pred: np.ndarray, confidence: np.ndarray, n: int
) -> list[Mistake]:
    """The ``n`` wrong predictions with the highest confidence, most confident first (ties by
    index, so the answer is the same every time)."""
    true, pred = np.asarray(true), np.asarray(pred)
    wrong = np.flatnonzero(true != pred)
    order = wrong[np.lexsort((wrong, -np.asarray(confidence)[wrong]))][:n]
    return [Mistake(int(i), int(true[i]), int(pred[i]), float(confidence[i])) for i in order]


def summary(
    true: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    *,
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """Everything an evaluation reports of one model on one labelled set (JSON-ready):
    ``accuracy``, ``count``, ``per_class``, ``confusion`` (with ``class_names``), ``ece`` and
    ``reliability``."""
    probs = np.asarray(probabilities, dtype=np.float64)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    matrix = confusion(true, pred, len(class_names))
    rel = reliability(conf, pred == np.asarray(true), bins)
    return {
        "accuracy": accuracy(matrix),
        "count": int(matrix.sum()),
        "per_class": per_class(matrix, class_names),
        "confusion": {"class_names": list(class_names), "matrix": matrix.tolist()},
        "ece": expected_calibration_error(rel),
        "reliability": [asdict(b) for b in rel],
    }


# -- McNemar's test ----------------------------------------------------------------------------
@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired predictions. ``b_only``: images only b got right; ``a_only``:
    images only a got right (the discordant pairs; the test ignores the rest)."""

    a_only: int
    b_only: int
    statistic: float
    p_value: float
    method: str  # "exact binomial" or "chi-square, continuity-corrected"
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar(a_correct: np.ndarray, b_correct: np.ndarray, alpha: float = ALPHA) -> McNemar:
    """Is b right on more images than a, beyond chance? Two-sided at ``alpha``.

    With fewer than :data:`EXACT_BELOW` discordant pairs the p-value is the exact binomial test
    of ``b_only`` out of ``a_only + b_only`` at p = ½ (``statistic`` is then ``min(a_only,
    b_only)``, the count the binomial tail is taken at); otherwise the chi-square statistic
    (|a_only − b_only| − 1)² / (a_only + b_only) with Edwards' continuity correction, 1 degree
    of freedom. No discordant pair at all: p = 1, no evidence either way."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("a and b must be scored on the same images")
    return mcnemar_from_counts(int((a & ~b).sum()), int((b & ~a).sum()), alpha)


def mcnemar_from_counts(a_only: int, b_only: int, alpha: float = ALPHA) -> McNemar:
    """:func:`mcnemar` from the discordant counts of the 2×2 contingency table."""
    n = a_only + b_only
    if n == 0:
        statistic, p, method = 0.0, 1.0, "exact binomial"
    elif n < EXACT_BELOW:
        statistic = float(min(a_only, b_only))
        p = float(stats.binomtest(b_only, n, 0.5, alternative="two-sided").pvalue)
        method = "exact binomial"
    else:
        statistic = (abs(a_only - b_only) - 1) ** 2 / n
        p = float(stats.chi2.sf(statistic, df=1))
        method = "chi-square, continuity-corrected"
    if p < alpha and b_only > a_only:
        verdict = "b is better"
    elif p < alpha and a_only > b_only:
        verdict = "b is worse"
    else:
        verdict = "no evidence of a difference"
    return McNemar(a_only, b_only, float(statistic), min(p, 1.0), method, verdict)
