"""Classification metrics and McNemar's test against tables worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnlab.engine import metrics


def test_per_class_precision_recall_f1_from_a_confusion_matrix() -> None:
    # rows true, columns predicted: class "a" 5 right, 1 called "b"; "b" 2 right, 2 called "a"
    out = metrics.per_class(np.array([[5, 1], [2, 2]]), ["a", "b"])
    assert out["a"] == pytest.approx(
        {"precision": 5 / 7, "recall": 5 / 6, "f1": 10 / 13, "support": 6}
    )
    assert out["b"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1 / 2, "f1": 4 / 7, "support": 4}
    )


def test_a_class_never_predicted_has_zero_precision_not_nan() -> None:
    out = metrics.per_class(np.array([[3, 0], [2, 0]]), ["a", "b"])
    assert out["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}


def test_confusion_counts_pairs() -> None:
    m = metrics.confusion(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert metrics.accuracy(m) == pytest.approx(3 / 5)


def test_expected_calibration_error_of_two_bins() -> None:
    bins = metrics.reliability(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 0, 1, 1]), bins=10)
    assert [b.count for b in bins if b.count] == [2, 2]
    # |0.5 - 0.9| * 2/4 + |1.0 - 0.6| * 2/4
    assert metrics.expected_calibration_error(bins) == pytest.approx(0.4)


def test_confidence_of_one_falls_in_the_last_bin() -> None:
    bins = metrics.reliability(np.array([1.0, 0.0]), np.array([1, 0]), bins=4)
    assert bins[-1].count == 1 and bins[0].count == 1


def test_most_confident_mistakes_first() -> None:
    true = np.array([0, 1, 1, 0, 2])
    pred = np.array([0, 0, 2, 1, 2])
    conf = np.array([0.99, 0.7, 0.9, 0.7, 0.5])
    found = metrics.confident_mistakes(true, pred, conf, 2)
    assert [(m.index, m.true, m.predicted) for m in found] == [(2, 1, 2), (1, 1, 0)]


def test_mcnemar_exact_binomial_for_few_disagreements() -> None:
    # 1 image only a gets right, 9 only b: two-sided exact p = 2 * (C(10,0) + C(10,1)) / 2^10
    result = metrics.mcnemar_from_counts(a_only=1, b_only=9)
    assert result.method == "exact binomial"
    assert result.p_value == pytest.approx(22 / 1024)
    assert result.statistic == 1
    assert result.verdict == "b is better"


def test_mcnemar_exact_with_no_evidence() -> None:
    # 2 vs 5: p = 2 * (1 + 7 + 21) / 2^7
    result = metrics.mcnemar_from_counts(a_only=2, b_only=5)
    assert result.p_value == pytest.approx(58 / 128)
    assert result.verdict == "no evidence of a difference"


def test_mcnemar_chi_square_with_continuity_correction() -> None:
    # 30 only a, 10 only b: (|30 - 10| - 1)^2 / 40 = 9.025; P(chi2_1 > x) = erfc(sqrt(x / 2))
    result = metrics.mcnemar_from_counts(a_only=30, b_only=10)
    assert result.method == "chi-square, continuity-corrected"
    assert result.statistic == pytest.approx(361 / 40)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))
    assert result.verdict == "b is worse"


def test_mcnemar_from_paired_predictions_counts_only_disagreements() -> None:
    a = np.array([True] * 50 + [False] * 3 + [True] * 1 + [False] * 10)
    b = np.array([True] * 50 + [True] * 3 + [False] * 1 + [False] * 10)
    result = metrics.mcnemar(a, b)
    assert (result.a_only, result.b_only) == (1, 3)
    assert result.p_value == pytest.approx(2 * (1 + 4) / 16)  # exact, n = 4
    assert metrics.mcnemar(a, a).verdict == "no evidence of a difference"


def test_summary_of_probabilities() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    out = metrics.summary(np.array([0, 1, 1]), probs, ["cat", "dog"])
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert out["confusion"] == {"class_names": ["cat", "dog"], "matrix": [[1, 0], [1, 1]]}
    assert out["per_class"]["dog"]["recall"] == pytest.approx(0.5)
